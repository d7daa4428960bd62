"""Tensorize: replace the loops from a leaf axis inward by a declared tensor intrinsic.

The match is structural. Every loop inside the tensorized axis must stand for exactly one root
axis (a root axis itself or the inner part of a split), matched in order with the intrinsic's
data-parallel axes, then its reduction axes, with equal extents. The stage's expression must
equal the intrinsic's once its axes are renamed to those loops: same operations, dtypes and
casts, and each operand read with the same dependence on the tensorized loops in its innermost
dimensions (outer dimensions may depend only on the loops outside). What does not depend on the
tensorized loops becomes the operand's base offset, handed to the intrinsic's implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from accel.arith.simplify import affine, from_affine, simplify
from accel.errors import ScheduleError, TensorizeError
from accel.lower import ir
from accel.schedule.bounds import Bounds
from accel.schedule.intrin import TensorIntrin
from accel.schedule.stage import Stage
from accel.te.expr import Const, Expr, Var, as_expr
from accel.te.tensor import REDUCE, IterVar, Reduce, Tensor, TensorRead
from accel.te.visit import children, free_vars, substitute


class LoweringState(Protocol):
    """What tensorization needs of the schedule lowering that calls it (``ScheduleLowering``)."""

    bounds: Bounds
    attached: dict[tuple[Stage, IterVar], list[Stage]]

    def access(self, tensor: Tensor, indices: tuple[Expr, ...]) -> tuple[ir.Buffer, Expr]: ...


@dataclass(frozen=True, eq=False)
class BufferRegion:
    """The part of a buffer an intrinsic operand covers: a base offset and per-axis strides.

    ``shape`` is the operand's shape in the intrinsic's declaration; element ``idx`` of the
    operand is element ``elem_offset + sum(idx[d] * strides[d])`` of ``buffer`` (flat).
    """

    buffer: ir.Buffer
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
        return ir.Load(self.buffer, self.index(*indices))

    def vstore(self, indices: Sequence, value) -> ir.Store:
        """A statement storing ``value`` at ``indices``."""
        return ir.Store(self.buffer, self.index(*indices), as_expr(value, self.buffer.dtype))


def emit_tensorized(
    lw: LoweringState, stage: Stage, tpos: int, first_reduce: int | None
) -> tuple[ir.Stmt | None, ir.Stmt | None, ir.Stmt | None]:
    """(reset, update, body) statements for the tensorized part of ``stage``."""
    axis = stage.leaf_iter_vars[tpos]
    intrin: TensorIntrin = stage.iter_var_attrs[axis].tensor_intrin
    where = f"tensorize of stage {stage.name} at axis {axis.name} with {intrin.name}"
    sb = lw.bounds[stage]
    inner = stage.leaf_iter_vars[tpos:]
    inner_vars = {iv.var for iv in inner}
    for guard in sb.guards:
        if free_vars(guard) & inner_vars:
            raise TensorizeError(
                f"{where}: a split inside the tensorized loops does not divide its axis evenly"
            )
    for (s, iv), kids in lw.attached.items():
        if s is stage and iv in inner:
            raise TensorizeError(
                f"{where}: stage {kids[0].name} is computed inside the tensorized loops"
            )

    root_of = _match_axes(stage, sb, inner, intrin, where)
    var_map = {iiv.var: leaf.var for iiv, leaf in root_of}
    intrin_body = substitute(intrin.op.body, var_map)
    stage_body = substitute(lw.bounds.bodies[stage], {iv.var: v for iv, v in sb.value.items()})
    operands: dict[Tensor, TensorRead] = {}
    _match_expr(stage_body, intrin_body, operands, inner_vars, where)

    ins = []
    for placeholder in intrin.inputs:
        read = operands.get(placeholder)
        if read is None:
            raise TensorizeError(
                f"{where}: the stage does not read an operand for {placeholder.name}"
            )
        ins.append(_region(lw, read.tensor, read.indices, placeholder.shape, inner_vars, where))
    out_index = tuple(sb.value[iv] for iv in stage.op.axis)
    outs = [
        _region(lw, stage.op.outputs[0], out_index, intrin.op.outputs[0].shape, inner_vars, where)
    ]

    result = intrin.fcompute(ins, outs)
    is_reduce = isinstance(intrin.op.body, Reduce)
    if not is_reduce:
        if not isinstance(result, ir.Stmt):
            raise TensorizeError(f"{where}: the intrinsic's implementation must return a statement")
        return None, None, result
    if not (isinstance(result, tuple) and len(result) == 3):
        raise TensorizeError(f"{where}: a reduction intrinsic must return (body, reset, update)")
    body, reset, update = result
    if first_reduce is not None and first_reduce < tpos:
        if reset is None or update is None:
            raise TensorizeError(
                f"{where}: the reduction starts outside the tensorized "
                "loops, so the intrinsic needs reset and update"
            )
        return reset, update, None
    if body is None:
        body = ir.seq(reset, update)
    return None, None, body


def _match_axes(stage, sb, inner: list[IterVar], intrin: TensorIntrin, where: str):
    """Pair every intrinsic axis with the tensorized loop that plays its role."""
    leaf_vars = {iv.var: iv for iv in inner}
    roots_data: list[tuple[IterVar, IterVar]] = []
    roots_reduce: list[tuple[IterVar, IterVar]] = []
    used = set()
    for root in [*stage.op.axis, *stage.op.reduce_axis]:
        form = affine(sb.value[root])
        mine = [a for a in form.terms if isinstance(a, Var) and a in leaf_vars]
        for atom in form.terms:
            if not isinstance(atom, Var) and free_vars(atom) & leaf_vars.keys():
                raise TensorizeError(
                    f"{where}: axis {root.name} is fused inside the tensorized loops"
                )
        if len(mine) > 1 or any(form.coef(v) != 1 for v in mine):
            raise TensorizeError(f"{where}: axis {root.name} is split inside the tensorized loops")
        if mine:
            leaf = leaf_vars[mine[0]]
            used.add(leaf)
            (roots_reduce if root.kind == REDUCE else roots_data).append((root, leaf))
    unused = [iv.name for iv in inner if iv not in used]
    if unused:
        raise TensorizeError(f"{where}: loops {', '.join(unused)} do not map to any axis")
    pairs = []
    for kind, stage_axes, intrin_axes in (
        ("data-parallel", roots_data, intrin.op.axis),
        ("reduction", roots_reduce, intrin.op.reduce_axis),
    ):
        if len(stage_axes) != len(intrin_axes):
            raise TensorizeError(
                f"{where}: the tensorized loops cover {len(stage_axes)} {kind} axes "
                f"({', '.join(leaf.name for _, leaf in stage_axes) or 'none'}) "
                "but the intrinsic has "
                f"{len(intrin_axes)}"
            )
        for (_root, leaf), iiv in zip(stage_axes, intrin_axes):
            if sb.extent[leaf] != iiv.extent:
                raise TensorizeError(
                    f"{where}: loop {leaf.name} has extent "
                    f"{sb.extent[leaf]} but the intrinsic's axis "
                    f"{iiv.name} has extent {iiv.extent}"
                )
            pairs.append((iiv, leaf))
    return pairs


def _match_expr(s: Expr, i: Expr, operands: dict, inner_vars: set, where: str) -> None:
    if isinstance(i, TensorRead):
        if not isinstance(s, TensorRead):
            _mismatch(s, i, where)
        previous = operands.setdefault(i.tensor, s)
        if previous.tensor is not s.tensor:
            raise TensorizeError(
                f"{where}: operand {i.tensor.name} is matched by "
                f"both {previous.tensor.name} and {s.tensor.name}"
            )
        _match_indices(s, i, inner_vars, where)
        return
    if type(s) is not type(i):
        _mismatch(s, i, where)
    if isinstance(i, Const):
        if s != i:
            _mismatch(s, i, where)
        return
    if isinstance(i, Var):
        if s is not i:
            _mismatch(s, i, where)
        return
    if isinstance(i, Reduce):
        if s.combiner != i.combiner:
            _mismatch(s, i, where)
        if (s.condition is None) != (i.condition is None):
            _mismatch(s, i, where)
        _match_expr(s.source, i.source, operands, inner_vars, where)
        return
    for name in ("op", "dtype", "name"):
        if getattr(s, name, None) != getattr(i, name, None):
            _mismatch(s, i, where)
    s_children, i_children = list(children(s)), list(children(i))
    if len(s_children) != len(i_children):
        _mismatch(s, i, where)
    for a, b in zip(s_children, i_children):
        _match_expr(a, b, operands, inner_vars, where)


def _match_indices(s: TensorRead, i: TensorRead, inner_vars: set, where: str) -> None:
    lead = len(s.indices) - len(i.indices)
    if lead < 0:
        raise TensorizeError(
            f"{where}: {s.tensor.name} has fewer dimensions than operand {i.tensor.name}"
        )
    for d, index in enumerate(s.indices):
        form = affine(simplify(index))
        tensorized = {a: c for a, c in form.terms.items() if isinstance(a, Var) and a in inner_vars}
        if d < lead:
            if tensorized:
                raise TensorizeError(
                    f"{where}: dimension {d} of {s.tensor.name} "
                    "depends on the tensorized loops but "
                    f"operand {i.tensor.name} has no such dimension"
                )
            continue
        expected = affine(simplify(i.indices[d - lead]))
        if not expected.terms.keys() <= inner_vars or tensorized != expected.terms:
            raise TensorizeError(
                f"{where}: {s.tensor.name} is read at "
                f"{s.indices[d]} in dimension {d}, which does not "
                f"match the intrinsic's {i.tensor.name} index {i.indices[d - lead]}"
            )


def _region(lw, tensor: Tensor, indices, shape, inner_vars: set, where: str) -> BufferRegion:
    """Base offset and strides of the operand ``tensor[indices]`` inside its flat buffer."""
    base = []
    for index in indices:
        form = affine(simplify(index))
        fixed = {
            a: c for a, c in form.terms.items() if not (isinstance(a, Var) and a in inner_vars)
        }
        for atom in fixed:
            if free_vars(atom) & inner_vars:
                raise TensorizeError(
                    f"{where}: the index {index} of {tensor.name} "
                    "is not affine in the tensorized loops"
                )
        base.append(from_affine(type(form)(fixed, form.const)))
    buf, offset = lw.access(tensor, tuple(base))
    full = buf.shape
    if len(shape) > len(full):
        raise TensorizeError(
            f"{where}: {tensor.name} has fewer dimensions than the intrinsic operand"
        )
    strides = []
    stride = 1
    for extent in reversed(full):
        strides.append(stride)
        stride *= extent
    strides.reverse()
    return BufferRegion(
        buf, simplify(offset), tuple(shape), tuple(strides[len(full) - len(shape) :])
    )


def _mismatch(s: Expr, i: Expr, where: str) -> None:
    raise TensorizeError(
        f"{where}: the body does not match the intrinsic: expected {i} but found {s}"
    )
