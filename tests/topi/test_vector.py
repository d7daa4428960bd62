"""ReLU, residual add and max pooling on packed activations, on the simulator, equal numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel import te
from accel.errors import AllocationError, ScheduleError
from accel.topi import vector
from accel.topi.packing import pack_nchw, unpack_nchw

ENV = accel.get_env()
B = ENV.BLOCK_IN
Tiles = vector.VectorTiles


def placeholder(n, c, h, w, name="x"):
    return te.placeholder((n // ENV.BATCH, c // B, h, w, ENV.BATCH, B), name=name, dtype="int8")


def relu_ref(x):
    return np.maximum(x, 0)


def add_ref(a, b, shift, clip):
    total = a.astype(np.int32) + b.astype(np.int32)
    return np.clip(total >> shift, *clip).astype(np.int8)


def max_pool_ref(x, kernel, stride, padding):
    """The window maximum with padded positions counting as 0 (what a zero-padding load gives)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h = (xp.shape[2] - kernel) // stride + 1
    out_w = (xp.shape[3] - kernel) // stride + 1
    out = None
    for r in range(kernel):
        for c in range(kernel):
            window = xp[:, :, r : r + out_h * stride : stride, c : c + out_w * stride : stride]
            out = window if out is None else np.maximum(out, window)
    return out


def run(op, tiles, inputs):
    """Build ``op`` with ``tiles`` (None: the default), run it on NCHW ``inputs``, return NCHW."""
    s = vector.schedule_vector_packed(op, ENV, tiles)
    f = accel.build(s, op.args, name=op.res.op.name)
    out = np.zeros(op.res.shape, np.int8)
    f(*(pack_nchw(x, ENV) for x in inputs), out)
    return unpack_nchw(out)


def random_int8(shape, seed, low=-128):
    return np.random.default_rng(seed).integers(low, 128, shape, dtype=np.int8)


# (N, C, H, W): ResNet-like and odd sizes, two batches where the packing allows it.
SHAPES = [(1, 64, 56, 56), (1, 128, 28, 28), (1, 16, 7, 7), (2 * ENV.BATCH, 32, 5, 9)]
# Tilings for (1, 64, 56, 56) that fit with two loads: None is the default schedule.
TILINGS = [None, Tiles(1, 1, 1), Tiles(2, 8, 1), Tiles(1, 8, 2), Tiles(1, 4, 4), Tiles(4, 2, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_relu_default_schedule(shape):
    x = random_int8(shape, seed=1)
    op = vector.relu_packed(placeholder(*shape), ENV)
    np.testing.assert_array_equal(run(op, None, [x]), relu_ref(x))


@pytest.mark.parametrize("tiles", TILINGS, ids=str)
def test_relu_tilings(tiles):
    x = random_int8((1, 64, 56, 56), seed=2)
    op = vector.relu_packed(placeholder(1, 64, 56, 56), ENV)
    np.testing.assert_array_equal(run(op, tiles, [x]), relu_ref(x))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("shift, clip", [(0, (-128, 127)), (1, (-128, 127)), (1, (0, 100))])
def test_add(shape, shift, clip):
    a, b = random_int8(shape, seed=3), random_int8(shape, seed=4)
    op = vector.add_packed(placeholder(*shape, "a"), placeholder(*shape, "b"), ENV, shift, clip)
    np.testing.assert_array_equal(run(op, None, [a, b]), add_ref(a, b, shift, clip))


@pytest.mark.parametrize("tiles", TILINGS, ids=str)
def test_add_tilings(tiles):
    shape = (1, 64, 56, 56)
    a, b = random_int8(shape, seed=5), random_int8(shape, seed=6)
    op = vector.add_packed(placeholder(*shape, "a"), placeholder(*shape, "b"), ENV, 2, (-20, 90))
    np.testing.assert_array_equal(run(op, tiles, [a, b]), add_ref(a, b, 2, (-20, 90)))


def test_add_saturates_to_int8_by_default():
    # 100 + 100 = 200 must clip to 127, not wrap to -56 in the narrowing store.
    a = np.full((1, 16, 2, 3), 100, np.int8)
    b = np.full((1, 16, 2, 3), 100, np.int8)
    b[0, 0, 0, 0] = -128
    op = vector.add_packed(placeholder(1, 16, 2, 3, "a"), placeholder(1, 16, 2, 3, "b"), ENV)
    out = run(op, None, [a, b])
    assert out[0, 1, 0, 0] == 127 and out[0, 0, 0, 0] == -28


POOLS = [
    # (shape, kernel, stride, padding, signed inputs)
    ((1, 64, 112, 112), 3, 2, 1, False),  # the ResNet stem pool
    ((1, 64, 56, 56), 3, 2, 1, False),
    ((1, 16, 7, 7), 3, 2, 1, False),
    ((2 * ENV.BATCH, 32, 9, 6), 3, 2, 1, False),
    ((1, 64, 56, 56), 2, 2, 0, True),
    ((1, 16, 7, 7), 2, 2, 0, True),  # the last row and column fall out of every window
    ((1, 32, 28, 28), 3, 1, 1, False),
    ((1, 16, 7, 5), 3, 1, 1, False),
    ((1, 16, 6, 6), 1, 2, 0, True),
]


@pytest.mark.parametrize(
    "shape, kernel, stride, padding, signed",
    POOLS,
    ids=[f"{'x'.join(map(str, p[0]))}_k{p[1]}s{p[2]}p{p[3]}" for p in POOLS],
)
def test_max_pool_default_schedule(shape, kernel, stride, padding, signed):
    x = random_int8(shape, seed=7, low=-128 if signed else 0)
    op = vector.max_pool2d_packed(placeholder(*shape), ENV, kernel, stride, padding)
    np.testing.assert_array_equal(run(op, None, [x]), max_pool_ref(x, kernel, stride, padding))


@pytest.mark.parametrize(
    "tiles",
    [Tiles(1, 1, 1), Tiles(2, 2, 1), Tiles(1, 4, 1), Tiles(1, 2, 2), Tiles(4, 1, 1)],
    ids=str,
)
def test_max_pool_tilings(tiles):
    x = random_int8((1, 64, 56, 56), seed=8, low=0)
    op = vector.max_pool2d_packed(placeholder(1, 64, 56, 56), ENV, 3, 2, 1)
    np.testing.assert_array_equal(run(op, tiles, [x]), max_pool_ref(x, 3, 2, 1))


def test_max_pool_padding_counts_as_zero_on_negative_inputs():
    x = np.full((1, 16, 3, 3), -5, np.int8)
    op = vector.max_pool2d_packed(placeholder(1, 16, 3, 3), ENV, 3, 2, 1)
    out = run(op, None, [x])
    assert (out == 0).all()  # every window overlaps the zero padding, as documented
    np.testing.assert_array_equal(out, max_pool_ref(x, 3, 2, 1))


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["relu", "add", "pool"]),
    nb=st.integers(1, 2),
    cb=st.integers(1, 4),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    data=st.data(),
)
def test_random_shapes_and_tilings(kind, nb, cb, h, w, data):
    shape = (nb * ENV.BATCH, cb * B, h, w)
    x, y = random_int8(shape, seed=h * 13 + w), random_int8(shape, seed=h * 13 + w + 1)
    if kind == "relu":
        op, expected, inputs = vector.relu_packed(placeholder(*shape), ENV), relu_ref(x), [x]
    elif kind == "add":
        shift = data.draw(st.integers(0, 3))
        op = vector.add_packed(placeholder(*shape, "a"), placeholder(*shape, "b"), ENV, shift)
        expected, inputs = add_ref(x, y, shift, (-128, 127)), [x, y]
    else:
        kernel = data.draw(st.integers(1, min(h, w, 3)))
        stride = data.draw(st.integers(1, 3))
        padding = data.draw(st.integers(0, kernel - 1))
        op = vector.max_pool2d_packed(placeholder(*shape), ENV, kernel, stride, padding)
        x = np.maximum(x, 0) if padding else x
        expected, inputs = max_pool_ref(x, kernel, stride, padding), [x]
    out_h = op.res.shape[2]
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
    threads = data.draw(st.sampled_from([t for t in (1, 2, 4) if cb % t == 0]))
    tiles = Tiles(
        c_blocks=data.draw(st.sampled_from(divisors(cb // threads))),
        rows=data.draw(st.sampled_from(divisors(out_h))),
        threads=threads,
    )
    np.testing.assert_array_equal(run(op, tiles, inputs), expected)


TILES_56 = 4 * 56 * 56  # accumulator tiles of a (1, 64, 56, 56) activation


@pytest.mark.parametrize(
    "kind, alu_ops",
    [
        ("relu", TILES_56),
        ("add", 3 * TILES_56),
        ("add_shift", 4 * TILES_56),
        # 112x112 pooled to 56x56: down 113 needed columns, then across 56, each chain a
        # two-operation copy and two maxima, on 4 channel blocks x 56 output rows.
        ("pool", 4 * 56 * (113 + 56) * 4),
    ],
)
def test_alu_work(kind, alu_ops):
    # Stages of one shape run in place of their source: no copies beyond the pool's two.
    shape = (1, 64, 112, 112) if kind == "pool" else (1, 64, 56, 56)
    x = random_int8(shape, seed=9, low=0)
    if kind == "relu":
        op = vector.relu_packed(placeholder(*shape), ENV)
    elif kind == "pool":
        op = vector.max_pool2d_packed(placeholder(*shape), ENV, 3, 2, 1)
    else:
        a, b = placeholder(*shape, "a"), placeholder(*shape, "b")
        op = vector.add_packed(a, b, ENV, shift=1 if kind == "add_shift" else 0)
    accel.sim.clear_stats()
    run(op, None, [x] * len(op.inputs))
    assert accel.sim.stats()["alu_counter"] == alu_ops


def test_default_tiles_fit_the_accumulator_with_two_threads():
    op = vector.relu_packed(placeholder(1, 64, 56, 56), ENV)
    tiles = vector.default_vector_tiles(op, ENV)
    assert tiles.threads == 2
    assert tiles.c_blocks * tiles.rows * 56 <= ENV.ACC_BUFF_DEPTH // 2
    pool = vector.max_pool2d_packed(placeholder(1, 16, 112, 112), ENV)
    assert vector.default_vector_tiles(pool, ENV).threads == 1  # one channel block: no sharing


@pytest.mark.parametrize(
    "make, tiles",
    [
        (lambda: vector.relu_packed(placeholder(1, 64, 56, 56), ENV), Tiles(4, 56, 1)),
        (lambda: vector.max_pool2d_packed(placeholder(1, 16, 112, 112), ENV), Tiles(1, 56, 1)),
        (lambda: vector.relu_packed(placeholder(1, 64, 56, 56), ENV), Tiles(2, 28, 2)),
    ],
    ids=["relu", "pool", "relu-threads"],
)
def test_a_tile_that_overflows_the_accumulator_is_refused(make, tiles):
    op = make()
    with pytest.raises(AllocationError, match="local.acc_buffer"):
        accel.build(vector.schedule_vector_packed(op, ENV, tiles), op.args)


def test_no_default_tile_when_one_row_does_not_fit():
    op = vector.relu_packed(placeholder(1, 16, 1, ENV.ACC_BUFF_DEPTH + 1), ENV)
    with pytest.raises(AllocationError, match="one output row of one channel block"):
        vector.default_vector_tiles(op, ENV)


def test_misuse_is_refused():
    a, b = placeholder(1, 32, 8, 8, "a"), placeholder(1, 32, 8, 6, "b")
    with pytest.raises(ScheduleError, match="shapes differ"):
        vector.add_packed(a, b, ENV)
    unpacked = te.placeholder((1, 32, 8, 8), name="x", dtype="int8")
    with pytest.raises(ScheduleError, match="not packed"):
        vector.relu_packed(unpacked, ENV)
    wide = te.placeholder(a.shape, name="x", dtype="int32")
    with pytest.raises(ScheduleError, match="int32, not int8"):
        vector.relu_packed(wide, ENV)
    with pytest.raises(ScheduleError, match="does not fit the 2x2 input"):
        vector.max_pool2d_packed(placeholder(1, 16, 2, 2), ENV, 3, 2, 0)
    with pytest.raises(ScheduleError, match="not a window"):
        vector.max_pool2d_packed(a, ENV, 2, 2, 2)
    op = vector.relu_packed(a, ENV)
    with pytest.raises(ScheduleError, match="3 rows does not divide 8"):
        vector.schedule_vector_packed(op, ENV, Tiles(1, 3, 1))
    with pytest.raises(ScheduleError, match="cannot be shared by 4 virtual threads"):
        vector.schedule_vector_packed(op, ENV, Tiles(1, 1, 4))
