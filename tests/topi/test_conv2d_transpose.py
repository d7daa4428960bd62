"""Transposed convolutions on the simulator equal a numpy reference that scatters every input
pixel through the kernel (the definition), with no phase decomposition."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import accel
from accel import te, topi
from accel.errors import ScheduleError

ENV = accel.get_env()
B = ENV.BLOCK_IN


def declare(hw, ci, co, k, stride, pad, shift=8):
    taps = k // stride
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kshape = (co // B, ci // B, stride, stride, taps, taps, B, B)
    kernel = te.placeholder(kshape, name="kernel", dtype="int8")
    bias = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
    return topi.conv2d_transpose_packed(data, kernel, ENV, stride, pad, shift, bias=bias)


def reference(x, w, bias, stride, pad, shift):
    """Input pixel (iy, ix) adds x * w into output rows iy*s - p .. iy*s - p + k - 1."""
    n, _ci, h, wd = x.shape
    o, _, k, _ = w.shape
    full = np.zeros((n, o, (h - 1) * stride + k, (wd - 1) * stride + k), np.int64)
    w64 = w.astype(np.int64)
    for iy in range(h):
        for ix in range(wd):
            contrib = np.einsum("bi,oikl->bokl", x[:, :, iy, ix].astype(np.int64), w64)
            full[:, :, iy * stride : iy * stride + k, ix * stride : ix * stride + k] += contrib
    out_h, out_w = full.shape[2] - 2 * pad, full.shape[3] - 2 * pad
    acc = full[:, :, pad : pad + out_h, pad : pad + out_w].astype(np.int32)
    return np.clip((acc + bias.reshape(1, o, 1, 1)) >> shift, 0, 127).astype(np.int8)


def run(op, tiles, k, stride, pad, shift=8, seed=0):
    s = topi.schedule_conv2d_transpose_packed(op, ENV, tiles)
    f = accel.build(s, op.args, name="conv_transpose")
    rng = np.random.default_rng(seed)
    _, cb, h, w, _, _ = op.data.shape
    ob = op.kernel.shape[0]
    x = rng.integers(-128, 128, (1, cb * B, h, w), dtype=np.int8)
    wt = rng.integers(-128, 128, (ob * B, cb * B, k, k), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (ob * B,), dtype=np.int32)
    out = np.zeros(op.res.shape, np.int8)
    kernel = topi.pack_kernel_transpose(wt, ENV, stride, pad)
    f(topi.pack_nchw(x, ENV), kernel, bias.reshape(ob, 1, B), out)
    _, _, rows, s1, cols, s2, _, _ = out.shape
    packed = out.reshape(1, ob, rows * s1, cols * s2, 1, B)  # the same memory, packed layout
    expected = reference(x, wt, bias, stride, pad, shift)
    np.testing.assert_array_equal(topi.unpack_nchw(packed), expected)


@pytest.mark.parametrize(
    "hw, ci, co",
    [(4, 512, 256), (8, 256, 128), (16, 128, 64)],
    ids=["4x4_512-256", "8x8_256-128", "16x16_128-64"],
)
def test_dcgan_generator_layers_with_default_tiles(hw, ci, co):
    # DCGAN's upsampling layers: 4x4 kernels, stride 2, padding 1, doubling height and width.
    op = declare(hw, ci, co, 4, 2, 1)
    assert op.res.shape[2] * 2 == 2 * hw
    run(op, topi.default_transpose_tiles(op, ENV), 4, 2, 1)


@pytest.mark.parametrize(
    "k, stride, pad", [(2, 2, 0), (4, 2, 0), (4, 2, 2), (6, 2, 1), (3, 3, 0), (6, 3, 3), (1, 1, 0)]
)
def test_kernel_stride_padding_combinations(k, stride, pad):
    op = declare(5, 32, 32, k, stride, pad)
    run(op, topi.default_transpose_tiles(op, ENV, threads=1), k, stride, pad, seed=k + pad)


@settings(max_examples=8, deadline=None)
@given(
    hw=st.integers(2, 7),
    ci=st.sampled_from([1, 2]),
    co=st.sampled_from([1, 2, 4]),
    pad=st.integers(0, 2),
    data=st.data(),
)
def test_random_stride_2_layers_and_tilings(hw, ci, co, pad, data):
    k = data.draw(st.sampled_from([2, 4]))
    assume((hw - 1) * 2 - 2 * pad + k > 0)
    shift = data.draw(st.integers(0, 12))
    op = declare(hw, ci * B, co * B, k, 2, pad, shift)
    rows, cols = op.res.shape[2], op.res.shape[4]
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    threads = data.draw(st.sampled_from([t for t in (1, 2) if co % t == 0]))
    tiles = topi.Conv2dTiles(
        oc_blocks=data.draw(st.sampled_from(divisors(co // threads))),
        rows=data.draw(st.sampled_from(divisors(rows))),
        cols=data.draw(st.sampled_from(divisors(cols))),
        ic_blocks=data.draw(st.sampled_from(divisors(ci))),
        threads=threads,
    )
    run(op, tiles, k, 2, pad, shift, seed=hw)


def test_unsupported_cases_say_what_is_missing():
    w = np.zeros((16, 16, 3, 3), np.int8)
    with pytest.raises(ScheduleError, match="kernel size 3 is not a multiple of stride 2"):
        topi.pack_kernel_transpose(w, ENV, 2, 1)
    with pytest.raises(ScheduleError, match="start at input rows \\[0, 0, 1, 1\\]"):
        topi.pack_kernel_transpose(np.zeros((16, 16, 4, 4), np.int8), ENV, 4, 2)
    with pytest.raises(ScheduleError, match="output size that is not a multiple"):
        topi.pack_kernel_transpose(np.zeros((16, 16, 6, 6), np.int8), ENV, 3, 2)
    data = te.placeholder((1, 1, 4, 4, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((1, 1, 4, 4, 1, 1, B, B), name="kernel", dtype="int8")
    with pytest.raises(ScheduleError, match="not cut into 2x2 phases"):
        topi.conv2d_transpose_packed(data, kernel, ENV, 2, 1)


@pytest.mark.parametrize("threads, row_threads", [(2, 2), (1, 4), (4, 1)])
def test_virtual_threads_along_channels_and_phase_rows(threads, row_threads):
    op = declare(8, 32, 64, 4, 2, 1)  # 8 phase rows in tiles of 2, 4 channel blocks in tiles of 1
    run(op, topi.Conv2dTiles(1, 2, 8, 1, threads, row_threads), 4, 2, 1, seed=threads)
