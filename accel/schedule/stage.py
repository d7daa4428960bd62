"""A stage: how one operation is computed — its loop order, placement, scope and annotations.

Loop transformations are recorded as relations between iteration axes (``Split``, ``Fuse``);
the leaf axes, in order, are the loops of the generated nest. Nothing is lowered here: the
relations are read by bound inference and lowering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from accel.env import get_env
from accel.errors import ScheduleError
from accel.schedule.intrin import TensorIntrin
from accel.te.expr import Var
from accel.te.tensor import DATA_PAR, REDUCE, THREAD, ComputeOp, IterVar

ROOT, SCOPE, INLINE = "root", "scope", "inline"
HOST_SCOPES = ("global", "local")


class StageOwner(Protocol):
    """What a stage asks of the schedule that owns it (``accel.schedule.Schedule``)."""

    def depends_on(self, consumer: Stage, producer: Stage) -> bool: ...


@dataclass(frozen=True, eq=False)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int | None
    nparts: int | None


@dataclass(frozen=True, eq=False)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


@dataclass
class IterVarAttr:
    """What the schedule says about one leaf axis."""

    kind: str = "serial"
    bound_thread: IterVar | None = None
    pragmas: list[tuple[str, Any]] = field(default_factory=list)
    tensor_intrin: TensorIntrin | None = None


class Stage:
    """The schedule of one operation; get it with ``s[tensor]``."""

    def __init__(self, op: ComputeOp, schedule: StageOwner):
        self.op = op
        self.origin_op = op
        self.schedule = schedule
        self.all_iter_vars: list[IterVar] = [*op.axis, *op.reduce_axis]
        self.leaf_iter_vars: list[IterVar] = list(self.all_iter_vars)
        self.relations: list[Split | Fuse] = []
        self.attach_type = ROOT
        self.attach_stage: Stage | None = None
        self.attach_ivar: IterVar | None = None
        self.scope = "global"
        self.iter_var_attrs: dict[IterVar, IterVarAttr] = {}
        self.is_output = False

    @property
    def name(self) -> str:
        return self.op.name

    def __repr__(self) -> str:
        return f"stage({self.name}, leaves=[{', '.join(iv.name for iv in self.leaf_iter_vars)}])"

    # -- checks ------------------------------------------------------------------------------
    def _leaf(self, axis: IterVar, primitive: str) -> IterVar:
        if not isinstance(axis, IterVar):
            raise ScheduleError(
                f"{primitive} on stage {self.name}: expected an iteration axis, got {axis!r}"
            )
        if axis in self.leaf_iter_vars:
            return axis
        if axis in self.all_iter_vars:
            raise ScheduleError(
                f"{primitive} on stage {self.name}: axis {axis.name} was already split or fused; "
                "use the axes that split/fuse returned"
            )
        owner = self._owner_of(axis)
        where = f"it is an axis of stage {owner}" if owner else "it belongs to no stage"
        raise ScheduleError(
            f"{primitive} on stage {self.name}: axis {axis.name} does not belong to this stage; "
            f"{where} (this stage's axes are {', '.join(iv.name for iv in self.leaf_iter_vars)})"
        )

    def _owner_of(self, axis: IterVar) -> str | None:
        """The name of the stage of this schedule that has ``axis``, if any."""
        for stage in getattr(self.schedule, "stages", ()):
            if axis in stage.all_iter_vars:
                return stage.name
        return None

    def _attr(self, axis: IterVar) -> IterVarAttr:
        return self.iter_var_attrs.setdefault(axis, IterVarAttr())

    def _new_axis(self, name: str, kind: str) -> IterVar:
        iv = IterVar(None, Var(name), kind)
        self.all_iter_vars.append(iv)
        return iv

    # -- loop transformations ----------------------------------------------------------------
    def split(
        self, parent: IterVar, factor: int | None = None, nparts: int | None = None
    ) -> tuple[IterVar, IterVar]:
        """Split ``parent`` into (outer, inner) with inner extent ``factor`` (or ``nparts`` outer
        iterations). A factor that does not divide the extent adds a guard."""
        self._leaf(parent, "split")
        if (factor is None) == (nparts is None):
            raise ScheduleError(
                f"split of {parent.name} in stage {self.name}: "
                "give exactly one of factor= and nparts="
            )
        value = factor if factor is not None else nparts
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            what = "factor" if factor is not None else "nparts"
            raise ScheduleError(
                f"split of {parent.name} in stage {self.name}: {what} must be a positive integer, "
                f"got {value!r}"
            )
        if parent.kind == THREAD:
            raise ScheduleError(
                f"split of {parent.name} in stage {self.name}: cannot split a thread axis"
            )
        outer = self._new_axis(f"{parent.name}.outer", parent.kind)
        inner = self._new_axis(f"{parent.name}.inner", parent.kind)
        self.relations.append(Split(parent, outer, inner, factor, nparts))
        pos = self.leaf_iter_vars.index(parent)
        self.leaf_iter_vars[pos : pos + 1] = [outer, inner]
        return outer, inner

    def fuse(self, *axes: IterVar) -> IterVar:
        """Fuse consecutive leaf axes (outermost first) into one."""
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        if not axes:
            raise ScheduleError(f"fuse in stage {self.name}: give at least one axis")
        for iv in axes:
            self._leaf(iv, "fuse")
        if len(set(axes)) != len(axes):
            raise ScheduleError(f"fuse in stage {self.name}: an axis is repeated")
        fused = axes[0]
        for inner in axes[1:]:
            fused = self._fuse_two(fused, inner)
        return fused

    def _fuse_two(self, outer: IterVar, inner: IterVar) -> IterVar:
        pos_o = self.leaf_iter_vars.index(outer)
        pos_i = self.leaf_iter_vars.index(inner)
        if pos_i != pos_o + 1:
            raise ScheduleError(
                f"fuse in stage {self.name}: {outer.name} and {inner.name} must be adjacent leaf "
                "axes, outer first; reorder them first"
            )
        if outer.kind != inner.kind:
            raise ScheduleError(
                f"fuse in stage {self.name}: cannot fuse {outer.kind} axis {outer.name} with "
                f"{inner.kind} axis {inner.name}"
            )
        fused = self._new_axis(f"{outer.name}.{inner.name}.fused", outer.kind)
        self.relations.append(Fuse(outer, inner, fused))
        self.leaf_iter_vars[pos_o : pos_i + 1] = [fused]
        return fused

    def reorder(self, *axes: IterVar) -> None:
        """Put the given leaf axes in this order, in the positions they occupy together."""
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        for iv in axes:
            self._leaf(iv, "reorder")
        seen = set()
        for iv in axes:
            if iv in seen:
                raise ScheduleError(f"reorder in stage {self.name}: axis {iv.name} is repeated")
            seen.add(iv)
        positions = sorted(self.leaf_iter_vars.index(iv) for iv in axes)
        for pos, iv in zip(positions, axes):
            self.leaf_iter_vars[pos] = iv

    def tile(
        self, x_parent: IterVar, y_parent: IterVar, x_factor: int, y_factor: int
    ) -> tuple[IterVar, IterVar, IterVar, IterVar]:
        """Split two axes and order the result (x.outer, y.outer, x.inner, y.inner)."""
        xo, xi = self.split(x_parent, x_factor)
        yo, yi = self.split(y_parent, y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    # -- placement ---------------------------------------------------------------------------
    def compute_at(self, parent: Stage, axis: IterVar) -> None:
        """Compute this stage inside loop ``axis`` of ``parent``, only the region it needs there."""
        if not isinstance(parent, Stage):
            raise ScheduleError(
                f"compute_at of stage {self.name}: the target must be a stage, got {parent!r}"
            )
        if parent is self:
            raise ScheduleError(
                f"compute_at of stage {self.name}: cannot compute a stage at itself"
            )
        parent._leaf(axis, f"compute_at of {self.name}: the target axis")
        if not self.schedule.depends_on(parent, self):
            raise ScheduleError(
                f"compute_at of stage {self.name}: stage {parent.name} does not use {self.name}; "
                "compute a tensor at a stage that reads it, directly or through other stages"
            )
        self.attach_type = SCOPE
        self.attach_stage = parent
        self.attach_ivar = axis

    def compute_inline(self) -> None:
        """Substitute this stage's expression into its consumers instead of storing it."""
        if self.op.reduce_axis:
            raise ScheduleError(
                f"compute_inline of stage {self.name}: a reduction cannot be inlined"
            )
        if self.is_output:
            raise ScheduleError(f"compute_inline of stage {self.name}: an output cannot be inlined")
        self.attach_type = INLINE
        self.attach_stage = self.attach_ivar = None

    def compute_root(self) -> None:
        """Compute this stage at the top level (the default)."""
        self.attach_type = ROOT
        self.attach_stage = self.attach_ivar = None

    def set_scope(self, scope: str) -> None:
        """Place this stage's output in memory ``scope`` (host ``global``/``local`` or on-chip)."""
        known = (*HOST_SCOPES, *get_env().scopes)
        if scope not in known:
            raise ScheduleError(
                f"set_scope of stage {self.name}: unknown scope {scope!r}; choose from "
                f"{', '.join(known)}"
            )
        if self.is_output and scope != "global":
            raise ScheduleError(
                f"set_scope of stage {self.name}: an output must stay in global memory"
            )
        self.scope = scope

    # -- annotations -------------------------------------------------------------------------
    def pragma(self, axis: IterVar, key: str, value: Any = None) -> None:
        """Annotate loop ``axis`` with a pragma (``dma_copy``, ``alu``, ...)."""
        self._leaf(axis, "pragma")
        if not isinstance(key, str) or not key:
            raise ScheduleError(
                f"pragma on {axis.name} in stage {self.name}: the key must be a non-empty string"
            )
        self._attr(axis).pragmas.append((key, value))

    def unroll(self, axis: IterVar) -> None:
        """Mark loop ``axis`` to be unrolled."""
        self._set_kind(axis, "unrolled", "unroll")

    def vectorize(self, axis: IterVar) -> None:
        """Mark loop ``axis`` to be executed as one vector operation."""
        self._set_kind(axis, "vectorized", "vectorize")

    def _set_kind(self, axis: IterVar, kind: str, primitive: str) -> None:
        self._leaf(axis, primitive)
        attr = self._attr(axis)
        if attr.kind != "serial":
            raise ScheduleError(
                f"{primitive} of {axis.name} in stage {self.name}: the loop is already {attr.kind}"
            )
        attr.kind = kind

    def bind(self, axis: IterVar, thread: IterVar) -> None:
        """Bind loop ``axis`` to a thread axis; ``cthread`` gives virtual threads."""
        self._leaf(axis, "bind")
        if not isinstance(thread, IterVar) or thread.kind != THREAD:
            raise ScheduleError(
                f"bind of {axis.name} in stage {self.name}: "
                f"expected te.thread_axis(...), got {thread!r}"
            )
        if thread.thread_tag != "cthread":
            raise ScheduleError(
                f"bind of {axis.name} in stage {self.name}: only virtual threads ('cthread') exist "
                f"on this target, not {thread.thread_tag!r}"
            )
        if axis.kind == REDUCE:
            raise ScheduleError(
                f"bind of {axis.name} in stage {self.name}: cannot bind a reduction axis to threads"
            )
        self._set_kind(axis, "vthread", "bind")
        self._attr(axis).bound_thread = thread

    def tensorize(self, axis: IterVar, intrin: TensorIntrin) -> None:
        """Replace the loops from ``axis`` inward by the tensor intrinsic ``intrin``.

        The match is checked when the schedule is lowered (``TensorizeError`` if it fails).
        """
        self._leaf(axis, "tensorize")
        if not isinstance(intrin, TensorIntrin):
            raise ScheduleError(
                f"tensorize of {axis.name} in stage {self.name}: "
                f"expected a tensor intrinsic, got {intrin!r}"
            )
        self._attr(axis).tensor_intrin = intrin

    # -- queries -----------------------------------------------------------------------------
    def leaf_kind(self, axis: IterVar) -> str:
        attr = self.iter_var_attrs.get(axis)
        return "serial" if attr is None else attr.kind

    @property
    def has_transforms(self) -> bool:
        """True once any loop transformation or annotation was applied."""
        return (
            bool(self.relations or self.iter_var_attrs) or self.leaf_iter_vars != self.all_iter_vars
        )


__all__ = ["DATA_PAR", "INLINE", "ROOT", "SCOPE", "Fuse", "IterVarAttr", "Split", "Stage"]
