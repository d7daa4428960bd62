"""Matrix multiply on the host under many schedules, bit for bit against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te


def declare(m, n, k):
    A = te.placeholder((m, k), "int8", "A")
    B = te.placeholder((n, k), "int8", "B")
    r = te.reduce_axis((0, k), "r")
    C = te.compute(
        (m, n), lambda i, j: te.sum(A[i, r].astype("int32") * B[j, r].astype("int32"), axis=r), "C"
    )
    return A, B, C, r


def reference(a, b):
    return (a.astype(np.int64) @ b.astype(np.int64).T).astype(np.int32)


def run(s, args, shapes, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, shapes[0], dtype=np.int8)
    b = rng.integers(-128, 128, shapes[1], dtype=np.int8)
    c = np.full(shapes[2], 7, np.int32)  # garbage the program must overwrite
    accel.build(s, args)(a, b, c)
    np.testing.assert_array_equal(c, reference(a, b))


def sched_default(s, A, B, C, r):
    pass


def sched_split_reorder(s, A, B, C, r):
    i, j = C.op.axis
    jo, ji = s[C].split(j, factor=4)
    ro, ri = s[C].split(r, factor=8)
    s[C].reorder(ro, i, jo, ri, ji)


def sched_tile(s, A, B, C, r):
    s[C].tile(*C.op.axis, 4, 8)


def sched_fuse(s, A, B, C, r):
    f = s[C].fuse(*C.op.axis)
    s[C].split(f, factor=5)


def sched_nparts(s, A, B, C, r):
    s[C].split(C.op.axis[0], nparts=3)


def sched_cache_read_compute_at(s, A, B, C, r):
    AA = s.cache_read(A, "local", [C])
    BB = s.cache_read(B, "local", [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 4, 4)
    ro, ri = s[C].split(r, factor=8)
    s[C].reorder(io, jo, ro, ii, ji, ri)
    s[AA].compute_at(s[C], ro)
    s[BB].compute_at(s[C], ro)


def sched_cache_write(s, A, B, C, r):
    CC = s.cache_write(C, "local")
    io, ii = s[C].split(s[C].op.axis[0], factor=4)
    s[CC].compute_at(s[C], io)
    ro, ri = s[CC].split(s[CC].op.reduce_axis[0], factor=4)
    s[CC].reorder(ro, *s[CC].op.axis, ri)


def sched_unroll_vectorize(s, A, B, C, r):
    i, j = C.op.axis
    jo, ji = s[C].split(j, factor=4)
    s[C].unroll(jo)
    s[C].vectorize(ji)


@pytest.mark.parametrize(
    "schedule",
    [
        sched_default,
        sched_split_reorder,
        sched_tile,
        sched_fuse,
        sched_nparts,
        sched_cache_read_compute_at,
        sched_cache_write,
        sched_unroll_vectorize,
    ],
)
@pytest.mark.parametrize("shape", [(16, 16, 32), (13, 10, 21)])
def test_matmul_schedules(schedule, shape):
    m, n, k = shape
    A, B, C, r = declare(m, n, k)
    s = te.create_schedule(C.op)
    schedule(s, A, B, C, r)
    run(s, [A, B, C], [(m, k), (n, k), (m, n)])


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    k=st.integers(1, 24),
    fi=st.integers(1, 8),
    fj=st.integers(1, 8),
    fk=st.integers(1, 8),
    cache=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_random_shapes_and_split_factors(m, n, k, fi, fj, fk, cache, seed):
    A, B, C, r = declare(m, n, k)
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C]) if cache else None
    io, jo, ii, ji = s[C].tile(*C.op.axis, fi, fj)
    ro, ri = s[C].split(r, factor=fk)
    s[C].reorder(io, jo, ro, ii, ri, ji)
    if cache:
        s[AA].compute_at(s[C], ro)
    run(s, [A, B, C], [(m, k), (n, k), (m, n)], seed)


def test_max_reduction_and_inline():
    A = te.placeholder((6, 9), "int32", "A")
    Sq = te.compute(A.shape, lambda i, j: A[i, j] * 3 - 1, "Sq")
    r = te.reduce_axis((0, 9), "r")
    M = te.compute((6,), lambda i: te.max(Sq[i, r], axis=r), "M")
    s = te.create_schedule(M.op)
    s[Sq].compute_inline()
    a = np.random.default_rng(1).integers(-1000, 1000, (6, 9)).astype(np.int32)
    out = np.zeros(6, np.int32)
    accel.build(s, [A, M])(a, out)
    np.testing.assert_array_equal(out, (a * 3 - 1).max(axis=1))


def test_wrong_arguments_are_refused():
    A, B, C, r = declare(4, 4, 4)
    f = accel.build(te.create_schedule(C.op), [A, B, C])
    a = np.zeros((4, 4), np.int8)
    with pytest.raises(accel.ArgumentError, match="takes 3 arrays"):
        f(a, a)
    with pytest.raises(accel.ArgumentError, match="argument B has shape"):
        f(a, np.zeros((4, 5), np.int8), np.zeros((4, 4), np.int32))
    with pytest.raises(accel.ArgumentError, match="argument C has dtype int8, expected int32"):
        f(a, a, np.zeros((4, 4), np.int8))
