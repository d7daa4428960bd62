"""The accelerator's vocabulary in the loop IR: runtime calls, module scopes, on-chip addresses.

The accelerator passes turn copies and computations into calls that the generated host code
makes on the runtime's command queue. They keep the names of the original runtime API, so a
lowered program reads like the classic tutorials::

    VTALoadBuffer2D(A, offset, x_size, y_size, x_stride, x_pad_0, y_pad_0, x_pad_1, y_pad_1,
                    sram_index, memory_type)
    VTAStoreBuffer2D(sram_index, memory_type, C, offset, x_size, y_size, x_stride)
    VTAUopLoopBegin(extent, dst_factor, src_factor, wgt_factor) ... VTAUopLoopEnd()
    uop_push(mode, reset, dst, src, wgt, alu_opcode, use_imm, imm)
    coproc_dep_push(from, to) / coproc_dep_pop(from, to) / coproc_sync()

A statement run by one hardware module sits in ``AttrStmt(COPROC, "coproc_scope", stage)``; the
micro-ops of one GEMM or ALU kernel sit in ``AttrStmt(COPROC, "coproc_uop_scope", kind)``.
Offsets into on-chip buffers are :class:`SramAddr` until SRAM allocation makes them numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.env import Environment
from accel.hw.isa import MemType
from accel.hw.modules import Module
from accel.lower import ir
from accel.te.expr import Call, Expr, as_expr

COPROC = "vta"
SCOPE_KEY = "coproc_scope"
UOP_SCOPE_KEY = "coproc_uop_scope"

# The modules as the runtime API numbers them in dependency calls and module scopes.
LOAD_STAGE, COMPUTE_STAGE, STORE_STAGE = (m.stage for m in Module)

LOAD_2D = "VTALoadBuffer2D"
STORE_2D = "VTAStoreBuffer2D"
LOOP_BEGIN = "VTAUopLoopBegin"
LOOP_END = "VTAUopLoopEnd"
UOP_PUSH = "uop_push"
DEP_PUSH = "coproc_dep_push"
DEP_POP = "coproc_dep_pop"
SYNC = "coproc_sync"

GEMM_KERNEL = "VTAPushGEMMOp"
ALU_KERNEL = "VTAPushALUOp"
GEMM_MODE, ALU_MODE = 0, 1


@dataclass(frozen=True, slots=True)
class SramAddr(Expr):
    """Element ``offset`` (in whole tiles of the buffer's scope) of an on-chip ``buffer``."""

    buffer: ir.Buffer
    offset: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return "int32"


def call(name: str, *args) -> ir.Evaluate:
    """``Evaluate`` of a runtime call; integer arguments become constants."""
    return ir.Evaluate(
        Call(name, tuple(a if isinstance(a, ir.Buffer) else as_expr(a, "int32") for a in args))
    )


def in_stage(stage: int, body: ir.Stmt) -> ir.AttrStmt:
    return ir.AttrStmt(COPROC, SCOPE_KEY, stage, body)


def uop_scope(kind: str, body: ir.Stmt) -> ir.AttrStmt:
    return ir.AttrStmt(COPROC, UOP_SCOPE_KEY, kind, body)


def is_stage(s: ir.Stmt) -> bool:
    return isinstance(s, ir.AttrStmt) and s.key == SCOPE_KEY


def is_uop_scope(s: ir.Stmt) -> bool:
    return isinstance(s, ir.AttrStmt) and s.key == UOP_SCOPE_KEY


def call_name(s: ir.Stmt) -> str | None:
    """The runtime function an ``Evaluate`` statement calls, else None."""
    if isinstance(s, ir.Evaluate) and isinstance(s.value, Call):
        return s.value.name
    return None


def uop_push(mode: int, reset: int, dst: Expr, src: Expr, wgt: Expr, opcode=0, use_imm=0, imm=0):
    return call(UOP_PUSH, mode, reset, dst, src, wgt, opcode, use_imm, imm)


def dep(name: str, from_stage: int, to_stage: int) -> ir.Evaluate:
    return call(name, from_stage, to_stage)


# -- scopes ----------------------------------------------------------------------------------


def onchip_scopes(env: Environment) -> dict[str, MemType]:
    """The on-chip scopes and the memory type each holds."""
    return {env.inp_scope: MemType.INP, env.wgt_scope: MemType.WGT, env.acc_scope: MemType.ACC}


def is_onchip(buf: ir.Buffer, env: Environment) -> bool:
    return buf.scope in onchip_scopes(env)


def tile_elems(env: Environment, mem_type: MemType) -> int:
    """Scalars in one element (tile) of ``mem_type``."""
    return {
        MemType.INP: env.BATCH * env.BLOCK_IN,
        MemType.WGT: env.BLOCK_OUT * env.BLOCK_IN,
        MemType.ACC: env.BATCH * env.BLOCK_OUT,
        MemType.ACC_8BIT: env.BATCH * env.BLOCK_OUT,
        MemType.OUT: env.BATCH * env.BLOCK_OUT,
    }[mem_type]


def sram_depth(env: Environment, mem_type: MemType) -> int:
    """Tiles the SRAM of ``mem_type`` holds."""
    return {
        MemType.INP: env.INP_BUFF_DEPTH,
        MemType.WGT: env.WGT_BUFF_DEPTH,
        MemType.ACC: env.ACC_BUFF_DEPTH,
    }[mem_type]
