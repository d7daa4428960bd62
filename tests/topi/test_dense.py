"""Packed fully-connected layers with the bias / shift / clip epilogue, on the simulator, equal
numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te
from accel.env import Environment
from accel.errors import AllocationError, ArgumentError, ScheduleError
from accel.topi.dense import (
    DenseTiles,
    default_dense_tiles,
    dense_packed,
    pack_dense_bias,
    pack_dense_data,
    pack_dense_weight,
    schedule_dense_packed,
    unpack_dense,
)

ENV = accel.get_env()
BN, BI, BO = ENV.BATCH, ENV.BLOCK_IN, ENV.BLOCK_OUT


def declare(n, i, o, shift=8, clip=(0, 127), bias=True, env=ENV):
    data = te.placeholder((n // BN, i // BI, BN, BI), name="data", dtype="int8")
    weight = te.placeholder((o // BO, i // BI, BO, BI), name="weight", dtype="int8")
    b = te.placeholder((o // BO, BN, BO), name="bias", dtype="int32") if bias else None
    return dense_packed(data, weight, env, shift=shift, clip=clip, bias=b)


def reference(x, w, bias, shift, clip):
    """(N, I) int8 x (O, I) int8 transposed, wrapped to int32, + bias, >> shift, clip, int8."""
    acc = (x.astype(np.int64) @ w.astype(np.int64).T).astype(np.int32)
    if bias is not None:
        acc = acc + bias
    if shift is not None:
        acc = acc >> shift
    if clip is not None:
        acc = np.clip(acc, *clip)
    return acc.astype(np.int8)


def run(op, tiles, shift=8, clip=(0, 127), seed=0):
    """Build ``op`` with ``tiles``, run it on random int8 data and compare with numpy."""
    f = accel.build(schedule_dense_packed(op, ENV, tiles), op.args, name="dense")
    rng = np.random.default_rng(seed)
    n, i = op.data.shape[0] * BN, op.data.shape[1] * BI
    o = op.weight.shape[0] * BO
    x = rng.integers(-128, 128, (n, i), dtype=np.int8)
    w = rng.integers(-128, 128, (o, i), dtype=np.int8)
    bias = rng.integers(-(2**14), 2**14, (o,), dtype=np.int32) if op.bias is not None else None
    arrays = [pack_dense_data(x, ENV), pack_dense_weight(w, ENV)]
    if bias is not None:
        arrays.append(pack_dense_bias(bias, ENV))
    out = np.zeros(op.res.shape, np.int8)
    f(*arrays, out)
    np.testing.assert_array_equal(unpack_dense(out), reference(x, w, bias, shift, clip))


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "n, i, o",
    [(1, 1024, 1008), (1, 2048, 1024), (1, 512, 16), (4 * BN, 256, 128), (16 * BN, 128, 64)],
)
def test_default_schedule(n, i, o, threads):
    op = declare(n, i, o)
    run(op, default_dense_tiles(op, ENV, threads))


@pytest.mark.parametrize(
    "tiles",
    [
        DenseTiles(batch_blocks=1, oc_blocks=1, ic_blocks=1, threads=1),
        DenseTiles(batch_blocks=2, oc_blocks=4, ic_blocks=2, threads=1),
        DenseTiles(batch_blocks=4, oc_blocks=8, ic_blocks=8, threads=1),
        DenseTiles(batch_blocks=1, oc_blocks=2, ic_blocks=4, threads=2),
        DenseTiles(batch_blocks=2, oc_blocks=1, ic_blocks=1, threads=4),
        DenseTiles(batch_blocks=4, oc_blocks=1, ic_blocks=8, threads=8),
    ],
    ids=lambda t: f"b{t.batch_blocks}_oc{t.oc_blocks}_ic{t.ic_blocks}_t{t.threads}",
)
def test_tilings(tiles):
    run(declare(4 * BN, 128, 128), tiles, seed=tiles.oc_blocks)


@pytest.mark.parametrize(
    "shift, clip, bias",
    [(None, None, False), (None, (-128, 127), True), (4, None, True), (10, (-20, 50), False)],
)
def test_epilogue_variants(shift, clip, bias):
    op = declare(2 * BN, 64, 64, shift=shift, clip=clip, bias=bias)
    run(op, DenseTiles(1, 2, 2, 2), shift, clip)


@settings(max_examples=20, deadline=None)
@given(
    nb=st.integers(1, 4),
    ib=st.integers(1, 6),
    ob=st.sampled_from([1, 2, 3, 4, 6]),
    bias=st.booleans(),
    data=st.data(),
)
def test_random_shapes_and_tilings(nb, ib, ob, bias, data):
    shift = data.draw(st.integers(0, 12))
    clip = (data.draw(st.integers(-128, 0)), data.draw(st.integers(0, 127)))
    op = declare(nb * BN, ib * BI, ob * BO, shift=shift, clip=clip, bias=bias)
    threads = data.draw(st.sampled_from([t for t in (1, 2, 3) if ob % t == 0]))
    tiles = DenseTiles(
        batch_blocks=data.draw(st.sampled_from(divisors(nb))),
        oc_blocks=data.draw(st.sampled_from(divisors(ob // threads))),
        ic_blocks=data.draw(st.sampled_from(divisors(ib))),
        threads=threads,
    )
    run(op, tiles, shift, clip, seed=nb * 100 + ib * 10 + ob)


def test_default_tiles_fit_each_threads_share_of_the_srams():
    for n, i, o in [(1, 2048, 1024), (16, 512, 512), (64, 256, 256), (1, 4096, 4096)]:
        op = declare(n * BN, i, o)
        for threads in (1, 2, 4):
            t = default_dense_tiles(op, ENV, threads)
            assert t.threads == threads
            assert t.threads * t.batch_blocks * t.ic_blocks <= ENV.INP_BUFF_DEPTH
            assert t.threads * t.oc_blocks * t.ic_blocks <= ENV.WGT_BUFF_DEPTH
            assert t.threads * (t.batch_blocks + 1) * t.oc_blocks <= ENV.ACC_BUFF_DEPTH
    # 63 output-channel blocks cannot be shared by two threads: one thread takes them all
    assert default_dense_tiles(declare(1, 1024, 1008), ENV, 2) == DenseTiles(1, 63, 16, 1)


def test_default_tiles_refuse_threads_the_srams_cannot_hold():
    tiny = Environment.from_dict({**ENV.cfg, "LOG_WGT_BUFF_SIZE": ENV.cfg["LOG_BLOCK"] * 2})
    op = declare(BN, 64, 64, env=tiny)
    assert default_dense_tiles(op, tiny, 1) == DenseTiles(1, 1, 1, 1)
    with pytest.raises(AllocationError, match="2 virtual threads; use fewer threads"):
        default_dense_tiles(op, tiny, 2)


def test_a_tile_that_overflows_the_weight_buffer_is_refused():
    # 64 x 32 = 2,048 weight tiles; the buffer holds 1,024.
    op = declare(1, 2048, 1024)
    with pytest.raises(AllocationError, match="weight_buf needs 2048 tiles .* local.wgt_buffer"):
        accel.build(schedule_dense_packed(op, ENV, DenseTiles(1, 64, 32, 1)), op.args)


def test_each_virtual_thread_needs_its_own_region():
    # 32 x 32 = 1,024 weight tiles fit once, but not once per thread.
    op = declare(1, 2048, 1024)
    run(op, DenseTiles(1, 32, 32, 1))
    with pytest.raises(AllocationError, match="local.wgt_buffer"):
        accel.build(schedule_dense_packed(op, ENV, DenseTiles(1, 32, 32, 2)), op.args)


def test_shape_mismatches_are_refused():
    data = te.placeholder((1, 32, BN, BI), name="data", dtype="int8")
    weight = te.placeholder((63, 16, BO, BI), name="weight", dtype="int8")
    with pytest.raises(ScheduleError, match=r"data \(1, 32, 1, 16\) and weight \(63, 16, 16, 16\)"):
        dense_packed(data, weight, ENV)
    unpacked = te.placeholder((1, 512), name="data", dtype="int8")
    with pytest.raises(ScheduleError, match=r"data \(1, 512\) .* must both be packed"):
        dense_packed(unpacked, weight, ENV)
    weight = te.placeholder((63, 32, BO, BI), name="weight", dtype="int8")
    bias = te.placeholder((62, BN, BO), name="bias", dtype="int32")
    with pytest.raises(
        ScheduleError,
        match=r"bias int32\(62, 1, 16\) is not the packed per-channel bias int32\(63, 1, 16\)",
    ):
        dense_packed(data, weight, ENV, bias=bias)


@pytest.mark.parametrize(
    "tiles, message",
    [
        (DenseTiles(1, 2, 4, 1), "tile of 2 output-channel blocks does not divide 63"),
        (DenseTiles(1, 3, 5, 1), "tile of 5 input-channel blocks does not divide 32"),
        (DenseTiles(2, 3, 4, 1), "tile of 2 batch blocks does not divide 1"),
        (DenseTiles(1, 3, 4, 2), "21 output-channel tiles cannot be shared by 2 virtual threads"),
    ],
)
def test_bad_tiles_are_refused(tiles, message):
    op = declare(1, 512, 1008)
    with pytest.raises(ScheduleError, match=message):
        schedule_dense_packed(op, ENV, tiles)


def test_packing_round_trip_and_block_checks():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2 * BN, 48), dtype=np.int8)
    packed = pack_dense_data(x, ENV)
    assert packed.shape == (2, 3, BN, BI)
    assert packed[1, 2, 0, 5] == x[BN, 2 * BI + 5]
    np.testing.assert_array_equal(unpack_dense(packed), x)
    w = rng.integers(-128, 128, (32, 48), dtype=np.int8)
    pw = pack_dense_weight(w, ENV)
    assert pw.shape == (2, 3, BO, BI)
    assert pw[1, 2, 3, 4] == w[BO + 3, 2 * BI + 4]
    bias = np.arange(32, dtype=np.int32)
    assert pack_dense_bias(bias, ENV)[1, BN - 1, 3] == 19
    # 512 -> 1000 does not pack: 1000 output channels are not whole blocks
    with pytest.raises(ArgumentError, match="output channels = 1000 is not a multiple of 16"):
        pack_dense_weight(np.zeros((1000, 512), np.int8), ENV)
    with pytest.raises(ArgumentError, match="input channels = 20 is not a multiple of 16"):
        pack_dense_data(np.zeros((BN, 20), np.int8), ENV)
    with pytest.raises(ArgumentError, match="output channels = 1000"):
        pack_dense_bias(np.zeros(1000, np.int32), ENV)
