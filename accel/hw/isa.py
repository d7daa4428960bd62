"""Instruction and micro-op encoding, bit-compatible with docs/isa.md §2.

One field table per instruction kind, built from the :class:`~accel.env.Environment`, drives
both the encoder and the decoder. Index fields take their widths from the SRAM depths of the
configuration (``env.LOG_*_BUFF_DEPTH``), the other widths are those of the classic VTA
hardware. Fields are packed upwards from bit 0; a field that would cross bit 64 starts at bit
64 instead. A value that does not fit its field is refused with an :class:`ISAError` that names
the field, the value and the limit -- it is never truncated.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import ClassVar

import numpy as np

from accel.env import Environment, register_check
from accel.errors import ConfigError, ISAError

INSN_BITS = 128
UOP_BITS = 32

# Widths the classic hardware fixes regardless of the SRAM depths (hw_spec.h of VTA 0.0.2).
OPCODE_BITS = 3
MEMORY_TYPE_BITS = 3
SRAM_ADDR_BITS = 16
DRAM_ADDR_BITS = 32
SIZE_BITS = 16
STRIDE_BITS = 16
PAD_BITS = 4
LOOP_ITER_BITS = 14
ALU_OPCODE_BITS = 3
ALU_IMM_BITS = 16


class Opcode(IntEnum):
    LOAD = 0
    STORE = 1
    GEMM = 2
    FINISH = 3
    ALU = 4


class MemType(IntEnum):
    UOP = 0
    WGT = 1
    INP = 2
    ACC = 3
    OUT = 4
    ACC_8BIT = 5


class AluOp(IntEnum):
    MIN = 0
    MAX = 1
    ADD = 2
    SHR = 3
    MUL = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class MemInsn:
    """A LOAD or STORE: a 2-D DMA between DRAM and one SRAM, with zero padding on loads."""

    opcode: Opcode
    memory_type: MemType
    sram_base: int
    dram_base: int
    y_size: int
    x_size: int
    x_stride: int
    y_pad_0: int = 0
    y_pad_1: int = 0
    x_pad_0: int = 0
    x_pad_1: int = 0
    pop_prev_dep: bool = False
    pop_next_dep: bool = False
    push_prev_dep: bool = False
    push_next_dep: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GemmInsn:
    """A GEMM: two loop levels over the micro-ops ``[uop_bgn, uop_end)`` with index factors."""

    opcode: ClassVar[Opcode] = Opcode.GEMM
    reset_reg: bool = False
    uop_bgn: int
    uop_end: int
    iter_out: int
    iter_in: int
    dst_factor_out: int = 0
    dst_factor_in: int = 0
    src_factor_out: int = 0
    src_factor_in: int = 0
    wgt_factor_out: int = 0
    wgt_factor_in: int = 0
    pop_prev_dep: bool = False
    pop_next_dep: bool = False
    push_prev_dep: bool = False
    push_next_dep: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AluInsn:
    """A vector-ALU instruction over accumulator tiles, with an immediate or a tensor operand."""

    opcode: ClassVar[Opcode] = Opcode.ALU
    reset_reg: bool = False
    uop_bgn: int
    uop_end: int
    iter_out: int
    iter_in: int
    dst_factor_out: int = 0
    dst_factor_in: int = 0
    src_factor_out: int = 0
    src_factor_in: int = 0
    alu_opcode: AluOp
    use_imm: bool = False
    imm: int = 0
    pop_prev_dep: bool = False
    pop_next_dep: bool = False
    push_prev_dep: bool = False
    push_next_dep: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishInsn:
    """The end of a stream. It may carry dependency flags like any compute instruction."""

    opcode: ClassVar[Opcode] = Opcode.FINISH
    pop_prev_dep: bool = False
    pop_next_dep: bool = False
    push_prev_dep: bool = False
    push_next_dep: bool = False


@dataclass(frozen=True, slots=True)
class Uop:
    """A micro-op: accumulator, input (or, for ALU, second accumulator) and weight indices."""

    dst_idx: int
    src_idx: int
    wgt_idx: int = 0


Insn = MemInsn | GemmInsn | AluInsn | FinishInsn


@dataclass(frozen=True, slots=True)
class Field:
    """One bit field: its name, lowest bit, width and whether it holds a signed value."""

    name: str
    lo: int
    width: int
    signed: bool = False

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


def _pack(spec: Sequence[tuple[str, int] | tuple[str, int, bool]], total: int, what: str):
    """Place fields upwards from bit 0; a field that would cross a 64-bit word starts the next."""
    out, pos = [], 0
    for name, width, *signed in spec:
        if pos // 64 != (pos + width - 1) // 64:
            pos = (pos // 64 + 1) * 64
        out.append(Field(name, pos, width, bool(signed and signed[0])))
        pos += width
    if pos > total:
        raise ISAError(f"{what} fields need {pos} bits but an instruction word has {total}")
    return tuple(out)


_HEADER = (
    ("opcode", OPCODE_BITS),
    ("pop_prev_dep", 1),
    ("pop_next_dep", 1),
    ("push_prev_dep", 1),
    ("push_next_dep", 1),
)


@dataclass(frozen=True)
class FieldTables:
    """The field tables of every instruction kind, for one configuration."""

    mem: tuple[Field, ...]
    gemm: tuple[Field, ...]
    alu: tuple[Field, ...]
    finish: tuple[Field, ...]

    def for_opcode(self, opcode: int) -> tuple[Field, ...]:
        return {
            Opcode.LOAD: self.mem,
            Opcode.STORE: self.mem,
            Opcode.GEMM: self.gemm,
            Opcode.ALU: self.alu,
            Opcode.FINISH: self.finish,
        }[opcode]


@functools.cache
def field_tables(env: Environment) -> FieldTables:
    """Build (once per configuration) the field tables the encoder and the decoder share."""
    mem = _pack(
        _HEADER
        + (
            ("memory_type", MEMORY_TYPE_BITS),
            ("sram_base", SRAM_ADDR_BITS),
            ("dram_base", DRAM_ADDR_BITS),
            ("y_size", SIZE_BITS),
            ("x_size", SIZE_BITS),
            ("x_stride", STRIDE_BITS),
            ("y_pad_0", PAD_BITS),
            ("y_pad_1", PAD_BITS),
            ("x_pad_0", PAD_BITS),
            ("x_pad_1", PAD_BITS),
        ),
        INSN_BITS,
        "LOAD/STORE",
    )

    # GEMM and ALU share their loop fields except the source factor: a GEMM source is an
    # input-SRAM index, an ALU source an accumulator index (hw_spec.h of the original).
    def loops(src_bits: int):
        return _HEADER + (
            ("reset_reg", 1),
            ("uop_bgn", env.LOG_UOP_BUFF_DEPTH),
            ("uop_end", env.LOG_UOP_BUFF_DEPTH + 1),
            ("iter_out", LOOP_ITER_BITS),
            ("iter_in", LOOP_ITER_BITS),
            ("dst_factor_out", env.LOG_ACC_BUFF_DEPTH),
            ("dst_factor_in", env.LOG_ACC_BUFF_DEPTH),
            ("src_factor_out", src_bits),
            ("src_factor_in", src_bits),
        )

    gemm = _pack(
        loops(env.LOG_INP_BUFF_DEPTH)
        + (("wgt_factor_out", env.LOG_WGT_BUFF_DEPTH), ("wgt_factor_in", env.LOG_WGT_BUFF_DEPTH)),
        INSN_BITS,
        "GEMM",
    )
    alu = _pack(
        loops(env.LOG_ACC_BUFF_DEPTH)
        + (("alu_opcode", ALU_OPCODE_BITS), ("use_imm", 1), ("imm", ALU_IMM_BITS, True)),
        INSN_BITS,
        "ALU",
    )
    finish = _pack(_HEADER, INSN_BITS, "FINISH")
    return FieldTables(mem, gemm, alu, finish)


@functools.cache
def uop_fields(env: Environment) -> tuple[Field, ...]:
    """The micro-op's fields. Its three SRAM indices must fit one 32-bit word; configurations
    with deeper SRAMs (e.g. LOG_BLOCK 3 with the default buffer sizes) cannot encode micro-ops,
    like the classic hardware, and get an ISAError here rather than a wrong encoding."""
    # The source index serves GEMM (an input index) and ALU (an accumulator index).
    return _pack(
        (
            ("dst_idx", env.LOG_ACC_BUFF_DEPTH),
            ("src_idx", max(env.LOG_ACC_BUFF_DEPTH, env.LOG_INP_BUFF_DEPTH)),
            ("wgt_idx", env.LOG_WGT_BUFF_DEPTH),
        ),
        UOP_BITS,
        f"micro-op (configuration {env.name})",
    )


def _kind(insn: Insn | Uop) -> str:
    if isinstance(insn, MemInsn):
        return insn.opcode.name if isinstance(insn.opcode, Opcode) else "LOAD/STORE"
    return type(insn).__name__.removesuffix("Insn").upper()


def _encode_fields(obj: Insn | Uop, table: tuple[Field, ...]) -> int:
    word = 0
    for f in table:
        value = getattr(obj, f.name)
        if not isinstance(value, (int, np.integer)):  # bool is an int: flags encode as 0 / 1
            raise ISAError(f"{_kind(obj)} field {f.name} = {value!r} is not an integer")
        value = int(value)
        if not f.min <= value <= f.max:
            limit = f"range [{f.min}, {f.max}]" if f.signed else f"max {f.max}"
            raise ISAError(
                f"{_kind(obj)} field {f.name} = {value} does not fit {f.width} bits ({limit})"
            )
        word |= (value & ((1 << f.width) - 1)) << f.lo
    return word


def _check_enums(insn: Insn) -> None:
    if isinstance(insn, MemInsn):
        if insn.opcode not in (Opcode.LOAD, Opcode.STORE):
            raise ISAError(f"a memory instruction has opcode LOAD or STORE, not {insn.opcode!r}")
        if insn.memory_type not in MemType._value2member_map_:
            raise ISAError(f"{_kind(insn)} field memory_type = {insn.memory_type!r} is unknown")
    elif isinstance(insn, AluInsn) and insn.alu_opcode not in AluOp._value2member_map_:
        raise ISAError(f"ALU field alu_opcode = {insn.alu_opcode!r} is unknown")


def encode_int(insn: Insn, env: Environment) -> int:
    """The instruction as one 128-bit integer (bit 0 = lowest bit of the first word)."""
    try:
        return _encode_cached(insn, env)
    except TypeError:  # a field holds something unhashable: encode it to report the field
        return _encode_uncached(insn, env)


def _encode_uncached(insn: Insn, env: Environment) -> int:
    _check_enums(insn)
    return _encode_fields(insn, field_tables(env).for_opcode(insn.opcode))


# A program run again emits the same instructions: remember their encodings.
_encode_cached = functools.lru_cache(maxsize=1 << 16)(_encode_uncached)


def encode(insn: Insn, env: Environment) -> bytes:
    """The 16 bytes of one instruction: two little-endian 64-bit words, low word first."""
    return encode_int(insn, env).to_bytes(16, "little")


def encode_stream(insns: Iterable[Insn], env: Environment) -> np.ndarray:
    """Encode instructions into a ``(n, 2)`` uint64 array (low word first in each row)."""
    mask = (1 << 64) - 1
    rows = [(v & mask, v >> 64) for v in (encode_int(i, env) for i in insns)]
    return np.array(rows, dtype=np.uint64).reshape(-1, 2)


def _field_value(word: int, f: Field) -> int:
    value = (word >> f.lo) & ((1 << f.width) - 1)
    if f.signed and value >> (f.width - 1):
        value -= 1 << f.width
    return value


_BOOL_FIELDS = frozenset(
    {"pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep", "reset_reg", "use_imm"}
)
_CLASSES = {
    Opcode.LOAD: MemInsn,
    Opcode.STORE: MemInsn,
    Opcode.GEMM: GemmInsn,
    Opcode.ALU: AluInsn,
    Opcode.FINISH: FinishInsn,
}


def decode_int(word: int, env: Environment) -> Insn:
    """Decode one 128-bit instruction integer; raises ISAError for an unknown enum value."""
    opcode = word & ((1 << OPCODE_BITS) - 1)
    if opcode not in Opcode._value2member_map_:
        raise ISAError(f"unknown opcode {opcode} (known: {', '.join(o.name for o in Opcode)})")
    opcode = Opcode(opcode)
    values = {}
    for f in field_tables(env).for_opcode(opcode):
        value = _field_value(word, f)
        values[f.name] = bool(value) if f.name in _BOOL_FIELDS else value
    cls = _CLASSES[opcode]
    if cls is MemInsn:
        values["opcode"] = opcode
        mtype = values["memory_type"]
        if mtype not in MemType._value2member_map_:
            raise ISAError(f"{opcode.name} has unknown memory type {mtype}")
        values["memory_type"] = MemType(mtype)
    else:
        del values["opcode"]
    if cls is AluInsn:
        if values["alu_opcode"] not in AluOp._value2member_map_:
            raise ISAError(f"ALU has unknown ALU opcode {values['alu_opcode']}")
        values["alu_opcode"] = AluOp(values["alu_opcode"])
    return cls(**values)


def decode(words: bytes | Sequence[int] | np.ndarray, env: Environment) -> Insn:
    """Decode one instruction from its 16 bytes or its pair of 64-bit words (low first)."""
    if isinstance(words, (bytes, bytearray, memoryview)):
        if len(words) != 16:
            raise ISAError(f"an instruction is 16 bytes, got {len(words)}")
        return decode_int(int.from_bytes(words, "little"), env)
    lo, hi = (int(w) for w in words)
    return decode_int(lo | (hi << 64), env)


def decode_stream(words: np.ndarray | bytes, env: Environment) -> list[Insn]:
    """Decode a stream given as ``(n, 2)`` uint64 words or raw little-endian bytes.

    Raises ISAError naming the instruction index of the first malformed instruction.
    """
    words = as_words(words)
    out = []
    for index, (lo, hi) in enumerate(words.tolist()):
        try:
            out.append(decode_int(lo | (hi << 64), env))
        except ISAError as exc:
            raise ISAError(f"instruction {index}: {exc}") from None
    return out


def as_words(data: np.ndarray | bytes) -> np.ndarray:
    """View raw bytes (or accept an array) as an ``(n, 2)`` array of little-endian uint64."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) % 16:
            raise ISAError(f"an instruction stream is a multiple of 16 bytes, got {len(data)}")
        return np.frombuffer(data, dtype="<u8").reshape(-1, 2)
    array = np.asarray(data)
    if array.dtype == np.uint8:
        return as_words(array.tobytes())
    return array.astype(np.uint64, copy=False).reshape(-1, 2)


def encode_uop(uop: Uop, env: Environment) -> int:
    """The 32-bit word of one micro-op."""
    return _encode_fields(uop, uop_fields(env))


def encode_uops(uops: Iterable[Uop], env: Environment) -> np.ndarray:
    """Encode micro-ops into a uint32 array."""
    return np.array([encode_uop(u, env) for u in uops], dtype=np.uint32)


def decode_uop(word: int, env: Environment) -> Uop:
    """Decode one 32-bit micro-op word."""
    return Uop(*(_field_value(int(word), f) for f in uop_fields(env)))


def uop_columns(words: np.ndarray, env: Environment) -> tuple[np.ndarray, ...]:
    """Vectorized decoding: the (dst, src, wgt) index arrays (int64) of micro-op words."""
    words = np.asarray(words, dtype=np.uint32).astype(np.int64)
    return tuple((words >> f.lo) & ((1 << f.width) - 1) for f in uop_fields(env))


def insn_fields(insn: Insn) -> dict[str, int]:
    """The instruction's fields as a plain dict (enum values as ints), e.g. for printing."""
    return {f.name: getattr(insn, f.name) for f in fields(insn)}


def _check_encodable(env: Environment, source: str) -> None:
    """Refuse, when it is loaded, a configuration whose instructions or micro-ops cannot be
    encoded (fields wider than their words)."""
    try:
        field_tables(env)
        uop_fields(env)
    except ISAError as exc:
        raise ConfigError(
            f"{source}: {exc}; smaller SRAMs (LOG_*_BUFF_SIZE) or a larger block narrow the "
            "index fields"
        ) from None


register_check(_check_encodable)
