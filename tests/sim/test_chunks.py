"""Huge instructions run in pieces of bounded size, in execution order, with the same result.

The chunk size is lowered so that small instructions are cut into many pieces; the references
are the instruction semantics written literally in the GEMM and ALU tests."""

import numpy as np
import pytest
from sim_streams import Bench, alu, finish, gemm, load, rand_int8, rand_int32
from test_alu import reference_alu
from test_gemm import reference_gemm

from accel.hw.isa import AluOp, MemType, Uop
from accel.sim import loops, plan


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(loops, "CHUNK_ITERATIONS", 7)
    monkeypatch.setattr(plan, "CHUNK_ITERATIONS", 7)


def test_chunks_cover_the_loop_nest_in_execution_order(small_chunks):
    for iter_out, iter_in, n_uops in [(5, 3, 1), (2, 9, 1), (3, 4, 2), (1, 20, 3), (4, 4, 8)]:
        seen = []
        for i0, ic, j0, jc in loops.chunks(iter_out, iter_in, n_uops):
            assert ic * jc * n_uops <= max(7, n_uops)
            seen += [(i, j) for i in range(i0, i0 + ic) for j in range(j0, j0 + jc)]
        assert seen == [(i, j) for i in range(iter_out) for j in range(iter_in)]


@pytest.mark.parametrize("use_plans", [False, True])
def test_a_chunked_gemm_equals_the_reference(small_chunks, use_plans):
    bench = Bench()
    bench.sim.use_plans = use_plans
    env = bench.env
    rng = np.random.default_rng(0)
    inp = rand_int8(rng, (32, env.BATCH, env.BLOCK_IN))
    wgt = rand_int8(rng, (16, env.BLOCK_OUT, env.BLOCK_IN))
    acc = rand_int32(rng, (64, env.BATCH, env.BLOCK_OUT), bound=1 << 20)
    uops = [Uop(0, 0, 0), Uop(1, 3, 2)]
    insn = gemm(
        0,
        2,
        5,
        3,
        dst_factor_out=6,
        dst_factor_in=2,
        src_factor_out=4,
        src_factor_in=1,
        wgt_factor_out=1,
        wgt_factor_in=3,
    )
    bench.run(
        [
            load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, 32, 32),
            load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, 16, 16),
            load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, 64, 64),
            bench.uops(uops),
            insn,
            finish(),
        ]
    )
    expected = reference_gemm(acc, inp, wgt, uops, insn)
    np.testing.assert_array_equal(bench.sim.srams.acc[:64], expected)


@pytest.mark.parametrize("use_plans", [False, True])
def test_a_chunked_alu_keeps_its_order(small_chunks, use_plans):
    # dst_factor 0 on the inner loop: every iteration reads what the previous one wrote.
    bench = Bench()
    bench.sim.use_plans = use_plans
    env = bench.env
    rng = np.random.default_rng(1)
    acc = rand_int32(rng, (16, env.BATCH, env.BLOCK_OUT), bound=1 << 10)
    uops = [Uop(0, 1, 0), Uop(2, 0, 0)]
    insn = alu(
        AluOp.ADD, 0, 2, 3, 5, dst_factor_out=4, dst_factor_in=0, src_factor_out=1, src_factor_in=2
    )
    bench.run(
        [
            load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, 16, 16),
            bench.uops(uops),
            insn,
            finish(),
        ]
    )
    expected = reference_alu(acc, uops, insn)
    np.testing.assert_array_equal(bench.sim.srams.acc[:16], expected)


@pytest.mark.parametrize("use_plans", [False, True])
def test_long_reductions_past_float32_stay_exact(use_plans):
    # 71 products per destination, each row of 16 lanes summing to an odd 256,159: the
    # total 18,187,289 lies past 2^24, where float32 cannot hold odd integers. The simulator
    # computes it in exact float32 pieces summed as int32.
    bench = Bench()
    bench.sim.use_plans = use_plans
    env = bench.env
    inp = np.full((64, env.BATCH, env.BLOCK_IN), 126, np.int8)
    inp[:, :, 0] = 127
    wgt = np.full((1, env.BLOCK_OUT, env.BLOCK_IN), 127, np.int8)
    acc = np.zeros((80, env.BATCH, env.BLOCK_OUT), np.int32)
    uops = [Uop(d, d % 64, 0) for d in range(80)]
    insn = gemm(0, 80, 1, 71)  # the inner loop repeats every micro-op 71 times (factors 0)
    bench.run(
        [
            load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, 64, 64),
            load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, 1, 1),
            load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, 80, 80),
            bench.uops(uops),
            insn,
            finish(),
        ]
    )
    assert (bench.sim.srams.acc[:80] == 71 * (127 * 127 + 15 * 126 * 127)).all()
    assert 71 * (127 * 127 + 15 * 126 * 127) == 18_187_289 > 2**24


def test_a_huge_instruction_really_runs_in_pieces(small_chunks, monkeypatch):
    from accel.sim.gemm import GemmUnit

    pieces = []
    original = GemmUnit._execute
    monkeypatch.setattr(
        GemmUnit,
        "_execute",
        lambda self, insn, w, start: (pieces.append(start), original(self, insn, w, start)),
    )
    bench = Bench()
    bench.sim.use_plans = False
    bench.run([bench.uops([Uop(0, 0, 0)]), gemm(0, 1, 5, 3), finish()])
    assert len(pieces) > 1 and pieces[0] == (0, 0)
