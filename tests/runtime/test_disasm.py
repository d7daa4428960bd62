"""The disassembler prints one instruction a line with kind, type, dependency flags and fields."""

import numpy as np

from accel.env import get_env
from accel.hw.disasm import disassemble
from accel.hw.isa import (
    AluInsn,
    AluOp,
    FinishInsn,
    GemmInsn,
    MemInsn,
    MemType,
    Opcode,
    encode_stream,
)

ENV = get_env()


def test_one_line_per_instruction_with_fields():
    insns = [
        MemInsn(
            opcode=Opcode.LOAD,
            memory_type=MemType.INP,
            sram_base=3,
            dram_base=70,
            y_size=2,
            x_size=8,
            x_stride=9,
            x_pad_0=1,
            push_next_dep=True,
        ),
        GemmInsn(
            uop_bgn=0,
            uop_end=4,
            iter_out=2,
            iter_in=8,
            dst_factor_in=1,
            pop_prev_dep=True,
            push_next_dep=True,
        ),
        AluInsn(
            alu_opcode=AluOp.SHR, use_imm=True, imm=-3, uop_bgn=0, uop_end=1, iter_out=1, iter_in=4
        ),
        MemInsn(
            opcode=Opcode.STORE,
            memory_type=MemType.OUT,
            sram_base=0,
            dram_base=5,
            y_size=1,
            x_size=4,
            x_stride=4,
            pop_prev_dep=True,
        ),
        FinishInsn(),
    ]
    lines = disassemble(encode_stream(insns, ENV), ENV).splitlines()
    assert len(lines) == 5
    assert lines[0].split()[:4] == ["0", "LOAD", "INP", "deps=push_next"]
    assert "sram_base=3" in lines[0] and "x_stride=9" in lines[0] and "x_pad_0=1" in lines[0]
    assert lines[1].split()[1:3] == ["GEMM", "deps=pop_prev,push_next"]
    assert "iter_in=8" in lines[1] and "uop_end=4" in lines[1]
    assert "SHR" in lines[2] and "imm=-3" in lines[2] and "use_imm=1" in lines[2]
    assert lines[3].split()[1:3] == ["STORE", "OUT"]
    assert lines[4].split()[1:] == ["FINISH", "deps=-"]


def test_invalid_word_is_shown_not_fatal():
    words = np.array([[7, 0], [3, 0]], dtype=np.uint64)
    lines = disassemble(words, ENV).splitlines()
    assert "invalid" in lines[0] and "unknown opcode 7" in lines[0]
    assert "FINISH" in lines[1]
