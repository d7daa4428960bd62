"""Bound inference: the ranges of every iteration axis, and the region each stage computes.

A stage at the root computes its whole domain. A stage computed at a loop of a consumer
computes only the region the consumer reads in one iteration of that loop: for every read of the
producer, the consumer's loops outside (and at) the attach point are fixed, the loops inside vary
over their ranges, and the bounding box of the indices is the region. Its minimum is an
expression of the fixed loop variables; its extent is a constant (the largest one over all
iterations when the exact one varies). Regions that can leave the producer's domain (padding,
non-dividing splits) make the producer guard its loops, so it never reads outside its inputs.

Splits and fuses then give each leaf axis a range ``[0, extent)`` and each root axis a value
expressed in the leaf variables; splits whose factor does not divide the extent add guards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accel.arith.simplify import INF, affine, const_bounds, simplify
from accel.errors import LoweringError, ScheduleError
from accel.schedule.schedule import Schedule
from accel.schedule.stage import INLINE, ROOT, Split, Stage
from accel.te.expr import BinOp, Const, Expr, Select, Var, const
from accel.te.tensor import IterVar, TensorRead
from accel.te.visit import free_vars, rewrite, substitute, walk


@dataclass
class StageBounds:
    """What bound inference found for one stage."""

    root_min: dict[IterVar, Expr] = field(default_factory=dict)  # offset of each root axis
    extent: dict[IterVar, int] = field(default_factory=dict)  # every axis, root and derived
    value: dict[IterVar, Expr] = field(default_factory=dict)  # root axis -> leaf-variable expr
    guards: list[Expr] = field(default_factory=list)  # conditions the body needs
    clipped: list[IterVar] = field(default_factory=list)  # root axes whose region leaves the domain
    region_min: tuple[Expr, ...] = ()  # per output dimension, for the stage's buffer
    region_extent: tuple[int, ...] = ()


@dataclass
class Bounds:
    """Bound inference for a whole schedule."""

    stages: dict[Stage, StageBounds]
    var_ranges: dict[Var, tuple[int, int]]  # inclusive constant range of every loop variable
    bodies: dict[Stage, Expr]  # each stage's body with inlined stages substituted

    def __getitem__(self, stage: Stage) -> StageBounds:
        return self.stages[stage]


def inline_bodies(sch: Schedule) -> dict[Stage, Expr]:
    """Each stage's body with the bodies of ``compute_inline`` stages substituted into it."""
    bodies: dict[Stage, Expr] = {}

    def body_of(stage: Stage) -> Expr:
        if stage in bodies:
            return bodies[stage]

        def fn(e: Expr) -> Expr | None:
            if not isinstance(e, TensorRead):
                return None
            producer = sch.stage_of(e.tensor.op)
            if producer is None or producer.attach_type != INLINE:
                return None
            mapping = {iv.var: idx for iv, idx in zip(producer.op.axis, e.indices)}
            return substitute(body_of(producer), mapping)

        bodies[stage] = rewrite(stage.op.body, fn)
        return bodies[stage]

    for stage in sch.stages:
        body_of(stage)
    return bodies


def infer_bounds(sch: Schedule) -> Bounds:
    """Ranges of all axes and the computed region of every stage of ``sch``."""
    result = Bounds({}, {}, inline_bodies(sch))
    for stage in reversed(sch.stages):
        if stage.attach_type == INLINE:
            continue
        sb = StageBounds()
        if stage.attach_type == ROOT:
            _root_region(stage, sb)
        else:
            _attached_region(sch, stage, sb, result)
        _propagate(stage, sb, result.var_ranges)
        result.stages[stage] = sb
    return result


def _root_region(stage: Stage, sb: StageBounds) -> None:
    for iv in stage.op.axis:
        sb.root_min[iv] = iv.dom.min
        sb.extent[iv] = iv.extent
    for iv in stage.op.reduce_axis:
        sb.root_min[iv] = iv.dom.min
        sb.extent[iv] = iv.extent
    sb.region_min = tuple(const(0) for _ in stage.op.axis)
    sb.region_extent = tuple(iv.extent for iv in stage.op.axis)


def _attached_region(sch: Schedule, stage: Stage, sb: StageBounds, bounds: Bounds) -> None:
    """The region of ``stage`` one iteration of its attach loop needs: what its consumers read.

    The consumer is the stage it is attached to (with that stage's loops inside the attach point
    varying), or, when that stage only uses it through others, every direct consumer, each of
    which must be attached at the same loop (all of its loops then vary).
    """
    target = stage.attach_stage
    if stage.attach_ivar not in target.leaf_iter_vars:
        raise ScheduleError(
            f"stage {stage.name} is computed at {target.name}.{stage.attach_ivar.name}, which was "
            "split or fused afterwards and is no longer a loop; split first, then compute_at one "
            "of the parts"
        )
    consumers = sch.consumers(stage)
    if target in consumers:
        for other in consumers:
            if other is not target:
                raise LoweringError(
                    f"stage {stage.name} is computed at {target.name} but {other.name} reads it "
                    f"too; compute {stage.name} at the root, or give "
                    f"{other.name} its own copy with cache_read"
                )
        leaves = target.leaf_iter_vars
        pos = leaves.index(stage.attach_ivar)
        readers = [(target, leaves[pos + 1 :])]
    else:
        for other in consumers:
            if (other.attach_stage, other.attach_ivar) != (target, stage.attach_ivar):
                raise LoweringError(
                    f"stage {stage.name} is computed at {target.name}.{stage.attach_ivar.name} "
                    f"but its consumer {other.name} is not computed there; compute_at "
                    f"{other.name} at the same loop"
                )
        readers = [(other, other.leaf_iter_vars) for other in consumers]
    ndim = len(stage.op.axis)
    lows: list[list[Expr]] = [[] for _ in range(ndim)]
    highs: list[list[Expr]] = [[] for _ in range(ndim)]
    for reader, inner_leaves in readers:
        cb = bounds.stages[reader]
        varying = {iv.var: (0, cb.extent[iv] - 1) for iv in inner_leaves}
        values = {iv.var: v for iv, v in cb.value.items()}
        for node in walk(bounds.bodies[reader]):
            if isinstance(node, TensorRead) and sch.stage_of(node.tensor.op) is stage:
                for d, index in enumerate(node.indices):
                    lo, hi = symbolic_bounds(substitute(index, values), varying, bounds.var_ranges)
                    lows[d].append(lo)
                    highs[d].append(hi)
    consumer = target
    mins, extents = [], []
    for d, iv in enumerate(stage.op.axis):
        lo = _combine("min", lows[d], bounds.var_ranges)
        hi = _combine("max", highs[d], bounds.var_ranges)
        extent = simplify(hi - lo + 1, bounds.var_ranges)
        if not isinstance(extent, Const):
            upper = const_bounds(extent, bounds.var_ranges)[1]
            if upper == INF:
                raise LoweringError(
                    f"cannot bound the region of {stage.name} along {iv.name} needed at "
                    f"{consumer.name}.{stage.attach_ivar.name}: {lo} .. {hi}"
                )
            extent = const(int(upper))
        extent_value = min(int(extent.value), iv.extent) if _is_zero(lo) else int(extent.value)
        mins.append(lo)
        extents.append(extent_value)
        sb.root_min[iv] = lo
        sb.extent[iv] = extent_value
        hull_lo = const_bounds(lo, bounds.var_ranges)[0]
        hull_hi = const_bounds(lo + (extent_value - 1), bounds.var_ranges)[1]
        if hull_lo < 0 or hull_hi > iv.extent - 1:
            sb.clipped.append(iv)
    for iv in stage.op.reduce_axis:
        sb.root_min[iv] = iv.dom.min
        sb.extent[iv] = iv.extent
    sb.region_min = tuple(mins)
    sb.region_extent = tuple(extents)


def _is_zero(e: Expr) -> bool:
    return isinstance(e, Const) and e.value == 0


def _combine(op: str, exprs: list[Expr], ranges) -> Expr:
    result = exprs[0]
    for e in exprs[1:]:
        result = simplify(BinOp(op, result, e, result.dtype), ranges)
    return result


def _propagate(stage: Stage, sb: StageBounds, var_ranges: dict[Var, tuple[int, int]]) -> None:
    """Leaf extents from root extents, then root values from leaf variables, then guards."""
    divides: dict[Split, bool] = {}
    for rel in stage.relations:
        if isinstance(rel, Split):
            parent = sb.extent[rel.parent]
            if rel.factor is not None:
                inner, outer = rel.factor, -(-parent // rel.factor)
            else:
                outer, inner = rel.nparts, -(-parent // rel.nparts)
            sb.extent[rel.outer], sb.extent[rel.inner] = outer, inner
            divides[rel] = outer * inner == parent
        else:
            sb.extent[rel.fused] = sb.extent[rel.outer] * sb.extent[rel.inner]
    rel_value: dict[IterVar, Expr] = {iv: iv.var for iv in stage.leaf_iter_vars}
    for iv in stage.leaf_iter_vars:
        var_ranges[iv.var] = (0, sb.extent[iv] - 1)
    guards: list[Expr] = []
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            value = rel_value[rel.outer] * sb.extent[rel.inner] + rel_value[rel.inner]
            rel_value[rel.parent] = value
            if not divides[rel]:
                guards.append(value < sb.extent[rel.parent])
        else:
            inner_extent = sb.extent[rel.inner]
            rel_value[rel.outer] = rel_value[rel.fused] // inner_extent
            rel_value[rel.inner] = rel_value[rel.fused] % inner_extent
    for iv in [*stage.op.axis, *stage.op.reduce_axis]:
        sb.value[iv] = simplify(rel_value[iv] + sb.root_min[iv], var_ranges)
    for iv in sb.clipped:
        guards.append(sb.value[iv] >= 0)
        guards.append(sb.value[iv] < iv.extent)
    sb.guards = [g for g in (simplify(g, var_ranges) for g in guards) if not _is_true(g)]


def _is_true(e: Expr) -> bool:
    return isinstance(e, Const) and bool(e.value)


def symbolic_bounds(
    e: Expr, varying: dict[Var, tuple[int, int]], ranges: dict[Var, tuple[int, int]]
) -> tuple[Expr, Expr]:
    """Inclusive bounds of ``e`` as expressions of the variables not in ``varying``."""
    e = simplify(e, ranges)
    if not (free_vars(e) & varying.keys()):
        return e, e
    form = affine(e)
    lo: Expr = const(form.const, e.dtype)
    hi: Expr = const(form.const, e.dtype)
    for atom, coef in form.terms.items():
        alo, ahi = _atom_bounds(atom, varying, ranges)
        if coef < 0:
            alo, ahi = ahi, alo
        lo = lo + alo * coef
        hi = hi + ahi * coef
    return simplify(lo, ranges), simplify(hi, ranges)


def _atom_bounds(atom: Expr, varying, ranges) -> tuple[Expr, Expr]:
    if isinstance(atom, Var):
        if atom in varying:
            lo, hi = varying[atom]
            return const(lo), const(hi)
        return atom, atom
    if not (free_vars(atom) & varying.keys()):
        return atom, atom
    if isinstance(atom, BinOp) and isinstance(atom.b, Const) and atom.b.value > 0:
        c = atom.b.value
        if atom.op == "floordiv":
            lo, hi = symbolic_bounds(atom.a, varying, ranges)
            return lo // c, hi // c
        if atom.op == "floormod":
            return const(0), const(c - 1)
    if isinstance(atom, BinOp) and atom.op in ("min", "max"):
        alo, ahi = symbolic_bounds(atom.a, varying, ranges)
        blo, bhi = symbolic_bounds(atom.b, varying, ranges)
        return BinOp(atom.op, alo, blo, atom.dtype), BinOp(atom.op, ahi, bhi, atom.dtype)
    if isinstance(atom, Select):
        tlo, thi = symbolic_bounds(atom.true_value, varying, ranges)
        flo, fhi = symbolic_bounds(atom.false_value, varying, ranges)
        return BinOp("min", tlo, flo, atom.dtype), BinOp("max", thi, fhi, atom.dtype)
    lo, hi = const_bounds(atom, {**ranges, **varying})
    if lo == -INF or hi == INF:
        raise LoweringError(f"cannot bound the index expression {atom} for bound inference")
    return const(int(lo)), const(int(hi))


__all__ = ["Bounds", "StageBounds", "infer_bounds", "inline_bodies", "symbolic_bounds"]
