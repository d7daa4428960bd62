"""Tiled host programs stay vectorized and exact.

Tilings, splits, reorders and cached reads of a matmul and of a convolution-like reduction are
built and checked bit for bit against numpy references written here; the README's schedule is
checked to leave no Python loop over tiles; the two host passes that make this possible
(``inline_copies``, ``distribute_tiles``) are tested on hand-written programs, one test per
refusal; and the dtype the code generator picks for a product is checked on the inputs where a
cheaper one would lose bits.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from accel_schedules import packed_matmul
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te
from accel.lower import ir
from accel.lower.codegen_host import generate_host_source, vector_plan
from accel.lower.passes.distribute_tiles import axis_limit, distribute_tiles, merge_axes
from accel.lower.passes.inline_copies import inline_copies
from accel.te.expr import Const, Var

MATMUL_AXES = ("io", "jo", "ko", "ii", "ji", "ki")


def matmul(m, n, k, dtype="int8", acc="int32"):
    A = te.placeholder((m, k), dtype, "A")
    B = te.placeholder((n, k), dtype, "B")
    r = te.reduce_axis((0, k), "r")
    C = te.compute(
        (m, n), lambda i, j: te.sum(A[i, r].astype(acc) * B[j, r].astype(acc), axis=r), "C"
    )
    return A, B, C


def wrapped(exact: np.ndarray, dtype: str) -> np.ndarray:
    """Python integers wrapped to ``dtype`` as two's complement does."""
    bits = np.iinfo(dtype).bits
    u = np.vectorize(lambda v: int(v) % (1 << bits), otypes=[object])(exact)
    return np.vectorize(lambda v: v - (1 << bits) if v >= 1 << (bits - 1) else v, otypes=[object])(
        u
    ).astype(dtype)


def matmul_reference(a, b, acc="int32"):
    """Exact sums in Python integers, wrapped to the accumulator once (int32 arithmetic wraps
    at every step, which ends in the same value)."""
    return wrapped(a.astype(object) @ b.astype(object).T, acc)


def schedule_matmul(A, B, C, tile, split, order, cache_a, cache_b, at):
    """``tile(i, j)``, ``split(k)``, ``reorder(order)``, and cached reads of A and/or B computed
    at the loop named ``at`` (or at the root when ``at`` is None)."""
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C]) if cache_a else None
    BB = s.cache_read(B, "local", [C]) if cache_b else None
    io, jo, ii, ji = s[C].tile(*C.op.axis, *tile)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=split)
    loops = dict(io=io, jo=jo, ko=ko, ii=ii, ji=ji, ki=ki)
    s[C].reorder(*(loops[name] for name in order))
    for cache in (AA, BB):
        if cache is not None and at is not None:
            s[cache].compute_at(s[C], loops[at])
    return s


def run_matmul(s, A, B, C, seed, acc="int32"):
    rng = np.random.default_rng(seed)
    info = np.iinfo(A.dtype)
    a = rng.integers(info.min, info.max, A.shape, dtype=A.dtype, endpoint=True)
    b = rng.integers(info.min, info.max, B.shape, dtype=B.dtype, endpoint=True)
    c = np.full(C.shape, 7, acc)  # garbage the program must overwrite
    f = accel.build(s, [A, B, C])
    f(a, b, c)
    np.testing.assert_array_equal(c, matmul_reference(a, b, acc))
    return f


# -- matmul under tilings, bit for bit -------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    k=st.integers(1, 40),
    ti=st.integers(1, 9),
    tj=st.integers(1, 9),
    split=st.integers(1, 9),
    order=st.permutations(MATMUL_AXES),
    cache_a=st.booleans(),
    cache_b=st.booleans(),
    at=st.sampled_from([None, *MATMUL_AXES]),
    seed=st.integers(0, 1000),
)
def test_tiled_matmul_equals_numpy(m, n, k, ti, tj, split, order, cache_a, cache_b, at, seed):
    A, B, C = matmul(m, n, k)
    s = schedule_matmul(A, B, C, (ti, tj), split, order, cache_a, cache_b, at)
    run_matmul(s, A, B, C, seed)


@pytest.mark.parametrize(
    "tile, split, cache, order",
    [
        (16, 16, True, ("io", "jo", "ko", "ii", "ji", "ki")),  # the README's schedule
        (8, 4, False, ("ko", "io", "jo", "ki", "ii", "ji")),
        (32, 64, True, ("jo", "io", "ko", "ji", "ki", "ii")),
        (64, 16, True, ("io", "ko", "jo", "ii", "ki", "ji")),
        (24, 48, True, ("io", "jo", "ko", "ii", "ji", "ki")),  # neither divides
    ],
)
def test_tiled_matmul_runs_as_one_product_without_python_loops(tile, split, cache, order):
    A, B, C = matmul(96, 80, 128)
    s = schedule_matmul(A, B, C, (tile, tile), split, order, cache, False, "ko")
    f = run_matmul(s, A, B, C, seed=tile + split)
    assert "for " not in f.source
    assert f.source.count("rt.contract(") == 1
    assert "einsum" not in f.source


def test_readme_schedule_has_no_python_loop_over_tiles():
    A, B, C = matmul(1024, 512, 256)
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=16)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    s[AA].compute_at(s[C], ko)
    source = accel.build(s, [A, B, C], name="matmul").source
    # One initialisation, one product of the whole matrices, one update: no loop at all, and
    # a float32 product, which is exact for 256 int8 x int8 terms (256 * 2^14 <= 2^24).
    assert "for " not in source
    assert source.count("rt.contract(") == 1
    assert "rt.load(A, 0, (256, 1), (1024, 256))" in source
    assert "'float32'" in source


# -- the product's dtype: exact where a cheaper one would not be ------------------------------


@pytest.mark.parametrize(
    "dtype, acc, k, compute",
    [
        ("int8", "int32", 1024, "float32"),  # 1024 * 2^14 = 2^24: float32 is still exact
        # 1101 * 127^2 is odd and above 2^24: no float32 holds it (the extremes test below)
        ("int8", "int32", 1101, "float64"),
        ("int16", "int32", 300, "float64"),  # sums leave int32: wrap-around, exactly
        ("int32", "int32", 20, "int64"),  # products wrap in int32; float64 would round
        ("uint8", "int32", 64, "float32"),
        ("int8", "int8", 40, "float32"),  # the product itself wraps in int8
    ],
)
def test_product_dtype_is_exact(dtype, acc, k, compute):
    A, B, C = matmul(6, 5, k, dtype, acc)
    s = te.create_schedule(C.op)
    s[C].tile(*C.op.axis, 2, 2)
    s[C].split(C.op.reduce_axis[0], factor=8)
    f = run_matmul(s, A, B, C, seed=k, acc=acc)
    assert f"'{compute}'" in f.source
    # Extreme inputs: the largest sums, of odd or of even products.
    info = np.iinfo(dtype)
    for extreme in (info.min, info.max):
        a = np.full(A.shape, extreme, dtype)
        c = np.zeros(C.shape, acc)
        f(a, a[:5], c)
        np.testing.assert_array_equal(c, matmul_reference(a, a[:5], acc))


def test_a_store_that_is_not_injective_keeps_its_order():
    # for i, j: C[i + j] = i*8 + j: the last write to C[t] is the one with the largest i, which
    # only a loop in program order guarantees.
    C = ir.Buffer("C", (7,), "int32")
    i, j = Var("i"), Var("j")
    body = ir.loop(i, 4, ir.loop(j, 4, ir.Store(C, i + j, i * 8 + j)))
    source, _ = generate_host_source("f", [C], body)
    assert "for " in source
    assert vector_plan(body) is None


def test_a_reduction_axis_no_factor_reads_counts_every_point():
    # C[i] = sum over 5 points of A[i] * B[i]: five equal products, not one.
    A = te.placeholder((4,), "int8", "A")
    B = te.placeholder((4,), "int8", "B")
    k = te.reduce_axis((0, 5), "k")
    C = te.compute((4,), lambda i: te.sum(A[i].astype("int32") * B[i].astype("int32"), axis=k))
    f = accel.build(te.create_schedule(C.op), [A, B, C])
    a = np.array([1, -2, 3, 127], np.int8)
    c = np.zeros(4, np.int32)
    f(a, a, c)
    np.testing.assert_array_equal(c, 5 * a.astype(np.int32) ** 2)


# -- a convolution-like reduction under tilings ----------------------------------------------

CONV_AXES = ("oc", "yo", "xo", "co", "yi", "xi", "ci", "ry", "rx")


def conv(c, h, w, o, kh, kw, stride):
    """out[o, y, x] = sum_{c, ry, rx} D[c, y*stride + ry, x*stride + rx] * W[o, c, ry, rx]."""
    D = te.placeholder((c, h, w), "int8", "D")
    W = te.placeholder((o, c, kh, kw), "int8", "W")
    rc = te.reduce_axis((0, c), "rc")
    ry = te.reduce_axis((0, kh), "ry")
    rx = te.reduce_axis((0, kw), "rx")
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = te.compute(
        (o, oh, ow),
        lambda oc, y, x: te.sum(
            D[rc, y * stride + ry, x * stride + rx].astype("int32")
            * W[oc, rc, ry, rx].astype("int32"),
            axis=[rc, ry, rx],
        ),
        "out",
    )
    return D, W, out


def conv_reference(d, w, stride):
    o, c, kh, kw = w.shape
    oh, ow = (d.shape[1] - kh) // stride + 1, (d.shape[2] - kw) // stride + 1
    out = np.zeros((o, oh, ow), object)
    for y in range(kh):
        for x in range(kw):
            patch = d[:, y : y + stride * oh : stride, x : x + stride * ow : stride]
            out += np.einsum("chw,oc->ohw", patch.astype(object), w[:, :, y, x].astype(object))
    return wrapped(out, "int32")


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(1, 4),
    h=st.integers(3, 12),
    w=st.integers(3, 12),
    o=st.integers(1, 4),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    stride=st.integers(1, 2),
    ty=st.integers(1, 5),
    tx=st.integers(1, 5),
    split=st.integers(1, 3),
    order=st.permutations(CONV_AXES),
    at=st.sampled_from([None, "oc", "yo", "xo", "co"]),
    seed=st.integers(0, 1000),
)
def test_tiled_convolution_equals_numpy(c, h, w, o, kh, kw, stride, ty, tx, split, order, at, seed):
    D, W, out = conv(c, h, w, o, kh, kw, stride)
    s = te.create_schedule(out.op)
    DD = s.cache_read(D, "local", [out]) if at is not None else None
    oc, y, x = out.op.axis
    rc, ry, rx = out.op.reduce_axis
    yo, xo, yi, xi = s[out].tile(y, x, ty, tx)
    co, ci = s[out].split(rc, factor=split)
    loops = dict(oc=oc, yo=yo, xo=xo, co=co, yi=yi, xi=xi, ci=ci, ry=ry, rx=rx)
    s[out].reorder(*(loops[name] for name in order))
    if DD is not None:
        s[DD].compute_at(s[out], loops[at])
    rng = np.random.default_rng(seed)
    d = rng.integers(-128, 128, D.shape, dtype=np.int8)
    k = rng.integers(-128, 128, W.shape, dtype=np.int8)
    res = np.full(out.shape, 7, np.int32)
    accel.build(s, [D, W, out])(d, k, res)
    np.testing.assert_array_equal(res, conv_reference(d, k, stride))


def test_tiled_convolution_with_a_cached_tile_is_one_product():
    D, W, out = conv(4, 18, 18, 8, 3, 3, 1)
    s = te.create_schedule(out.op)
    DD = s.cache_read(D, "local", [out])
    oc, y, x = out.op.axis
    rc, ry, rx = out.op.reduce_axis
    yo, xo, yi, xi = s[out].tile(y, x, 4, 8)
    co, ci = s[out].split(rc, factor=2)
    s[out].reorder(yo, xo, co, oc, yi, xi, ci, ry, rx)
    s[DD].compute_at(s[out], co)
    f = accel.build(s, [D, W, out])
    assert "for " not in f.source and f.source.count("rt.contract(") == 1
    rng = np.random.default_rng(3)
    d = rng.integers(-128, 128, D.shape, dtype=np.int8)
    k = rng.integers(-128, 128, W.shape, dtype=np.int8)
    res = np.zeros(out.shape, np.int32)
    f(d, k, res)
    np.testing.assert_array_equal(res, conv_reference(d, k, 1))


# -- inline_copies on hand-written programs --------------------------------------------------

N = 4


def _copy_program(*, scope=ir.LOCAL, size=N * N, guard=None, consumer_guard=None, after=()):
    """``allocate T; for a, b: [if guard] T[a*4 + b] = X[a*8 + b]; for i, j: [if consumer_guard]
    Y[i*4 + j] = T[i*4 + j]; after...``."""
    X = ir.Buffer("X", (N * 8,), "int8")
    Y = ir.Buffer("Y", (N * N,), "int8")
    T = ir.Buffer("T", (size,), "int8", scope)
    a, b, i, j = Var("a"), Var("b"), Var("i"), Var("j")
    store = ir.Store(T, a * N + b, ir.Load(X, a * 8 + b))
    if guard is not None:
        store = ir.IfThenElse(guard(a, b), store)
    read = ir.Store(Y, i * N + j, ir.Load(T, i * N + j))
    if consumer_guard is not None:
        read = ir.IfThenElse(consumer_guard(i, j), read)
    copy = ir.loop(a, N, ir.loop(b, N, store))
    use = ir.loop(i, N, ir.loop(j, N, read))
    return ir.Allocate(T, ir.seq(copy, use, *(f(X, T) for f in after))), X, Y


def test_a_local_copy_is_read_through():
    program, X, Y = _copy_program()
    out = inline_copies(program)
    i, j = out.var, out.body.var
    # Y[i*4 + j] = X[i*8 + j]: the digits of i*4 + j in T's layout are i and j again.
    assert out == ir.loop(i, N, ir.loop(j, N, ir.Store(Y, i * N + j, ir.Load(X, i * 8 + j))))


def test_a_guarded_copy_is_read_through_under_the_same_guard():
    def guard(u, v):
        return u < 3

    program, X, Y = _copy_program(guard=guard, consumer_guard=guard)
    out = inline_copies(program)
    assert not any(isinstance(n, ir.Allocate) for n in ir.walk_stmt(out))


def test_refuses_a_read_the_copy_skipped():
    # The copy writes rows a < 3 only; the reader reads all four rows (row 3 is zeros in T).
    program, _, _ = _copy_program(guard=lambda u, v: u < 3)
    assert inline_copies(program) is program


def test_refuses_a_buffer_outside_the_local_scope():
    program, _, _ = _copy_program(scope=ir.GLOBAL)
    assert inline_copies(program) is program


def test_refuses_a_copy_that_does_not_fill_the_buffer():
    program, _, _ = _copy_program(size=N * N + 1)
    assert inline_copies(program) is program


def test_refuses_a_source_written_after_the_copy():
    program, _, _ = _copy_program(after=[lambda X, T: ir.Store(X, Const(0), Const(1, "int8"))])
    assert inline_copies(program) is program


def test_refuses_a_second_writer_of_the_buffer():
    program, _, _ = _copy_program(after=[lambda X, T: ir.Store(T, Const(0), Const(1, "int8"))])
    assert inline_copies(program) is program


def test_refuses_a_read_whose_source_index_is_not_affine():
    X = ir.Buffer("X", (N * N,), "int8")
    Y = ir.Buffer("Y", (N * N,), "int8")
    T = ir.Buffer("T", (N * N,), "int8", ir.LOCAL)
    a, b, i = Var("a"), Var("b"), Var("i")
    copy = ir.loop(a, N, ir.loop(b, N, ir.Store(T, a * N + b, ir.Load(X, a * N + b))))
    # T[i*3]: its row i*3 // 4 is no affine function of i.
    use = ir.loop(i, 5, ir.Store(Y, i, ir.Load(T, i * 3)))
    program = ir.Allocate(T, ir.seq(copy, use))
    assert inline_copies(program) is program


# -- distribute_tiles on hand-written programs -----------------------------------------------


def _tile_program(next_tile=False, extent=4, alloc=False):
    """``for jo: { for ji: C[jo*4 + ji] = 0; for jj: C[jo*4 + jj] += A[jj] }`` with the inner
    loops over ``extent`` points; ``next_tile`` adds a read of ``C[jo*4 + jj + 4]``."""
    A = ir.Buffer("A", (40,), "int32")
    C = ir.Buffer("C", (40,), "int32")
    jo, ji, jj = Var("jo"), Var("ji"), Var("jj")
    init = ir.loop(ji, extent, ir.Store(C, jo * 4 + ji, Const(0)))
    index = jo * 4 + jj
    addend = ir.Load(C, index + 4) if next_tile else ir.Load(A, jj)
    update = ir.loop(jj, extent, ir.Store(C, index, ir.Load(C, index) + addend))
    if alloc:
        update = ir.Allocate(ir.Buffer("T", (1,), "int32", ir.LOCAL), update)
    return ir.loop(jo, 8, ir.seq(init, update))


def test_tile_loops_around_an_initialisation_and_a_reduction_split():
    program = _tile_program()
    out = distribute_tiles(program)
    assert isinstance(out, ir.Seq) and [type(lp.body) for lp in out.stmts] == [ir.For, ir.For]
    assert [lp.var.name for lp in out.stmts] == ["jo", "jo"]


def _row_tiles(guarded: bool):
    """Rows of 10 in tiles of 3 (the last one cut by ``jo*3 + j < 10`` when ``guarded``):
    ``for jo: { for i, j: C[i*10 + jo*3 + j] = 0; for i, j: C[...] += A[...] }``."""
    A = ir.Buffer("A", (42,), "int32")
    C = ir.Buffer("C", (42,), "int32")
    jo = Var("jo")
    nests = []
    for first in (True, False):
        i, j = Var("i"), Var("j")
        index = i * 10 + jo * 3 + j
        store = ir.Store(C, index, Const(0) if first else ir.Load(C, index) + ir.Load(A, index))
        if guarded:
            store = ir.IfThenElse(jo * 3 + j < 10, store)
        nests.append(ir.loop(i, 4, ir.loop(j, 3, store)))
    return ir.loop(jo, 4, ir.seq(*nests))


def test_guards_of_a_non_dividing_split_make_the_tiles_disjoint():
    # Unguarded, the last tile of a row (jo = 3: columns 9..11) runs into the next row.
    unguarded = _row_tiles(guarded=False)
    assert distribute_tiles(unguarded) is unguarded
    # Guarded, jo*3 + j < 10 shortens the merged column axis to 10 points: rows stay apart.
    out = distribute_tiles(_row_tiles(guarded=True))
    assert isinstance(out, ir.Seq) and len(out.stmts) == 2


def test_refuses_a_read_of_the_next_tile():
    program = _tile_program(next_tile=True)
    assert distribute_tiles(program) is program


def test_refuses_tiles_that_overlap():
    program = _tile_program(extent=5)
    assert distribute_tiles(program) is program


def test_refuses_an_allocation_in_the_body():
    program = _tile_program(alloc=True)
    assert distribute_tiles(program) is program


def test_refuses_a_let_binding_in_the_body():
    C = ir.Buffer("C", (40,), "int32")
    jo, ji, t = Var("jo"), Var("ji"), Var("t")
    program = ir.loop(
        jo,
        8,
        ir.seq(
            ir.loop(ji, 4, ir.Store(C, jo * 4 + ji, Const(0))),
            ir.LetStmt(t, jo * 4, ir.loop(ji, 4, ir.Store(C, t + ji, Const(1)))),
        ),
    )
    assert distribute_tiles(program) is program


@pytest.mark.parametrize("shift", [None, 2])
def test_accelerator_programs_pass_through_unchanged(shift):
    env = accel.get_env()
    s, args, _ = packed_matmul(env, env.BATCH, 64, 64, 32, 32, shift)
    program = accel.lower(s, args, dump_after="coproc_sync").body
    assert inline_copies(program, env) is program
    assert distribute_tiles(program, env) is program


# -- the tile arithmetic ---------------------------------------------------------------------


def test_merge_axes_merges_tile_loops_wherever_they_sit():
    # Loops (io, jo, ko, ii, ji, ki) of a 16x16x16-tiled matmul; C, A and B's coefficients.
    extents = (64, 32, 16, 16, 16, 16)
    c = (8192, 16, 0, 512, 1, 0)
    a = (4096, 0, 16, 256, 0, 1)
    b = (0, 4096, 16, 0, 256, 1)
    assert merge_axes(extents, [c, a, b]) == ((0, 3), (1, 4), (2, 5))
    assert merge_axes(extents, [c, a, b], keep={3}) == ((0,), (1, 4), (2, 5), (3,))


def test_axis_limit_reads_a_non_dividing_guard():
    io, ii = Var("io"), Var("ii")
    assert axis_limit(io * 16 + ii < 1000, {io: 16, ii: 1}) == 1000
    assert axis_limit(io * 32 + ii * 2 <= 9, {io: 16, ii: 1}) == 5
    assert axis_limit(ii < 10, {io: 16, ii: 1}) is None  # bounds a part of the axis only


def test_every_tiling_of_the_readme_matmul_generates_the_default_code():
    def source(tile, split, cache, order):
        A, B, C = matmul(1024, 512, 256)
        if tile is None:
            s = te.create_schedule(C.op)
        else:
            s = schedule_matmul(A, B, C, (tile, tile), split, order, cache, False, "ko")
        return accel.build(s, [A, B, C], name="matmul").source

    default = source(None, None, False, None)
    orders = [("io", "jo", "ko", "ii", "ji", "ki"), ("ko", "io", "jo", "ki", "ii", "ji")]
    for tile, split, cache, order in itertools.product((8, 64), (4, 64), (False, True), orders):
        assert source(tile, split, cache, order) == default, (tile, split, cache, order)
