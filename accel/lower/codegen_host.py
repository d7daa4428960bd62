"""Host code generation: a lowered program becomes Python source over flat numpy arrays.

Loop nests run at numpy speed where that is safe. A perfect nest whose innermost statement is a
store at an affine, injective index (an elementwise map) or a reduction ``C[i] = C[i] op x``
(sum, min, max; the store index ignores the reduction loops) is emitted as array operations:
every loop variable becomes a broadcast ``arange``, affine reads become strided views of the flat
buffers, guards become masks. Tile loops merge back into whole axes (``io*16 + ii`` is one axis
of the original extent), and a guard of a split that does not divide shortens the merged axis
instead of masking it, so a tiled nest runs as the untiled one does. An integer sum of products
of two reads is one matrix product (BLAS, in a float dtype where that is exact). Nests too large
for one step (more than ``VECTOR_BUDGET`` iterations) keep their outer loops in Python. The last
lowering passes (``inline_copies``, ``distribute_tiles``, ``distribute_loops``) have already
read cached tiles from their source and split loops around several statements where that is
legal, so an initialisation and its reduction arrive as two nests that both vectorize.
Everything else runs as plain Python loops over numpy scalars, with the same integer semantics.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accel.arith.simplify import affine, from_affine, simplify
from accel.errors import BuildError
from accel.lower import ir
from accel.lower.passes.distribute_tiles import axis_limit, axis_weights, injective, merge_axes
from accel.lower.passes.inline_copies import conjuncts
from accel.te import dtype as dt
from accel.te.expr import BinOp, Call, Cast, Cmp, Const, Expr, Logic, Select, Var
from accel.te.tensor import identity_element
from accel.te.visit import children, free_vars, walk

VECTOR_BUDGET = 1 << 22  # iterations evaluated in one array step (bounds temporary memory)

_PY_BINOPS = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "floordiv": "//",
    "floormod": "%",
    "div": "/",
    "shl": "<<",
    "shr": ">>",
    "bitand": "&",
    "bitor": "|",
    "bitxor": "^",
}
_PY_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_REDUCE_UFUNC = {"add": "np.add", "min": "np.minimum", "max": "np.maximum"}


class HostCodegen:
    """Generates the Python function of one lowered program."""

    def __init__(self, name: str, params: list[ir.Buffer]):
        self.name = python_ident(name)
        self.params = params
        self.lines: list[str] = []
        self.names: dict[object, str] = {}
        self.used: set[str] = {"np", "rt"}
        self.consts: dict[str, object] = {}
        self.tmp = 0

    # -- naming ------------------------------------------------------------------------------
    def name_of(self, key, hint: str) -> str:
        if key not in self.names:
            base = python_ident(hint)
            name, n = base, 0
            while name in self.used:
                n += 1
                name = f"{base}_{n}"
            self.used.add(name)
            self.names[key] = name
        return self.names[key]

    def fresh(self, hint: str) -> str:
        self.tmp += 1
        return self.name_of(("tmp", self.tmp), hint)

    def const_name(self, value, dtype: str) -> str:
        name = f"_{dtype}_{str(value).replace('-', 'm').replace('.', 'p').replace('+', '')}"
        name = python_ident(name)
        self.consts[name] = np.asarray(value).astype(dtype)[()]
        return name

    # -- program -----------------------------------------------------------------------------
    def generate(self, body: ir.Stmt) -> str:
        args = ", ".join(self.name_of(b, b.name) for b in self.params)
        self.lines.append(f"def {self.name}({args}):")
        before = len(self.lines)
        self.stmt(body, 1, {})
        if len(self.lines) == before:
            self.lines.append("    pass")
        return "\n".join(self.lines) + "\n"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def stmt(self, s: ir.Stmt, depth: int, ranges: dict) -> None:
        if isinstance(s, ir.Seq):
            for child in s.stmts:
                self.stmt(child, depth, ranges)
        elif isinstance(s, ir.For):
            self.loop(s, depth, ranges)
        elif isinstance(s, ir.Allocate):
            b = s.buffer
            self.emit(depth, f"{self.name_of(b, b.name)} = np.zeros({b.size}, np.{b.dtype})")
            self.stmt(s.body, depth, ranges)
        elif isinstance(s, ir.Store):
            buf = self.name_of(s.buffer, s.buffer.name)
            value = self.expr(s.value, scalar=True)
            if s.value.dtype != s.buffer.dtype:
                value = f"rt.cast({value}, {s.buffer.dtype!r})"
            self.emit(depth, f"{buf}[{self.expr(s.index, scalar=True)}] = {value}")
        elif isinstance(s, ir.IfThenElse):
            self.emit(depth, f"if {self.expr(s.cond, scalar=True)}:")
            self.stmt(s.then_case, depth + 1, ranges)
            if s.else_case is not None:
                self.emit(depth, "else:")
                self.stmt(s.else_case, depth + 1, ranges)
        elif isinstance(s, ir.LetStmt):
            self.emit(
                depth, f"{self.name_of(s.var, s.var.name)} = {self.expr(s.value, scalar=True)}"
            )
            self.stmt(s.body, depth, ranges)
        elif isinstance(s, ir.AttrStmt):
            self.stmt(s.body, depth, ranges)
        elif isinstance(s, ir.Evaluate):
            raise BuildError(
                f"the host program contains the call {s.value}; calls of the accelerator runtime "
                "need an accelerator build"
            )
        else:
            raise BuildError(f"host code generation does not handle {type(s).__name__}")

    def loop(self, s: ir.For, depth: int, ranges: dict) -> None:
        if self.try_vectorize(s, depth):
            return
        var = self.name_of(s.var, s.var.name)
        lo = self.expr(s.min, scalar=True)
        hi = self.expr(simplify(s.min + s.extent), scalar=True)
        self.emit(
            depth, f"for {var} in range({lo}, {hi}):" if lo != "0" else f"for {var} in range({hi}):"
        )
        self.stmt(s.body, depth + 1, ranges)

    # -- vectorized nests --------------------------------------------------------------------
    def try_vectorize(self, s: ir.For, depth: int) -> bool:
        """Emit ``s`` as array operations if :func:`vector_plan` finds a plan; else emit nothing."""
        plan = vector_plan(s)
        if plan is None:
            return False
        k = len(plan.shape)
        for lp in plan.loops:
            self.name_of(lp.var, lp.var.name)
        for m, axis in enumerate(plan.axes):
            var = plan.loops[axis[0]].var
            if var in plan.axis_vars:
                self.emit(depth, f"{self.names[var]} = rt.axis_range({plan.shape[m]}, {m}, {k})")
        self.vec = plan
        emitters = {
            "store": self.emit_store,
            "reduce": self.emit_reduce,
            "contraction": self.emit_contraction,
        }
        emitters[plan.kind](plan, depth)
        self.vec = None
        return True

    def emit_store(self, plan: VectorPlan, depth: int) -> None:
        """The values at every point of the nest (where the mask holds) stored in one step."""
        dest = self.destination(plan)
        mask = self.emit_mask(plan, depth)
        value = self.emit_value(plan, depth)
        self.emit(depth, f"rt.store({dest}, {plan.shape}, {value}, {mask})")

    def emit_reduce(self, plan: VectorPlan, depth: int) -> None:
        """The values reduced over the loops the store ignores, then folded into the store's
        elements; masked-out points contribute the reduction's identity."""
        dest = self.destination(plan)
        mask = self.emit_mask(plan, depth)
        value = self.emit_value(plan, depth)
        bdt = plan.store.buffer.dtype
        full = f"np.broadcast_to(rt.cast({value}, {bdt!r}), {plan.shape})"
        if mask is not None:
            ident = identity_element("sum" if plan.op == "add" else plan.op, bdt).value
            full = f"np.where({mask}, {full}, {self.const_name(ident, bdt)})"
        ufunc = _REDUCE_UFUNC[plan.op]
        reduced = f"{ufunc}.reduce({full}, axis={plan.reduced_axes}, keepdims=True, dtype=np.{bdt})"
        self.emit(depth, f"rt.reduce_into({ufunc}, {dest}, {plan.view_shape}, {reduced})")

    def emit_contraction(self, plan: VectorPlan, depth: int) -> None:
        """The sum of products as one matrix product of views of the two factors (the products
        are never formed), added into the store's elements."""
        c = plan.contraction
        operands = []
        for view, summed in ((c.a, c.a_summed), (c.b, c.b_summed)):
            text = self.view(view)
            if summed:
                axes = tuple(range(len(view.shape) - summed, len(view.shape)))
                text = f"{text}.sum(axis={axes}, dtype=np.int64)"
            operands.append(text)
        value = self.fresh("value")
        self.emit(depth, f"{value} = rt.contract({', '.join(operands)}, {c.groups}, {c.compute!r})")
        dest = c.dest
        buf = self.name_of(dest.buffer, dest.buffer.name)
        self.emit(
            depth,
            f"rt.reduce_into(np.add, {buf}, {self.expr(dest.base, scalar=True)}, {dest.coefs}, "
            f"{dest.shape}, {value})",
        )

    def view(self, v: View) -> str:
        """The strided view ``rt.load`` reads."""
        buf = self.name_of(v.buffer, v.buffer.name)
        return f"rt.load({buf}, {self.expr(v.base, scalar=True)}, {v.coefs}, {v.shape})"

    def destination(self, plan: VectorPlan) -> str:
        """The store's buffer, base offset and strides, which every writer's call starts with."""
        buf = self.name_of(plan.store.buffer, plan.store.buffer.name)
        return f"{buf}, {self.expr(plan.base, scalar=True)}, {plan.coefs}"

    def emit_mask(self, plan: VectorPlan, depth: int) -> str | None:
        """Emit the guards as one boolean array over the nest and return its name (None when
        there are no guards)."""
        if not plan.guards:
            return None
        mask = self.fresh("mask")
        conds = " & ".join(f"({self.expr(g, scalar=False)})" for g in plan.guards)
        self.emit(depth, f"{mask} = np.broadcast_to({conds}, {plan.shape})")
        return mask

    def emit_value(self, plan: VectorPlan, depth: int) -> str:
        """Emit the plan's values as one array and return its name."""
        value = self.fresh("value")
        self.emit(depth, f"{value} = {self.expr(plan.value, scalar=False)}")
        return value

    # -- expressions -------------------------------------------------------------------------
    vec: VectorPlan | None = None

    def expr(self, e: Expr, scalar: bool) -> str:
        if isinstance(e, Const):
            if dt.is_bool(e.dtype):
                return "True" if e.value else "False"
            if e.dtype in ("int32", "int64") or (dt.is_float(e.dtype) and e.dtype == "float64"):
                return repr(e.value)
            return self.const_name(e.value, e.dtype)
        if isinstance(e, Var):
            if e not in self.names:
                raise BuildError(f"variable {e.name} is not bound in the host program")
            return self.names[e]
        if isinstance(e, ir.Load):
            return self.load(e, scalar)
        if isinstance(e, BinOp):
            a, b = self.expr(e.a, scalar), self.expr(e.b, scalar)
            if e.op in ("min", "max"):
                fn = "np.minimum" if e.op == "min" else "np.maximum"
                if scalar:
                    return f"{e.op}({a}, {b})"
                return f"{fn}({a}, {b})"
            return f"({a} {_PY_BINOPS[e.op]} {b})"
        if isinstance(e, Cmp):
            return f"({self.expr(e.a, scalar)} {_PY_CMP[e.op]} {self.expr(e.b, scalar)})"
        if isinstance(e, Logic):
            if e.op == "not":
                return (
                    f"(not {self.expr(e.a, scalar)})"
                    if scalar
                    else f"np.logical_not({self.expr(e.a, scalar)})"
                )
            if scalar:
                return f"({self.expr(e.a, scalar)} {e.op} {self.expr(e.b, scalar)})"
            fn = "np.logical_and" if e.op == "and" else "np.logical_or"
            return f"{fn}({self.expr(e.a, scalar)}, {self.expr(e.b, scalar)})"
        if isinstance(e, Select):
            c, t, f = (self.expr(x, scalar) for x in (e.cond, e.true_value, e.false_value))
            if scalar:
                return f"({t} if {c} else {f})"
            return f"np.where({c}, {t}, {f})"
        if isinstance(e, Cast):
            return f"rt.cast({self.expr(e.value, scalar)}, {e.dtype!r})"
        if isinstance(e, Call):
            raise BuildError(
                f"the host program calls {e.name}, which only an accelerator build provides"
            )
        raise BuildError(f"host code generation does not handle the expression {e}")

    def load(self, e: ir.Load, scalar: bool) -> str:
        buf = self.name_of(e.buffer, e.buffer.name)
        if scalar or self.vec is None:
            return f"{buf}[{self.expr(e.index, scalar=True)}]"
        view = self.vec.view(e.index)
        if view is None:
            return f"rt.gather({buf}, {self.expr(e.index, scalar=False)})"
        base, coefs = view
        return f"rt.load({buf}, {self.expr(base, scalar=True)}, {coefs}, {self.vec.shape})"


# -- analysis helpers ---------------------------------------------------------------------------


def python_ident(name: str) -> str:
    """``name`` as a Python identifier that generated code can use safely: other characters
    become ``_``, and a keyword, a builtin (``range``, which the generated loops call) or a name
    of the generated module's namespace (``np``, ``rt``) gets a trailing ``_``. The one place
    where names of tensors, buffers, variables and programs become identifiers."""
    name = re.sub(r"\W", "_", name)
    if not name or name[0].isdigit():
        name = f"v_{name}"
    while keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _RESERVED:
        name += "_"
    return name


_RESERVED = frozenset(dir(builtins)) | {"np", "rt"}


def split_affine(index: Expr, nest_vars: dict):
    """(base, coefs): ``index = base + sum(coefs[m] * v_m)`` with ``base`` free of nest variables.

    Returns None if ``index`` is not affine in the nest variables.
    """
    form = affine(simplify(index))
    coefs = [0] * len(nest_vars)
    rest = {}
    for atom, c in form.terms.items():
        if isinstance(atom, Var) and atom in nest_vars:
            coefs[nest_vars[atom]] = c
        elif free_vars(atom) & nest_vars.keys():
            return None
        else:
            rest[atom] = c
    return from_affine(type(form)(rest, form.const)), tuple(coefs)


@dataclass(frozen=True)
class View:
    """The elements ``buffer[base + sum(coefs[m] * i_m)]`` over ``shape`` (``rt.load``)."""

    buffer: ir.Buffer
    base: Expr
    coefs: tuple[int, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Contraction:
    """A sum of products ``C[...] += a[...] * b[...]`` as one matrix product.

    ``a`` is viewed with its axes as (batch, rows, inner, summed), ``b`` as (batch, inner,
    cols, summed); ``groups`` counts the batch, rows, inner and cols axes. Summed axes are read
    by one factor only and are added up first (in int64). ``rt.contract`` returns the product as
    (batch, rows, cols), which is added into ``dest``, viewed as (broadcast, batch, rows, cols):
    the broadcast axes are read by no factor. ``compute`` is the product's dtype, see
    :func:`_exact_dtype`.
    """

    a: View
    b: View
    a_summed: int
    b_summed: int
    groups: tuple[int, int, int, int]
    dest: View
    compute: str


@dataclass(frozen=True)
class VectorPlan:
    """How one perfect loop nest runs as array operations, decided before any line is emitted.

    ``kind`` is "store" (``value`` at every point, stored at an injective index), "reduce"
    (``value`` folded with ``op`` into the store's elements over the loops its index ignores) or
    "contraction" (a sum of two loads' products, as ``contraction`` says). The arrays have one
    axis per entry of ``axes``: the positions in ``loops`` of the loops it stands for, outermost
    first. Tile loops merge into one axis (see :func:`merge_axes`); every other loop is an axis
    of its own. The store's index is ``base + sum(coefs[m] * axis m)``. ``axis_vars`` are the
    loop variables the emitted code names, each of which gets a broadcast ``rt.axis_range`` (and
    an axis of its own).
    """

    loops: tuple[ir.For, ...]
    axes: tuple[tuple[int, ...], ...]
    shape: tuple[int, ...]
    guards: tuple[Expr, ...]
    store: ir.Store
    base: Expr
    coefs: tuple[int, ...]
    kind: str
    value: Expr | None
    op: str | None
    contraction: Contraction | None
    axis_vars: frozenset[Var]

    @property
    def nest_vars(self) -> dict[Var, int]:
        return {lp.var: m for m, lp in enumerate(self.loops)}

    @property
    def reduced_axes(self) -> tuple[int, ...]:
        return tuple(m for m, c in enumerate(self.coefs) if c == 0)

    @property
    def view_shape(self) -> tuple[int, ...]:
        """The nest's shape with the reduced loops as 1: the store's elements as an array."""
        return tuple(e if c != 0 else 1 for e, c in zip(self.shape, self.coefs))

    def view(self, index: Expr):
        """(base, coefs) of ``index`` over the plan's axes, or None if it is not affine."""
        split = split_affine(index, self.nest_vars)
        if split is None:
            return None
        base, coefs = split
        return base, _on_axes(coefs, self.axes)


def vector_plan(s: ir.For) -> VectorPlan | None:
    """The plan for ``s``, or None if ``s`` is not a vectorizable perfect nest or is too large
    for one array step (more than ``VECTOR_BUDGET`` points; a contraction never forms them)."""
    nest = vector_nest(s)
    if nest is None:
        return None
    loops, guards, store, reduction = nest
    extents = tuple(int(lp.extent.value) for lp in loops)
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    base, coefs = split_affine(store.index, nest_vars)
    plan = functools.partial(VectorPlan, loops=tuple(loops), store=store, base=base)
    factors = None if reduction is None else _contraction_factors(reduction, store, loops)
    if factors is not None:
        views = [split_affine(f.index, nest_vars) for f in factors]
        axes, shape, rest = _regroup(loops, [coefs, *(c for _, c in views)], guards, set())
        contraction = None
        if not rest and _injective_store(coefs, axes, shape):
            contraction = _plan_contraction(store, base, coefs, factors, views, axes, shape)
        if contraction is not None:
            return plan(
                axes=axes,
                shape=shape,
                guards=(),
                coefs=_on_axes(coefs, axes),
                kind="contraction",
                value=None,
                op="add",
                contraction=contraction,
                axis_vars=frozenset(),
            )
    if int(np.prod(extents)) > VECTOR_BUDGET:
        return None
    if reduction is None:
        kind, op, value = "store", None, store.value
    else:
        kind, (op, value) = "reduce", reduction
    reads = [split_affine(r.index, nest_vars)[1] for r in _affine_loads(value, nest_vars)]
    keep = {nest_vars[v] for v in _array_vars(value, nest_vars)}
    # A fold keeps the loops it reduces over as separate axes (not merged with others), so
    # the reduction runs over exactly the iterations the schedule names; numpy sums them in
    # its own (pairwise) order, so a float sum may round differently from the loop's order.
    keep.update(m for m, c in enumerate(coefs) if c == 0)
    axes, shape, guards = _regroup(loops, [coefs, *reads], guards, keep)
    if not _injective_store(coefs, axes, shape):
        return None
    axis_vars = frozenset().union(*(_array_vars(e, nest_vars) for e in (*guards, value)))
    return plan(
        axes=axes,
        shape=shape,
        guards=tuple(guards),
        coefs=_on_axes(coefs, axes),
        kind=kind,
        value=value,
        op=op,
        contraction=None,
        axis_vars=axis_vars,
    )


def _regroup(loops, accesses, guards, keep: set[int]):
    """(axes, shape, guards): the nest's loops merged into axes (:func:`merge_axes`), where a
    guard that bounds a whole axis (:func:`axis_limit`, the guard of a split that does not
    divide) shortens it instead of masking it. Loops that the remaining guards name, and those
    in ``keep``, stay axes of their own; if no guard was absorbed, the guards stay as they
    are."""
    extents = [int(lp.extent.value) for lp in loops]
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    keep = set(keep)
    while True:
        axes = merge_axes(extents, accesses, keep)
        shape = [int(np.prod([extents[m] for m in axis])) for axis in axes]
        bounds = [
            {loops[m].var: w for m, w in zip(axis, axis_weights(axis, extents))} for axis in axes
        ]
        rest = []
        for cond in (c for g in guards for c in conjuncts(g)):
            limits = [axis_limit(cond, weights) for weights in bounds]
            m = next((m for m, limit in enumerate(limits) if limit), None)
            if m is None:
                rest.append(cond)
            else:
                shape[m] = min(shape[m], limits[m])
        named = {nest_vars[v] for c in rest for v in free_vars(c) if v in nest_vars}
        if all(len(axis) == 1 for axis in axes if named.intersection(axis)):
            absorbed = len(rest) < sum(len(conjuncts(g)) for g in guards)
            return axes, tuple(shape), rest if absorbed else list(guards)
        keep |= named


def _injective_store(coefs, axes, shape) -> bool:
    """Whether the store's index takes distinct values over the axes it does not ignore."""
    on_axes = _on_axes(coefs, axes)
    return injective([(abs(c), e) for c, e in zip(on_axes, shape) if c != 0])


def _on_axes(coefs: Sequence[int], axes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Per-loop coefficients as per-axis ones: a merged axis steps like its innermost loop."""
    return tuple(coefs[axis[-1]] for axis in axes)


def _affine_loads(e: Expr, nest_vars: dict) -> list[ir.Load]:
    """The loads of ``e`` rendered as strided views (as ``HostCodegen.load`` renders them)."""
    if isinstance(e, ir.Load) and split_affine(e.index, nest_vars) is not None:
        return [e]
    return [load for c in children(e) for load in _affine_loads(c, nest_vars)]


def _array_vars(e: Expr, nest_vars: dict) -> set[Var]:
    """The nest variables that ``e`` names when rendered as an array (as ``HostCodegen.load``
    renders loads): those outside loads and those in the index of a gathered load. An affine
    load is a strided view, whose base is free of nest variables."""
    if isinstance(e, ir.Load) and split_affine(e.index, nest_vars) is not None:
        return set()
    if isinstance(e, Var):
        return {e} & nest_vars.keys()
    return set().union(*(_array_vars(c, nest_vars) for c in children(e)))


def _contraction_factors(
    reduction, store: ir.Store, loops: list[ir.For]
) -> tuple[ir.Load, ir.Load] | None:
    """The two loads of a sum of products ``C[...] += x[...] * y[...]``, each possibly widened,
    when both are affine views of at most ``VECTOR_BUDGET`` elements; else None."""
    op, value = reduction
    if op != "add" or not isinstance(value, BinOp) or value.op != "mul":
        return None
    factors = []
    for f in (value.a, value.b):
        if isinstance(f, Cast) and dt.is_int(f.dtype) and dt.is_int(f.value.dtype):
            if dt.bits(f.value.dtype) > dt.bits(f.dtype):
                return None  # a narrowing cast must wrap before the product
            f = f.value
        if not isinstance(f, ir.Load) or not dt.is_int(f.dtype):
            return None
        factors.append(f)
    if not dt.is_int(store.buffer.dtype) or value.dtype != store.buffer.dtype:
        return None
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    for f in factors:
        split = split_affine(f.index, nest_vars)
        if split is None:
            return None
        size = 1
        for c, lp in zip(split[1], loops):
            size *= int(lp.extent.value) if c else 1
        if size > VECTOR_BUDGET:
            return None
    return factors[0], factors[1]


def _plan_contraction(store, base, coefs, factors, views, axes, shape) -> Contraction | None:
    """The matrix product of ``factors`` (``views``: their bases and coefficients per loop) over
    the plan's axes, added at ``base`` with ``coefs``; None if some reduction axis is read by
    neither factor (each product counts once per point of it, which a fold does)."""
    a_coefs, b_coefs = (_on_axes(c, axes) for _, c in views)
    out_coefs = _on_axes(coefs, axes)
    groups: dict[tuple[bool, bool, bool], list[int]] = {}
    for m, e in enumerate(shape):
        if e > 1:
            key = (a_coefs[m] != 0, b_coefs[m] != 0, out_coefs[m] != 0)
            groups.setdefault(key, []).append(m)
    if groups.get((False, False, False)):
        return None

    def ordered(key, coefs) -> list[int]:
        return sorted(groups.get(key, []), key=lambda m: -abs(coefs[m]))

    batch = ordered((True, True, True), out_coefs)
    rows = ordered((True, False, True), a_coefs)
    inner = ordered((True, True, False), a_coefs)
    cols = ordered((False, True, True), b_coefs)
    a_summed = ordered((True, False, False), a_coefs)
    b_summed = ordered((False, True, False), b_coefs)
    broadcast = ordered((False, False, True), out_coefs)

    def view(buffer, view_base, coefs, order) -> View:
        return View(
            buffer, view_base, tuple(coefs[m] for m in order), tuple(shape[m] for m in order)
        )

    count = int(np.prod([shape[m] for m in (*inner, *a_summed, *b_summed)]))
    return Contraction(
        a=view(factors[0].buffer, views[0][0], a_coefs, [*batch, *rows, *inner, *a_summed]),
        b=view(factors[1].buffer, views[1][0], b_coefs, [*batch, *inner, *cols, *b_summed]),
        a_summed=len(a_summed),
        b_summed=len(b_summed),
        groups=(len(batch), len(rows), len(inner), len(cols)),
        dest=view(store.buffer, base, out_coefs, [*broadcast, *batch, *rows, *cols]),
        compute=_exact_dtype(factors[0].dtype, factors[1].dtype, count),
    )


def _exact_dtype(a: str, b: str, count: int) -> str:
    """The cheapest dtype in which a sum of ``count`` products of an ``a`` and a ``b`` value is
    exact: float32 when every partial sum stays within 2^24 (int8 x int8 with up to 1024 terms),
    float64 within 2^53, else int64, whose wrap-around agrees with any narrower integer's (the
    store's dtype wraps the exact sum once, at the end)."""
    bound = count
    for dtype in (a, b):
        lo, hi = dt.value_range(dtype)
        bound *= max(abs(lo), abs(hi))
    if bound <= 1 << 24:
        return "float32"
    if bound <= 1 << 53:
        return "float64"
    return "int64"


def vector_nest(s: ir.For):
    """(loops, guards, store, reduction) if ``s`` is a vectorizable perfect nest, else None.

    The nest may be larger than ``VECTOR_BUDGET``, and its store need not be injective over all
    its points (guards may cut them); the caller decides both, on the plan's axes.
    """
    loops: list[ir.For] = []
    guards: list[Expr] = []
    node: ir.Stmt = s
    while True:
        if isinstance(node, ir.For):
            if not (
                isinstance(node.min, Const)
                and node.min.value == 0
                and isinstance(node.extent, Const)
            ):
                return None
            loops.append(node)
            node = node.body
        elif isinstance(node, ir.IfThenElse) and node.else_case is None:
            guards.append(node.cond)
            node = node.then_case
        elif isinstance(node, ir.AttrStmt):
            node = node.body
        else:
            break
    if not isinstance(node, ir.Store):
        return None
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    split = split_affine(node.index, nest_vars)
    if split is None:
        return None
    _, coefs = split
    extents = [int(lp.extent.value) for lp in loops]
    for g in guards:
        if any(isinstance(n, ir.Load) for n in walk(g)):
            return None
    reduction = _reduction(node)
    self_reads = [n for n in walk(node.value) if isinstance(n, ir.Load) and n.buffer is node.buffer]
    index = simplify(node.index)
    if reduction is not None:
        if any(simplify(n.index) != index for n in self_reads) or any(
            isinstance(n, ir.Load) and n.buffer is node.buffer for n in walk(reduction[1])
        ):
            return None
    elif any(simplify(n.index) != index for n in self_reads):
        return None
    if reduction is None and any(c == 0 and e > 1 for c, e in zip(coefs, extents)):
        return None
    if reduction is not None and all(c != 0 or e == 1 for c, e in zip(coefs, extents)):
        reduction = None  # no loop reduces: an elementwise update
    return loops, guards, node, reduction


def _reduction(store: ir.Store):
    v = store.value
    if isinstance(v, BinOp) and v.op in _REDUCE_UFUNC:
        for acc, other in ((v.a, v.b), (v.b, v.a)):
            if (
                isinstance(acc, ir.Load)
                and acc.buffer is store.buffer
                and simplify(acc.index) == simplify(store.index)
            ):
                return v.op, other
    return None


def generate_host_source(name: str, params: list[ir.Buffer], body: ir.Stmt) -> tuple[str, dict]:
    """Python source of the host function and the constants it refers to."""
    gen = HostCodegen(name, params)
    source = gen.generate(body)
    return source, gen.consts
