"""Instruction and micro-op encoding: docs/isa.md example words, round trips, refused values."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel.env import get_env, using_env
from accel.errors import ConfigError, ISAError
from accel.hw.isa import (
    AluInsn,
    AluOp,
    FinishInsn,
    GemmInsn,
    MemInsn,
    MemType,
    Opcode,
    Uop,
    decode,
    decode_stream,
    decode_uop,
    encode,
    encode_stream,
    encode_uop,
    encode_uops,
    field_tables,
    uop_fields,
)

ENV = get_env()


def hex_pair(insn, env=ENV):
    data = encode(insn, env)
    lo, hi = int.from_bytes(data[:8], "little"), int.from_bytes(data[8:], "little")
    return f"{hi:016x} {lo:016x}"


def test_isa_md_example_words():
    assert hex_pair(FinishInsn()) == "0000000000000000 0000000000000003"
    gemm = GemmInsn(
        reset_reg=True,
        uop_bgn=0,
        uop_end=1,
        iter_out=16,
        iter_in=1,
        dst_factor_out=1,
        push_prev_dep=True,
    )
    assert hex_pair(gemm) == "0000000000000001 00020080002000a2"
    add = AluInsn(
        alu_opcode=AluOp.ADD,
        uop_bgn=0,
        uop_end=1,
        iter_out=1,
        iter_in=64,
        dst_factor_in=1,
        src_factor_in=1,
        push_next_dep=True,
    )
    assert hex_pair(add) == "0000200200000800 0080000800200044"
    shr = AluInsn(
        alu_opcode=AluOp.SHR,
        use_imm=True,
        imm=8,
        uop_bgn=2,
        uop_end=3,
        iter_out=1,
        iter_in=16,
        dst_factor_in=1,
        src_factor_in=1,
    )
    assert hex_pair(shr) == "0008b00200000800 0020000800600204"


def test_default_layout_matches_isa_md():
    tables = field_tables(ENV)
    where = {f.name: (f.lo, f.lo + f.width - 1) for f in tables.mem}
    assert where["dram_base"] == (26, 57) and where["y_size"] == (64, 79)
    assert where["x_pad_1"] == (124, 127)
    gemm = {f.name: (f.lo, f.lo + f.width - 1) for f in tables.gemm}
    assert gemm["iter_in"] == (49, 62) and gemm["dst_factor_out"] == (64, 74)
    assert gemm["wgt_factor_in"] == (118, 127)
    alu = {f.name: (f.lo, f.lo + f.width - 1) for f in tables.alu}
    assert alu["alu_opcode"] == (108, 110) and alu["imm"] == (112, 127)
    uop = {f.name: (f.lo, f.lo + f.width - 1) for f in uop_fields(ENV)}
    assert uop == {"dst_idx": (0, 10), "src_idx": (11, 21), "wgt_idx": (22, 31)}


def _fields_of(cls, env):
    kind = {MemInsn: "mem", GemmInsn: "gemm", AluInsn: "alu", FinishInsn: "finish"}[cls]
    return [f for f in getattr(field_tables(env), kind) if f.name != "opcode"]


def _instance(cls, env, pick):
    """An instruction of ``cls`` whose every field is chosen by ``pick(field)``."""
    values = {f.name: pick(f) for f in _fields_of(cls, env)}
    if cls is MemInsn:
        values["opcode"] = Opcode.LOAD
        values["memory_type"] = MemType(min(values["memory_type"], MemType.ACC_8BIT))
    if cls is AluInsn:
        values["alu_opcode"] = AluOp(min(values["alu_opcode"], AluOp.MUL))
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@pytest.mark.parametrize("cls", [MemInsn, GemmInsn, AluInsn, FinishInsn])
@pytest.mark.parametrize("extreme", ["min", "max"])
def test_every_field_at_its_extremes_round_trips(cls, extreme):
    insn = _instance(cls, ENV, lambda f: getattr(f, extreme))
    assert decode(encode(insn, ENV), ENV) == insn


@st.composite
def instructions(draw, env=ENV):
    cls = draw(st.sampled_from([MemInsn, GemmInsn, AluInsn, FinishInsn]))
    values = {}
    for f in _fields_of(cls, env):
        values[f.name] = draw(
            st.sampled_from([f.min, f.max]) | st.integers(min_value=f.min, max_value=f.max)
        )
    return _instance(cls, env, lambda f: values[f.name])


@settings(max_examples=50, deadline=None)
@given(instructions())
def test_random_instructions_round_trip(insn):
    assert decode(encode(insn, ENV), ENV) == insn


@settings(max_examples=50, deadline=None)
@given(st.lists(instructions(), min_size=1, max_size=8))
def test_stream_round_trip(insns):
    words = encode_stream(insns, ENV)
    assert words.shape == (len(insns), 2) and words.dtype == np.uint64
    assert decode_stream(words, ENV) == insns
    assert decode_stream(words.tobytes(), ENV) == insns


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 2047),
    st.integers(0, 2047),
    st.integers(0, 1023),
)
def test_uop_round_trip(dst, src, wgt):
    uop = Uop(dst, src, wgt)
    word = encode_uop(uop, ENV)
    assert word == dst | (src << 11) | (wgt << 22)
    assert decode_uop(word, ENV) == uop


def test_uop_extremes_and_array():
    uops = [Uop(0, 0, 0), Uop(2047, 2047, 1023)]
    words = encode_uops(uops, ENV)
    assert words.dtype == np.uint32 and words.tolist() == [0, 0xFFFFFFFF]
    assert [decode_uop(w, ENV) for w in words] == uops


def test_value_too_wide_is_refused_with_field_value_and_limit():
    with pytest.raises(
        ISAError, match=r"GEMM field iter_out = 20000 does not fit 14 bits \(max 16383\)"
    ):
        encode(GemmInsn(uop_bgn=0, uop_end=1, iter_out=20000, iter_in=1), ENV)
    with pytest.raises(ISAError, match="ALU field imm = 40000 does not fit 16 bits"):
        encode(
            AluInsn(
                alu_opcode=AluOp.ADD,
                uop_bgn=0,
                uop_end=1,
                iter_out=1,
                iter_in=1,
                use_imm=True,
                imm=40000,
            ),
            ENV,
        )
    with pytest.raises(ISAError, match="ALU field imm = -32769"):
        encode(
            AluInsn(
                alu_opcode=AluOp.ADD,
                uop_bgn=0,
                uop_end=1,
                iter_out=1,
                iter_in=1,
                use_imm=True,
                imm=-32769,
            ),
            ENV,
        )
    with pytest.raises(ISAError, match="LOAD field x_pad_0 = 16 does not fit 4 bits"):
        encode(
            MemInsn(
                opcode=Opcode.LOAD,
                memory_type=MemType.INP,
                sram_base=0,
                dram_base=1,
                y_size=1,
                x_size=1,
                x_stride=1,
                x_pad_0=16,
            ),
            ENV,
        )
    with pytest.raises(ISAError, match="field dram_base = -1"):
        encode(
            MemInsn(
                opcode=Opcode.STORE,
                memory_type=MemType.OUT,
                sram_base=0,
                dram_base=-1,
                y_size=1,
                x_size=1,
                x_stride=1,
            ),
            ENV,
        )
    with pytest.raises(ISAError, match="dst_idx = 2048 does not fit 11 bits"):
        encode_uop(Uop(2048, 0, 0), ENV)


def test_unknown_opcode_memory_type_and_alu_opcode_are_refused_on_decode():
    with pytest.raises(ISAError, match="unknown opcode 5"):
        decode((5, 0), ENV)
    with pytest.raises(ISAError, match="instruction 1: unknown opcode 7"):
        decode_stream(np.array([[3, 0], [7, 0]], dtype=np.uint64), ENV)
    with pytest.raises(ISAError, match="unknown memory type 6"):
        decode((Opcode.LOAD | (6 << 7), 0), ENV)
    with pytest.raises(ISAError, match="unknown ALU opcode 5"):
        decode((Opcode.ALU, 5 << (108 - 64)), ENV)


def test_widths_follow_the_configuration():
    with using_env({"LOG_ACC_BUFF_SIZE": 16, "LOG_INP_BUFF_SIZE": 14}) as env:
        tables = field_tables(env)
        widths = {f.name: f.width for f in tables.gemm}
        assert widths["dst_factor_out"] == 10 and widths["src_factor_in"] == 10
        assert {f.name: f.width for f in uop_fields(env)} == {
            "dst_idx": 10,
            "src_idx": 10,
            "wgt_idx": 10,
        }
        insn = GemmInsn(
            uop_bgn=1, uop_end=2, iter_out=3, iter_in=4, dst_factor_out=1023, wgt_factor_in=1023
        )
        assert decode(encode(insn, env), env) == insn
        with pytest.raises(ISAError, match="dst_factor_out = 1024 does not fit 10 bits"):
            encode(dataclasses.replace(insn, dst_factor_out=1024), env)


def test_configuration_too_deep_for_the_instruction_word_is_refused_when_loaded():
    # Refused when the configuration is loaded, with the encoder's reason, not at build time.
    with pytest.raises(ConfigError, match=r"GEMM fields need 140 bits .*LOG_\*_BUFF_SIZE"):
        with using_env({"LOG_BLOCK": 3}):
            pass
    deep = {
        "LOG_BLOCK": 3,
        "LOG_INP_BUFF_SIZE": 13,
        "LOG_WGT_BUFF_SIZE": 17,
        "LOG_ACC_BUFF_SIZE": 16,
    }
    with pytest.raises(ConfigError, match="micro-op .* fields need 33 bits"):
        with using_env(deep):
            pass


def test_source_fields_follow_the_buffer_they_index_when_depths_differ():
    # Accumulator 1024 tiles (10 bits), input 2048 (11 bits): the ALU's source factor indexes
    # accumulators, GEMM's inputs; a micro-op source serves both, so it takes the wider.
    from accel.env import Environment
    from accel.hw.isa import field_tables, uop_fields

    env = Environment.from_dict(dict(get_env().to_dict(), LOG_ACC_BUFF_SIZE=16))
    assert (env.LOG_ACC_BUFF_DEPTH, env.LOG_INP_BUFF_DEPTH) == (10, 11)
    tables = field_tables(env)
    width = {kind: {f.name: f.width for f in getattr(tables, kind)} for kind in ("alu", "gemm")}
    assert width["alu"]["src_factor_out"] == width["alu"]["src_factor_in"] == 10
    assert width["gemm"]["src_factor_out"] == width["gemm"]["src_factor_in"] == 11
    assert {f.name: f.width for f in uop_fields(env)}["src_idx"] == 11
    gemm = GemmInsn(uop_bgn=0, uop_end=1, iter_out=1, iter_in=2, src_factor_in=1500)
    assert decode(encode(gemm, env), env) == gemm  # 1500 needs 11 bits
    alu = AluInsn(
        alu_opcode=AluOp.ADD, uop_bgn=0, uop_end=1, iter_out=1, iter_in=2, src_factor_in=1500
    )
    with pytest.raises(ISAError, match="src_factor_in = 1500 does not fit 10 bits"):
        encode(alu, env)
