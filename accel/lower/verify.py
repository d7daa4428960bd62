"""The IR verifier: checks the invariants every pass must keep.

Every variable is bound (by a loop, a let, or as a parameter), every buffer that is read or
written is a parameter or allocated around the access, every scope is known, and constant
indices stay inside their buffer. The accelerator's vocabulary is checked the same way: a
buffer passed to a runtime call, or addressed on chip (``SramAddr``), is a parameter or
allocated around the call, and an on-chip address names a buffer in one of ``scopes``.
Tests run it after every pass.
"""

from __future__ import annotations

from accel.arith.simplify import const_bounds
from accel.errors import LoweringError
from accel.lower import coproc, ir
from accel.te.expr import Call, Var
from accel.te.visit import walk


def verify(
    stmt: ir.Stmt, params: list[ir.Buffer], scopes: tuple[str, ...], where: str = ""
) -> None:
    """Raise ``LoweringError`` naming the first broken invariant."""
    _check(stmt, {}, set(params), scopes, where or "program")


def _check(s: ir.Stmt, ranges: dict, buffers: set, scopes: tuple[str, ...], where: str) -> None:
    for e in ir.stmt_exprs(s):
        _check_expr(e, ranges, buffers, scopes, where)
    if isinstance(s, ir.Store):
        _check_access(s.buffer, s.index, ranges, buffers, where)
    if isinstance(s, ir.For):
        ranges = dict(ranges)
        lo, _ = const_bounds(s.min, ranges)
        _, hi = const_bounds(s.min + s.extent - 1, ranges)
        ranges[s.var] = (lo, hi)
    elif isinstance(s, ir.LetStmt):
        ranges = {**ranges, s.var: const_bounds(s.value, ranges)}
    elif isinstance(s, ir.Allocate):
        if s.buffer.scope not in (ir.GLOBAL, ir.LOCAL, *scopes):
            raise LoweringError(
                f"{where}: buffer {s.buffer.name} has unknown scope {s.buffer.scope!r}"
            )
        buffers = buffers | {s.buffer}
    for child in ir.child_stmts(s):
        _check(child, ranges, buffers, scopes, where)


def _check_expr(e, ranges: dict, buffers: set, scopes: tuple[str, ...], where: str) -> None:
    for node in walk(e):
        if isinstance(node, Var) and node not in ranges:
            raise LoweringError(f"{where}: variable {node.name} is used but not bound")
        if isinstance(node, ir.Load):
            _check_access(node.buffer, node.index, ranges, buffers, where)
        if isinstance(node, coproc.SramAddr):
            if node.buffer.scope not in scopes:
                raise LoweringError(
                    f"{where}: on-chip address of {node.buffer.name}, which is in scope "
                    f"{node.buffer.scope!r}, not an on-chip scope"
                )
            _check_visible(node.buffer, buffers, where)
        if isinstance(node, Call):
            for arg in node.args:
                if isinstance(arg, ir.Buffer):
                    _check_visible(arg, buffers, where)


def _check_visible(buf: ir.Buffer, buffers: set, where: str) -> None:
    if buf not in buffers:
        raise LoweringError(f"{where}: buffer {buf.name} is accessed outside its allocation")


def _check_access(buf: ir.Buffer, index, ranges: dict, buffers: set, where: str) -> None:
    _check_visible(buf, buffers, where)
    lo, hi = const_bounds(index, ranges)
    if lo == hi and not 0 <= lo < buf.size:
        raise LoweringError(
            f"{where}: index {int(lo)} is outside buffer {buf.name} of {buf.size} elements"
        )
