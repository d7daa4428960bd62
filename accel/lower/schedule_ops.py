"""From a schedule to a loop program: one loop nest per stage, producers placed where attached.

Every stage becomes a nest of its leaf loops (in leaf order, each starting at 0) around a store
of its expression; root axes are recovered from the leaf variables through the split and fuse
relations. A reduction gets an initialisation nest placed just outside its outermost reduction
loop. A stage computed at a consumer's loop is emitted inside that loop, with its buffer
allocated there and sized to the region bound inference found. Buffers are flat: loads and
stores carry one row-major index.
"""

from __future__ import annotations

from accel.errors import LoweringError
from accel.lower import ir
from accel.lower.tensorize import emit_tensorized
from accel.schedule.bounds import Bounds, StageBounds, infer_bounds
from accel.schedule.schedule import Schedule
from accel.schedule.stage import INLINE, ROOT, Stage
from accel.te.expr import BinOp, Const, Expr, Logic
from accel.te.tensor import (
    REDUCE,
    IterVar,
    PlaceholderOp,
    Reduce,
    Tensor,
    TensorRead,
    identity_element,
)
from accel.te.visit import free_vars, rewrite, substitute


def flat_index(indices: list[Expr] | tuple[Expr, ...], shape: tuple[int, ...]) -> Expr:
    """Row-major flat index of ``indices`` in an array of ``shape``."""
    flat: Expr = Const(0)
    for index, extent in zip(indices, shape):
        flat = flat * extent + index
    return flat


class ScheduleLowering:
    """Builds the loop program of a schedule; ``run()`` returns the body statement."""

    def __init__(self, sch: Schedule, args: list[Tensor]):
        self.sch = sch
        self.bounds: Bounds = infer_bounds(sch)
        self.arg_buffers: dict[int, ir.Buffer] = {}
        self.buffers: dict[Stage | PlaceholderOp, ir.Buffer] = {}
        for t in args:
            buf = ir.Buffer(t.name, t.shape, t.dtype, ir.GLOBAL)
            self.arg_buffers[id(t)] = buf
            owner = sch.stage_of(t.op) or t.op
            if isinstance(owner, Stage) and owner.attach_type == INLINE:
                raise LoweringError(f"{t.name} is an argument, so it cannot be computed inline")
            self.buffers[owner] = buf
        for stage in sch.stages:
            if stage.attach_type != INLINE and stage not in self.buffers:
                sb = self.bounds[stage]
                scope = ir.LOCAL if stage.scope == "local" else stage.scope
                self.buffers[stage] = ir.Buffer(
                    stage.name, sb.region_extent, stage.op.outputs[0].dtype, scope
                )
        self.attached: dict[tuple[Stage, IterVar], list[Stage]] = {}
        for stage in sch.stages:
            if stage.attach_type == "scope":
                self.attached.setdefault((stage.attach_stage, stage.attach_ivar), []).append(stage)

    def run(self) -> ir.Stmt:
        for stage in self.sch.stages:
            if stage.attach_type == INLINE:
                continue
            if stage.attach_type == ROOT and stage.is_output and stage not in self.buffers:
                raise LoweringError(f"output {stage.name} is not among the arguments")
        nests = [self.stage_nest(s) for s in self.sch.stages if s.attach_type == ROOT]
        body = ir.seq(*nests)
        for stage in reversed(self.sch.stages):
            if stage.attach_type == ROOT and not self._is_arg(stage):
                body = ir.Allocate(self.buffers[stage], body)
        return body

    def _is_arg(self, stage: Stage) -> bool:
        return any(self.buffers.get(stage) is b for b in self.arg_buffers.values())

    # -- reads and stores --------------------------------------------------------------------
    def buffer_of(self, tensor: Tensor) -> tuple[ir.Buffer, StageBounds | None]:
        stage = self.sch.stage_of(tensor.op)
        if stage is None:
            buf = self.arg_buffers.get(id(tensor)) or self.buffers.get(tensor.op)
            if buf is None:
                raise LoweringError(f"input {tensor.name} is read but is not among the arguments")
            return buf, None
        return self.buffers[stage], self.bounds[stage]

    def access(self, tensor: Tensor, indices: tuple[Expr, ...]) -> tuple[ir.Buffer, Expr]:
        """The buffer and flat index of ``tensor[indices]``."""
        buf, sb = self.buffer_of(tensor)
        if sb is not None and not self._is_arg(self.sch.stage_of(tensor.op)):
            indices = tuple(i - m for i, m in zip(indices, sb.region_min))
        return buf, flat_index(indices, buf.shape)

    def lower_expr(self, e: Expr) -> Expr:
        """Replace tensor reads by loads of flat buffers."""

        def fn(node: Expr) -> Expr | None:
            if isinstance(node, TensorRead):
                buf, index = self.access(node.tensor, node.indices)
                return ir.Load(buf, index)
            return None

        return rewrite(e, fn)

    # -- nests -------------------------------------------------------------------------------
    def stage_nest(self, stage: Stage) -> ir.Stmt:
        sb = self.bounds[stage]
        leaves = stage.leaf_iter_vars
        values = {iv.var: v for iv, v in sb.value.items()}
        body = substitute(self.bounds.bodies[stage], values)
        out_index = tuple(sb.value[iv] for iv in stage.op.axis)
        out_buf, out_flat = self.access(stage.op.outputs[0], out_index)
        tpos = next(
            (
                p
                for p, iv in enumerate(leaves)
                if stage.iter_var_attrs.get(iv) and stage.iter_var_attrs[iv].tensor_intrin
            ),
            None,
        )
        end = len(leaves) if tpos is None else tpos
        reduce_positions = [p for p, iv in enumerate(leaves) if iv.kind == REDUCE]
        first_reduce = reduce_positions[0] if reduce_positions else None

        if tpos is not None:
            init, update, whole = emit_tensorized(self, stage, tpos, first_reduce)
        elif isinstance(body, Reduce):
            acc = ir.Load(out_buf, out_flat)
            value = self.lower_expr(body.source)
            if body.combiner == "sum":
                combined = BinOp("add", acc, value, body.dtype)
            else:
                combined = BinOp(body.combiner, acc, value, body.dtype)
            update = ir.Store(out_buf, out_flat, combined)
            if body.condition is not None:
                update = ir.IfThenElse(self.lower_expr(body.condition), update)
            init = ir.Store(out_buf, out_flat, identity_element(body.combiner, body.dtype))
            whole = None
        else:
            whole = ir.Store(out_buf, out_flat, self.lower_expr(body))
            init = update = None

        if whole is not None and (first_reduce is None or first_reduce >= end):
            inner = self._guard(sb, whole, leaves[:end], stage)
            return self._loops(stage, list(range(end)), inner, attach=True)
        if first_reduce is None:
            raise LoweringError(f"stage {stage.name}: a reduction without reduction loops")
        init_positions = [p for p in range(first_reduce, end) if leaves[p].kind != REDUCE]
        init_leaves = leaves[:first_reduce] + [leaves[p] for p in init_positions]
        init_nest = self._loops(
            stage, init_positions, self._guard(sb, init, init_leaves, stage), attach=False
        )
        update_nest = self._loops(
            stage,
            list(range(first_reduce, end)),
            self._guard(sb, update, leaves[:end], stage),
            attach=True,
        )
        return self._loops(
            stage, list(range(first_reduce)), ir.seq(init_nest, update_nest), attach=True
        )

    def _guard(self, sb: StageBounds, stmt: ir.Stmt, live: list[IterVar], stage: Stage) -> ir.Stmt:
        """Wrap ``stmt`` in the guards whose variables are all loops of ``live``."""
        # A guard applies where none of this stage's other loops appears in it; variables of
        # enclosing stages (the attach point) are always in scope.
        dead = {iv.var for iv in stage.leaf_iter_vars} - {iv.var for iv in live}
        conds = [g for g in sb.guards if not free_vars(g) & dead]
        if not conds:
            return stmt
        cond = conds[0]
        for c in conds[1:]:
            cond = Logic("and", cond, c)
        return ir.IfThenElse(cond, stmt)

    def _loops(self, stage: Stage, positions: list[int], inner: ir.Stmt, attach: bool) -> ir.Stmt:
        sb = self.bounds[stage]
        for p in reversed(positions):
            iv = stage.leaf_iter_vars[p]
            if attach:
                inner = self._attach(stage, iv, inner)
            attr = stage.iter_var_attrs.get(iv)
            kind = attr.kind if attr else "serial"
            inner = ir.loop(iv.var, sb.extent[iv], inner, kind)
            if attr is not None:
                if attr.bound_thread is not None:
                    inner = ir.AttrStmt(attr.bound_thread, "virtual_thread", sb.extent[iv], inner)
                for key, value in reversed(attr.pragmas):
                    inner = ir.AttrStmt(iv, f"pragma_{key}", 1 if value is None else value, inner)
        return inner

    def _attach(self, stage: Stage, iv: IterVar, inner: ir.Stmt) -> ir.Stmt:
        children = self.attached.get((stage, iv), [])
        if not children:
            return inner
        body = ir.seq(*[self.stage_nest(c) for c in children], inner)
        for child in reversed(children):
            body = ir.Allocate(self.buffers[child], body)
        return body


def schedule_to_stmt(sch: Schedule, args: list[Tensor]) -> tuple[ir.Stmt, ScheduleLowering]:
    """The loop program of ``sch`` with ``args`` as its parameters."""
    lowering = ScheduleLowering(sch, args)
    return lowering.run(), lowering


__all__ = ["ScheduleLowering", "flat_index", "schedule_to_stmt"]
