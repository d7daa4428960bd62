"""A disassembler: one instruction a line, for reading streams while debugging."""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.errors import ISAError
from accel.hw.isa import AluInsn, Insn, MemInsn, as_words, decode_int, insn_fields

_DEP_FLAGS = ("pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep")
_NOT_PRINTED_AS_FIELDS = frozenset({"opcode", "memory_type", "alu_opcode", *_DEP_FLAGS})


def format_insn(insn: Insn) -> str:
    """One instruction as ``KIND [TYPE] deps=... field=value ...``."""
    if isinstance(insn, MemInsn):
        kind = f"{insn.opcode.name:<6} {insn.memory_type.name:<8}"
    elif isinstance(insn, AluInsn):
        kind = f"{'ALU':<6} {insn.alu_opcode.name:<8}"
    else:
        kind = f"{insn.opcode.name:<6} {'':<8}"
    deps = ",".join(flag.removesuffix("_dep") for flag in _DEP_FLAGS if getattr(insn, flag))
    values = insn_fields(insn)
    rest = " ".join(
        f"{name}={int(value)}"
        for name, value in values.items()
        if name not in _NOT_PRINTED_AS_FIELDS
    )
    return f"{kind} deps={deps or '-':<36} {rest}".rstrip()


def disassemble(words: np.ndarray | bytes, env: Environment) -> str:
    """The stream (``(n, 2)`` uint64 words or raw bytes) one numbered instruction a line.

    A word that does not decode is printed in hex with the reason instead of stopping the
    listing, since a disassembler is most useful on streams that are wrong.
    """
    lines = []
    for index, (lo, hi) in enumerate(as_words(words).tolist()):
        try:
            text = format_insn(decode_int(lo | (hi << 64), env))
        except ISAError as exc:
            text = f"<invalid {hi:016x} {lo:016x}: {exc}>"
        lines.append(f"{index:6d}  {text}")
    return "\n".join(lines)
