"""The schedule: one stage per compute operation, in producer-before-consumer order."""

from __future__ import annotations

from collections.abc import Iterable

from accel.errors import ScheduleError
from accel.schedule.stage import INLINE, Stage
from accel.te.expr import Expr, Var
from accel.te.tensor import ComputeOp, IterVar, Operation, PlaceholderOp, Range, Tensor, TensorRead
from accel.te.visit import rewrite


class Schedule:
    """How a set of output operations is computed; index it with a tensor to get its stage."""

    def __init__(self, outputs: list[Operation]):
        self.outputs = outputs
        self.stages: list[Stage] = []
        self._stage_of: dict[Operation, Stage] = {}
        for op in _post_order(outputs):
            if isinstance(op, ComputeOp):
                stage = Stage(op, self)
                self.stages.append(stage)
                self._stage_of[op] = stage
        for op in outputs:
            self._stage_of[op].is_output = True

    def __getitem__(self, key: Tensor | Operation) -> Stage:
        op = key.op if isinstance(key, Tensor) else key
        stage = self._stage_of.get(op)
        if stage is None:
            if isinstance(op, PlaceholderOp):
                raise ScheduleError(
                    f"{op.name} is a placeholder (an input): it has no stage to schedule"
                )
            raise ScheduleError(f"{getattr(op, 'name', op)!r} is not part of this schedule")
        return stage

    def stage_of(self, op: Operation) -> Stage | None:
        """The stage computing ``op`` (also for an operation a cache primitive replaced)."""
        return self._stage_of.get(op)

    def consumers(self, stage: Stage) -> list[Stage]:
        """The stages that read ``stage``'s output."""
        return [s for s in self.stages if s is not stage and self.reads(s, stage)]

    def reads(self, consumer: Stage, producer: Stage) -> bool:
        """Whether ``consumer``'s body reads ``producer``'s output (through inlined stages too)."""
        for tensor in consumer.op.input_tensors:
            stage = self._stage_of.get(tensor.op)
            if stage is producer:
                return True
            if stage is not None and stage.attach_type == INLINE and self.reads(stage, producer):
                return True
        return False

    def depends_on(self, consumer: Stage, producer: Stage) -> bool:
        """Whether ``consumer`` reads ``producer``'s output directly or through other stages."""
        for tensor in consumer.op.input_tensors:
            stage = self._stage_of.get(tensor.op)
            if stage is producer or (stage is not None and self.depends_on(stage, producer)):
                return True
        return False

    # -- caches ------------------------------------------------------------------------------
    def cache_read(
        self, tensor: Tensor, scope: str, readers: Iterable[Tensor | Operation]
    ) -> Tensor:
        """A copy of ``tensor`` in ``scope`` that ``readers`` read instead of ``tensor``."""
        readers = list(readers) if isinstance(readers, (list, tuple)) else [readers]
        if not readers:
            raise ScheduleError(f"cache_read of {tensor.name}: give at least one reader")
        reader_stages = [self[r] for r in readers]
        for stage in reader_stages:
            if not any(t is tensor for t in stage.op.input_tensors):
                raise ScheduleError(
                    f"cache_read of {tensor.name}: stage {stage.name} does not read it"
                )
        name = f"{tensor.name}.{scope}"
        axis = tuple(
            IterVar(Range.from_extent(n), Var(f"ax{d}")) for d, n in enumerate(tensor.shape)
        )
        cache_op = ComputeOp(name, axis, (), TensorRead(tensor, tuple(iv.var for iv in axis)))
        cache = Tensor(tensor.shape, tensor.dtype, cache_op)
        cache_op.outputs.append(cache)
        cache_stage = Stage(cache_op, self)
        self._insert_before(cache_stage, min(self.stages.index(s) for s in reader_stages))
        cache_stage.set_scope(scope)
        for stage in reader_stages:
            self._replace_body(stage, _replace_reads(stage.op.body, tensor, cache))
        return cache

    def cache_write(self, tensor: Tensor, scope: str) -> Tensor:
        """Compute ``tensor`` into ``scope`` first, then copy it to where ``tensor`` lives."""
        stage = self[tensor]
        if stage.has_transforms or stage.attach_type != "root":
            raise ScheduleError(
                f"cache_write of {tensor.name}: call it before any other primitive on its stage"
            )
        op = stage.op
        cache_op = ComputeOp(f"{op.name}.{scope}", op.axis, op.reduce_axis, op.body, op.tag)
        cache = Tensor(tensor.shape, tensor.dtype, cache_op)
        cache_op.outputs.append(cache)
        cache_stage = Stage(cache_op, self)
        self._insert_before(cache_stage, self.stages.index(stage))
        cache_stage.set_scope(scope)
        axis = tuple(IterVar(iv.dom, Var(iv.name)) for iv in op.axis)
        copy_op = ComputeOp(
            op.name, axis, (), TensorRead(cache, tuple(iv.var for iv in axis)), op.tag
        )
        copy_op.outputs.append(tensor)
        stage.op = copy_op
        stage.all_iter_vars = list(axis)
        stage.leaf_iter_vars = list(axis)
        self._stage_of[copy_op] = stage
        return cache

    def _insert_before(self, stage: Stage, index: int) -> None:
        self.stages.insert(index, stage)
        self._stage_of[stage.op] = stage

    def _replace_body(self, stage: Stage, body: Expr) -> None:
        old = stage.op
        new = ComputeOp(old.name, old.axis, old.reduce_axis, body, old.tag, old.attrs, old.outputs)
        stage.op = new
        self._stage_of[new] = stage


def _replace_reads(body: Expr, old: Tensor, new: Tensor) -> Expr:
    def fn(e: Expr) -> Expr | None:
        if isinstance(e, TensorRead) and e.tensor is old:
            return TensorRead(new, e.indices)
        return None

    return rewrite(body, fn)


def _post_order(outputs: list[Operation]) -> list[Operation]:
    order: list[Operation] = []
    seen: set[int] = set()

    def visit(op: Operation) -> None:
        if id(op) in seen:
            return
        seen.add(id(op))
        for t in op.input_tensors:
            visit(t.op)
        order.append(op)

    for op in outputs:
        visit(op)
    return order


def create_schedule(ops: Operation | Tensor | Iterable[Operation | Tensor]) -> Schedule:
    """A default schedule for the outputs: every stage at the root, loops in axis order."""
    if not isinstance(ops, (list, tuple)):
        ops = [ops]
    outputs = []
    for op in ops:
        op = op.op if isinstance(op, Tensor) else op
        if not isinstance(op, ComputeOp):
            raise ScheduleError(
                f"create_schedule: {getattr(op, 'name', op)!r} is not a compute operation"
            )
        outputs.append(op)
    return Schedule(outputs)


__all__ = ["Schedule", "create_schedule"]
