"""A padded NCHW 2-D convolution on the host, against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te


def conv2d(n, c, h, w, o, kh, kw, stride, pad):
    data = te.placeholder((n, c, h, w), "int8", "data")
    kernel = te.placeholder((o, c, kh, kw), "int8", "kernel")
    padded = te.compute(
        (n, c, h + 2 * pad, w + 2 * pad),
        lambda b, ci, y, x: te.if_then_else(
            te.all(y >= pad, y < h + pad, x >= pad, x < w + pad),
            data[b, ci, y - pad, x - pad],
            te.const(0, "int8"),
        ),
        "data_pad",
    )
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    rc = te.reduce_axis((0, c), "rc")
    ry = te.reduce_axis((0, kh), "ry")
    rx = te.reduce_axis((0, kw), "rx")
    out = te.compute(
        (n, o, oh, ow),
        lambda b, oc, y, x: te.sum(
            padded[b, rc, y * stride + ry, x * stride + rx].astype("int32")
            * kernel[oc, rc, ry, rx].astype("int32"),
            axis=[rc, ry, rx],
        ),
        "conv",
    )
    return data, kernel, padded, out


def reference(d, k, stride, pad):
    n, c, h, w = d.shape
    o, _, kh, kw = k.shape
    dp = np.pad(d.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    for y in range(kh):
        for x in range(kw):
            patch = dp[:, :, y : y + stride * oh : stride, x : x + stride * ow : stride]
            out += np.einsum("nchw,oc->nohw", patch, k[:, :, y, x].astype(np.int64))
    return out.astype(np.int32)


def check(shape, schedule=None, seed=0):
    data, kernel, padded, out = conv2d(*shape)
    s = te.create_schedule(out.op)
    if schedule:
        schedule(s, padded, out)
    rng = np.random.default_rng(seed)
    d = rng.integers(-128, 128, data.shape, dtype=np.int8)
    k = rng.integers(-128, 128, kernel.shape, dtype=np.int8)
    o = np.zeros(out.shape, np.int32)
    accel.build(s, [data, kernel, out])(d, k, o)
    np.testing.assert_array_equal(o, reference(d, k, shape[7], shape[8]))


def tiled(s, padded, out):
    b, oc, y, x = out.op.axis
    rc, ry, rx = out.op.reduce_axis
    yo, xo, yi, xi = s[out].tile(y, x, 4, 4)
    oco, oci = s[out].split(oc, factor=2)
    rco, rci = s[out].split(rc, factor=2)
    s[out].reorder(b, oco, yo, xo, rco, oci, yi, xi, rci, ry, rx)
    s[padded].compute_at(s[out], rco)


def inlined(s, padded, out):
    s[padded].compute_inline()


SHAPES = [
    (1, 4, 9, 9, 6, 3, 3, 1, 1),
    (2, 3, 8, 10, 5, 3, 3, 2, 1),
    (1, 8, 7, 7, 4, 1, 1, 2, 0),
    (1, 4, 12, 12, 4, 5, 5, 1, 2),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("schedule", [None, tiled, inlined])
def test_conv2d(shape, schedule):
    check(shape, schedule)


@settings(max_examples=15, deadline=None)
@given(
    c=st.integers(1, 6),
    h=st.integers(3, 10),
    o=st.integers(1, 6),
    k=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    pad=st.integers(0, 1),
    seed=st.integers(0, 100),
)
def test_random_convolutions_tiled(c, h, o, k, stride, pad, seed):
    check((1, c, h, h + 1, o, k, k, stride, pad), tiled, seed)
