"""Multi-node models: BatchNormalization folding, and a small residual network end to end,
against onnxruntime."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_models import check, make_model, randn

from accel.frontend import from_onnx


def bn_consts(rng, prefix, c):
    return {
        f"{prefix}_scale": rng.uniform(0.5, 1.5, c).astype(np.float32),
        f"{prefix}_bias": randn(rng, c),
        f"{prefix}_mean": randn(rng, c),
        f"{prefix}_var": rng.uniform(0.5, 2.0, c).astype(np.float32),
    }


def bn(prefix, x, y, epsilon=1e-5):
    names = [f"{prefix}_{k}" for k in ("scale", "bias", "mean", "var")]
    return helper.make_node("BatchNormalization", [x, *names], [y], name=prefix, epsilon=epsilon)


@pytest.mark.parametrize("conv_bias", [True, False])
def test_batch_norm_folds_into_conv(conv_bias):
    rng = np.random.default_rng(60)
    x = randn(rng, 2, 3, 8, 8)
    consts = {"w": randn(rng, 4, 3, 3, 3), **bn_consts(rng, "bn", 4)}
    inputs = ["x", "w"]
    if conv_bias:
        consts["b"] = randn(rng, 4)
        inputs.append("b")
    nodes = [
        helper.make_node("Conv", inputs, ["c"], name="conv", pads=[1, 1, 1, 1]),
        bn("bn", "c", "n", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    graph = check(make_model(nodes, {"x": x}, consts, {"y": np.float32}), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["conv", "relu"]
    conv = graph.node("conv")
    assert conv.outputs == ("n",)
    # Folded parameters, derived here from the model's constants.
    s = consts["bn_scale"].astype(np.float64) / np.sqrt(consts["bn_var"] + 1e-3)
    b = consts.get("b", np.zeros(4, np.float32))
    np.testing.assert_allclose(
        graph.constants[conv.inputs[1]], consts["w"] * s[:, None, None, None], rtol=1e-6
    )
    np.testing.assert_allclose(
        graph.constants[conv.inputs[2]],
        (b - consts["bn_mean"]) * s + consts["bn_bias"],
        rtol=1e-6,
        atol=1e-6,
    )
    assert set(graph.constants) == {conv.inputs[1], conv.inputs[2]}  # the originals are pruned


def test_batch_norm_not_folded_when_conv_output_is_shared():
    rng = np.random.default_rng(61)
    x = randn(rng, 1, 3, 6, 6)
    consts = {"w": randn(rng, 4, 3, 3, 3), **bn_consts(rng, "bn", 4)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        bn("bn", "c", "n"),
        helper.make_node("Add", ["n", "c"], ["y"], name="add"),
    ]
    graph = check(make_model(nodes, {"x": x}, consts, {"y": np.float32}), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["conv", "batch_norm", "add"]


def test_batch_norm_not_folded_when_conv_output_is_a_graph_output():
    rng = np.random.default_rng(62)
    x = randn(rng, 1, 3, 6, 6)
    consts = {"w": randn(rng, 4, 3, 3, 3), **bn_consts(rng, "bn", 4)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn("bn", "c", "y")]
    model = make_model(nodes, {"x": x}, consts, {"y": np.float32, "c": np.float32})
    graph = check(model, {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["conv", "batch_norm"]
    assert graph.outputs == ("y", "c")


def residual_net(rng):
    """conv-bn-relu, maxpool, then a residual block (conv-bn-relu-conv-bn + skip), relu,
    global average pool, flatten, gemm, softmax."""
    consts = {
        "w0": randn(rng, 8, 3, 3, 3) * 0.3,
        **bn_consts(rng, "bn0", 8),
        "w1": randn(rng, 8, 8, 3, 3) * 0.2,
        "b1": randn(rng, 8),
        **bn_consts(rng, "bn1", 8),
        "w2": randn(rng, 8, 8, 3, 3) * 0.2,
        **bn_consts(rng, "bn2", 8),
        "fc_w": randn(rng, 10, 8),
        "fc_b": randn(rng, 10),
    }
    conv = helper.make_node
    nodes = [
        conv("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1], strides=[2, 2]),
        bn("bn0", "c0", "n0"),
        helper.make_node("Relu", ["n0"], ["r0"], name="relu0"),
        helper.make_node(
            "MaxPool",
            ["r0"],
            ["p0"],
            name="pool0",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        conv("Conv", ["p0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        bn("bn1", "c1", "n1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        conv("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        bn("bn2", "c2", "n2"),
        helper.make_node("Add", ["n2", "p0"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    return nodes, consts


def test_residual_network_end_to_end():
    rng = np.random.default_rng(63)
    nodes, consts = residual_net(rng)
    x = randn(rng, 2, 3, 32, 32)
    model = make_model(nodes, {"x": x}, consts, {"logits": np.float32, "probs": np.float32}, 13)
    graph = check(model, {"x": x}, rtol=1e-4, atol=1e-5)
    assert [n.op for n in graph.nodes_in_order()] == [
        "conv", "relu", "max_pool", "conv", "relu", "conv", "add", "relu",
        "global_avg_pool", "reshape", "gemm", "softmax",
    ]  # fmt: skip
    logits, probs = graph.run(x)  # several outputs come back as a tuple, in order
    assert logits.shape == probs.shape == (2, 10)
    printed = str(graph)
    assert (
        printed.splitlines()[0]
        == "graph test(x: float32[2, 3, 32, 32]) -> (logits: float32[2, 10], probs: float32[2, 10])"
    )
    assert "  residual: s: float32[2, 8, 8, 8] = add(n2, p0)" in printed


def test_qdq_conv_keeps_its_quantization():
    """The QDQ format: quantized activations and per-channel int8 weights reach the float Conv
    through DequantizeLinear, which import keeps (it is never folded into float weights)."""
    rng = np.random.default_rng(64)
    x = randn(rng, 1, 3, 8, 8)
    w_scale = rng.uniform(0.01, 0.03, 4).astype(np.float32)
    consts = {
        "x_scale": np.float32(0.02),
        "x_zp": np.uint8(128),
        "w_q": rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
        "w_scale": w_scale,
        "w_zp": np.zeros(4, np.int8),
        "b_q": rng.integers(-2000, 2000, 4).astype(np.int32),
        "b_scale": (w_scale * np.float32(0.02)).astype(np.float32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dq_x"),
        helper.make_node(
            "DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq_w", axis=0
        ),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], name="dq_b", axis=0),
        helper.make_node("Conv", ["xd", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = check(make_model(nodes, {"x": x}, consts, {"y": np.float32}, 13), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == [
        "quantize_linear", "dequantize_linear", "dequantize_linear", "dequantize_linear",
        "conv", "relu",
    ]  # fmt: skip
    assert graph.node("dq_w").attrs["axis"] == 0 and graph.node("q").attrs["axis"] is None


def test_inferred_types_agree_with_onnx_shape_inference():
    rng = np.random.default_rng(65)
    nodes, consts = residual_net(rng)
    x = randn(rng, 2, 3, 32, 32)
    model = make_model(nodes, {"x": x}, consts, {"logits": np.float32, "probs": np.float32}, 13)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph.value_info
    graph = from_onnx(model)
    compared = 0
    for value in inferred:
        if value.name in graph.tensors:
            dims = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
            assert graph.tensors[value.name].shape == dims, value.name
            compared += 1
    assert compared >= 8
