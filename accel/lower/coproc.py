"""The accelerator's vocabulary in the loop IR: runtime calls, module scopes, on-chip addresses.

The accelerator passes turn copies and computations into calls that the generated host code
makes on the runtime's command queue. Each kind of call is declared once
(:class:`RuntimeCall`) with named fields, and keeps the name of the original runtime API, so a
lowered program reads like the classic tutorials::

    VTALoadBuffer2D(src_addr, src_elem_offset, x_size, y_size, x_stride, x_pad_before,
                    y_pad_before, x_pad_after, y_pad_after, dst_sram_index, dst_memory_type)
    VTAStoreBuffer2D(src_sram_index, src_memory_type, dst_addr, dst_elem_offset, x_size, y_size,
                     x_stride)
    VTAUopLoopBegin(extent, dst_factor, src_factor, wgt_factor) ... VTAUopLoopEnd()
    uop_push(mode, reset, dst, src, wgt, opcode, use_imm, imm)
    coproc_dep_push(from_stage, to_stage) / coproc_dep_pop(from_stage, to_stage) / coproc_sync()

A statement run by one hardware module sits in ``AttrStmt(COPROC, "coproc_scope", stage)``; the
micro-ops of one GEMM or ALU kernel sit in ``AttrStmt(COPROC, "coproc_uop_scope", kind)``.
Offsets into on-chip buffers are :class:`SramAddr` until SRAM allocation makes them numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.env import Environment
from accel.errors import LoweringError
from accel.hw.isa import MemType
from accel.hw.modules import Module
from accel.lower import ir
from accel.te.expr import Call, Expr, as_expr

COPROC = "vta"
SCOPE_KEY = "coproc_scope"
UOP_SCOPE_KEY = "coproc_uop_scope"

# The modules as the runtime API numbers them in dependency calls and module scopes.
LOAD_STAGE, COMPUTE_STAGE, STORE_STAGE = (m.stage for m in Module)


@dataclass(frozen=True)
class RuntimeCall:
    """One kind of runtime call, declared once: the name programs print (the original runtime
    API's), the method generated host code calls on the command queue (or, inside a micro-op
    kernel, on the kernel recorder), and its fields in argument order -- the parameters of that
    method, which a test keeps in step.

    Passes build calls by name (``LOAD_2D(src_addr=A, ...)``) and read them by name
    (``LOAD_2D.get(call, "x_size")``); the ``Call`` node keeps its arguments in field order, so
    the printed program reads like the classic ones.
    """

    name: str
    method: str
    fields: tuple[str, ...]
    in_kernel: bool = False

    def __call__(self, **values) -> ir.Evaluate:
        """The call statement with ``values`` for every field (integers become constants)."""
        missing = [f for f in self.fields if f not in values]
        unknown = [f for f in values if f not in self.fields]
        if missing or unknown:
            raise LoweringError(
                f"{self.name} takes the fields {', '.join(self.fields) or 'none'}; "
                f"missing {missing}, unknown {unknown}"
            )
        return ir.Evaluate(Call(self.name, tuple(_call_arg(values[f]) for f in self.fields)))

    def matches(self, node) -> bool:
        """Whether ``node`` (a ``Call`` or an ``Evaluate`` of one) is a call of this kind."""
        if isinstance(node, ir.Evaluate):
            node = node.value
        return isinstance(node, Call) and node.name == self.name

    def get(self, call: Call, field: str):
        """The argument of ``call`` for ``field``."""
        return call.args[self.fields.index(field)]

    def named_args(self, call: Call) -> dict[str, object]:
        """Every argument of ``call`` by field name."""
        return dict(zip(self.fields, call.args))


def _call_arg(value):
    return value if isinstance(value, ir.Buffer) else as_expr(value, "int32")


LOAD_2D = RuntimeCall(
    "VTALoadBuffer2D",
    "load_buffer_2d",
    (
        "src_addr",
        "src_elem_offset",
        "x_size",
        "y_size",
        "x_stride",
        "x_pad_before",
        "y_pad_before",
        "x_pad_after",
        "y_pad_after",
        "dst_sram_index",
        "dst_memory_type",
    ),
)
STORE_2D = RuntimeCall(
    "VTAStoreBuffer2D",
    "store_buffer_2d",
    (
        "src_sram_index",
        "src_memory_type",
        "dst_addr",
        "dst_elem_offset",
        "x_size",
        "y_size",
        "x_stride",
    ),
)
DEP_PUSH = RuntimeCall("coproc_dep_push", "dep_push", ("from_stage", "to_stage"))
DEP_POP = RuntimeCall("coproc_dep_pop", "dep_pop", ("from_stage", "to_stage"))
SYNC = RuntimeCall("coproc_sync", "synchronize", ())
LOOP_BEGIN = RuntimeCall(
    "VTAUopLoopBegin",
    "loop_begin",
    ("extent", "dst_factor", "src_factor", "wgt_factor"),
    in_kernel=True,
)
LOOP_END = RuntimeCall("VTAUopLoopEnd", "loop_end", (), in_kernel=True)
UOP_PUSH = RuntimeCall(
    "uop_push",
    "push",
    ("mode", "reset", "dst", "src", "wgt", "opcode", "use_imm", "imm"),
    in_kernel=True,
)
RUNTIME_CALLS: dict[str, RuntimeCall] = {
    c.name: c for c in (LOAD_2D, STORE_2D, DEP_PUSH, DEP_POP, SYNC, LOOP_BEGIN, LOOP_END, UOP_PUSH)
}

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


def runtime_call(s: ir.Stmt) -> RuntimeCall | None:
    """The declared kind of the runtime call an ``Evaluate`` statement makes, else None."""
    name = call_name(s)
    return None if name is None else RUNTIME_CALLS.get(name)


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
