"""GEMM against an in-order numpy reference: reset, both loop levels, every factor, repeated
destinations, int32 wrap-around, and the batched (product / rows) code paths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_streams import Bench, finish, gemm, load, rand_int8, rand_int32

from accel.env import using_env
from accel.hw.isa import MemType, Uop

N_INP, N_WGT, N_ACC = 64, 32, 96


def reference_gemm(acc, inp, wgt, uops, insn):
    """docs/isa.md §4, literally: every iteration in order, exact int64 then wrapped."""
    acc = acc.astype(np.int64)
    for i in range(insn.iter_out):
        for j in range(insn.iter_in):
            for u in uops[insn.uop_bgn : insn.uop_end]:
                d = u.dst_idx + i * insn.dst_factor_out + j * insn.dst_factor_in
                s = u.src_idx + i * insn.src_factor_out + j * insn.src_factor_in
                w = u.wgt_idx + i * insn.wgt_factor_out + j * insn.wgt_factor_in
                if insn.reset_reg:
                    acc[d] = 0
                else:
                    acc[d] += inp[s].astype(np.int64) @ wgt[w].astype(np.int64).T
                acc[d] = (acc[d] + 2**31) % 2**32 - 2**31
    return acc.astype(np.int32)


def setup(bench, rng, acc_bound=1 << 31):
    env = bench.env
    inp = rand_int8(rng, (N_INP, env.BATCH, env.BLOCK_IN))
    wgt = rand_int8(rng, (N_WGT, env.BLOCK_OUT, env.BLOCK_IN))
    acc = rand_int32(rng, (N_ACC, env.BATCH, env.BLOCK_OUT), bound=acc_bound)
    loads = [
        load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, N_INP, N_INP),
        load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, N_WGT, N_WGT),
        load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, N_ACC, N_ACC),
    ]
    return inp, wgt, acc, loads


def run_and_check(bench, inp, wgt, acc, loads, uops, insns):
    report = bench.run([*loads, bench.uops(uops), *insns, finish()])
    expected = acc
    for insn in insns:
        expected = reference_gemm(expected, inp, wgt, uops, insn)
    assert np.array_equal(bench.sim.srams.acc[:N_ACC], expected)
    return report


@st.composite
def gemm_case(draw):
    n_uops = draw(st.integers(1, 4))
    iter_out, iter_in = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    f = st.integers(0, 6)
    factors = {
        name: draw(f)
        for name in (
            "dst_factor_out",
            "dst_factor_in",
            "src_factor_out",
            "src_factor_in",
            "wgt_factor_out",
            "wgt_factor_in",
        )
    }
    factors["wgt_factor_out"] = min(factors["wgt_factor_out"], 3)
    factors["wgt_factor_in"] = min(factors["wgt_factor_in"], 3)
    span = 3 * 6 * 2  # the largest loop offset: (iter - 1) * factor, twice
    uops = [
        Uop(
            draw(st.integers(0, N_ACC - span - 1)),
            draw(st.integers(0, N_INP - span - 1)),
            draw(st.integers(0, N_WGT - 3 * 3 * 2 - 1)),
        )
        for _ in range(n_uops)
    ]
    reset = draw(st.booleans())
    insn = gemm(0, n_uops, iter_out, iter_in, reset_reg=reset, **factors)
    return uops, insn, draw(st.integers(0, 2**16))


@settings(max_examples=50, deadline=None)
@given(gemm_case())
def test_random_gemm_matches_reference(case):
    uops, insn, seed = case
    bench = Bench()
    inp, wgt, acc, loads = setup(bench, np.random.default_rng(seed))
    report = run_and_check(bench, inp, wgt, acc, loads, uops, [insn])
    expected = 0 if insn.reset_reg else insn.iter_out * insn.iter_in * len(uops)
    assert report.stats["gemm_counter"] == expected


def test_reset_then_accumulate_with_both_loop_levels():
    bench = Bench()
    inp, wgt, acc, loads = setup(bench, np.random.default_rng(3))
    uops = [Uop(0, 0, 0), Uop(1, 5, 2)]
    insns = [
        gemm(0, 2, 4, 3, reset_reg=True, dst_factor_out=6, dst_factor_in=2),
        gemm(
            0,
            2,
            4,
            3,
            dst_factor_out=6,
            dst_factor_in=2,
            src_factor_out=7,
            src_factor_in=1,
            wgt_factor_out=3,
            wgt_factor_in=5,
        ),
    ]
    run_and_check(bench, inp, wgt, acc, loads, uops, insns)


def test_micro_ops_accumulating_into_one_destination():
    bench = Bench()
    inp, wgt, acc, loads = setup(bench, np.random.default_rng(4))
    uops = [Uop(7, s, w) for s, w in [(0, 0), (3, 1), (9, 4), (0, 0), (60, 31)]]
    run_and_check(bench, inp, wgt, acc, loads, uops, [gemm(0, 5, 2, 3, src_factor_in=1)])


def test_int32_wrap_around():
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(5)
    inp, wgt, acc, loads = setup(bench, rng)
    inp[:] = -128
    wgt[:] = -128  # every product is +16384
    acc[:] = 2**31 - 100
    loads = [
        load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, N_INP, N_INP),
        load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, N_WGT, N_WGT),
        load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, N_ACC, N_ACC),
    ]
    run_and_check(bench, inp, wgt, acc, loads, [Uop(0, 0, 0)], [gemm(0, 1, 1, 1)])
    assert bench.sim.srams.acc[0, 0, 0] == 2**31 - 100 + 16 * 16384 - 2**32
    assert env.BLOCK_IN == 16


def test_long_reduction_beyond_float32_exactness():
    # 100 micro-ops into each destination: 1600-term dot products, past float32's exact range
    bench = Bench()
    rng = np.random.default_rng(6)
    inp, wgt, acc, _ = setup(bench, rng)
    inp = rng.choice(np.array([-128, 127], dtype=np.int8), size=inp.shape)
    wgt = rng.choice(np.array([-128, 127], dtype=np.int8), size=wgt.shape)
    loads = [
        load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, N_INP, N_INP),
        load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, N_WGT, N_WGT),
        load(MemType.ACC, 0, bench.put(acc, MemType.ACC), 1, N_ACC, N_ACC),
    ]
    uops = [Uop(d, (d + k) % 60, k % N_WGT) for d in range(3) for k in range(100)]
    run_and_check(bench, inp, wgt, acc, loads, uops, [gemm(0, len(uops), 1, 3, src_factor_in=1)])


def test_conv_shaped_gemm_uses_one_product_and_matches_im2col():
    """A 3x3 convolution over a padded row: the plan's product mode, checked with im2col."""
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(7)
    width, ic, oc = 10, 2, 3  # padded input width 12, channel blocks
    inp = rand_int8(rng, (ic, 3, width + 2, env.BATCH, env.BLOCK_IN))
    wgt = rand_int8(rng, (oc, ic, 3, 3, env.BLOCK_OUT, env.BLOCK_IN))
    n_inp, n_wgt = inp.shape[0] * 3 * (width + 2), oc * ic * 9
    loads = [
        load(MemType.INP, 0, bench.put(inp, MemType.INP), 1, n_inp, n_inp),
        load(MemType.WGT, 0, bench.put(wgt, MemType.WGT), 1, n_wgt, n_wgt),
    ]
    # iter_out over output channel blocks, iter_in over the output row, micro-ops over
    # (input channel block, dy, dx).
    uops = [
        Uop(0, c * 3 * (width + 2) + dy * (width + 2) + dx, c * 9 + dy * 3 + dx)
        for c in range(ic)
        for dy in range(3)
        for dx in range(3)
    ]
    insns = [
        gemm(0, len(uops), oc, width, reset_reg=True, dst_factor_out=width, dst_factor_in=1),
        gemm(
            0,
            len(uops),
            oc,
            width,
            dst_factor_out=width,
            dst_factor_in=1,
            src_factor_in=1,
            wgt_factor_out=ic * 9,
        ),
    ]
    bench.run([*loads, bench.uops(uops), *insns, finish()])
    cols = np.stack([inp[:, dy, dx : dx + width] for dy in range(3) for dx in range(3)], axis=1)
    cols = cols.reshape(ic * 9, width, env.BATCH * env.BLOCK_IN).transpose(1, 0, 2)
    weights = wgt.reshape(oc, ic * 9, env.BLOCK_OUT, env.BLOCK_IN)
    ref = np.einsum("xki,okji->oxj", cols.astype(np.int64), weights.astype(np.int64))
    got = bench.sim.srams.acc[: oc * width].reshape(oc, width, env.BLOCK_OUT)
    assert np.array_equal(got, ref.astype(np.int32))


def test_irregular_gemm_uses_rows_and_matches_reference():
    bench = Bench()
    rng = np.random.default_rng(8)
    inp, wgt, acc, loads = setup(bench, rng)
    uops = [
        Uop(int(rng.integers(0, 40)), int(rng.integers(0, 50)), int(rng.integers(0, 28)))
        for _ in range(40)
    ]
    run_and_check(
        bench,
        inp,
        wgt,
        acc,
        loads,
        uops,
        [gemm(0, 40, 2, 3, dst_factor_out=25, src_factor_in=4, wgt_factor_in=1)],
    )


def test_weights_reloaded_between_identical_gemms_are_seen():
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(9)
    inp, wgt, acc, loads = setup(bench, rng)
    wgt2 = rand_int8(rng, wgt.shape)
    uops = [Uop(d, d % N_INP, 0) for d in range(80)]
    insn = gemm(0, 80, 1, 1)
    bench.run(
        [
            *loads,
            bench.uops(uops),
            insn,
            load(MemType.WGT, 0, bench.put(wgt2, MemType.WGT), 1, N_WGT, N_WGT),
            insn,
            finish(),
        ]
    )
    expected = reference_gemm(reference_gemm(acc, inp, wgt, uops, insn), inp, wgt2, uops, insn)
    assert np.array_equal(bench.sim.srams.acc[:N_ACC], expected)
    assert env.BATCH == 1


@pytest.mark.parametrize(
    "overrides", [{"LOG_BATCH": 1}, {"LOG_BATCH": 2, "LOG_BLOCK": 3, "LOG_WGT_BUFF_SIZE": 15}]
)
def test_other_configurations(overrides):
    """BATCH > 1 and a smaller block: the product and rows paths transpose batches right."""
    with using_env(overrides) as env:
        bench = Bench(env)
        inp, wgt, acc, loads = setup(bench, np.random.default_rng(11))
        uops = [Uop(d % 8, (d * 3) % 40, d % 5) for d in range(24)]
        irregular = [
            Uop(int(d), int(s), int(w))
            for d, s, w in np.random.default_rng(12).integers(0, 20, (30, 3))
        ]
        run_and_check(
            bench,
            inp,
            wgt,
            acc,
            loads,
            uops + irregular,
            [
                gemm(
                    0,
                    24,
                    3,
                    4,
                    dst_factor_out=8,
                    dst_factor_in=16,
                    src_factor_in=1,
                    wgt_factor_out=5,
                ),
                gemm(24, 54, 2, 2, dst_factor_out=40, src_factor_in=7, wgt_factor_in=3),
            ],
        )
