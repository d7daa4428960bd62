"""Distribute loops: a loop around several statements becomes one loop per statement.

Matches ``for v: {S1; S2; ...}``, a loop whose body is a sequence, and produces ``for v: S1;
for v: S2; ...`` (same variable, bounds and kind). It runs bottom-up, so a whole nest around
several statements splits into one nest per statement: an initialisation and its reduction
become two perfect nests, which host code generation can then run as array operations.

The split is legal when no statement can see another's writes from a different iteration of
``v``: every buffer that two statements access (and one writes) is accessed, in every iteration,
only in a window that no other iteration touches. All its accesses are ``c*v + g`` with the same
``c`` and the same part from outside the loop, and the parts ``g`` from inside the loop (bounded
by the inner loops' ranges) span less than ``|c|``.

Refuses (leaves the loop as it is) when the body is not a sequence, when that test fails, and
when the body holds anywhere
  - an allocation: a per-iteration buffer cannot be shared across the split loops;
  - a runtime call (``Evaluate``): calls act on the command queue in program order;
  - an attribute scope (``AttrStmt``): module scopes, micro-op kernels, pragmas and virtual
    threads hold their body together.
So accelerator programs pass through unchanged; it splits only plain host loops.
"""

from __future__ import annotations

from collections.abc import Iterator

from accel.arith.simplify import INF, affine, const_bounds, from_affine, simplify
from accel.env import Environment
from accel.lower import ir
from accel.te.expr import Expr, Var
from accel.te.visit import free_vars, walk

_UNSPLITTABLE = (ir.Allocate, ir.Evaluate, ir.AttrStmt)


def distribute_loops(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """``stmt`` with every loop that :func:`distribute` allows split, innermost loops first
    (``env`` is unused: the pass needs no configuration)."""
    return split_loops(stmt, distribute)


def split_loops(stmt: ir.Stmt, split) -> ir.Stmt:
    """``stmt`` with every loop that ``split(loop)`` (a list of loops, or None) splits replaced
    by those loops, innermost loops first."""

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.For):
            parts = split(s)
            if parts is not None:
                return ir.seq(*parts)
        return None

    return ir.rewrite_stmt(stmt, fstmt)


def distribute(s: ir.For) -> list[ir.For] | None:
    """The loops ``s`` splits into, one per statement of its body, or None if it cannot split."""
    body = s.body
    if not isinstance(body, ir.Seq):
        return None
    inner_ranges: dict = {}
    for node in ir.walk_stmt(body):
        if isinstance(node, _UNSPLITTABLE):
            return None
        if isinstance(node, ir.For):
            inner_ranges = _with_range(inner_ranges, node)
    accesses: dict[ir.Buffer, list[tuple[int, Expr, bool]]] = {}
    for position, child in enumerate(body.stmts):
        for buf, index, write in _accesses(child):
            accesses.setdefault(buf, []).append((position, index, write))
    for items in accesses.values():
        positions = {p for p, _, _ in items}
        if len(positions) < 2 or not any(w for _, _, w in items):
            continue
        if not _separated(s.var, [idx for _, idx, _ in items], inner_ranges):
            return None
    return [ir.For(s.var, s.min, s.extent, child, s.kind) for child in body.stmts]


def _with_range(ranges: dict, s: ir.For) -> dict:
    new = dict(ranges)
    lo = const_bounds(s.min, ranges)[0]
    hi = const_bounds(s.min + s.extent - 1, ranges)[1]
    new[s.var] = (lo, hi)
    return new


def _accesses(s: ir.Stmt) -> Iterator[tuple[ir.Buffer, Expr, bool]]:
    """(buffer, index, is a write) of every load and store in ``s``."""
    for node in ir.walk_stmt(s):
        if isinstance(node, ir.Store):
            yield node.buffer, node.index, True
        for e in ir.stmt_exprs(node):
            for n in walk(e):
                if isinstance(n, ir.Load):
                    yield n.buffer, n.index, False


def _separated(v: Var, indices: list[Expr], inner_ranges: dict) -> bool:
    """Whether each iteration of ``v`` accesses ``indices`` only in its own window."""
    coef = None
    outer = None
    lo, hi = INF, -INF
    for index in indices:
        form = affine(simplify(index))
        c = form.coef(v)
        if c == 0 or (coef is not None and c != coef):
            return False
        coef = c
        rest = {a: k for a, k in form.terms.items() if a is not v}
        if any(v in free_vars(a) for a in rest):
            return False
        outer_part = {a: k for a, k in rest.items() if not free_vars(a) & inner_ranges.keys()}
        inner_part = {a: k for a, k in rest.items() if a not in outer_part}
        if outer is None:
            outer = outer_part
        elif outer_part != outer:
            return False
        glo, ghi = const_bounds(from_affine(type(form)(inner_part, form.const)), inner_ranges)
        lo, hi = min(lo, glo), max(hi, ghi)
    return hi - lo < abs(coef)
