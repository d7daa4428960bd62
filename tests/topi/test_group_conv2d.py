"""Grouped convolutions on the simulator equal a numpy reference that convolves group by group."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te, topi
from accel.errors import ScheduleError

ENV = accel.get_env()
B = ENV.BLOCK_IN


def declare(hw, ci, co, groups, k, stride, pad, shift=8):
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((co // B, ci // groups // B, k, k, B, B), name="kernel", dtype="int8")
    bias = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
    return topi.group_conv2d_packed(data, kernel, ENV, groups, stride, pad, shift, bias=bias)


def reference(x, w, bias, groups, stride, pad, shift):
    """Each group of output channels sees only its group of input channels."""
    o, i_g, k, _ = w.shape
    o_g = o // groups
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[2] + 2 * pad - k) // stride + 1
    out_w = (x.shape[3] + 2 * pad - k) // stride + 1
    acc = np.zeros((x.shape[0], o, out_h, out_w), np.int64)
    for g in range(groups):
        xs, os_ = slice(g * i_g, (g + 1) * i_g), slice(g * o_g, (g + 1) * o_g)
        for r in range(k):
            for c in range(k):
                win = xp[:, xs, r : r + out_h * stride : stride, c : c + out_w * stride : stride]
                acc[:, os_] += np.einsum("bihw,oi->bohw", win, w[os_, :, r, c].astype(np.int64))
    acc = acc.astype(np.int32) + bias.reshape(1, o, 1, 1)
    return np.clip(acc >> shift, 0, 127).astype(np.int8)


def run(op, tiles, groups, stride, pad, shift=8, seed=0):
    f = accel.build(topi.schedule_conv2d_packed(op, ENV, tiles), op.args, name="group_conv")
    rng = np.random.default_rng(seed)
    _, cb, h, w, _, _ = op.data.shape
    ob, icb_g, k = op.kernel.shape[:3]
    x = rng.integers(-128, 128, (1, cb * B, h, w), dtype=np.int8)
    wt = rng.integers(-128, 128, (ob * B, icb_g * B, k, k), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (ob * B,), dtype=np.int32)
    out = np.zeros(op.res.shape, np.int8)
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    assert out.shape == (1, groups, ob // groups, out_h, out_w, 1, B)
    f(topi.pack_nchw(x, ENV), topi.pack_kernel(wt, ENV), bias.reshape(ob, 1, B), out)
    packed = out.reshape(1, ob, *out.shape[3:])  # the same memory in the packed layout
    expected = reference(x, wt, bias, groups, stride, pad, shift)
    np.testing.assert_array_equal(topi.unpack_nchw(packed), expected)


@pytest.mark.parametrize(
    "hw, ci, co, groups, k, stride",
    [
        (28, 128, 128, 4, 3, 1),  # ResNeXt-style: 2 blocks per group
        (14, 256, 256, 16, 3, 1),  # one block per group
        (14, 128, 256, 2, 3, 2),
        (7, 64, 64, 4, 1, 1),
    ],
)
def test_grouped_layers_with_default_tiles(hw, ci, co, groups, k, stride):
    op = declare(hw, ci, co, groups, k, stride, k // 2)
    run(op, topi.default_tiles(op, ENV), groups, stride, k // 2)


@settings(max_examples=8, deadline=None)
@given(
    hw=st.integers(3, 9),
    groups=st.sampled_from([1, 2, 3]),
    ci_g=st.sampled_from([1, 2]),
    co_g=st.sampled_from([1, 2]),
    k=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    data=st.data(),
)
def test_random_grouped_convolutions_and_tilings(hw, groups, ci_g, co_g, k, stride, data):
    pad = data.draw(st.integers(0, k // 2))
    op = declare(hw, groups * ci_g * B, groups * co_g * B, groups, k, stride, pad)
    out_h, out_w = op.res.shape[3:5]
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    threads = data.draw(st.sampled_from([t for t in (1, 2) if co_g % t == 0]))
    tiles = topi.Conv2dTiles(
        oc_blocks=data.draw(st.sampled_from(divisors(co_g // threads))),
        rows=data.draw(st.sampled_from(divisors(out_h))),
        cols=data.draw(st.sampled_from(divisors(out_w))),
        ic_blocks=data.draw(st.sampled_from(divisors(ci_g))),
        threads=threads,
    )
    run(op, tiles, groups, stride, pad, seed=hw)


def test_groups_must_hold_whole_channel_blocks():
    data = te.placeholder((1, 2, 8, 8, 1, B), name="data", dtype="int8")
    depthwise = te.placeholder((2, 1, 3, 3, B, B), name="kernel", dtype="int8")
    with pytest.raises(ScheduleError, match="32 groups .* whole blocks of 16 channels"):
        topi.group_conv2d_packed(data, depthwise, ENV, groups=32)
    with pytest.raises(ScheduleError, match="1 input-channel blocks per group; .* has 2"):
        topi.group_conv2d_packed(data, depthwise, ENV, groups=1)
