"""Check bounds: every unguarded access of a program stays inside its buffer.

Matches every Load and Store of the loop program as scheduling produced it, with the ranges of
the loops around it. An access under no condition (no ``if`` statement, no ``select`` /
``if_then_else``) must provably stay inside its buffer for every iteration; one that might not
is refused. Host code reads whole strided views, so without this check an out-of-range read in
a compute definition (``A[i + 1]`` for the last ``i``) would be clamped to the buffer's edge and
give a wrong answer silently.

Produces: the program unchanged. Refuses: an unguarded access whose index range reaches outside
its buffer, naming the buffer, the index, its range and the buffer's size. Accesses under a
condition are left to the condition (the guards of non-dividing splits and of padding), and
indices whose range cannot be bounded are not refused.
"""

from __future__ import annotations

from accel.arith.simplify import INF, const_bounds
from accel.env import Environment
from accel.errors import LoweringError
from accel.lower import ir
from accel.te.expr import Expr, Select
from accel.te.visit import children


def check_bounds(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """``stmt`` unchanged, after checking its unguarded accesses (``env`` is unused)."""
    _visit(stmt, {})
    return stmt


def _visit(s: ir.Stmt, ranges: dict) -> None:
    if isinstance(s, ir.IfThenElse):
        return  # guarded: the condition decides which iterations access anything
    if isinstance(s, ir.For):
        lo, _ = const_bounds(s.min, ranges)
        _, hi = const_bounds(s.min + s.extent - 1, ranges)
        ranges = {**ranges, s.var: (lo, hi)}
    elif isinstance(s, ir.LetStmt):
        ranges = {**ranges, s.var: const_bounds(s.value, ranges)}
    if isinstance(s, ir.Store):
        _check(s.buffer, s.index, ranges, "writes")
    for e in ir.stmt_exprs(s):
        _loads(e, ranges)
    for child in ir.child_stmts(s):
        _visit(child, ranges)


def _loads(e: Expr, ranges: dict) -> None:
    if isinstance(e, Select):
        _loads(e.cond, ranges)  # only the condition is evaluated unconditionally
        return
    if isinstance(e, ir.Load):
        _check(e.buffer, e.index, ranges, "reads")
    for child in children(e):
        _loads(child, ranges)


def _check(buf: ir.Buffer, index: Expr, ranges: dict, verb: str) -> None:
    lo, hi = const_bounds(index, ranges)
    if lo in (-INF, INF) or hi in (-INF, INF):
        return
    if lo < 0 or hi >= buf.size:
        raise LoweringError(
            f"the program {verb} {buf.name}[{index}] at flat indices {int(lo)}..{int(hi)}, but "
            f"{buf.name} has {buf.size} elements; keep the index inside the tensor or guard the "
            "access with te.if_then_else"
        )
