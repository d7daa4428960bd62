"""Inject virtual threads: a loop bound to ``cthread`` becomes interleaved copies of its body.

Matches ``AttrStmt(thread, "virtual_thread", n, For(var, 0, n, body, "vthread"))``. Every buffer
allocated inside gets one copy per thread (thread ``t`` uses the ``t``-th slice), and the body is
unrolled ``n`` times, interleaved as finely as the program allows: loops, sequences and other
structure that do not depend on the thread are kept once and the threads interleave inside them,
while each module scope (and each micro-op kernel), runtime call or store is repeated per thread
in place. So thread 1's loads come right after thread 0's, before thread 0's computation, and
the load module works on one thread's tile while the compute module works on the other's.

This runs after dependency injection: each thread gets its own copy of every token push and pop,
so each thread's tokens stay in order in the shared queues, and a write-after-read dependency of
one thread never waits for the other thread's work.

Refuses a thread count whose buffers cannot be replicated (a buffer size that is not whole tiles).
"""

from __future__ import annotations

import dataclasses

from accel.env import Environment
from accel.errors import LoweringError
from accel.lower import coproc, ir
from accel.lower.substitute import substitute_stmt
from accel.te.expr import Const, Expr, Var
from accel.te.visit import free_vars

_UNIT_KEYS = (coproc.SCOPE_KEY, coproc.UOP_SCOPE_KEY)


def inject_vthread(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Replace every virtual-thread loop by its interleaved threads."""

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if not (isinstance(s, ir.AttrStmt) and s.key == "virtual_thread"):
            return None
        loop = s.body
        if not (isinstance(loop, ir.For) and loop.kind == "vthread"):
            return None
        if not isinstance(loop.extent, Const):
            raise LoweringError(
                f"virtual thread {loop.var.name}: the thread count must be constant"
            )
        body = _replicate_buffers(loop.body, loop.var, loop.extent.value, env)
        return _Interleave(loop.var, loop.extent.value).visit(body)

    return ir.rewrite_stmt(stmt, fstmt)


class _Interleave:
    def __init__(self, var: Var, n: int):
        self.var, self.n = var, n

    def uses(self, *exprs) -> bool:
        return any(isinstance(e, Expr) and self.var in free_vars(e) for e in exprs)

    def visit(self, s: ir.Stmt) -> ir.Stmt:
        if isinstance(s, ir.Seq):
            return ir.seq(*[self.visit(c) for c in s.stmts])
        if isinstance(s, ir.For) and not self.uses(s.min, s.extent):
            return dataclasses.replace(s, body=self.visit(s.body))
        if isinstance(s, ir.Allocate):
            return dataclasses.replace(s, body=self.visit(s.body))
        if isinstance(s, ir.AttrStmt) and s.key not in _UNIT_KEYS and not self.uses(s.value):
            return dataclasses.replace(s, body=self.visit(s.body))
        if isinstance(s, ir.LetStmt) and not self.uses(s.value):
            return dataclasses.replace(s, body=self.visit(s.body))
        return ir.seq(*[substitute_stmt(s, {self.var: Const(t)}) for t in range(self.n)])


def _replicate_buffers(body: ir.Stmt, var: Var, n: int, env: Environment) -> ir.Stmt:
    """Give every buffer allocated in ``body`` one slice per thread, selected by ``var``."""
    copies: dict[int, tuple[ir.Buffer, int, int]] = {}  # id -> (new buffer, elements, tiles)
    for s in ir.walk_stmt(body):
        if isinstance(s, ir.Allocate):
            buf = s.buffer
            tiles = 0
            if coproc.is_onchip(buf, env):
                tile = coproc.tile_elems(env, coproc.onchip_scopes(env)[buf.scope])
                if buf.size % tile:
                    raise LoweringError(
                        f"virtual thread {var.name}: {buf.name} holds {buf.size} elements, not "
                        f"whole tiles of {tile}, so it cannot have one copy per thread"
                    )
                tiles = buf.size // tile
            wide = ir.Buffer(buf.name, (n, *buf.shape), buf.dtype, buf.scope)
            copies[id(buf)] = (wide, buf.size, tiles)

    def fexpr(e: Expr) -> Expr | None:
        if isinstance(e, ir.Load) and id(e.buffer) in copies:
            wide, size, _ = copies[id(e.buffer)]
            return ir.Load(wide, e.index + var * size)
        if isinstance(e, coproc.SramAddr) and id(e.buffer) in copies:
            wide, _, tiles = copies[id(e.buffer)]
            return coproc.SramAddr(wide, e.offset + var * tiles)
        return None

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.Allocate) and id(s.buffer) in copies:
            return ir.Allocate(copies[id(s.buffer)][0], s.body)
        if isinstance(s, ir.Store) and id(s.buffer) in copies:
            wide, size, _ = copies[id(s.buffer)]
            return ir.Store(wide, s.index + var * size, s.value)
        return None

    return ir.rewrite_stmt(body, fstmt, fexpr)
