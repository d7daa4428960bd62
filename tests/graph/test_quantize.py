"""accel.graph.quantize with calibration: the quantized graph's structure, its integer execution
against numpy written here, its accuracy against the float model, the report, and refusals."""

import numpy as np
import pytest
from onnx import helper
from quant_models import make_model, randn, residual_graph, run_onnxruntime

import accel.graph
from accel.errors import ArgumentError, GraphError
from accel.frontend import from_onnx


def rs(x, n):
    x = np.asarray(x, np.int64)
    return x if n == 0 else (x + (1 << (n - 1))) >> n


def conv2d_int64(x, w, pads):
    """Stride-1 2-D convolution of int64 data (N, C, H, W) by (M, C, kh, kw), zero padded."""
    xp = np.pad(x, [(0, 0), (0, 0), (pads, pads), (pads, pads)])
    kh, kw = w.shape[2:]
    h, wd = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    acc = np.zeros((x.shape[0], w.shape[0], h, wd), np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += np.einsum("nchw,mc->nmhw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return acc


def test_one_conv_layer_end_to_end():
    """Every number of a conv + bias + relu layer derived here from the calibration data: the
    scales, the int8 weights and int32 bias, the accumulator, the requantized output."""
    rng = np.random.default_rng(0)
    w, b = randn(rng, 4, 3, 3, 3) * 0.3, randn(rng, 4) * 0.2
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    model = make_model(nodes, {"x": (2, 3, 6, 6)}, {"w": w, "b": b}, {"y": np.float32})
    batches = [randn(rng, 2, 3, 6, 6) for _ in range(4)]
    qg = accel.graph.quantize(from_onnx(model), calibration=batches)
    assert [n.op for n in qg.nodes_in_order()] == ["quantize", "qconv", "requantize", "dequantize"]

    s_in = max(float(np.abs(x).max()) for x in batches) / 127
    peak_out = max(float(run_onnxruntime(model, {"x": x})[0].max()) for x in batches)
    s_out = peak_out / 127
    s_w = float(np.abs(w).max()) / 127
    w_q = np.clip(np.round(w / s_w), -127, 127).astype(np.int64)
    b_q = np.round(b / (s_in * s_w)).astype(np.int64)
    real = s_in * s_w / s_out

    (record,) = qg.quant_report
    assert (record.layer, record.op) == ("conv", "requantize")
    assert record.scale[0] == pytest.approx(real, rel=1e-6)
    total = record.pre_shift + record.shift
    assert abs(record.multiplier[0] / 2**total - real) / real <= 2.0**-15
    pos = np.where(w_q > 0, w_q, 0).sum(axis=(1, 2, 3))
    neg = np.where(w_q < 0, w_q, 0).sum(axis=(1, 2, 3))
    top, bottom = pos * 127 + neg * -128 + b_q, pos * -128 + neg * 127 + b_q
    assert record.acc_bound == int(np.maximum(np.abs(top), np.abs(bottom)).max())

    x = randn(rng, 2, 3, 6, 6) * 1.2  # beyond the calibrated range too: saturation
    x_q = np.clip(np.rint(x / np.float32(s_in)), -128, 127).astype(np.int64)
    acc = conv2d_int64(x_q, w_q, 1) + b_q.reshape(1, -1, 1, 1)
    y_q = np.clip(rs(rs(acc, record.pre_shift) * record.multiplier[0], record.shift), 0, 127)
    values = qg.evaluate(x)
    (requantize,) = [n for n in qg.nodes_in_order() if n.op == "requantize"]
    np.testing.assert_array_equal(values[requantize.outputs[0]], y_q)
    (dequantize,) = [n for n in qg.nodes_in_order() if n.op == "dequantize"]
    assert dequantize.attrs["scale"] == pytest.approx(s_out, rel=1e-6)
    np.testing.assert_array_equal(
        qg.run(x), y_q.astype(np.float32) * np.float32(dequantize.attrs["scale"])
    )


def test_the_acc_bound_is_exact_for_the_input_range():
    """|acc| <= max(sum(w+) * 127 + sum(w-) * -128, -(sum(w+) * -128 + sum(w-) * 127)) for an
    input quantized to [-128, 127], and some input attains it."""
    w = np.array([[[[0.5, -1.0, 0.25]]], [[[-0.5, -0.5, 0.0]]]], np.float32)  # (2, 1, 1, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    model = make_model(nodes, {"x": (1, 1, 1, 3)}, {"w": w}, {"y": np.float32})
    qg = accel.graph.quantize(from_onnx(model), calibration=[np.ones((1, 1, 1, 3), np.float32)])
    # scale 1/127: w_q = [64, -127, 32] (63.5 rounds to even) and [-64, -64, 0]
    np.testing.assert_array_equal(
        qg.constants["conv.weight_q"].reshape(2, 3), [[64, -127, 32], [-64, -64, 0]]
    )
    # channel 0: 96 * 127 + 127 * 128 = 28448 above, 96 * 128 + 127 * 127 = 28417 below
    assert qg.quant_report[0].acc_bound == 28448
    worst = np.array([127, -128, 127], np.int8).reshape(1, 1, 1, 3)
    acc = qg.node("conv").outputs[0]
    values = qg.evaluate(worst.astype(np.float32) * np.float32(1 / 127))
    assert values[qg.node("conv").inputs[0]].tolist() == worst.tolist()
    assert values[acc][0, 0, 0, 0] == 28448


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(1)
    model, graph = residual_graph(rng)
    calibration = [randn(rng, 1, 3, 16, 16) for _ in range(24)]
    tests = [randn(rng, 1, 3, 16, 16) for _ in range(60)]
    return model, graph, calibration, tests


@pytest.mark.parametrize("per_channel", [False, True])
def test_network_structure_and_accuracy(network, per_channel):
    model, graph, calibration, tests = network
    qg = accel.graph.quantize(graph, calibration=calibration, per_channel=per_channel)
    assert [n.op for n in qg.nodes_in_order()] == [
        "quantize", "qconv", "requantize", "max_pool", "qconv", "requantize", "qconv",
        "requantize", "qadd", "qsum_pool", "requantize", "reshape", "qdense", "requantize",
        "dequantize",
    ]  # fmt: skip
    assert qg.outputs == graph.outputs == ("logits",)
    agree, errors = 0, []
    for x in tests:
        expected = run_onnxruntime(model, {"x": x})[0]
        got = qg.run(x)
        assert got.dtype == np.float32 and got.shape == expected.shape
        errors.append(np.abs(got - expected).max() / np.abs(expected).max())
        agree += int(got.argmax() == expected.argmax())
    print(f"per_channel={per_channel}: worst relative output error {max(errors):.3f}, "
          f"mean {np.mean(errors):.3f}, argmax agrees on {agree}/{len(tests)}")  # fmt: skip
    assert np.mean(errors) < 0.05 and max(errors) < 0.12
    assert agree >= 0.9 * len(tests)


def test_report_lists_every_requantized_layer(network):
    _, graph, calibration, _ = network
    qg = accel.graph.quantize(graph, calibration=calibration, per_channel=True)
    layers = {r.layer: r for r in qg.quant_report}
    assert set(layers) == {"conv0", "conv1", "conv2", "residual", "gap", "fc"}
    assert all(r.rel_error < 1e-3 for r in qg.quant_report)
    assert layers["residual"].op == "qadd" and len(layers["residual"].scale) == 2
    assert len(layers["conv1"].scale) == 8  # per channel
    for r in qg.quant_report:
        total = r.pre_shift + r.shift
        errors = [abs(m / 2**total - s) / s for m, s in zip(r.multiplier, r.scale)]
        assert r.rel_error == pytest.approx(max(errors))
        assert all(abs(m) < 2**15 for m in r.multiplier)
    text = qg.report()
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "node", "op", "S", "M", "pre", "shift", "|acc|", "<=",
                                "rel.", "error"]  # fmt: skip
    assert [line.split()[0] for line in lines[1:7]] == [
        "conv0", "conv1", "conv2", "residual", "gap", "fc",
    ]  # fmt: skip
    assert "(8 ch)" in lines[1] and lines[6].startswith("fc")
    assert lines[7].startswith("worst relative scale error: ")
    assert "pool0 (max_pool): padded, input r0.q >= 0" in text


def test_relu_folds_into_the_clip_bounds(network):
    _, graph, calibration, _ = network
    qg = accel.graph.quantize(graph, calibration=calibration)
    conv0 = qg.node("conv0.requantize")
    assert (conv0.attrs["lo"], conv0.attrs["hi"]) == (0, 127)
    assert qg.node("conv2.requantize").attrs["lo"] == -128  # no relu after conv2 + bn2
    assert qg.node("residual").attrs["lo"] == 0  # relu2 folded into the qadd
    assert qg.ranges[qg.node("pool0").outputs[0]] == (0, 127)
    assert not any(n.op == "relu" for n in qg.nodes_in_order())


def test_integer_execution_is_deterministic(network):
    _, graph, calibration, tests = network
    qg = accel.graph.quantize(graph, calibration=calibration)
    first = qg.evaluate(tests[0])
    second = qg.evaluate(tests[0])
    for name, value in first.items():
        np.testing.assert_array_equal(value, second[name])
    assert all(first[t].dtype in (np.int8, np.int32) for t in qg.scales)


def test_without_calibration_every_activation_gets_the_default_scale(network):
    _, graph, _, tests = network
    qg = accel.graph.quantize(graph)
    assert qg.node("x.quantize").attrs["scale"] == 1 / 16
    assert set(qg.scales.values()) == {1 / 16}
    assert np.isfinite(qg.run(tests[0])).all()


def chain(nodes, consts, inputs, outputs=("y",)):
    model = make_model(nodes, inputs, consts, {o: np.float32 for o in outputs})
    return model, from_onnx(model)


def test_ops_without_an_integer_form_stay_float():
    """conv -> sigmoid -> conv: the sigmoid runs in float between dequantize and quantize."""
    rng = np.random.default_rng(2)
    make = helper.make_node
    nodes = [
        make("Conv", ["x", "w0"], ["a"], name="conv0", pads=[1, 1, 1, 1]),
        make("Sigmoid", ["a"], ["s"], name="sigmoid"),
        make("Conv", ["s", "w1"], ["y"], name="conv1"),
    ]
    consts = {"w0": randn(rng, 4, 2, 3, 3), "w1": randn(rng, 3, 4, 1, 1)}
    model, graph = chain(nodes, consts, {"x": (1, 2, 5, 5)})
    batches = [randn(rng, 1, 2, 5, 5) for _ in range(6)]
    qg = accel.graph.quantize(graph, calibration=batches)
    assert [(n.name, n.op) for n in qg.nodes_in_order()] == [
        ("x.quantize", "quantize"), ("conv0", "qconv"), ("conv0.requantize", "requantize"),
        ("a.dequantize", "dequantize"), ("sigmoid", "sigmoid"), ("s.quantize", "quantize"),
        ("conv1", "qconv"), ("conv1.requantize", "requantize"), ("y.dequantize", "dequantize"),
    ]  # fmt: skip
    x = randn(rng, 1, 2, 5, 5)
    expected = run_onnxruntime(model, {"x": x})[0]
    np.testing.assert_allclose(qg.run(x), expected, atol=0.05 * np.abs(expected).max())


def test_concat_requantizes_to_a_common_scale_and_clip_folds():
    rng = np.random.default_rng(3)
    make = helper.make_node
    nodes = [
        make("Conv", ["x", "w0"], ["a"], name="conv0"),
        make("Conv", ["x", "w1"], ["b"], name="conv1"),
        make("Clip", ["b", "lo", "hi"], ["bc"], name="relu6"),
        make("Concat", ["a", "bc"], ["y"], name="cat", axis=1),
    ]
    consts = {
        "w0": randn(rng, 2, 3, 1, 1) * 4,  # a's range is much wider than bc's
        "w1": randn(rng, 3, 3, 1, 1),
        "lo": np.float32(0),
        "hi": np.float32(6),
    }
    model, graph = chain(nodes, consts, {"x": (1, 3, 4, 4)})
    batches = [randn(rng, 1, 3, 4, 4) * 3 for _ in range(5)]
    qg = accel.graph.quantize(graph, calibration=batches)
    ops = [n.op for n in qg.nodes_in_order()]
    assert ops.count("requantize") == 3 and "concat" in ops and "clip" not in ops
    clip = qg.node("conv1.requantize")
    s_bc = qg.scales[clip.outputs[0]]
    assert clip.attrs["lo"] == 0 and clip.attrs["hi"] == min(127, round(6 / s_bc))
    cat = qg.node("cat")
    scales = [qg.scales[t] for t in cat.inputs]
    assert scales[0] == scales[1] == qg.scales[cat.outputs[0]]
    x = randn(rng, 1, 3, 4, 4) * 3
    expected = run_onnxruntime(model, {"x": x})[0]
    np.testing.assert_allclose(qg.run(x), expected, atol=2 * scales[0])


def test_average_pooling():
    """A constant window count becomes qsum_pool + requantize (the division is in the scale);
    border windows that count fewer elements stay float."""
    rng = np.random.default_rng(4)
    make = helper.make_node
    nodes = [
        make("AveragePool", ["x"], ["a"], name="even", kernel_shape=[2, 2], strides=[2, 2]),
        make("AveragePool", ["a"], ["y"], name="border", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    model, graph = chain(nodes, {}, {"x": (1, 2, 8, 8)})
    qg = accel.graph.quantize(graph, calibration=[randn(rng, 1, 2, 8, 8) for _ in range(4)])
    assert [n.op for n in qg.nodes_in_order()] == [
        "quantize", "qsum_pool", "requantize", "dequantize", "avg_pool",
    ]  # fmt: skip
    record = qg.quant_report[0]
    s_x, s_a = (
        qg.scales[qg.node("even").inputs[0]],
        qg.scales[qg.node("even.requantize").outputs[0]],
    )
    assert record.scale[0] == pytest.approx(s_x / 4 / s_a)
    x = randn(rng, 1, 2, 8, 8)
    expected = run_onnxruntime(model, {"x": x})[0]
    np.testing.assert_allclose(qg.run(x), expected, atol=2 * s_a)


def test_two_inputs_calibrated_by_name_and_matmul():
    rng = np.random.default_rng(5)
    make = helper.make_node
    nodes = [
        make("MatMul", ["u", "w"], ["m"], name="mm"),
        make("Sub", ["m", "v"], ["y"], name="diff"),
    ]
    model, graph = chain(nodes, {"w": randn(rng, 6, 4)}, {"u": (3, 6), "v": (3, 4)})
    batches = [{"u": randn(rng, 3, 6), "v": randn(rng, 3, 4)} for _ in range(5)]
    qg = accel.graph.quantize(graph, calibration=batches)
    ops = [n.op for n in qg.nodes_in_order()]
    assert ops == ["quantize", "qdense", "requantize", "quantize", "qadd", "dequantize"]
    assert qg.node("diff").attrs["multiplier_b"] < 0
    feeds = {"u": randn(rng, 3, 6), "v": randn(rng, 3, 4)}
    expected = run_onnxruntime(model, feeds)[0]
    scale = qg.scales[qg.node("diff").outputs[0]]
    np.testing.assert_allclose(qg.run(**feeds), expected, atol=3 * scale)


# -- refusals ----------------------------------------------------------------------------------


def test_refuses_an_integer_graph(network):
    _, graph, calibration, _ = network
    qg = accel.graph.quantize(graph, calibration=calibration[:2])
    with pytest.raises(GraphError, match=r"already has integer operators \(dequantize, .*qconv"):
        accel.graph.quantize(qg)


@pytest.mark.parametrize(
    "calibration, message",
    [
        ([], "non-empty list"),
        (np.zeros((1, 3, 16, 16), np.float32), "non-empty list"),
        ([np.zeros((1, 3, 8, 8), np.float32)], r"input 'x': expected float32\[1, 3, 16, 16\]"),
        ([{"y": np.zeros((1, 3, 16, 16), np.float32)}], "unknown: y, missing: x"),
    ],
)
def test_refuses_bad_calibration(network, calibration, message):
    _, graph, _, _ = network
    with pytest.raises(ArgumentError, match=message):
        accel.graph.quantize(graph, calibration=calibration)


def test_refuses_a_layer_whose_accumulator_cannot_fit_int32():
    """128 * 127 * 140 000 = 2 275 840 000 > 2^31 - 1: a dot product that long of saturated
    int8 values cannot be accumulated in int32."""
    k = 140_000
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="huge")]
    model, graph = chain(nodes, {"w": np.ones((k, 1), np.float32)}, {"x": (1, k)})
    with pytest.raises(GraphError, match=r"'huge' \(matmul\): output channel 0 can reach"):
        accel.graph.quantize(graph)
