"""Bound inference: the region a producer computes at a consumer's loop is exactly what it reads."""

import itertools

import numpy as np
import pytest

from accel import te
from accel.schedule.bounds import infer_bounds


@pytest.mark.parametrize("at", [0, 1, 2])
def test_stencil_region_at_each_level(at):
    A = te.placeholder((20, 20), "int32", "A")
    P = te.compute((20, 20), lambda i, j: A[i, j] * 2, "P")
    C = te.compute((18, 18), lambda i, j: P[i, j] + P[i + 2, j + 1], "C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=6)
    leaves = [io, ii, C.op.axis[1]]
    s[P].compute_at(s[C], leaves[at])
    bounds = infer_bounds(s)
    got = bounds[s[P]].region_extent

    def reads(o, i, j):
        y = o * 6 + i
        return [(y, j), (y + 2, j + 1)]

    extents = [3, 6, 18]
    outer = extents[: at + 1]
    inner = extents[at + 1 :]
    want = [0, 0]
    for o in itertools.product(*[range(e) for e in outer]):
        pts = [p for i in itertools.product(*[range(e) for e in inner]) for p in reads(*o, *i)]
        arr = np.array(pts)
        want = [max(w, int(x)) for w, x in zip(want, arr.max(axis=0) - arr.min(axis=0) + 1)]
    assert got == tuple(want)


def test_root_stage_covers_its_domain():
    A = te.placeholder((5, 7), "int8", "A")
    B = te.compute((5, 7), lambda i, j: A[i, j], "B")
    C = te.compute((5, 7), lambda i, j: B[i, j], "C")
    s = te.create_schedule(C.op)
    assert infer_bounds(s)[s[B]].region_extent == (5, 7)


def test_split_leaves_have_ceiling_extents_and_a_guard():
    A = te.placeholder((10,), "int32", "A")
    C = te.compute((10,), lambda i: A[i] + 1, "C")
    s = te.create_schedule(C.op)
    xo, xi = s[C].split(C.op.axis[0], factor=4)
    sb = infer_bounds(s)[s[C]]
    assert (sb.extent[xo], sb.extent[xi]) == (3, 4)
    assert len(sb.guards) == 1
    s2 = te.create_schedule(C.op)
    xo, xi = s2[C].split(C.op.axis[0], nparts=3)
    sb2 = infer_bounds(s2)[s2[C]]
    assert (sb2.extent[xo], sb2.extent[xi]) == (3, 4)


def test_fused_extent():
    A = te.placeholder((6, 5), "int32", "A")
    C = te.compute((6, 5), lambda i, j: A[i, j], "C")
    s = te.create_schedule(C.op)
    f = s[C].fuse(*C.op.axis)
    assert infer_bounds(s)[s[C]].extent[f] == 30


def test_padded_producer_region_is_guarded_to_its_domain():
    A = te.placeholder((8,), "int32", "A")
    P = te.compute((8,), lambda i: A[i] + 1, "P")
    C = te.compute((8,), lambda i: te.if_then_else(i >= 1, P[i - 1], 0) + P[i], "C")
    s = te.create_schedule(C.op)
    xo, xi = s[C].split(C.op.axis[0], factor=4)
    s[P].compute_at(s[C], xo)
    sb = infer_bounds(s)[s[P]]
    assert sb.region_extent == (5,)
    assert sb.guards  # the region starts at -1 for the first tile


def test_region_through_a_fused_axis_is_tight_and_guarded():
    import accel

    A = te.placeholder((12, 10), "int32", "A")
    P = te.compute((12, 10), lambda i, j: A[i, j] * 3, "P")
    C = te.compute((12, 10), lambda i, j: P[i, j] + 1, "C")
    s = te.create_schedule(C.op)
    fo, fi = s[C].split(s[C].fuse(*C.op.axis), factor=7)
    s[P].compute_at(s[C], fo)
    sb = infer_bounds(s)[s[P]]
    # 7 consecutive elements of a 10-wide row touch at most 2 rows (enumerated below).
    rows = max(
        len({(fo_ * 7 + k) // 10 for k in range(7) if fo_ * 7 + k < 120}) for fo_ in range(18)
    )
    assert sb.region_extent == (rows, 10)
    assert sb.guards  # the last tile's region reaches past row 11
    a = np.arange(120, dtype=np.int32).reshape(12, 10)
    c = np.zeros_like(a)
    accel.build(s, [A, C])(a, c)
    np.testing.assert_array_equal(c, a * 3 + 1)
