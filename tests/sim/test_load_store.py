"""LOAD (padding, strides, every memory type, ACC_8BIT sign extension) and STORE (narrowing)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sim_streams import Bench, finish, load, rand_int8, rand_int32, store

from accel.hw.isa import MemType, Uop, encode_uops


def padded_reference(dram, y0, x0, y, x, pads):
    """The SRAM image numpy builds for rows [y0, y0+y) and columns [x0, x0+x) with pads."""
    yp0, yp1, xp0, xp1 = pads
    window = dram[y0 : y0 + y, x0 : x0 + x]
    return np.pad(window, ((yp0, yp1), (xp0, xp1)) + ((0, 0),) * (dram.ndim - 2))


@settings(max_examples=40, deadline=None)
@given(
    y=st.integers(1, 6),
    x=st.integers(1, 12),
    extra_stride=st.integers(0, 5),
    pads=st.tuples(*[st.sampled_from([0, 1, 3, 15])] * 4),
    sram_base=st.integers(0, 40),
    mem_type=st.sampled_from([MemType.INP, MemType.WGT, MemType.ACC, MemType.UOP]),
    seed=st.integers(0, 2**16),
)
def test_load_with_padding_and_stride(y, x, extra_stride, pads, sram_base, mem_type, seed):
    bench = Bench()
    env = bench.env
    footprint = (y + pads[0] + pads[1]) * (x + pads[2] + pads[3])
    assume(sram_base + footprint <= env.WGT_BUFF_DEPTH)  # the smallest SRAM
    rng = np.random.default_rng(seed)
    stride = x + extra_stride
    rows = y + 2
    elem_shape, make = {
        MemType.INP: ((env.BATCH, env.BLOCK_IN), lambda s: rand_int8(rng, s)),
        MemType.WGT: ((env.BLOCK_OUT, env.BLOCK_IN), lambda s: rand_int8(rng, s)),
        MemType.ACC: ((env.BATCH, env.BLOCK_OUT), lambda s: rand_int32(rng, s)),
        MemType.UOP: ((), lambda s: rng.integers(0, 2**32, size=s, dtype=np.uint32)),
    }[mem_type]
    dram = make((rows, stride, *elem_shape))
    base = bench.put(dram, mem_type)
    y0, x0 = 1, extra_stride // 2
    insn = load(
        mem_type,
        sram_base,
        base + y0 * stride + x0,
        y,
        x,
        stride,
        y_pad_0=pads[0],
        y_pad_1=pads[1],
        x_pad_0=pads[2],
        x_pad_1=pads[3],
    )
    before = {name: getattr(bench.sim.srams, name).copy() for name in ("inp", "wgt", "acc", "uop")}
    report = bench.run([insn, finish()])

    ref = padded_reference(dram, y0, x0, y, x, pads)
    sram_name = {MemType.INP: "inp", MemType.WGT: "wgt", MemType.ACC: "acc", MemType.UOP: "uop"}[
        mem_type
    ]
    sram = getattr(bench.sim.srams, sram_name)
    count = ref.shape[0] * ref.shape[1]
    got = sram[sram_base : sram_base + count].reshape(ref.shape)
    assert np.array_equal(got, ref)
    expected = before[sram_name].copy()
    expected[sram_base : sram_base + count] = ref.reshape(count, *elem_shape)
    assert np.array_equal(sram, expected)  # nothing else written
    stat = {
        MemType.INP: "inp_load_nbytes",
        MemType.WGT: "wgt_load_nbytes",
        MemType.ACC: "acc_load_nbytes",
        MemType.UOP: "uop_load_nbytes",
    }[mem_type]
    assert report.stats[stat] == y * x * dram[0, 0].nbytes


def test_acc_8bit_sign_extends_and_store_narrows_low_bits():
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(1)
    small = rand_int8(rng, (6, env.BATCH, env.BLOCK_OUT))
    small[0, 0, :4] = [-128, -1, 0, 127]
    wide = rand_int32(rng, (10, env.BATCH, env.BLOCK_OUT))
    wide[0, 0, :6] = [255, 256, -129, 2**31 - 1, -(2**31), 128]
    src8 = bench.put(small, MemType.ACC_8BIT)
    src32 = bench.put(wide, MemType.ACC)
    out = bench.space(4 * 16 * 16, MemType.OUT)
    report = bench.run(
        [
            load(MemType.ACC_8BIT, 0, src8, 2, 3, 3),
            load(MemType.ACC, 6, src32, 2, 5, 5),
            store(0, out, 4, 4, 16),  # 16 accumulator tiles to 4 rows of a 16-wide output
            finish(),
        ]
    )
    acc = bench.sim.srams.acc
    assert np.array_equal(acc[:6], small.astype(np.int32))
    assert np.array_equal(acc[6:16], wide)
    image = bench.get(out, MemType.OUT, (4, 16, env.BATCH, env.BLOCK_OUT), np.int8)
    expected = (np.concatenate([small.astype(np.int64), wide]) & 0xFF).astype(np.uint8)
    assert np.array_equal(
        image[:, :4].reshape(16, env.BATCH, env.BLOCK_OUT).view(np.uint8), expected
    )
    assert not image[:, 4:].any()  # the stride gap is untouched
    # An ACC_8BIT tile counts as the 64-byte accumulator tile it fills, as in the original.
    assert report.stats["acc_load_nbytes"] == 6 * 64 + 10 * 64
    assert report.stats["out_store_nbytes"] == 16 * 16


def test_store_with_stride_writes_only_its_rows():
    bench = Bench()
    env = bench.env
    rng = np.random.default_rng(2)
    tiles = rand_int32(rng, (6, env.BATCH, env.BLOCK_OUT), bound=1000)
    src = bench.put(tiles, MemType.ACC)
    fill = np.full((3, 5, env.BATCH, env.BLOCK_OUT), 7, dtype=np.int8)
    out = bench.put(fill, MemType.OUT)
    bench.run([load(MemType.ACC, 100, src, 1, 6, 6), store(100, out + 1, 3, 2, 5), finish()])
    ref = fill.copy()
    ref[:, 1:3] = tiles.reshape(3, 2, env.BATCH, env.BLOCK_OUT).astype(np.int8)
    assert np.array_equal(bench.get(out, MemType.OUT, ref.shape, np.int8), ref)


def test_zero_x_size_moves_only_tokens():
    bench = Bench()
    report = bench.run(
        [
            load(MemType.INP, 0, 0, 0, 0, 0, push_next_dep=True),
            load(MemType.ACC, 0, 0, 0, 0, 0, pop_prev_dep=True, push_next_dep=True),
            store(0, 0, 0, 0, 0, pop_prev_dep=True),
            finish(),
        ]
    )
    assert report.stats["inp_load_nbytes"] == 0 and report.stats["store_insns"] == 1
    assert bench.sim.queues.counts() == {
        "load->compute": 0,
        "compute->load": 0,
        "compute->store": 0,
        "store->compute": 0,
    }


def test_uop_load_feeds_micro_op_sram():
    bench = Bench()
    words = encode_uops([Uop(1, 2, 3), Uop(2047, 2047, 1023)], bench.env)
    bench.run([bench.uops([Uop(1, 2, 3), Uop(2047, 2047, 1023)], sram_base=5), finish()])
    assert bench.sim.srams.uop[5:7].tolist() == words.tolist()


@pytest.mark.parametrize("use_plans", [False, True])
def test_a_load_of_padding_rows_only_zero_fills_and_reads_nothing(use_plans):
    # y_size 0 with x_size > 0: legal (docs/isa.md §4), two padding rows of 3 + 2 + 1 elements
    # are zeroed; dram_base points nowhere valid, which must not matter.
    bench = Bench()
    bench.sim.use_plans = use_plans
    bench.sim.srams.acc[:] = 7
    insn = load(MemType.ACC, 4, 0, 0, 3, 3, y_pad_0=1, y_pad_1=1, x_pad_0=2, x_pad_1=1)
    report = bench.run([insn, finish()])
    acc = bench.sim.srams.acc
    assert not acc[4 : 4 + 2 * 6].any()
    assert (acc[:4] == 7).all() and (acc[4 + 12 :] == 7).all()
    assert report.stats["acc_load_nbytes"] == 0
