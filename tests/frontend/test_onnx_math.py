"""Matrix products, elementwise operators, activations, Softmax and BatchNormalization,
imported and run, against onnxruntime."""

import numpy as np
import pytest
from onnx_models import check, one_node, randn

GEMM = [
    # a shape, b shape, c shape or None, attributes
    ((3, 4), (4, 5), (5,), {}),
    ((4, 3), (4, 5), (3, 5), {"transA": 1}),
    ((3, 4), (5, 4), (1, 5), {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    ((4, 3), (5, 4), (), {"transA": 1, "transB": 1, "beta": -1.0}),
    ((2, 6), (6, 3), None, {"alpha": 3.0}),
    ((2, 6), (6, 3), (2, 1), {}),
]


@pytest.mark.parametrize("a_shape, b_shape, c_shape, attrs", GEMM)
def test_gemm(a_shape, b_shape, c_shape, attrs):
    rng = np.random.default_rng(10)
    a = randn(rng, *a_shape)
    consts = {"b": randn(rng, *b_shape)}
    inputs = ["a", "b"]
    if c_shape is not None:
        consts["c"] = randn(rng, *c_shape)
        inputs.append("c")
    check(one_node("Gemm", inputs, {"a": a}, consts, **attrs), {"a": a})


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 5)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
    ],
)
def test_matmul(a_shape, b_shape):
    rng = np.random.default_rng(11)
    feeds = {"a": randn(rng, *a_shape), "b": randn(rng, *b_shape)}
    check(one_node("MatMul", ["a", "b"], feeds), feeds)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize(
    "a_shape, b_shape, b_const",
    [
        ((2, 3), (2, 3), False),
        ((2, 3, 4), (4,), True),
        ((2, 1, 4), (3, 1), False),
        ((3,), (), True),
    ],
)
def test_binary(op, a_shape, b_shape, b_const):
    rng = np.random.default_rng(12)
    a = randn(rng, *a_shape)
    b = rng.uniform(0.5, 2.0, b_shape).astype(np.float32)  # away from 0 for Div
    feeds, consts = ({"a": a}, {"b": b}) if b_const else ({"a": a, "b": b}, {})
    check(one_node(op, ["a", "b"], feeds, consts), feeds)


@pytest.mark.parametrize(
    "op, attrs",
    [("Relu", {}), ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {})],
)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
def test_activation(op, attrs, shape):
    x = randn(np.random.default_rng(13), *shape) * 4
    check(one_node(op, ["x"], {"x": x}, **attrs), {"x": x})


def test_sigmoid_saturates():
    x = np.array([-1000, -100, -20, 0, 20, 100, 1000], dtype=np.float32)
    check(one_node("Sigmoid", ["x"], {"x": x}), {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("bounds", [(-0.5, 0.7), (0.0, None), (None, 6.0), (None, None)])
def test_clip(opset, bounds):
    x = randn(np.random.default_rng(14), 3, 8) * 3
    consts, inputs = {}, ["x"]
    for name, value in zip(("lo", "hi"), bounds):
        inputs.append("" if value is None else name)
        if value is not None:
            consts[name] = np.array(value, dtype=np.float32)
    while inputs[-1] == "":
        inputs.pop()
    check(one_node("Clip", inputs, {"x": x}, consts, opset=opset), {"x": x})


SOFTMAX = [
    (11, (2, 3, 4), {}),  # opset < 13: flattened at axis 1
    (11, (2, 3, 4), {"axis": 2}),
    (11, (2, 3, 4), {"axis": 0}),
    (11, (3, 5), {}),
    (13, (2, 3, 4), {}),
    (13, (2, 3, 4), {"axis": 1}),
    (13, (2, 3, 4), {"axis": -3}),
]


@pytest.mark.parametrize("opset, shape, attrs", SOFTMAX)
def test_softmax(opset, shape, attrs):
    x = randn(np.random.default_rng(15), *shape) * 5
    check(one_node("Softmax", ["x"], {"x": x}, opset=opset, **attrs), {"x": x})


@pytest.mark.parametrize("opset", [11, 15])
@pytest.mark.parametrize("shape, epsilon", [((2, 3, 4, 4), 1e-5), ((2, 3), 1e-3), ((1, 4, 6), 0.1)])
def test_batch_norm_standalone(opset, shape, epsilon):
    rng = np.random.default_rng(16)
    c = shape[1]
    consts = {
        "scale": randn(rng, c),
        "bias": randn(rng, c),
        "mean": randn(rng, c),
        "var": rng.uniform(0.5, 2, c).astype(np.float32),
    }
    x = randn(rng, *shape)
    model = one_node(
        "BatchNormalization", ["x", "scale", "bias", "mean", "var"], {"x": x}, consts,
        opset=opset, epsilon=epsilon,
    )  # fmt: skip
    graph = check(model, {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["batch_norm"]
