"""Tensors, operations and iteration axes: ``placeholder``, ``compute``, reductions.

A :class:`Tensor` is the output of an :class:`Operation`: a :class:`PlaceholderOp` (an input) or
a :class:`ComputeOp` (one expression per output element, over its data-parallel axes and,
for a reduction, its reduction axes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from accel.errors import ExprError
from accel.te import dtype as dt
from accel.te.expr import Const, Expr, Var, as_expr, const
from accel.te.visit import walk

DATA_PAR = "data_par"
REDUCE = "reduce"
THREAD = "thread"


@dataclass(frozen=True, slots=True)
class Range:
    """The half-open interval ``[min, min + extent)``."""

    min: Expr
    extent: Expr

    @staticmethod
    def from_extent(extent: Any) -> Range:
        return Range(const(0), as_expr(extent))

    @staticmethod
    def from_bounds(begin: Any, end: Any) -> Range:
        begin, end = as_expr(begin), as_expr(end)
        if isinstance(begin, Const) and isinstance(end, Const):
            return Range(begin, const(end.value - begin.value))
        return Range(begin, end - begin)


@dataclass(frozen=True, eq=False)
class IterVar:
    """An iteration axis: a variable, its domain and its kind (data_par, reduce or thread)."""

    dom: Range | None
    var: Var
    kind: str = DATA_PAR
    thread_tag: str = ""

    @property
    def name(self) -> str:
        return self.var.name

    @property
    def extent(self) -> int:
        """The constant extent of the domain (raises for a thread axis without one)."""
        if self.dom is None or not isinstance(self.dom.extent, Const):
            raise ExprError(f"axis {self.name} has no constant extent")
        return int(self.dom.extent.value)

    def __repr__(self) -> str:
        dom = "" if self.dom is None else f", [{self.dom.min}, {self.dom.min} + {self.dom.extent})"
        return f"iter_var({self.name}{dom}, {self.kind})"

    def to_expr(self) -> Var:
        """The axis in an expression: its variable."""
        return self.var

    # An IterVar stands for its variable in expressions.
    def __add__(self, o):
        return self.var + o

    def __radd__(self, o):
        return o + self.var

    def __sub__(self, o):
        return self.var - o

    def __rsub__(self, o):
        return o - self.var

    def __mul__(self, o):
        return self.var * o

    def __rmul__(self, o):
        return o * self.var

    def __floordiv__(self, o):
        return self.var // o

    def __mod__(self, o):
        return self.var % o

    def __lt__(self, o):
        return self.var < o

    def __le__(self, o):
        return self.var <= o

    def __gt__(self, o):
        return self.var > o

    def __ge__(self, o):
        return self.var >= o

    @property
    def dtype(self) -> str:
        return self.var.dtype


class Operation:
    """Base class of operations; each has a name and output tensors."""

    name: str
    tag: str = ""

    def output(self, index: int = 0) -> Tensor:
        return self.outputs[index]

    @property
    def input_tensors(self) -> list[Tensor]:
        return []


@dataclass(eq=False)
class Tensor:
    """A multi-dimensional value: the output ``value_index`` of operation ``op``."""

    shape: tuple[int, ...]
    dtype: str
    op: Operation
    value_index: int = 0

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __call__(self, *indices: Any) -> TensorRead:
        if len(indices) == 1 and isinstance(indices[0], (tuple, list)):
            indices = tuple(indices[0])
        if len(indices) != len(self.shape):
            raise ExprError(
                f"tensor {self.name} has {len(self.shape)} dimensions but was indexed with "
                f"{len(indices)} indices"
            )
        exprs = tuple(as_expr(i, dt.INDEX_DTYPE) for i in indices)
        for axis, e in enumerate(exprs):
            if not dt.is_int(e.dtype):
                raise ExprError(
                    f"index {axis} of tensor {self.name} must be an integer, got {e.dtype}"
                )
        return TensorRead(self, exprs)

    def __getitem__(self, indices: Any) -> TensorRead:
        if not isinstance(indices, tuple):
            indices = (indices,)
        return self(*indices)

    def __repr__(self) -> str:
        return f"Tensor(name={self.name}, shape={self.shape}, dtype={self.dtype})"

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, slots=True)
class TensorRead(Expr):
    """The element of ``tensor`` at ``indices``."""

    tensor: Tensor
    indices: tuple[Expr, ...]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.tensor.dtype

    def print_expr(self, expr_str) -> str:
        return f"{self.tensor.name}[{', '.join(expr_str(i) for i in self.indices)}]"


@dataclass(frozen=True, slots=True)
class Reduce(Expr):
    """A reduction of ``source`` over ``axes`` with ``combiner`` (sum, max or min)."""

    combiner: str
    source: Expr
    axes: tuple[IterVar, ...]
    condition: Expr | None
    dtype: str

    def print_expr(self, expr_str) -> str:
        axes = ", ".join(iv.name for iv in self.axes)
        where = "" if self.condition is None else f", where={expr_str(self.condition)}"
        return f"{self.combiner}({expr_str(self.source)}, axis=[{axes}]{where})"


def identity_element(combiner: str, dtype: str) -> Const:
    """The value a reduction starts from: 0 for sum, the dtype's lowest value for max, ..."""
    low, high = dt.value_range(dtype)
    if combiner == "sum":
        return const(0, dtype)
    if dt.is_float(dtype):
        low, high = float("-inf"), float("inf")
    return const(low if combiner == "max" else high, dtype)


@dataclass(eq=False)
class PlaceholderOp(Operation):
    """An input tensor, supplied when the built function is called."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    outputs: list[Tensor] = field(default_factory=list)


@dataclass(eq=False)
class ComputeOp(Operation):
    """``output[axis] = body`` over the data-parallel ``axis`` (and ``reduce_axis``)."""

    name: str
    axis: tuple[IterVar, ...]
    reduce_axis: tuple[IterVar, ...]
    body: Expr
    tag: str = ""
    attrs: dict = field(default_factory=dict)
    outputs: list[Tensor] = field(default_factory=list)

    @property
    def input_tensors(self) -> list[Tensor]:
        return collect_tensor_reads(self.body)

    @property
    def reduce(self) -> Reduce | None:
        return self.body if isinstance(self.body, Reduce) else None


def collect_tensor_reads(expr: Expr) -> list[Tensor]:
    """The distinct tensors read by ``expr``, in first-use order."""
    seen: dict[int, Tensor] = {}
    for node in walk(expr):
        if isinstance(node, TensorRead) and id(node.tensor) not in seen:
            seen[id(node.tensor)] = node.tensor
    return list(seen.values())


def _shape(shape: Any, what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, Const)):
        shape = (shape,)
    result = []
    for i, extent in enumerate(shape):
        if isinstance(extent, Const):
            extent = extent.value
        if isinstance(extent, bool) or not isinstance(extent, int):
            raise ExprError(
                f"{what}: dimension {i} of the shape must be a constant integer, got {extent!r}"
            )
        if extent <= 0:
            raise ExprError(f"{what}: dimension {i} of the shape must be positive, got {extent}")
        result.append(int(extent))
    return tuple(result)


def placeholder(
    shape: Sequence[int] | int, dtype: str = "float32", name: str = "placeholder"
) -> Tensor:
    """An input tensor of the given shape and dtype."""
    shape = _shape(shape, f"placeholder {name}")
    op = PlaceholderOp(name, shape, dt.check_dtype(dtype))
    tensor = Tensor(shape, op.dtype, op)
    op.outputs.append(tensor)
    return tensor


_DEFAULT_AXIS_NAMES = ("i", "j", "k", "l", "m", "n")


def compute(
    shape: Sequence[int] | int,
    fcompute: Callable[..., Any],
    name: str = "compute",
    tag: str = "",
    attrs: dict | None = None,
) -> Tensor:
    """A tensor whose element at each index of ``shape`` is ``fcompute(*index)``.

    ``fcompute`` takes one argument per dimension (named arguments name the axes) or ``*i``.
    Its result may be a reduction (``te.sum`` / ``te.max`` / ``te.min``) at the top level only.
    """
    shape = _shape(shape, f"compute {name}")
    names = _axis_names(fcompute, len(shape), name)
    axis = tuple(IterVar(Range.from_extent(n), Var(v), DATA_PAR) for v, n in zip(names, shape))
    value = fcompute(*[iv.var for iv in axis])
    if isinstance(value, (tuple, list)):
        raise ExprError(
            f"compute {name}: the function returned {len(value)} values; a compute defines one "
            "tensor, so return one expression (declare one compute per output)"
        )
    body = as_expr(value)
    _check_reduce_placement(body, name)
    reduce_axis = body.axes if isinstance(body, Reduce) else ()
    op = ComputeOp(name, axis, tuple(reduce_axis), body, tag, dict(attrs or {}))
    tensor = Tensor(shape, body.dtype, op)
    op.outputs.append(tensor)
    return tensor


def _axis_names(fcompute: Callable[..., Any], ndim: int, name: str) -> list[str]:
    try:
        params = list(inspect.signature(fcompute).parameters.values())
    except (TypeError, ValueError):
        params = []
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return [f"i{d}" for d in range(ndim)] if ndim > 1 else ["i"]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) > ndim:  # parameters with defaults beyond the axes bind closure values
        extra = positional[ndim:]
        if all(p.default is not p.empty for p in extra):
            positional = positional[:ndim]
    if len(positional) != ndim:
        raise ExprError(
            f"compute {name}: the function takes {len(positional)} arguments but the shape has "
            f"{ndim} dimensions"
        )
    return [p.name for p in positional]


def _check_reduce_placement(body: Expr, name: str) -> None:
    inner = body.source if isinstance(body, Reduce) else body
    for node in walk(inner):
        if isinstance(node, Reduce):
            raise ExprError(
                f"compute {name}: a reduction must be the whole body of a compute, not part of an "
                "expression; compute the reduction as its own tensor"
            )


def reduce_axis(dom: Any, name: str = "rv") -> IterVar:
    """A reduction axis over ``dom``: an extent or a ``(begin, end)`` pair."""
    if isinstance(dom, (tuple, list)):
        if len(dom) != 2:
            raise ExprError(f"reduce_axis {name}: the domain must be (begin, end), got {dom!r}")
        rng = Range.from_bounds(*dom)
    else:
        rng = Range.from_extent(dom)
    if not isinstance(rng.extent, Const) or rng.extent.value <= 0:
        raise ExprError(f"reduce_axis {name}: the domain must be a non-empty constant range")
    return IterVar(rng, Var(name), REDUCE)


def thread_axis(dom: Any = None, tag: str = "", name: str = "") -> IterVar:
    """A thread axis such as ``te.thread_axis("cthread")`` (virtual threads), for ``bind``."""
    if isinstance(dom, str):
        dom, tag = None, dom
    if not tag:
        raise ExprError("thread_axis needs a tag such as 'cthread'")
    rng = (
        None
        if dom is None
        else (Range.from_bounds(*dom) if isinstance(dom, tuple) else Range.from_extent(dom))
    )
    return IterVar(rng, Var(name or tag), THREAD, tag)
