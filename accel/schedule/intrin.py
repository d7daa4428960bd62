"""Tensor intrinsics: a small computation the target does in one go, for ``Stage.tensorize``.

An intrinsic is declared with a compute over placeholders (what it computes) and a function
that emits the statements implementing it, given the buffer regions it reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accel.errors import ScheduleError
from accel.te.tensor import ComputeOp, Tensor

# fcompute(ins, outs) gets the operands as buffer regions (accel.lower.tensorize.BufferRegion) and
# returns a statement, or for reductions (body, reset, update): body computes
# the whole reduction, reset initialises the output, update accumulates into it.
IntrinCompute = Callable[[list, list], object]


@dataclass(frozen=True, eq=False)
class TensorIntrin:
    """A declared tensor intrinsic."""

    name: str
    op: ComputeOp
    inputs: tuple[Tensor, ...]
    fcompute: IntrinCompute

    def __repr__(self) -> str:
        return f"TensorIntrin({self.name})"


def decl_tensor_intrin(
    op: ComputeOp | Tensor, fcompute: IntrinCompute, name: str = "intrin"
) -> TensorIntrin:
    """Declare a tensor intrinsic computing ``op`` (a compute over placeholders)."""
    if isinstance(op, Tensor):
        op = op.op
    if not isinstance(op, ComputeOp):
        raise ScheduleError(f"decl_tensor_intrin {name}: expected a compute operation, got {op!r}")
    for t in op.input_tensors:
        if t.op.input_tensors:
            raise ScheduleError(
                f"decl_tensor_intrin {name}: operand {t.name} must be a placeholder"
            )
    return TensorIntrin(name, op, tuple(op.input_tensors), fcompute)
