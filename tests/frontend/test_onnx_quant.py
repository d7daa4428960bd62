"""The quantized operators onnxruntime writes, imported and run, bit for bit against
onnxruntime."""

import numpy as np
import pytest
from onnx_models import check, one_node, randn


def quantized(rng, dtype, *shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def zero_point(rng, dtype, *shape):
    lo, hi = (100, 156) if dtype == np.uint8 else (-28, 28)
    return rng.integers(lo, hi, shape).astype(dtype)


QUANTIZE = [
    # opset, x shape, zero-point dtype (None: absent), axis (None: per tensor)
    (13, (2, 3, 4), np.uint8, None),
    (13, (2, 3, 4), np.int8, None),
    (13, (2, 3, 4), None, None),
    (13, (2, 3, 4), np.int8, 1),
    (13, (4, 3), np.uint8, 0),
    (19, (2, 5, 3), np.int8, -1),
    (21, (2, 3), np.uint8, None),
]


@pytest.mark.parametrize("opset, shape, zp_dtype, axis", QUANTIZE)
def test_quantize_linear(opset, shape, zp_dtype, axis):
    rng = np.random.default_rng(40)
    channels = () if axis is None else (shape[axis],)
    # Powers of two make x / scale exact, so the ties below really are halves: round half to
    # even decides them. Large values check saturation.
    scale = (2.0 ** rng.integers(-3, 1, channels)).astype(np.float32)
    along = (
        scale
        if axis is None
        else scale.reshape([-1 if i == axis % len(shape) else 1 for i in range(len(shape))])
    )
    halves = rng.integers(-600, 600, shape) / 2 * along
    x = np.where(rng.random(shape) < 0.5, halves, randn(rng, *shape) * 60).astype(np.float32)
    consts, inputs = {"scale": scale}, ["x", "scale"]
    if zp_dtype is not None:
        consts["zp"] = zero_point(rng, zp_dtype, *channels)
        inputs.append("zp")
    attrs = {} if axis is None else {"axis": axis}
    out = zp_dtype or np.uint8
    model = one_node(
        "QuantizeLinear", inputs, {"x": x}, consts, opset=opset, out_dtype=out, **attrs
    )
    check(model, {"x": x}, exact=True)


DEQUANTIZE = [
    (13, (2, 3, 4), np.uint8, None),
    (13, (2, 3, 4), np.int8, None),
    (13, (3, 4), np.int8, 0),
    (13, (2, 3, 4), np.uint8, 1),
    (13, (5,), np.int32, None),  # how QDQ models keep biases
    (19, (2, 3), np.int8, None),
]


@pytest.mark.parametrize("opset, shape, dtype, axis", DEQUANTIZE)
@pytest.mark.parametrize("with_zp", [True, False])
def test_dequantize_linear(opset, shape, dtype, axis, with_zp):
    rng = np.random.default_rng(41)
    channels = () if axis is None else (shape[axis],)
    if dtype == np.int32:
        x = rng.integers(-(2**20), 2**20, shape).astype(np.int32)
        zp = np.zeros(channels, np.int32)
    else:
        x, zp = quantized(rng, dtype, *shape), zero_point(rng, dtype, *channels)
    consts = {"scale": rng.uniform(0.001, 0.1, channels).astype(np.float32)}
    inputs = ["x", "scale"]
    if with_zp:
        consts["zp"] = zp
        inputs.append("zp")
    attrs = {} if axis is None else {"axis": axis}
    check(
        one_node("DequantizeLinear", inputs, {"x": x}, consts, opset=opset, **attrs),
        {"x": x},
        exact=True,
    )


QLINEAR_CONV = [
    # x dtype, w dtype, per-channel weights, bias, x shape, w shape, attributes
    (np.uint8, np.int8, False, True, (1, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    (np.uint8, np.int8, True, True, (1, 4, 9, 9), (6, 4, 3, 3), {"strides": [2, 2]}),
    (np.int8, np.int8, True, False, (2, 4, 7, 7), (4, 2, 3, 3), {"group": 2, "pads": [1, 0, 1, 2]}),
    (np.uint8, np.uint8, False, True, (1, 3, 6, 6), (5, 3, 1, 1), {}),
    (
        np.int8,
        np.int8,
        False,
        True,
        (1, 8, 6, 6),
        (8, 1, 3, 3),
        {"group": 8, "auto_pad": "SAME_UPPER"},
    ),
]


@pytest.mark.parametrize(
    "x_dtype, w_dtype, per_channel, bias, x_shape, w_shape, attrs", QLINEAR_CONV
)
def test_qlinear_conv(x_dtype, w_dtype, per_channel, bias, x_shape, w_shape, attrs):
    rng = np.random.default_rng(42)
    m = w_shape[0]
    channels = (m,) if per_channel else ()
    w_zp = (
        np.zeros(channels, w_dtype) if w_dtype == np.int8 else zero_point(rng, w_dtype, *channels)
    )
    consts = {
        "x_scale": np.float32(0.02),
        "x_zp": zero_point(rng, x_dtype),
        "w": quantized(rng, w_dtype, *w_shape),
        "w_scale": rng.uniform(0.005, 0.02, channels).astype(np.float32),
        "w_zp": w_zp,
        "y_scale": np.float32(0.05),
        "y_zp": zero_point(rng, x_dtype),
        "b": rng.integers(-5000, 5000, m).astype(np.int32),
    }
    inputs = ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"] + ["b"] * bias
    if not bias:
        consts.pop("b")
    x = quantized(rng, x_dtype, *x_shape)
    model = one_node("QLinearConv", inputs, {"x": x}, consts, out_dtype=x_dtype, **attrs)
    check(model, {"x": x}, exact=True)


QLINEAR_MATMUL = [
    (np.uint8, np.uint8, (3, 16), (16, 5), False),
    (np.int8, np.int8, (2, 3, 8), (8, 4), False),
    (np.uint8, np.int8, (4, 32), (32, 6), True),
    (np.int8, np.int8, (5, 7), (7, 3), True),
]


@pytest.mark.parametrize("a_dtype, b_dtype, a_shape, b_shape, per_column", QLINEAR_MATMUL)
def test_qlinear_matmul(a_dtype, b_dtype, a_shape, b_shape, per_column):
    rng = np.random.default_rng(43)
    cols = (b_shape[-1],) if per_column else ()
    b_zp = np.zeros(cols, b_dtype) if b_dtype == np.int8 else zero_point(rng, b_dtype, *cols)
    consts = {
        "a_scale": np.float32(0.03),
        "a_zp": zero_point(rng, a_dtype),
        "b": quantized(rng, b_dtype, *b_shape),
        "b_scale": rng.uniform(0.005, 0.02, cols).astype(np.float32),
        "b_zp": b_zp,
        "y_scale": np.float32(0.04),
        "y_zp": zero_point(rng, a_dtype),
    }
    a = quantized(rng, a_dtype, *a_shape)
    inputs = ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"]
    model = one_node("QLinearMatMul", inputs, {"a": a}, consts, out_dtype=a_dtype)
    check(model, {"a": a}, exact=True)
