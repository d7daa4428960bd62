"""Convolutions and pooling, imported and run, against onnxruntime."""

import numpy as np
import pytest
from onnx_models import check, one_node, randn

CONV = [
    # input shape, weight shape, attributes
    ((1, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 3, 9, 9), (5, 3, 3, 3), {"strides": [2, 2]}),
    ((1, 2, 10, 10), (3, 2, 3, 3), {"dilations": [2, 2], "pads": [2, 1, 2, 1]}),
    ((1, 4, 7, 7), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((1, 4, 7, 7), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 8), (4, 3, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 3, 8, 8), (4, 3, 4, 4), {"auto_pad": "SAME_UPPER"}),
    ((1, 3, 7, 7), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 3, 6, 5), (2, 3, 1, 2), {"pads": [0, 1, 2, 0], "kernel_shape": [1, 2]}),
    ((2, 3, 12), (4, 3, 3), {"pads": [1, 2], "strides": [2]}),
    ((1, 2, 5, 6, 4), (3, 2, 3, 3, 2), {"pads": [1, 0, 1, 1, 0, 0], "strides": [2, 1, 1]}),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, attrs", CONV)
def test_conv(x_shape, w_shape, attrs, bias):
    rng = np.random.default_rng(0)
    consts = {"w": randn(rng, *w_shape), "b": randn(rng, w_shape[0])}
    if not bias:
        consts.pop("b")
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    x = randn(rng, *x_shape)
    check(one_node("Conv", inputs, {"x": x}, consts, **attrs), {"x": x})


CONV_TRANSPOSE = [
    ((1, 3, 5, 5), (3, 4, 3, 3), {}),
    ((1, 3, 5, 5), (3, 4, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (
        (1, 3, 5, 5),
        (3, 2, 3, 3),
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
    ),
    ((2, 4, 4, 6), (4, 3, 2, 2), {"strides": [2, 2], "group": 2}),
    ((1, 2, 4, 4), (2, 2, 3, 3), {"dilations": [2, 2], "pads": [1, 0, 2, 1]}),
    (
        (1, 2, 4, 4),
        (2, 2, 4, 4),
        {"strides": [3, 2], "pads": [0, 1, 2, 0], "output_padding": [2, 1]},
    ),
    ((1, 3, 6), (3, 2, 3), {"strides": [2], "pads": [1, 1], "output_padding": [1]}),
    ((1, 2, 5, 5), (2, 3, 3, 3), {"auto_pad": "VALID"}),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, attrs", CONV_TRANSPOSE)
def test_conv_transpose(x_shape, w_shape, attrs, bias):
    rng = np.random.default_rng(1)
    group = attrs.get("group", 1)
    consts = {"w": randn(rng, *w_shape), "b": randn(rng, w_shape[1] * group)}
    if not bias:
        consts.pop("b")
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    x = randn(rng, *x_shape)
    check(one_node("ConvTranspose", inputs, {"x": x}, consts, **attrs), {"x": x})


MAX_POOL = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 7, 9),
        {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [0, 1, 1, 1], "ceil_mode": 1},
    ),
    ((1, 2, 9, 9), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    # ceil_mode: the last window would start in the end padding and is dropped
    (
        (1, 2, 6, 6),
        {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1},
    ),
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((2, 3, 10), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    ((1, 2, 5, 6, 4), {"kernel_shape": [2, 3, 2], "strides": [2, 2, 1]}),
]


@pytest.mark.parametrize("x_shape, attrs", MAX_POOL)
def test_max_pool(x_shape, attrs):
    x = randn(np.random.default_rng(2), *x_shape)
    check(one_node("MaxPool", ["x"], {"x": x}, **attrs), {"x": x})


AVERAGE_POOL = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (
        (1, 2, 9, 9),
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    ),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 8, 7),
        {
            "kernel_shape": [3, 3],
            "strides": [2, 2],
            "pads": [1, 0, 1, 1],
            "ceil_mode": 1,
            "count_include_pad": 1,
        },
    ),  # fmt: skip
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    (
        (1, 2, 6, 6),
        {
            "kernel_shape": [2, 2],
            "strides": [2, 2],
            "pads": [0, 0, 1, 1],
            "ceil_mode": 1,
            "count_include_pad": 1,
        },
    ),  # fmt: skip
    ((2, 3, 10), {"kernel_shape": [4], "strides": [3], "pads": [2, 1], "count_include_pad": 1}),
]


@pytest.mark.parametrize("x_shape, attrs", AVERAGE_POOL)
def test_average_pool(x_shape, attrs):
    x = randn(np.random.default_rng(3), *x_shape)
    check(one_node("AveragePool", ["x"], {"x": x}, **attrs), {"x": x})


@pytest.mark.parametrize("x_shape", [(1, 3, 5, 5), (2, 4, 1, 7), (2, 3, 6)])
def test_global_average_pool(x_shape):
    x = randn(np.random.default_rng(4), *x_shape)
    check(one_node("GlobalAveragePool", ["x"], {"x": x}), {"x": x})
