"""The integer operators' kernels, run through one-node graphs, against numpy written here: every
expected value is computed in int64 from the definitions in docs/quantization.md (sums formed
tap by tap, int32 wrap-around as arithmetic modulo 2^32), bit for bit, on random data."""

import itertools

import numpy as np
import pytest

from accel.errors import GraphError
from accel.graph import Graph, Node, TensorInfo
from accel.graph.shapes import infer

INT32 = 2**32


def wrap32(x):
    """Exact integers reduced modulo 2^32 into [-2^31, 2^31)."""
    return ((np.asarray(x, np.int64) + 2**31) % INT32 - 2**31).astype(np.int32)


def rs(x, n):
    """floor((x + 2^(n-1)) / 2^n) on int64 (x when n is 0)."""
    x = np.asarray(x, np.int64)
    return x if n == 0 else (x + (1 << (n - 1))) >> n


def run_one(op, inputs, constants, attrs, out_info=None):
    """Run ``y = op(inputs)`` as a one-node graph; ``inputs`` maps names to arrays, of which
    those in ``constants`` are graph constants."""
    tensors = {n: TensorInfo(a.shape, a.dtype) for n, a in inputs.items()}
    node = Node("the_node", op, tuple(inputs), ("y",), attrs)
    (tensors["y"],) = infer(node, list(tensors.values()))
    if out_info is not None:
        assert tensors["y"] == out_info
    feeds = {n: a for n, a in inputs.items() if n not in constants}
    consts = {n: a for n, a in inputs.items() if n in constants}
    graph = Graph([node], tensors, consts, list(feeds), ["y"])
    return graph.run(**feeds)


def int8(rng, *shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


# -- quantize / dequantize ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (2, 3, 5), (1, 4, 3, 3)])
def test_quantize_rounds_half_to_even_and_saturates(shape):
    rng = np.random.default_rng(1)
    scale = 0.25  # x / 0.25 is exact, so the halves below are real ties
    halves = rng.integers(-700, 700, shape) / 2 * scale
    x = np.where(rng.random(shape) < 0.5, halves, rng.normal(0, 40, shape)).astype(np.float32)
    expected = np.clip(np.round(x.astype(np.float64) / scale), -128, 127).astype(np.int8)
    got = run_one("quantize", {"x": x}, (), {"scale": scale}, TensorInfo(shape, np.int8))
    np.testing.assert_array_equal(got, expected)


def test_quantize_ties_explicitly():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 200.0, -200.0], np.float32)
    got = run_one("quantize", {"x": x}, (), {"scale": 1.0})
    np.testing.assert_array_equal(got, [0, 2, 2, 0, -2, -2, 127, -128])


@pytest.mark.parametrize("dtype", [np.int8, np.int32])
def test_dequantize_per_tensor(dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(-1000 if dtype == np.int32 else -128, 128, (3, 4, 5)).astype(dtype)
    got = run_one("dequantize", {"x": x}, (), {"scale": 0.037, "axis": None})
    np.testing.assert_array_equal(got, x.astype(np.float32) * np.float32(0.037))
    assert got.dtype == np.float32


def test_dequantize_per_channel():
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**20), 2**20, (2, 3, 4)).astype(np.int32)
    scales = (0.5, 0.25, 0.001)
    got = run_one("dequantize", {"x": x}, (), {"scale": scales, "axis": 1})
    expected = x.astype(np.float32) * np.array(scales, np.float32)[None, :, None]
    np.testing.assert_array_equal(got, expected)


# -- qconv / qdense / qsum_pool -------------------------------------------------------------------


def conv_reference(x, w, bias, strides, dilations, pads, group):
    """Tap-by-tap int64 convolution of NC* data with zero padding, then int32 wrap-around."""
    k = x.ndim - 2
    xp = np.pad(x.astype(np.int64), [(0, 0), (0, 0)] + [(pads[i], pads[i + k]) for i in range(k)])
    out = [
        (xp.shape[2 + i] - (w.shape[2 + i] - 1) * dilations[i] - 1) // strides[i] + 1
        for i in range(k)
    ]
    n, m, cg = x.shape[0], w.shape[0], w.shape[1]
    mg = m // group
    acc = np.zeros((n, m, *out), np.int64)
    for tap in itertools.product(*(range(s) for s in w.shape[2:])):
        index = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilations, out, strides)
        )
        patch = xp[(slice(None), slice(None)) + index]
        for g in range(group):
            xs = patch[:, g * cg : (g + 1) * cg]
            ws = w[g * mg : (g + 1) * mg][(slice(None), slice(None)) + tap].astype(np.int64)
            acc[:, g * mg : (g + 1) * mg] += np.tensordot(ws, xs, axes=([1], [1])).swapaxes(0, 1)
    if bias is not None:
        acc += bias.astype(np.int64).reshape((1, -1) + (1,) * k)
    return wrap32(acc)


QCONV = [
    # x shape, w shape, strides, dilations, pads, group, bias
    ((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1, True),
    ((2, 4, 9, 7), (6, 4, 3, 3), (2, 2), (1, 1), (0, 1, 2, 0), 1, False),
    ((1, 4, 7, 7), (4, 2, 3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 2, True),
    ((2, 8, 6, 6), (8, 1, 3, 3), (1, 2), (1, 1), (1, 1, 1, 1), 8, True),
    ((2, 5, 11), (3, 5, 4), (3,), (1,), (1, 2), 1, True),
    ((1, 16, 5, 5), (32, 16, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1, True),
]


@pytest.mark.parametrize("x_shape, w_shape, strides, dilations, pads, group, bias", QCONV)
def test_qconv(x_shape, w_shape, strides, dilations, pads, group, bias):
    rng = np.random.default_rng(4)
    x, w = int8(rng, *x_shape), int8(rng, *w_shape)
    inputs = {"x": x, "w": w}
    b = None
    if bias:
        b = inputs["b"] = rng.integers(-(2**20), 2**20, w_shape[0]).astype(np.int32)
    attrs = {"strides": strides, "dilations": dilations, "pads": pads, "group": group}
    got = run_one("qconv", inputs, ("w", "b"), attrs)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, conv_reference(x, w, b, strides, dilations, pads, group))


def test_qconv_wraps_around_like_int32():
    """A bias near 2^31 makes the accumulator wrap: the result is the exact sum modulo 2^32."""
    rng = np.random.default_rng(5)
    x, w = int8(rng, 1, 2, 4, 4), np.full((2, 2, 1, 1), 127, np.int8)
    x[:] = 127
    b = np.array([2**31 - 100, -(2**31) + 100], np.int32)
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "group": 1}
    got = run_one("qconv", {"x": x, "w": w, "b": b}, ("w", "b"), attrs)
    expected = wrap32(
        2 * 127 * 127 + b.astype(np.int64)[None, :, None, None] + np.zeros((1, 2, 4, 4))
    )
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0, 0, 0] < 0  # really wrapped


@pytest.mark.parametrize("n, k, o, bias", [(1, 8, 10, True), (4, 33, 7, False), (3, 256, 16, True)])
def test_qdense(n, k, o, bias):
    rng = np.random.default_rng(6)
    x, w = int8(rng, n, k), int8(rng, o, k)
    inputs = {"x": x, "w": w}
    expected = x.astype(np.int64) @ w.astype(np.int64).T
    if bias:
        inputs["b"] = rng.integers(-(2**24), 2**24, o).astype(np.int32)
        expected = expected + inputs["b"]
    got = run_one("qdense", inputs, ("w", "b"), {}, TensorInfo((n, o), np.int32))
    np.testing.assert_array_equal(got, wrap32(expected))


def pool_reference(x, kernel, strides, pads, reduce, fill):
    k = len(kernel)
    xp = np.pad(
        x.astype(np.int64),
        [(0, 0), (0, 0)] + [(pads[i], pads[i + k]) for i in range(k)],
        constant_values=fill,
    )
    out = [(xp.shape[2 + i] - kernel[i]) // strides[i] + 1 for i in range(k)]
    result = np.zeros(x.shape[:2] + tuple(out), np.int64)
    for pos in itertools.product(*(range(o) for o in out)):
        index = tuple(slice(p * s, p * s + kk) for p, s, kk in zip(pos, strides, kernel))
        window = xp[(slice(None), slice(None)) + index]
        result[(slice(None), slice(None)) + pos] = reduce(window.reshape(*x.shape[:2], -1), axis=-1)
    return result


POOLS = [
    ((1, 3, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0)),
    ((2, 4, 7, 9), (3, 3), (2, 2), (1, 1, 1, 1)),
    ((1, 2, 6, 6), (6, 6), (1, 1), (0, 0, 0, 0)),
    ((2, 3, 10), (3,), (1,), (1, 2)),
]


@pytest.mark.parametrize("shape, kernel, strides, pads", POOLS)
def test_qsum_pool(shape, kernel, strides, pads):
    rng = np.random.default_rng(7)
    x = int8(rng, *shape)
    k = len(kernel)
    attrs = {"kernel": kernel, "strides": strides, "dilations": (1,) * k, "pads": pads}
    got = run_one("qsum_pool", {"x": x}, (), {**attrs, "ceil_mode": False})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, pool_reference(x, kernel, strides, pads, np.sum, 0))


@pytest.mark.parametrize("shape, kernel, strides, pads", POOLS)
def test_int8_max_pool(shape, kernel, strides, pads):
    rng = np.random.default_rng(8)
    x = int8(rng, *shape)
    k = len(kernel)
    attrs = {"kernel": kernel, "strides": strides, "dilations": (1,) * k, "pads": pads}
    got = run_one("max_pool", {"x": x}, (), {**attrs, "ceil_mode": False})
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, pool_reference(x, kernel, strides, pads, np.max, -128))


def test_int8_data_movement_ops():
    rng = np.random.default_rng(9)
    x = int8(rng, 2, 3, 4)
    np.testing.assert_array_equal(run_one("relu", {"x": x}, (), {}), np.where(x > 0, x, 0))
    np.testing.assert_array_equal(
        run_one("reshape", {"x": x}, (), {"shape": (6, 4)}), x.reshape(6, 4)
    )
    np.testing.assert_array_equal(
        run_one("transpose", {"x": x}, (), {"perm": (2, 0, 1)}), x.transpose(2, 0, 1)
    )
    y = int8(rng, 2, 5, 4)
    got = run_one("concat", {"x": x, "z": y}, (), {"axis": 1})
    np.testing.assert_array_equal(got, np.concatenate([x, y], axis=1))
    got = run_one("clip", {"x": x}, (), {"min": -5, "max": 60})
    np.testing.assert_array_equal(got, np.minimum(np.maximum(x, -5), 60))
    assert got.dtype == np.int8


# -- requantize / qadd ----------------------------------------------------------------------------


REQUANTIZE = [
    # multiplier, pre_shift, shift, lo, hi
    (20000, 0, 20, -128, 127),
    (32767, 3, 15, 0, 127),  # the largest immediate
    (1, 0, 0, -128, 127),  # identity, then the clip
    (16385, 7, 28, -128, 127),  # a split final shift
    (31000, 17, 9, -20, 90),  # a split pre-shift
    (-12000, 2, 18, -128, 127),  # negative multiplier
]


@pytest.mark.parametrize("multiplier, pre, shift, lo, hi", REQUANTIZE)
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (5, 7)])
def test_requantize_matches_the_formula(multiplier, pre, shift, lo, hi, shape):
    rng = np.random.default_rng(10)
    bound = ((2**31 - 1 - (1 << max(shift - 1, 0))) // abs(multiplier)) << pre
    bound = min(bound, 2**31 - 1 - (1 << max(pre - 1, 0)))
    acc = rng.integers(-bound, bound + 1, shape, dtype=np.int64)
    acc.reshape(-1)[:4] = [bound, -bound, 0, -1]
    acc = acc.astype(np.int32)
    attrs = {"multiplier": multiplier, "pre_shift": pre, "shift": shift, "lo": lo, "hi": hi}
    got = run_one("requantize", {"x": acc}, (), {**attrs, "acc_bound": int(bound)})
    expected = np.clip(rs(rs(acc, pre) * multiplier, shift), lo, hi)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)


def test_requantize_per_channel_and_int8_input():
    rng = np.random.default_rng(11)
    acc = rng.integers(-(2**22), 2**22, (2, 3, 5, 5)).astype(np.int32)
    m = (21000, 9000, 30000)
    attrs = {"multiplier": m, "pre_shift": 6, "shift": 18, "lo": -128, "hi": 127}
    got = run_one("requantize", {"x": acc}, (), {**attrs, "acc_bound": (2**22,) * 3})
    expected = np.clip(rs(rs(acc, 6) * np.array(m)[None, :, None, None], 18), -128, 127)
    np.testing.assert_array_equal(got, expected)
    x = int8(rng, 4, 6)
    attrs = {"multiplier": 23170, "pre_shift": 0, "shift": 14, "lo": -128, "hi": 127}
    got = run_one("requantize", {"x": x}, (), {**attrs, "acc_bound": 128})
    np.testing.assert_array_equal(got, np.clip(rs(x.astype(np.int64) * 23170, 14), -128, 127))


@pytest.mark.parametrize(
    "ma, mb, shift, lo, hi, shapes",
    [
        (30983, 18373, 15, 0, 127, ((2, 8, 4, 4), (2, 8, 4, 4))),
        (16384, -16384, 14, -128, 127, ((3, 5), (3, 5))),  # subtraction
        (32767, 1, 22, -128, 127, ((2, 3, 4), (1, 3, 1))),  # broadcasting, split shift
        (5, 7, 0, -10, 10, ((6,), (6,))),
    ],
)
def test_qadd_matches_the_formula(ma, mb, shift, lo, hi, shapes):
    rng = np.random.default_rng(12)
    a, b = int8(rng, *shapes[0]), int8(rng, *shapes[1])
    attrs = {"multiplier_a": ma, "multiplier_b": mb, "shift": shift, "lo": lo, "hi": hi}
    got = run_one("qadd", {"a": a, "b": b}, (), attrs)
    expected = np.clip(rs(a.astype(np.int64) * ma + b.astype(np.int64) * mb, shift), lo, hi)
    np.testing.assert_array_equal(got, expected)


# -- the shape rules refuse what the accelerator cannot do ----------------------------------------


def test_requantize_refuses_a_bound_it_cannot_keep():
    acc = TensorInfo((1, 4), np.int32)
    attrs = {"multiplier": 30000, "pre_shift": 0, "shift": 20, "lo": -128, "hi": 127}
    node = Node("rq", "requantize", ("a",), ("y",), {**attrs, "acc_bound": 2**20})
    with pytest.raises(
        GraphError, match=r"'rq' \(requantize\).*overflow int32 for \|acc\| <= 1048576"
    ):
        Graph([node], {"a": acc, "y": TensorInfo((1, 4), np.int8)}, {}, ["a"], ["y"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"multiplier": 40000}, r"multiplier 40000 must be integers in \[-32768, 32767\]"),
        ({"shift": 47}, r"shift 47 must be integers in \[0, 46\]"),
        ({"lo": 10, "hi": 5}, "lo 10 is above hi 5"),
        ({"multiplier": (1, 2)}, "one value per channel"),
    ],
)
def test_requantize_attribute_checks(change, message):
    attrs = {"multiplier": 3, "pre_shift": 0, "shift": 2, "lo": -128, "hi": 127, "acc_bound": 9}
    attrs.update(change)
    node = Node("rq", "requantize", ("a",), ("y",), attrs)
    tensors = {"a": TensorInfo((1, 4), np.int32), "y": TensorInfo((1, 4), np.int8)}
    with pytest.raises(GraphError, match=message):
        Graph([node], tensors, {}, ["a"], ["y"])


def test_integer_ops_check_their_dtypes():
    f32, i8 = TensorInfo((1, 2, 3, 3), np.float32), TensorInfo((2, 2, 1, 1), np.int8)
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "group": 1}
    node = Node("c", "qconv", ("x", "w"), ("y",), attrs)
    with pytest.raises(GraphError, match=r"'c' \(qconv\): data must be int8, got float32"):
        Graph([node], {"x": f32, "w": i8, "y": f32}, {}, ["x", "w"], ["y"])
    node = Node("q", "quantize", ("x",), ("y",), {"scale": 0.0})
    with pytest.raises(GraphError, match="scale 0.0 must be positive"):
        Graph([node], {"x": f32, "y": TensorInfo(f32.shape, np.int8)}, {}, ["x"], ["y"])
