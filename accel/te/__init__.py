"""Tensor expressions: declare *what* to compute.

``placeholder`` declares inputs, ``compute`` declares each output element as an expression of
its indices, ``reduce_axis`` with ``sum`` / ``max`` / ``min`` declares reductions.
``create_schedule`` starts saying *how* to compute it (see ``accel.schedule``).
"""

from accel.te.dtype import INDEX_DTYPE
from accel.te.expr import (
    BinOp,
    Call,
    Cast,
    Cmp,
    Const,
    Expr,
    Logic,
    Select,
    Var,
    const,
    if_then_else,
    logical_not,
    var,
)
from accel.te.expr import (
    logical_and as all,
)
from accel.te.expr import (
    logical_or as any,
)
from accel.te.reduction import max, min, sum
from accel.te.tensor import (
    ComputeOp,
    IterVar,
    Operation,
    PlaceholderOp,
    Range,
    Reduce,
    Tensor,
    TensorRead,
    compute,
    placeholder,
    reduce_axis,
    thread_axis,
)


def create_schedule(ops):
    """A default schedule for the given output operation(s); see ``accel.schedule.Schedule``."""
    from accel.schedule import create_schedule as _create

    return _create(ops)


def decl_tensor_intrin(op, fcompute, name="intrin"):
    """Declare a tensor intrinsic; see ``accel.schedule.intrin.TensorIntrin``."""
    from accel.schedule.intrin import decl_tensor_intrin as _decl

    return _decl(op, fcompute, name)


__all__ = [
    "INDEX_DTYPE",
    "BinOp",
    "Call",
    "Cast",
    "Cmp",
    "ComputeOp",
    "Const",
    "Expr",
    "IterVar",
    "Logic",
    "Operation",
    "PlaceholderOp",
    "Range",
    "Reduce",
    "Select",
    "Tensor",
    "TensorRead",
    "Var",
    "all",
    "any",
    "compute",
    "const",
    "create_schedule",
    "decl_tensor_intrin",
    "if_then_else",
    "logical_not",
    "max",
    "min",
    "placeholder",
    "reduce_axis",
    "sum",
    "thread_axis",
    "var",
]
