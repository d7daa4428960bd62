"""ALU against an in-order reference over Python integers: every opcode with an immediate and
with a tensor operand, shifts both ways, int32 wrap, ReLU, requantization, and iterations that
read what earlier iterations wrote."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_streams import Bench, alu, finish, load, rand_int32, store

from accel.hw.isa import AluInsn, AluOp, MemType, Uop

N_ACC = 96


def wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def lane_op(op: AluOp, a: int, b: int) -> int:
    if op == AluOp.MIN:
        return min(a, b)
    if op == AluOp.MAX:
        return max(a, b)
    if op == AluOp.ADD:
        return wrap32(a + b)
    if op == AluOp.MUL:
        return wrap32(a * b)
    # Python shifts are exact (floor, times 2^k); a left shift by 64 or more wraps to 0 anyway.
    return wrap32(a >> b if b >= 0 else a << min(-b, 64))


def reference_alu(acc, uops, insn):
    acc = acc.astype(np.int64).copy()
    for i in range(insn.iter_out):
        for j in range(insn.iter_in):
            for u in uops[insn.uop_bgn : insn.uop_end]:
                d = u.dst_idx + i * insn.dst_factor_out + j * insn.dst_factor_in
                s = u.src_idx + i * insn.src_factor_out + j * insn.src_factor_in
                flat_d = acc[d].reshape(-1)
                flat_s = acc[s].reshape(-1).copy()
                for lane in range(flat_d.size):
                    b = insn.imm if insn.use_imm else int(flat_s[lane])
                    flat_d[lane] = lane_op(insn.alu_opcode, int(flat_d[lane]), b)
    return acc.astype(np.int32)


def run_alu(bench, acc, uops, insns):
    src = bench.put(acc, MemType.ACC)
    report = bench.run(
        [load(MemType.ACC, 0, src, 1, N_ACC, N_ACC), bench.uops(uops), *insns, finish()]
    )
    expected = acc
    for insn in insns:
        if isinstance(insn, AluInsn):
            expected = reference_alu(expected, uops, insn)
    assert np.array_equal(bench.sim.srams.acc[:N_ACC], expected)
    return report


def interesting_acc(rng, env):
    acc = rand_int32(rng, (N_ACC, env.BATCH, env.BLOCK_OUT))
    acc[:8] = rand_int32(rng, (8, env.BATCH, env.BLOCK_OUT), bound=40)  # small shift amounts
    acc[8, 0, :6] = [2**31 - 1, -(2**31), -1, 0, 1, 31]
    return acc


@pytest.mark.parametrize("op", list(AluOp))
@pytest.mark.parametrize("imm", [None, 0, 5, -3, 31, -32, 32767, -32768])
def test_every_opcode_with_immediate_and_tensor(op, imm):
    bench = Bench()
    acc = interesting_acc(np.random.default_rng(int(op) * 100 + (imm or 0) % 97), bench.env)
    if imm is None:  # tensor operand: destinations 40.., sources 0.. (including small shifts)
        insn = alu(
            op, 0, 2, 2, 10, dst_factor_out=20, dst_factor_in=2, src_factor_out=10, src_factor_in=1
        )
    else:
        insn = alu(op, 0, 2, 2, 10, dst_factor_out=20, dst_factor_in=2, use_imm=True, imm=imm)
    report = run_alu(bench, acc, [Uop(40, 0), Uop(41, 8)], [insn])
    assert report.stats["alu_counter"] == 40


def test_relu_then_store_is_clip_to_int8():
    bench = Bench()
    env = bench.env
    acc = rand_int32(np.random.default_rng(10), (N_ACC, env.BATCH, env.BLOCK_OUT), bound=1000)
    out = bench.space(N_ACC * 16, MemType.OUT)
    uops = [Uop(0, 0)]
    run_alu(
        bench,
        acc,
        uops,
        [
            alu(AluOp.MAX, 0, 1, 1, N_ACC, dst_factor_in=1, src_factor_in=1, use_imm=True, imm=0),
            alu(AluOp.MIN, 0, 1, 1, N_ACC, dst_factor_in=1, src_factor_in=1, use_imm=True, imm=127),
            store(0, out, 1, N_ACC, N_ACC),
        ],
    )
    image = bench.get(out, MemType.OUT, acc.shape, np.int8)
    assert np.array_equal(image, np.clip(acc, 0, 127).astype(np.int8))


def test_shift_and_scale_requantization():
    bench = Bench()
    env = bench.env
    acc = rand_int32(np.random.default_rng(11), (N_ACC, env.BATCH, env.BLOCK_OUT))
    step = {"dst_factor_in": 1, "src_factor_in": 1, "use_imm": True}
    run_alu(
        bench,
        acc,
        [Uop(0, 0)],
        [
            alu(AluOp.SHR, 0, 1, 1, N_ACC, imm=20, **step),
            alu(AluOp.MUL, 0, 1, 1, N_ACC, imm=-77, **step),
            alu(AluOp.ADD, 0, 1, 1, N_ACC, imm=1000, **step),
            alu(AluOp.SHR, 0, 1, 1, N_ACC, imm=-2, **step),
            alu(AluOp.MAX, 0, 1, 1, N_ACC, imm=-128, **step),
            alu(AluOp.MIN, 0, 1, 1, N_ACC, imm=127, **step),
        ],
    )


def test_iterations_read_results_of_earlier_iterations():
    """acc[k] += acc[k - 1] for k = 1..63 is a running sum only when executed in order."""
    bench = Bench()
    env = bench.env
    acc = rand_int32(np.random.default_rng(12), (N_ACC, env.BATCH, env.BLOCK_OUT), bound=10**6)
    run_alu(
        bench, acc, [Uop(1, 0)], [alu(AluOp.ADD, 0, 1, 1, 63, dst_factor_in=1, src_factor_in=1)]
    )
    running = np.cumsum(acc[:64].astype(np.int64), axis=0)
    assert np.array_equal(bench.sim.srams.acc[:64], running.astype(np.int32))


def test_repeated_destination_with_immediate_applies_in_order():
    bench = Bench()
    acc = interesting_acc(np.random.default_rng(13), bench.env)
    run_alu(
        bench,
        acc,
        [Uop(3, 0), Uop(4, 0), Uop(3, 0)],
        [
            alu(AluOp.MUL, 0, 3, 3, 2, dst_factor_in=1, use_imm=True, imm=3),
            alu(AluOp.ADD, 0, 3, 2, 2, dst_factor_out=0, src_factor_in=1),
        ],
    )


@st.composite
def alu_case(draw):
    n_uops = draw(st.integers(1, 3))
    uops = [Uop(draw(st.integers(0, 40)), draw(st.integers(0, 40))) for _ in range(n_uops)]
    f = st.integers(0, 5)
    insn = alu(
        draw(st.sampled_from(list(AluOp))),
        0,
        n_uops,
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
        dst_factor_out=draw(f),
        dst_factor_in=draw(f),
        src_factor_out=draw(f),
        src_factor_in=draw(f),
        use_imm=draw(st.booleans()),
        imm=draw(st.integers(-40, 40)),
    )
    return uops, insn, draw(st.integers(0, 2**16))


@settings(max_examples=50, deadline=None)
@given(alu_case())
def test_random_overlapping_alu_matches_in_order_reference(case):
    uops, insn, seed = case
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(seed)
    bound = 40 if insn.alu_opcode == AluOp.SHR else 1 << 31
    run_alu(bench, rand_int32(rng, (N_ACC, env.BATCH, env.BLOCK_OUT), bound=bound), uops, [insn])
