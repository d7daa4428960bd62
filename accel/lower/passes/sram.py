"""On-chip storage: lift the allocations of accelerator buffers, then place them in SRAM.

``lift_alloc`` moves every allocation in an on-chip scope to the top of the program: the
accelerator's SRAMs are static, so a buffer allocated inside a loop is the same storage on every
iteration. ``allocate_sram`` then gives each on-chip buffer its own range of tiles in its SRAM,
in program order, turns every on-chip address into a number, and refuses a program whose buffers
do not fit with an ``AllocationError`` naming the buffer, what it asks and what is left.
"""

from __future__ import annotations

from accel.arith.simplify import simplify
from accel.env import Environment
from accel.errors import AllocationError
from accel.hw.memory import elem_bytes
from accel.lower import coproc, ir
from accel.te.expr import Expr


def lift_alloc(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Hoist on-chip allocations to the top of the program, keeping their order."""
    lifted: list[ir.Buffer] = []

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.Allocate) and coproc.is_onchip(s.buffer, env):
            lifted.append(s.buffer)
            return s.body
        return None

    body = ir.rewrite_stmt(stmt, fstmt)
    if not lifted:
        return stmt
    for buf in reversed(_program_order(stmt, lifted)):
        body = ir.Allocate(buf, body)
    return body


def _program_order(stmt: ir.Stmt, buffers: list[ir.Buffer]) -> list[ir.Buffer]:
    wanted = set(map(id, buffers))
    return [
        s.buffer
        for s in ir.walk_stmt(stmt)
        if isinstance(s, ir.Allocate) and id(s.buffer) in wanted
    ]


def _place(stmt: ir.Stmt, env: Environment) -> tuple[list[tuple], dict[str, int]]:
    """[(buffer, first tile, tiles, bytes)] in program order, and tiles used per scope."""
    scopes = coproc.onchip_scopes(env)
    used = dict.fromkeys(scopes, 0)
    placed = []
    for s in ir.walk_stmt(stmt):
        if not (isinstance(s, ir.Allocate) and s.buffer.scope in scopes):
            continue
        buf = s.buffer
        mem_type = scopes[buf.scope]
        nbytes = elem_bytes(env, mem_type)
        tiles = -(-buf.size // coproc.tile_elems(env, mem_type))
        depth = coproc.sram_depth(env, mem_type)
        left = depth - used[buf.scope]
        if tiles > left:
            raise AllocationError(
                f"{buf.name} needs {tiles} tiles ({tiles * nbytes} bytes) of {buf.scope}, but "
                f"only {left} tiles ({left * nbytes} bytes) of its {depth * nbytes} bytes are "
                "left; use smaller tiles"
            )
        placed.append((buf, used[buf.scope], tiles, tiles * nbytes))
        used[buf.scope] += tiles
    return placed, used


def sram_layout(stmt: ir.Stmt, env: Environment) -> dict:
    """Where the on-chip buffers of ``stmt`` go, in tiles: ``{"buffers": {name: {scope, base,
    tiles, bytes}}, "scopes": {scope: {used, capacity}}}``. Raises AllocationError when a
    scope's buffers do not fit its SRAM."""
    placed, used = _place(stmt, env)
    buffers = {}
    for buf, base, tiles, nbytes in placed:
        key = buf.name if buf.name not in buffers else f"{buf.name}#{len(buffers)}"
        buffers[key] = {"scope": buf.scope, "base": base, "tiles": tiles, "bytes": nbytes}
    scopes = coproc.onchip_scopes(env)
    return {
        "buffers": buffers,
        "scopes": {
            scope: {"used": used[scope], "capacity": coproc.sram_depth(env, t)}
            for scope, t in scopes.items()
        },
    }


def allocate_sram(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Assign SRAM ranges to on-chip buffers and resolve every on-chip address."""
    base = {id(buf): first for buf, first, _tiles, _bytes in _place(stmt, env)[0]}

    def fexpr(e: Expr) -> Expr | None:
        if isinstance(e, coproc.SramAddr):
            if id(e.buffer) not in base:
                raise AllocationError(f"{e.buffer.name} is used on chip but never allocated")
            return simplify(e.offset + base[id(e.buffer)])
        return None

    return ir.rewrite_stmt(stmt, fexpr=fexpr)


def coproc_sync(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """End a program that uses the accelerator with ``coproc_sync()``: run and wait."""
    if not any(coproc.is_stage(s) for s in ir.walk_stmt(stmt)):
        return stmt
    return ir.seq(stmt, coproc.SYNC())
