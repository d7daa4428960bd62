"""Inline copies: a ``local`` buffer that holds nothing but a copy of another buffer is read
from that buffer instead.

On the host, ``cache_read(A, "local", ...)`` stages a tile of ``A`` into a fresh array: a copy
that buys nothing in numpy and costs a Python loop per tile, because the allocation and the copy
sit between the tile loops and the loops that read the tile. Reading ``A`` at the composed index
leaves the reader a plain loop nest over ``A``, which later passes and the host code generator
regroup into whole-tensor array operations.

Matches ``allocate T { S_1; ...; copy; R_1; ...; R_n }`` with ``T`` in the ``local`` scope, where
``copy`` is a perfect nest ``for a_1, ..., a_r: if G(a): T[sum(c_m * a_m)] = X[g(a)]`` (the
value may be a cast of the load; the guards ``G``, of splits that do not divide, may sit at any
depth) whose store index is the dense row-major layout of all of ``T``: no constant, the
innermost coefficient 1 and each next one the product of the extents inside it. Produces
``S_1; ...; R_1'; ...; R_n'``, where every read ``T[L]`` becomes ``X[g(a_m = L // c_m % e_m)]``
simplified with the loop ranges, which turns a tile index such as ``(i.inner*16 + k.inner)``
back into ``i.inner`` and ``k.inner``. The copy wrote that element before any read, provided
``G`` held for it: each term of ``G(a_m = ...)`` must be one of the conditions around the read
(the consumer's own guards of the same split), so the read sees exactly what the copy put there.

Refuses (leaves the allocation as it is) when
  - ``T`` is not in the ``local`` scope, or the body holds a runtime call or an attribute scope
    (accelerator programs keep their on-chip buffers);
  - no statement of the body's sequence is such a copy, or another statement also writes ``T``;
  - a statement before the copy reads ``T``, or one after it writes ``X``;
  - a rewritten read index is not affine in the loop variables (the read would become a gather),
    or a read is not guarded by the copy's guards (it would read an element the copy skipped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from accel.arith.simplify import affine, const_bounds, simplify
from accel.env import Environment
from accel.lower import ir
from accel.te.expr import BinOp, Cast, Const, Expr, Logic, Var
from accel.te.visit import rewrite, substitute, walk


def inline_copies(stmt: ir.Stmt, env: Environment | None = None) -> ir.Stmt:
    """``stmt`` with every copy that :func:`inline` allows read through, innermost allocations
    first (``env`` is unused: the pass needs no configuration)."""
    ranges = loop_ranges(stmt)

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        return inline(s, ranges) if isinstance(s, ir.Allocate) else None

    return ir.rewrite_stmt(stmt, fstmt)


def loop_ranges(stmt: ir.Stmt) -> dict[Var, tuple[float, float]]:
    """Bounds of every loop variable of ``stmt``: a variable bound by several loops gets the
    union of their ranges, which holds wherever it is read."""
    ranges: dict[Var, tuple[float, float]] = {}
    for s in ir.walk_stmt(stmt):
        if isinstance(s, ir.For):
            lo = const_bounds(s.min, ranges)[0]
            hi = const_bounds(s.min + s.extent - 1, ranges)[1]
            old = ranges.get(s.var, (lo, hi))
            ranges[s.var] = (min(lo, old[0]), max(hi, old[1]))
    return ranges


def conjuncts(cond: Expr) -> list[Expr]:
    """The terms of a conjunction (``cond`` itself if it is none)."""
    if isinstance(cond, Logic) and cond.op == "and":
        return conjuncts(cond.a) + conjuncts(cond.b)
    return [cond]


@dataclass(frozen=True)
class _Copy:
    """``if guards: T[sum(coefs[m] * loops[m])] = value`` over a perfect nest, outermost loop
    first."""

    loops: tuple[ir.For, ...]
    coefs: tuple[int, ...]
    guards: tuple[Expr, ...]
    value: Expr
    source: ir.Buffer


def inline(s: ir.Allocate, ranges: dict) -> ir.Stmt | None:
    """The body of ``s`` with its copy read through, or None if the pass refuses it."""
    buf = s.buffer
    if buf.scope != ir.LOCAL:
        return None
    stmts = s.body.stmts if isinstance(s.body, ir.Seq) else (s.body,)
    if any(isinstance(n, (ir.Evaluate, ir.AttrStmt)) for n in ir.walk_stmt(s.body)):
        return None
    writers = [p for p, child in enumerate(stmts) if _writes(child, buf)]
    if len(writers) != 1:
        return None
    position = writers[0]
    copy = _copy(stmts[position], buf)
    if copy is None:
        return None
    before, after = stmts[:position], stmts[position + 1 :]
    if any(_reads(child, buf) for child in before) or any(
        _writes(child, copy.source) for child in after
    ):
        return None
    failed = []

    def read(e: ir.Load, conds: frozenset) -> Expr:
        value = _read_through(copy, e.index, conds, ranges)
        if value is None:
            failed.append(e)
            return e
        return value

    rewritten = [_replace_reads(child, buf, read, frozenset()) for child in after]
    if failed:
        return None
    return ir.seq(*before, *rewritten)


def _copy(s: ir.Stmt, buf: ir.Buffer) -> _Copy | None:
    loops: list[ir.For] = []
    guards: list[Expr] = []
    while isinstance(s, (ir.For, ir.IfThenElse)):
        if isinstance(s, ir.IfThenElse):
            if s.else_case is not None or any(isinstance(n, ir.Load) for n in walk(s.cond)):
                return None
            guards.extend(conjuncts(s.cond))
            s = s.then_case
            continue
        if not (isinstance(s.min, Const) and s.min.value == 0 and isinstance(s.extent, Const)):
            return None
        loops.append(s)
        s = s.body
    if not isinstance(s, ir.Store):
        return None
    value = s.value if s.value.dtype == buf.dtype else Cast(buf.dtype, s.value)
    load = value.value if isinstance(value, Cast) else value
    if not isinstance(load, ir.Load) or load.buffer is buf:
        return None
    form = affine(simplify(s.index))
    loop_vars = {lp.var for lp in loops}
    if form.const != 0 or any(atom not in loop_vars for atom in form.terms):
        return None
    coefs = tuple(form.coef(lp.var) for lp in loops)
    size = 1
    for coef, lp in sorted(zip(coefs, loops), key=lambda item: item[0]):
        if coef != size:
            return None
        size *= lp.extent.value
    if size != buf.size:
        return None
    return _Copy(tuple(loops), coefs, tuple(guards), value, load.buffer)


def _read_through(copy: _Copy, index: Expr, conds: frozenset, ranges: dict) -> Expr | None:
    """The copy's value at the element ``index`` of the copied buffer, read where ``conds``
    hold; None if its index in the source is not affine in the loop variables or if ``conds``
    do not include the copy's guards there."""
    digits = {}
    for lp, coef in zip(copy.loops, copy.coefs):
        quotient = index if coef == 1 else BinOp("floordiv", index, Const(coef), index.dtype)
        digits[lp.var] = BinOp("floormod", quotient, lp.extent, index.dtype)
    known = {simplify(c, ranges) for c in conds}
    for guard in copy.guards:
        held = simplify(substitute(guard, digits), ranges)
        if not (held in known or isinstance(held, Const) and held.value):
            return None
    value = substitute(copy.value, digits)

    def fexpr(e: Expr) -> Expr | None:
        if isinstance(e, ir.Load):
            return ir.Load(e.buffer, simplify(e.index, ranges))
        return None

    value = rewrite(value, fexpr)
    for node in walk(value):
        if isinstance(node, ir.Load) and not all(
            isinstance(atom, Var) for atom in affine(node.index).terms
        ):
            return None
    return value


def _replace_reads(s: ir.Stmt, buf: ir.Buffer, read, conds: frozenset) -> ir.Stmt:
    """``s`` with every load ``e`` of ``buf`` replaced by ``read(e, conds)``, where ``conds``
    are the terms of the conditions of the ``if`` statements around the load."""

    def fexpr(e: Expr) -> Expr | None:
        return read(e, conds) if isinstance(e, ir.Load) and e.buffer is buf else None

    changes = {}
    for name in ("index", "value", "cond", "min", "extent"):
        value = getattr(s, name, None)
        if isinstance(value, Expr):
            new = rewrite(value, fexpr)
            if new is not value:
                changes[name] = new
    if isinstance(s, ir.Seq):
        stmts = tuple(_replace_reads(c, buf, read, conds) for c in s.stmts)
        if any(a is not b for a, b in zip(stmts, s.stmts)):
            changes["stmts"] = stmts
    for name in ("body", "then_case", "else_case"):
        child = getattr(s, name, None)
        if isinstance(child, ir.Stmt):
            inner = conds
            if name == "then_case":
                inner = conds | set(conjuncts(s.cond))
            new_child = _replace_reads(child, buf, read, inner)
            if new_child is not child:
                changes[name] = new_child
    return dataclasses.replace(s, **changes) if changes else s


def _writes(s: ir.Stmt, buf: ir.Buffer) -> bool:
    return any(isinstance(n, ir.Store) and n.buffer is buf for n in ir.walk_stmt(s))


def _reads(s: ir.Stmt, buf: ir.Buffer) -> bool:
    return any(
        isinstance(n, ir.Load) and n.buffer is buf
        for node in ir.walk_stmt(s)
        for e in ir.stmt_exprs(node)
        for n in walk(e)
    )
