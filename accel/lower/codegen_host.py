"""Host code generation: a lowered program becomes Python source over flat numpy arrays.

Loop nests run at numpy speed where that is safe. A perfect nest whose innermost statement is a
store at an affine, injective index (an elementwise map) or a reduction ``C[i] = C[i] op x``
(sum, min, max; the store index ignores the reduction loops) is emitted as array operations:
every loop variable becomes a broadcast ``arange``, affine reads become strided views of the flat
buffers, guards become masks. Nests too large for one step (more than ``VECTOR_BUDGET``
iterations) keep their outer loops in Python. The last lowering pass (``distribute_loops``) has
already split loops around several statements where that is legal, so an initialisation and its
reduction arrive as two nests that both vectorize. Everything else runs as plain Python loops
over numpy scalars, with the same integer semantics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from accel.arith.simplify import affine, from_affine, simplify
from accel.errors import BuildError
from accel.lower import ir
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
        k = len(plan.loops)
        for lp in plan.loops:
            self.name_of(lp.var, lp.var.name)
        for m, lp in enumerate(plan.loops):
            if lp.var in plan.axis_vars:
                self.emit(depth, f"{self.names[lp.var]} = rt.axis_range({plan.shape[m]}, {m}, {k})")
        self.vec = (plan.nest_vars, plan.shape)
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
        """The sum of products as one ``numpy.einsum`` over views of the two factors (the
        products are never formed), added into the store's elements."""
        dest = self.destination(plan)
        value = self.fresh("value")
        bdt = plan.store.buffer.dtype
        operands, subscripts = [], []
        for factor in plan.factors:
            base, coefs = split_affine(factor.index, plan.nest_vars)
            dims = [m for m, c in enumerate(coefs) if c != 0]
            view = (
                f"rt.load({self.name_of(factor.buffer, factor.buffer.name)}, "
                f"{self.expr(base, scalar=True)}, "
                f"{tuple(coefs[m] for m in dims)}, {tuple(plan.shape[m] for m in dims)})"
            )
            operands.append(f"rt.cast({view}, {bdt!r})")
            subscripts.append("".join(_LETTERS[m] for m in dims))
        out = "".join(_LETTERS[m] for m, c in enumerate(plan.coefs) if c != 0)
        spec = ",".join(subscripts) + "->" + out
        self.emit(depth, f"{value} = np.einsum({spec!r}, {', '.join(operands)}, optimize=True)")
        shape = plan.view_shape
        self.emit(depth, f"rt.reduce_into(np.add, {dest}, {shape}, {value}.reshape({shape}))")

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
    vec: tuple[dict, tuple] | None = None

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
        nest_vars, shape = self.vec
        split = split_affine(e.index, nest_vars)
        if split is None:
            return f"rt.gather({buf}, {self.expr(e.index, scalar=False)})"
        base, coefs = split
        return f"rt.load({buf}, {self.expr(base, scalar=True)}, {coefs}, {shape})"


# -- analysis helpers ---------------------------------------------------------------------------


def python_ident(name: str) -> str:
    """``name`` as a Python identifier (the generated function and variable names)."""
    name = re.sub(r"\W", "_", name)
    return name if name and not name[0].isdigit() else f"v_{name}"


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
class VectorPlan:
    """How one perfect loop nest runs as array operations, decided before any line is emitted.

    ``kind`` is "store" (``value`` at every point, stored at an injective index), "reduce"
    (``value`` folded with ``op`` into the store's elements over the loops its index ignores) or
    "contraction" (the products of the two loads ``factors`` summed by ``numpy.einsum``). The
    store's index is ``base + sum(coefs[m] * loop m)``. ``axis_vars`` are the loop variables the
    emitted code names, each of which gets a broadcast ``rt.axis_range``.
    """

    loops: tuple[ir.For, ...]
    shape: tuple[int, ...]
    guards: tuple[Expr, ...]
    store: ir.Store
    base: Expr
    coefs: tuple[int, ...]
    kind: str
    value: Expr | None
    op: str | None
    factors: tuple[ir.Load, ...]
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


def vector_plan(s: ir.For) -> VectorPlan | None:
    """The plan for ``s``, or None if ``s`` is not a vectorizable perfect nest or is too large
    for one array step (more than ``VECTOR_BUDGET`` points; a contraction never forms them)."""
    nest = vector_nest(s)
    if nest is None:
        return None
    loops, guards, store, reduction = nest
    shape = tuple(int(lp.extent.value) for lp in loops)
    factors = None if guards or reduction is None else _contraction(reduction, store, loops)
    if factors is None and int(np.prod(shape)) > VECTOR_BUDGET:
        return None
    if factors is not None:
        kind, value, op = "contraction", None, "add"
    elif reduction is None:
        kind, value, op = "store", store.value, None
    else:
        kind, (op, value) = "reduce", reduction
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    base, coefs = split_affine(store.index, nest_vars)
    # A contraction renders only strided views, which name no loop variable.
    rendered = () if value is None else (*guards, value)
    return VectorPlan(
        loops=tuple(loops),
        shape=shape,
        guards=tuple(guards),
        store=store,
        base=base,
        coefs=coefs,
        kind=kind,
        value=value,
        op=op,
        factors=tuple(factors or ()),
        axis_vars=frozenset().union(*(_array_vars(e, nest_vars) for e in rendered)),
    )


def _array_vars(e: Expr, nest_vars: dict) -> set[Var]:
    """The nest variables that ``e`` names when rendered as an array (as ``HostCodegen.load``
    renders loads): those outside loads and those in the index of a gathered load. An affine
    load is a strided view, whose base is free of nest variables."""
    if isinstance(e, ir.Load) and split_affine(e.index, nest_vars) is not None:
        return set()
    if isinstance(e, Var):
        return {e} & nest_vars.keys()
    return set().union(*(_array_vars(c, nest_vars) for c in children(e)))


def vector_nest(s: ir.For):
    """(loops, guards, store, reduction) if ``s`` is a vectorizable perfect nest, else None.

    The nest may be larger than ``VECTOR_BUDGET``; the caller decides whether it fits.
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
    varying = [(abs(c), e) for c, e in zip(coefs, extents) if c != 0 and e > 1]
    if reduction is None and any(c == 0 and e > 1 for c, e in zip(coefs, extents)):
        return None
    if not _injective(varying):
        return None
    if reduction is not None and all(c != 0 or e == 1 for c, e in zip(coefs, extents)):
        reduction = None  # no loop reduces: an elementwise update
    return loops, guards, node, reduction


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _contraction(reduction, store: ir.Store, loops: list[ir.For]):
    """The two loads of a sum of products ``C[...] += x[...] * y[...]``, each possibly widened,
    when numpy can do it as one tensor contraction; else None."""
    op, value = reduction
    if (
        op != "add"
        or not isinstance(value, BinOp)
        or value.op != "mul"
        or len(loops) > len(_LETTERS)
    ):
        return None
    factors = []
    for f in (value.a, value.b):
        if isinstance(f, Cast) and dt.is_int(f.dtype) and dt.is_int(f.value.dtype):
            if dt.bits(f.value.dtype) > dt.bits(f.dtype):
                return None  # a narrowing cast must wrap before the product
            f = f.value
        if not isinstance(f, ir.Load):
            return None
        factors.append(f)
    if not dt.is_int(store.buffer.dtype) or value.dtype != store.buffer.dtype:
        return None
    nest_vars = {lp.var: m for m, lp in enumerate(loops)}
    shape = [int(lp.extent.value) for lp in loops]
    for f in factors:
        split = split_affine(f.index, nest_vars)
        if split is None:
            return None
        size = 1
        for c, e in zip(split[1], shape):
            size *= e if c else 1
        if size > VECTOR_BUDGET:
            return None
    return factors


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


def _injective(terms: list[tuple[int, int]]) -> bool:
    """Whether ``sum(c * i)`` with ``0 <= i < e`` takes distinct values for distinct points."""
    reach = 0
    for c, e in sorted(terms):
        if c <= reach:
            return False
        reach += c * (e - 1)
    return True


def generate_host_source(name: str, params: list[ir.Buffer], body: ir.Stmt) -> tuple[str, dict]:
    """Python source of the host function and the constants it refers to."""
    gen = HostCodegen(name, params)
    source = gen.generate(body)
    return source, gen.consts
