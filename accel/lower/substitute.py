"""Substituting variables in statements, the one way every pass does it."""

from __future__ import annotations

from accel.arith.simplify import simplify
from accel.lower import coproc, ir
from accel.te.expr import Call, Expr, Var


def substitute_stmt(s: ir.Stmt, mapping: dict[Var, Expr]) -> ir.Stmt:
    """``s`` with the variables of ``mapping`` replaced. On-chip addresses and runtime-call
    arguments that changed are simplified again, so an index like ``(t*4 + 0)`` with ``t = 1``
    becomes the constant the code generators and the encoder expect."""
    if not mapping:
        return s

    def fexpr(e: Expr) -> Expr | None:
        if isinstance(e, Var):
            return mapping.get(e)
        if isinstance(e, coproc.SramAddr):  # its offset was substituted already (bottom-up)
            offset = simplify(e.offset)
            return None if offset is e.offset else coproc.SramAddr(e.buffer, offset)
        return None

    def fstmt(x: ir.Stmt) -> ir.Stmt | None:
        if isinstance(x, ir.Evaluate) and isinstance(x.value, Call):
            return ir.Evaluate(_simplify_args(x.value))
        return None

    return ir.rewrite_stmt(s, fstmt, fexpr)


def _simplify_args(c: Call) -> Call:
    args = tuple(
        simplify(a) if isinstance(a, Expr) and not isinstance(a, coproc.SramAddr) else a
        for a in c.args
    )
    return c if all(a is b for a, b in zip(args, c.args)) else Call(c.name, args, c.dtype)
