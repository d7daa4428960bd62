"""Tensor intrinsics: a small computation the target does in one go, for ``Stage.tensorize``.

An intrinsic is declared with a compute over placeholders (what it computes) and a function
that emits the statements implementing it, given the buffer regions it reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accel.errors import ScheduleError
from accel.te.expr import Expr, as_expr
from accel.te.tensor import ComputeOp, Tensor


@dataclass(frozen=True, eq=False)
class BufferRegion:
    """The part of a buffer an intrinsic operand covers: a base offset and per-axis strides.

    ``shape`` is the operand's shape in the intrinsic's declaration; element ``idx`` of the
    operand is element ``elem_offset + sum(idx[d] * strides[d])`` of ``buffer`` (flat).
    """

    buffer: object  # accel.lower.ir.Buffer
    elem_offset: Expr
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def index(self, *indices) -> Expr:
        """The flat index in ``buffer`` of the operand element at ``indices``."""
        if len(indices) != len(self.shape):
            raise ScheduleError(
                f"operand on {self.buffer.name} has {len(self.shape)} "
                f"dimensions, got {len(indices)} indices"
            )
        flat = self.elem_offset
        for i, stride in zip(indices, self.strides):
            flat = flat + as_expr(i) * stride
        return flat

    def vload(self, *indices) -> Expr:
        """The element at ``indices``, as a load expression."""
        from accel.lower.ir import Load

        return Load(self.buffer, self.index(*indices))

    def vstore(self, indices: Sequence, value) -> object:
        """A statement storing ``value`` at ``indices``."""
        from accel.lower.ir import Store

        return Store(self.buffer, self.index(*indices), as_expr(value, self.buffer.dtype))


# fcompute(ins, outs) returns a statement, or for reductions (body, reset, update): body computes
# the whole reduction, reset initialises the output, update accumulates into it.
IntrinCompute = Callable[[list[BufferRegion], list[BufferRegion]], object]


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
