"""Check bounds: every unguarded access of a program stays inside its buffer.

Matches every Load and Store of the loop program as scheduling produced it, with the ranges of
the loops around it and the conditions of the ``if`` statements around it. Its index must stay
inside its buffer for every iteration the conditions let through: a condition bounds the index
when it compares an expression that differs from the index by a constant (the guard
``i.o*3 + i.i < 10`` of a split that does not divide bounds ``i.o*3 + i.i + 1`` by 10). Host
code reads whole strided views, so without this check an out-of-range read in a compute
definition (``A[i + 1]`` for the last ``i``) would be clamped to the buffer's edge and give a
wrong answer silently.

Produces: the program unchanged. Refuses: an access whose index range, narrowed by the
conditions that bound it, reaches outside its buffer, naming the buffer, the index, its range
and the buffer's size. Left alone: reads inside a ``select`` / ``if_then_else`` value (padding:
the select decides), accesses under conditions that do not bound their index, and indices whose
range cannot be bounded.
"""

from __future__ import annotations

from accel.arith.simplify import INF, affine, const_bounds, simplify
from accel.env import Environment
from accel.errors import LoweringError
from accel.lower import ir
from accel.te.expr import Cmp, Expr, Logic, Select
from accel.te.visit import children


def check_bounds(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """``stmt`` unchanged, after checking its accesses (``env`` is unused)."""
    _visit(stmt, {}, ())
    return stmt


def _visit(s: ir.Stmt, ranges: dict, guards: tuple) -> None:
    if isinstance(s, ir.IfThenElse):
        _loads(s.cond, ranges, guards)
        _visit(s.then_case, ranges, guards + tuple(_conjuncts(s.cond)))
        if s.else_case is not None:  # the negation bounds nothing we use: unguarded there
            _visit(s.else_case, ranges, guards + (None,))
        return
    if isinstance(s, ir.For):
        lo, _ = const_bounds(s.min, ranges)
        _, hi = const_bounds(s.min + s.extent - 1, ranges)
        ranges = {**ranges, s.var: (lo, hi)}
    elif isinstance(s, ir.LetStmt):
        ranges = {**ranges, s.var: const_bounds(s.value, ranges)}
    if isinstance(s, ir.Store):
        _check(s.buffer, s.index, ranges, guards, "writes")
    for e in ir.stmt_exprs(s):
        _loads(e, ranges, guards)
    for child in ir.child_stmts(s):
        _visit(child, ranges, guards)


def _loads(e: Expr, ranges: dict, guards: tuple) -> None:
    if isinstance(e, Select):
        _loads(e.cond, ranges, guards)  # only the condition is evaluated unconditionally
        return
    if isinstance(e, ir.Load):
        _check(e.buffer, e.index, ranges, guards, "reads")
    for child in children(e):
        _loads(child, ranges, guards)


def _conjuncts(cond: Expr) -> list:
    if isinstance(cond, Logic) and cond.op == "and":
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


def _narrowed(index: Expr, lo: float, hi: float, guards: tuple) -> tuple[float, float, bool]:
    """(lo, hi) of ``index`` narrowed by the guards that compare ``index + k`` with a constant,
    and whether some guard could not be related to the index."""
    form = affine(simplify(index))
    unrelated = False
    for guard in guards:
        if not isinstance(guard, Cmp) or guard.op not in ("lt", "le", "gt", "ge"):
            unrelated = True
            continue
        bound = affine(simplify(guard.b))
        offset = form + affine(simplify(guard.a)).scale(-1)  # index - guarded expression
        if offset.terms or bound.terms:
            unrelated = True
            continue
        edge = bound.const + offset.const
        if guard.op == "lt":
            hi = min(hi, edge - 1)
        elif guard.op == "le":
            hi = min(hi, edge)
        elif guard.op == "gt":
            lo = max(lo, edge + 1)
        else:
            lo = max(lo, edge)
    return lo, hi, unrelated


def _check(buf: ir.Buffer, index: Expr, ranges: dict, guards: tuple, verb: str) -> None:
    lo, hi = const_bounds(index, ranges)
    if lo in (-INF, INF) or hi in (-INF, INF):
        return
    if lo >= 0 and hi < buf.size:
        return
    lo, hi, unrelated = _narrowed(index, lo, hi, guards)
    if (lo < 0 or hi >= buf.size) and not unrelated:
        raise LoweringError(
            f"the program {verb} {buf.name}[{index}] at flat indices {int(lo)}..{int(hi)}, but "
            f"{buf.name} has {buf.size} elements; keep the index inside the tensor or guard the "
            "access with te.if_then_else"
        )
