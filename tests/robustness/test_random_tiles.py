"""Random tiles for the operators, valid or not: a typed error or the right answer, and the
device clean afterwards. The references are written in the test from the operators' meaning."""

from __future__ import annotations

import numpy as np
from hypothesis import given, seed, settings
from hypothesis import strategies as st

import accel
from accel import te, topi
from accel.errors import AccelError

ENV = accel.get_env()
B = ENV.BLOCK_IN
NONSENSE = [-1, 0, 4, 64, 10**6]


def sizes(*valid):
    """Mostly sizes that fit the small shapes below (about 19 draws in 20), now and then
    nonsense."""
    return st.sampled_from(list(valid) * (16 // len(valid)) * 6 + NONSENSE)


COMPARED: list = []  # the tilings that built and ran, for a look at the campaign's coverage


def conv_reference(x, w, shift):
    """3x3, stride 1, pad 1, then >> shift and clip [0, 127]."""
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    h = x.shape[2]
    acc = np.zeros((x.shape[0], w.shape[0], h, h), np.int64)
    for r in range(3):
        for c in range(3):
            acc += np.einsum("bihw,oi->bohw", xp[:, :, r : r + h, c : c + h], w[:, :, r, c])
    return np.clip(acc.astype(np.int32) >> shift, 0, 127).astype(np.int8)


@seed(20261201)
@settings(max_examples=40, deadline=None)
@given(
    oc=sizes(1, 2),
    rows=sizes(1, 2, 3, 6),
    cols=sizes(1, 2, 3, 6),
    ic=sizes(1, 2),
    threads=sizes(1, 2),
    row_threads=sizes(1, 2, 3),
    s=st.data(),
)
def test_random_conv2d_tiles(oc, rows, cols, ic, threads, row_threads, s):
    data = te.placeholder((1, 2, 6, 6, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((2, 2, 3, 3, B, B), name="kernel", dtype="int8")
    op = topi.conv2d_packed(data, kernel, ENV, 1, 1, shift=6)
    tiles = topi.Conv2dTiles(oc, rows, cols, ic, threads, row_threads)
    rng = np.random.default_rng(s.draw(st.integers(0, 100)))
    x = rng.integers(-128, 128, (1, 2 * B, 6, 6), dtype=np.int8)
    w = rng.integers(-128, 128, (2 * B, 2 * B, 3, 3), dtype=np.int8)
    try:
        f = accel.build(topi.schedule_conv2d_packed(op, ENV, tiles), op.args, name="conv")
        out = np.zeros(op.res.shape, np.int8)
        f(topi.pack_nchw(x, ENV), topi.pack_kernel(w, ENV), out)
    except AccelError:
        return
    COMPARED.append(tiles)
    np.testing.assert_array_equal(topi.unpack_nchw(out), conv_reference(x, w, 6))


@seed(20261201)
@settings(max_examples=25, deadline=None)
@given(c=sizes(1, 2), rows=sizes(1, 5), threads=sizes(1, 2))
def test_random_vector_tiles(c, rows, threads):
    x = te.placeholder((1, 2, 5, 5, 1, B), name="x", dtype="int8")
    op = topi.relu_packed(x, ENV)
    data = np.random.default_rng(0).integers(-128, 128, (1, 2 * B, 5, 5), dtype=np.int8)
    try:
        schedule = topi.schedule_vector_packed(op, ENV, topi.VectorTiles(c, rows, threads))
        f = accel.build(schedule, op.args, name="relu")
        out = np.zeros(op.res.shape, np.int8)
        f(topi.pack_nchw(data, ENV), out)
    except AccelError:
        return
    np.testing.assert_array_equal(topi.unpack_nchw(out), np.maximum(data, 0))
