"""Packed convolutions with the bias / shift / clip epilogue, on the simulator, equal numpy."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import accel
from accel import te, topi
from accel.errors import AllocationError, ArgumentError, ScheduleError

ENV = accel.get_env()
B = ENV.BLOCK_IN  # 16 channels a block

RESNET18 = topi.RESNET18_CONV2D


def declare(hw, ci, co, k, stride, pad, shift=8):
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((co // B, ci // B, k, k, B, B), name="kernel", dtype="int8")
    bias = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
    return topi.conv2d_packed(data, kernel, ENV, stride, pad, shift=shift, bias=bias)


def reference(x, w, bias, stride, pad, shift):
    """NCHW int8 x OIHW int8 + per-channel bias, >> shift, clip [0, 127], int8."""
    o, _i, k, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[2] + 2 * pad - k) // stride + 1
    out_w = (x.shape[3] + 2 * pad - k) // stride + 1
    acc = np.zeros((x.shape[0], o, out_h, out_w), np.int64)
    for r in range(k):
        for c in range(k):
            window = xp[:, :, r : r + out_h * stride : stride, c : c + out_w * stride : stride]
            acc += np.einsum("bihw,oi->bohw", window, w[:, :, r, c].astype(np.int64))
    acc = acc.astype(np.int32) + bias.reshape(1, o, 1, 1)
    return np.clip(acc >> shift, 0, 127).astype(np.int8)


def run(op, tiles, stride, pad, shift=8, seed=0):
    s = topi.schedule_conv2d_packed(op, ENV, tiles)
    f = accel.build(s, op.args, name="conv")
    rng = np.random.default_rng(seed)
    nb, cb, h, w, _, _ = op.data.shape
    ob, _, k, _, _, _ = op.kernel.shape
    x = rng.integers(-128, 128, (nb, cb * B, h, w), dtype=np.int8)
    wt = rng.integers(-128, 128, (ob * B, cb * B, k, k), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (ob * B,), dtype=np.int32)
    out = np.zeros(op.res.shape, np.int8)
    f(topi.pack_nchw(x, ENV), topi.pack_kernel(wt, ENV), bias.reshape(ob, 1, B), out)
    np.testing.assert_array_equal(topi.unpack_nchw(out), reference(x, wt, bias, stride, pad, shift))


@pytest.mark.parametrize(
    "layer", RESNET18, ids=[f"{h}x{h}_{i}-{o}_k{k}s{s}" for h, i, o, k, s in RESNET18]
)
def test_resnet18_layer_with_default_schedule(layer):
    hw, ci, co, k, stride = layer
    op = declare(hw, ci, co, k, stride, k // 2)
    run(op, topi.default_tiles(op, ENV), stride, k // 2)


@settings(max_examples=10, deadline=None)
@given(
    hw=st.integers(3, 12),
    ci=st.sampled_from([1, 2, 3]),
    co=st.sampled_from([1, 2, 4]),
    k=st.sampled_from([1, 2, 3, 5]),
    stride=st.sampled_from([1, 2, 3]),
    pad=st.integers(0, 2),
    data=st.data(),
)
def test_random_convolutions_and_tilings(hw, ci, co, k, stride, pad, data):
    assume(hw + 2 * pad >= k)
    shift = data.draw(st.integers(0, 12))
    op = declare(hw, ci * B, co * B, k, stride, pad, shift=shift)
    out_h, out_w = op.res.shape[2:4]
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    threads = data.draw(st.sampled_from([t for t in (1, 2, 4) if co % t == 0]))
    oc = data.draw(st.sampled_from(divisors(co // threads)))
    rows = data.draw(st.sampled_from(divisors(out_h)))
    row_threads = data.draw(st.sampled_from([t for t in (1, 2, 3) if (out_h // rows) % t == 0]))
    tiles = topi.Conv2dTiles(
        oc_blocks=oc,
        rows=rows,
        cols=data.draw(st.sampled_from(divisors(out_w))),
        ic_blocks=data.draw(st.sampled_from(divisors(ci))),
        threads=threads,
        row_threads=row_threads,
    )
    run(op, tiles, stride, pad, shift, seed=hw)


@pytest.mark.parametrize(
    "threads, row_threads", [(4, 1), (1, 2), (1, 4), (2, 2), (4, 2)], ids=lambda t: str(t)
)
def test_virtual_threads_along_channels_rows_and_both(threads, row_threads):
    # 8 output-channel blocks in tiles of 2, 8 rows in tiles of 2: up to 4 x 4 thread slots.
    op = declare(8, 32, 128, 3, 1, 1)
    run(op, topi.Conv2dTiles(2, 2, 8, 1, threads, row_threads), 1, 1, seed=threads)


def test_thread_counts_that_do_not_divide_the_tiles_are_refused():
    op = declare(8, 32, 128, 3, 1, 1)
    with pytest.raises(ScheduleError, match="4 row tiles cannot be shared by 3 virtual threads"):
        topi.schedule_conv2d_packed(op, ENV, topi.Conv2dTiles(2, 2, 8, 1, 1, 3))
    with pytest.raises(ScheduleError, match="4 output-channel tiles cannot be shared by 3"):
        topi.schedule_conv2d_packed(op, ENV, topi.Conv2dTiles(2, 2, 8, 1, 3, 1))


def test_a_tile_that_overflows_the_accumulator_is_refused():
    # 8 blocks x 56 rows x 56 columns = 25,088 accumulator tiles; the buffer holds 2,048.
    op = declare(56, 64, 128, 3, 1, 1)
    tiles = topi.Conv2dTiles(oc_blocks=8, rows=56, cols=56, ic_blocks=1, threads=1)
    with pytest.raises(AllocationError, match="local.acc_buffer"):
        accel.build(topi.schedule_conv2d_packed(op, ENV, tiles), op.args)


def test_packing_round_trip_and_channel_check():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 32, 5, 6), dtype=np.int8)
    packed = topi.pack_nchw(x, ENV)
    assert packed.shape == (1, 2, 5, 6, 1, 16)
    assert packed[0, 1, 2, 3, 0, 4] == x[0, 16 + 4, 2, 3]  # block 1, lane 4 is channel 20
    np.testing.assert_array_equal(topi.unpack_nchw(packed), x)
    with pytest.raises(ArgumentError, match="channels = 20 is not a multiple of 16"):
        topi.pack_nchw(np.zeros((1, 20, 4, 4), np.int8), ENV)


def test_default_tiles_move_channel_threads_to_rows_when_channels_cannot_be_shared():
    op = declare(8, 32, 16, 3, 1, 1)  # one output-channel block: nothing for 2 threads to share
    tiles = topi.default_tiles(op, ENV, threads=2)
    assert (tiles.threads, tiles.row_threads) == (1, 2)
    run(op, tiles, 1, 1)
    op = declare(8, 32, 64, 3, 1, 1)
    tiles = topi.default_tiles(op, ENV, threads=2, row_threads=2)
    assert (tiles.threads, tiles.row_threads) == (2, 2)
    run(op, tiles, 1, 1, seed=1)


def test_a_bias_that_is_not_packed_per_output_channel_is_refused():
    data = te.placeholder((1, 2, 8, 8, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((4, 2, 3, 3, B, B), name="kernel", dtype="int8")
    flat = te.placeholder((4 * B,), name="bias", dtype="int32")
    with pytest.raises(ScheduleError, match=r"bias int32\(64,\) is not .* int32\(4, 1, 16\)"):
        topi.conv2d_packed(data, kernel, ENV, bias=flat)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: declare(8, 32, 32, 3, 0, 1),
            r"conv2d_packed: stride must be an integer >= 1, got 0",
        ),
        (lambda: declare(8, 32, 32, 3, -1, 1), r"stride must be an integer >= 1, got -1"),
        (lambda: declare(8, 32, 32, 3, 1, -1), r"padding must be an integer >= 0, got -1"),
        (
            lambda: declare(8, 32, 32, 3, 1, 1, shift=-1),
            r"shift must be None or an integer in \[0, 31\]",
        ),
        (
            lambda: topi.default_tiles(declare(8, 32, 32, 3, 1, 1), ENV, threads=0),
            r"threads must be an integer >= 1, got 0",
        ),
        (
            lambda: topi.schedule_conv2d_packed(declare(8, 32, 32, 3, 1, 1), ENV, "big"),
            r"tiles must be a Conv2dTiles, got str",
        ),
        (
            lambda: topi.default_dense_tiles(dense_op(), ENV, threads=0),
            r"default_dense_tiles: threads must be",
        ),
        (
            lambda: topi.schedule_dense_packed(dense_op(), ENV, (1, 2)),
            r"tiles must be a DenseTiles, got tuple",
        ),
        (
            lambda: topi.default_vector_tiles(relu_op(), ENV, threads=0),
            r"default_vector_tiles: threads must be",
        ),
        (
            lambda: topi.schedule_vector_packed(relu_op(), ENV, 3),
            r"tiles must be a VectorTiles, got int",
        ),
    ],
)
def test_bad_operator_arguments_are_schedule_errors(make, message):
    with pytest.raises(ScheduleError, match=message):
        make()


def dense_op():
    data = te.placeholder((1, 2, 1, B), name="d", dtype="int8")
    return topi.dense_packed(data, te.placeholder((2, 2, B, B), name="w", dtype="int8"), ENV)


def relu_op():
    return topi.relu_packed(te.placeholder((1, 2, 4, 4, 1, B), name="x", dtype="int8"), ENV)
