"""Reductions: ``te.sum``, ``te.max``, ``te.min`` (the latter two also elementwise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from accel.errors import ExprError
from accel.te.expr import Expr, as_expr, binary
from accel.te.tensor import REDUCE, IterVar, Reduce


def _reducer(combiner: str) -> Callable[..., Expr]:
    def reduce(expr: Any, axis: Any = None, where: Any = None, *extra: Any) -> Expr:
        if axis is None or not _is_axis_list(axis):
            if axis is None:
                raise ExprError(f"te.{combiner} needs axis= (a reduction) or two operands")
            if combiner == "sum":
                raise ExprError("te.sum takes an expression and axis=; use + to add two values")
            return binary(combiner, expr, axis)
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        for iv in axes:
            if iv.kind != REDUCE:
                raise ExprError(
                    f"te.{combiner}: axis {iv.name} is not a reduction axis; make it with "
                    "te.reduce_axis"
                )
        source = as_expr(expr)
        cond = None if where is None else as_expr(where)
        return Reduce(combiner, source, axes, cond, source.dtype)

    reduce.__name__ = combiner
    reduce.__doc__ = f"``te.{combiner}(expr, axis=k)`` reduces over reduction axes" + (
        "." if combiner == "sum" else f"; ``te.{combiner}(a, b)`` is the elementwise {combiner}."
    )
    return reduce


def _is_axis_list(axis: Any) -> bool:
    if isinstance(axis, IterVar):
        return True
    return (
        isinstance(axis, (list, tuple))
        and len(axis) > 0
        and all(isinstance(a, IterVar) for a in axis)
    )


sum = _reducer("sum")
max = _reducer("max")
min = _reducer("min")
