"""QDQ models from onnxruntime's quantize_static (and QLinear operators): accel.graph.quantize
keeps the model's scales, and the integer executor agrees with onnxruntime running the model."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from quant_models import make_model, randn, run_onnxruntime

import accel.graph
from accel.errors import GraphError, UnsupportedOperatorError
from accel.frontend import from_onnx

SHAPE = (1, 3, 12, 12)


def float_model(rng):
    """conv-relu -> maxpool -> conv-relu + skip -> global average pool -> flatten -> gemm."""
    make = helper.make_node
    consts = {
        "w0": randn(rng, 8, 3, 3, 3) * 0.3,
        "b0": randn(rng, 8) * 0.1,
        "w1": randn(rng, 8, 8, 3, 3) * 0.2,
        "b1": randn(rng, 8) * 0.1,
        "fc_w": randn(rng, 10, 8),
        "fc_b": randn(rng, 10) * 0.1,
    }
    nodes = [
        make("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        make("Relu", ["c0"], ["r0"], name="relu0"),
        make("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
        make("Conv", ["p0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        make("Relu", ["c1"], ["r1"], name="relu1"),
        make("Add", ["r1", "p0"], ["s"], name="residual"),
        make("GlobalAveragePool", ["s"], ["g"], name="gap"),
        make("Flatten", ["g"], ["f"], name="flatten"),
        make("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, {"x": SHAPE}, consts, {"y": np.float32})


class Batches(CalibrationDataReader):
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def qdq_model(tmp_path, per_channel: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(20)
    source, target = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(float_model(rng), source)
    quantize_static(
        str(source),
        str(target),
        Batches([{"x": randn(rng, *SHAPE)} for _ in range(16)]),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    return onnx.load(target)


@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_model_against_onnxruntime(tmp_path, per_channel):
    model = qdq_model(tmp_path, per_channel)
    qg = accel.graph.quantize(from_onnx(model))
    assert [n.op for n in qg.nodes_in_order()] == [
        "quantize", "qconv", "requantize", "relu", "max_pool", "qconv", "requantize", "relu",
        "qadd", "qsum_pool", "requantize", "reshape", "qdense", "requantize", "dequantize",
    ]  # fmt: skip

    # The model's own scales: each QuantizeLinear's output is written at its scale.
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    targets = {
        n.output[0]: float(inits[n.input[1]])
        for n in model.graph.node
        if n.op_type == "QuantizeLinear"
    }
    written = [t for t in targets if t in qg.scales]
    assert len(written) >= 6
    assert all(qg.scales[t] == targets[t] for t in written)
    y_scale = targets["y_QuantizeLinear_Output"]

    rng = np.random.default_rng(21)
    agree, worst, count = 0, 0.0, 200
    for _ in range(count):
        x = randn(rng, *SHAPE)
        expected = run_onnxruntime(model, {"x": x})[0]
        got = qg.run(x)
        agree += int(expected.argmax() == got.argmax())
        worst = max(worst, float(np.abs(got - expected).max()) / y_scale)
    print(f"per_channel={per_channel}: argmax agrees on {agree}/{count}, worst {worst:.0f} quanta")
    assert agree >= 0.98 * count
    assert worst <= 2.0 + 1e-6  # output quanta


def qdq_conv(x_zp=None, w_zp=None):
    rng = np.random.default_rng(22)
    consts = {
        "x_scale": np.float32(0.02),
        "x_zp": np.int8(0) if x_zp is None else x_zp,
        "w_q": rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
        "w_scale": np.float32(0.01),
        "w_zp": np.int8(0) if w_zp is None else w_zp,
    }
    make = helper.make_node
    nodes = [
        make("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="quant_x"),
        make("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"], name="dequant_x"),
        make("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dequant_w"),
        make("Conv", ["xd", "w"], ["y"], name="conv"),
    ]
    return make_model(nodes, {"x": (1, 3, 5, 5)}, consts, {"y": np.float32})


def test_a_convolution_without_a_following_quantize_is_dequantized_from_int32():
    """Nothing gives the conv's output a scale: its accumulator is dequantized per channel on
    the host, which is the model's own float result."""
    model = qdq_conv()
    qg = accel.graph.quantize(from_onnx(model))
    assert [n.op for n in qg.nodes_in_order()] == ["quantize", "qconv", "dequantize"]
    x = randn(np.random.default_rng(23), 1, 3, 5, 5)
    expected = run_onnxruntime(model, {"x": x})[0]
    np.testing.assert_allclose(qg.run(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x_zp": np.uint8(128)}, r"'quant_x' \(quantize_linear\): zero point of data type uint8"),
        ({"x_zp": np.int8(3)}, r"'quant_x' \(quantize_linear\): zero point 'x_zp' with non-zero"),
        ({"w_zp": np.int8(1)}, r"'dequant_w' \(dequantize_linear\): zero point 'w_zp' with non"),
    ],
)
def test_refuses_asymmetric_quantization(kwargs, message):
    graph = from_onnx(qdq_conv(**kwargs))
    with pytest.raises(UnsupportedOperatorError, match=message + ".*only symmetric int8"):
        accel.graph.quantize(graph)


def test_refuses_calibration_for_a_qdq_model():
    with pytest.raises(GraphError, match="QDQ model: it is quantized with its own scales"):
        accel.graph.quantize(from_onnx(qdq_conv()), calibration=[np.zeros((1, 3, 5, 5))])


def test_qlinear_conv_and_matmul_become_integer_layers():
    rng = np.random.default_rng(24)
    consts = {
        "x_scale": np.float32(0.03),
        "zp": np.int8(0),
        "w": rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8),
        "w_scale": rng.uniform(0.005, 0.02, 6).astype(np.float32),
        "w_zp": np.zeros(6, np.int8),
        "c_scale": np.float32(0.05),
        "b": rng.integers(-3000, 3000, 6).astype(np.int32),
        "m": rng.integers(-127, 128, (54, 5)).astype(np.int8),
        "m_scale": np.float32(0.01),
        "y_scale": np.float32(0.1),
    }
    make = helper.make_node
    nodes = [
        make("QuantizeLinear", ["x", "x_scale", "zp"], ["xq"], name="quant"),
        make(
            "QLinearConv",
            ["xq", "x_scale", "zp", "w", "w_scale", "w_zp", "c_scale", "zp", "b"],
            ["c"],
            name="qconv",
            pads=[1, 1, 1, 1],
            strides=[2, 2],
        ),
        make("Reshape", ["c", "shape"], ["f"], name="flatten"),
        make(
            "QLinearMatMul",
            ["f", "c_scale", "zp", "m", "m_scale", "zp", "y_scale", "zp"],
            ["y"],
            name="qmatmul",
        ),
    ]
    consts["shape"] = np.array([2, 54], np.int64)
    model = make_model(nodes, {"x": (2, 3, 6, 6)}, consts, {"c": np.int8, "y": np.int8})
    qg = accel.graph.quantize(from_onnx(model))
    assert [n.op for n in qg.nodes_in_order()] == [
        "quantize", "qconv", "requantize", "reshape", "qdense", "requantize",
    ]  # fmt: skip
    assert qg.outputs == ("c", "y")
    same, total = np.zeros(2), 0
    for _ in range(10):
        x = randn(rng, 2, 3, 6, 6) * 2
        expected = run_onnxruntime(model, {"x": x})
        got = qg.run(x)
        assert got[0].dtype == got[1].dtype == np.int8
        # onnxruntime rescales in float32 and we in 16-bit fixed point: the conv's outputs
        # differ by one step where the two roundings fall on either side of a half; the
        # matmul adds up such differences.
        assert np.abs(got[0].astype(int) - expected[0]).max() <= 1
        assert np.abs(got[1].astype(int) - expected[1]).max() <= 2
        same += [np.sum(g == e) for g, e in zip(got, expected)]
        total += 1
    assert same[0] / (total * expected[0].size) > 0.98
    assert same[1] / (total * expected[1].size) > 0.8


def test_a_constant_operand_and_a_float_op_in_a_qdq_model():
    """Add of an activation and a dequantized int8 constant becomes a qadd at the Q's scale;
    the Sigmoid after it has no integer form and runs in float on the dequantized sum."""
    rng = np.random.default_rng(25)
    consts = {
        "x_scale": np.float32(0.03),
        "zp": np.int8(0),
        "c_q": rng.integers(-127, 128, (1, 4, 1, 1)).astype(np.int8),
        "c_scale": np.float32(0.02),
        "s_scale": np.float32(0.05),
    }
    make = helper.make_node
    nodes = [
        make("QuantizeLinear", ["x", "x_scale", "zp"], ["xq"], name="quant_x"),
        make("DequantizeLinear", ["xq", "x_scale", "zp"], ["xd"], name="dequant_x"),
        make("DequantizeLinear", ["c_q", "c_scale", "zp"], ["c"], name="dequant_c"),
        make("Add", ["xd", "c"], ["s"], name="add"),
        make("QuantizeLinear", ["s", "s_scale", "zp"], ["sq"], name="quant_s"),
        make("DequantizeLinear", ["sq", "s_scale", "zp"], ["sd"], name="dequant_s"),
        make("Sigmoid", ["sd"], ["y"], name="sigmoid"),
    ]
    model = make_model(nodes, {"x": (2, 4, 3, 3)}, consts, {"y": np.float32})
    qg = accel.graph.quantize(from_onnx(model))
    assert [(n.name, n.op) for n in qg.nodes_in_order()] == [
        ("x.quantize", "quantize"), ("add", "qadd"), ("sd.dequantize", "dequantize"),
        ("sigmoid", "sigmoid"),
    ]  # fmt: skip
    assert qg.scales[qg.node("add").outputs[0]] == np.float32(0.05)
    x = randn(rng, 2, 4, 3, 3)
    expected = run_onnxruntime(model, {"x": x})[0]
    # one step of s (0.05) moves the sigmoid by at most 0.05 / 4
    np.testing.assert_allclose(qg.run(x), expected, atol=0.0125 + 1e-6)
