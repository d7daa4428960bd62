"""accel.graph.pack and build: every partition and fusion decision on a small model, each
checked for its placement and reason and for a program that equals the integer reference
executor bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from quant_models import make_model, randn, residual_graph

import accel
import accel.graph
from accel.errors import GraphError
from accel.frontend import from_onnx
from accel.graph import Node, QuantizedGraph, TensorInfo
from accel.graph.layout import layout_of
from accel.topi import Conv2dTiles, tuning

ENV = accel.get_env()
make = helper.make_node


def quantized(model: onnx.ModelProto, shape=(1, 3, 8, 8), per_channel=False, seed=0):
    rng = np.random.default_rng(seed)
    graph = from_onnx(model)
    calibration = [randn(rng, *shape) for _ in range(4)]
    return accel.graph.quantize(graph, calibration=calibration, per_channel=per_channel)


def check_exact(qg, shape=(1, 3, 8, 8), runs=3, seed=1, **build):
    """Build ``qg``; its program equals ``qg.run`` on random inputs, bit for bit."""
    prog = accel.graph.build(qg, **build)
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        x = randn(rng, *shape)
        np.testing.assert_array_equal(prog.run(x), qg.run(x))
    return prog


def step_of(pg, node: str):
    return pg.step(node)


def conv_model(cin=3, cout=16, k=3, pads=(1, 1, 1, 1), after=(), hw=8, **attrs):
    rng = np.random.default_rng(2)
    consts = {"w": randn(rng, cout, cin, k, k) * 0.3, "b": randn(rng, cout) * 0.1}
    nodes = [make("Conv", ["x", "w", "b"], ["c"], name="conv", pads=list(pads), **attrs)]
    last = "c"
    for i, op in enumerate(after):
        nodes.append(make(op, [last], [f"a{i}"], name=f"after{i}"))
        last = f"a{i}"
    nodes.append(make("Identity", [last], ["y"], name="out"))
    return make_model(nodes, {"x": (1, cin, hw, hw)}, consts, {"y": np.float32})


def test_conv_fuses_bias_requantize_and_relu_and_pads_channels():
    qg = quantized(conv_model(cin=3, cout=10, after=("Relu",)))
    pg = accel.graph.pack(qg)
    step = step_of(pg, "conv")
    assert (step.target, step.kind) == ("accel", "conv2d")
    assert step.nodes == ("conv", "conv.requantize")
    assert "3 input channels padded to 16" in step.reason
    assert "10 output channels padded to 16" in step.reason
    assert pg.layouts["x.q"].packed == (1, 1, 8, 8, 1, 16)
    assert step_of(pg, "x.quantize").target == "host"
    assert "quantize: float input" in step_of(pg, "x.quantize").reason
    check_exact(qg)


def test_one_input_channel_is_padded_to_a_block():
    qg = quantized(conv_model(cin=1, cout=16), shape=(1, 1, 8, 8))
    step = accel.graph.pack(qg).step("conv")
    assert "1 input channel padded to 16" in step.reason
    check_exact(qg, shape=(1, 1, 8, 8))


def test_pre_shift_rounding_joins_the_bias():
    """The pre-shift's ADD moves into the bias constant: one ALU step less, same results."""
    qg = quantized(conv_model(cin=16, cout=16), shape=(1, 16, 8, 8))
    req = qg.node("conv.requantize").attrs
    assert 0 < req["pre_shift"] <= 15
    step = accel.graph.pack(qg).step("conv")
    assert step.params["bias_offset"] == 1 << (req["pre_shift"] - 1)
    assert step.params["steps"][0].op == "shr"
    check_exact(qg, shape=(1, 16, 8, 8))


def test_residual_block_fuses_the_add_into_the_second_convolution():
    _model, graph = residual_graph(np.random.default_rng(3), shape=(1, 3, 16, 16))
    rng = np.random.default_rng(4)
    qg = accel.graph.quantize(graph, calibration=[randn(rng, 1, 3, 16, 16) for _ in range(4)])
    pg = accel.graph.pack(qg)
    conv2 = pg.step("conv2")
    assert conv2.nodes == ("conv2", "conv2.requantize", "residual")
    assert "residual qadd" in conv2.reason
    assert pg.step("pool0").kind == "max_pool"  # padded, after a ReLU: exact with zero padding
    assert "input is >= 0" in pg.step("pool0").reason
    assert pg.step("gap").kind == "sum_pool"
    assert pg.step("fc").nodes == ("flatten", "fc", "fc.requantize")
    assert [s.name for s in pg.host_steps] == ["x.quantize", "logits.dequantize"]
    prog = check_exact(qg, shape=(1, 3, 16, 16))
    # consecutive accelerator steps hand over in device memory: one upload, one download
    assert [a.kind for a in prog.actions if a.kind != "step"] == ["upload", "download"]


def test_max_pool_padding_possibly_negative_input_goes_to_the_host():
    model = conv_model(cin=16, cout=16, after=())
    model.graph.node.insert(
        1,
        make("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1]),
    )  # fmt: skip
    model.graph.node[2].input[0] = "p"
    qg = quantized(model, shape=(1, 16, 8, 8))
    step = accel.graph.pack(qg).step("pool")
    assert step.target == "host"
    assert "the accelerator pads with 0" in step.reason
    check_exact(qg, shape=(1, 16, 8, 8))


def test_unpadded_max_pool_and_an_int8_relu_run_on_the_accelerator():
    model = conv_model(cin=16, cout=16, after=())
    model.graph.node.pop()
    model.graph.node.extend(
        [
            make("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
            make("Relu", ["p"], ["y"], name="relu"),
        ]
    )
    qg = quantized(model, shape=(1, 16, 8, 8))
    pg = accel.graph.pack(qg)
    assert pg.step("pool").kind == "max_pool"
    relu = pg.step("relu")
    assert (relu.kind, relu.reason) == ("alu", "relu on the ALU")
    check_exact(qg, shape=(1, 16, 8, 8))


def test_standalone_residual_add_runs_on_the_alu():
    nodes = [make("Add", ["x", "z"], ["s"], name="add"), make("Relu", ["s"], ["y"], name="relu")]
    model = make_model(nodes, {"x": (1, 16, 4, 4), "z": (1, 16, 4, 4)}, {}, {"y": np.float32})
    rng = np.random.default_rng(5)
    calibration = [(randn(rng, 1, 16, 4, 4), randn(rng, 1, 16, 4, 4)) for _ in range(3)]
    qg = accel.graph.quantize(from_onnx(model), calibration=calibration)
    step = accel.graph.pack(qg).step("add")
    assert step.kind == "add" and step.inputs == ("x.q", "z.q")
    prog = accel.graph.build(qg)
    for _ in range(3):
        a, b = randn(rng, 1, 16, 4, 4), randn(rng, 1, 16, 4, 4)
        np.testing.assert_array_equal(prog.run(x=a, z=b), qg.run(x=a, z=b))


@pytest.mark.parametrize(
    "attrs, why",
    [
        ({"group": 2}, "grouped qconv"),
        ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, "dilated qconv"),
        ({"pads": [0, 0, 1, 1]}, "uneven padding"),
        ({"strides": [1, 2]}, "unequal strides"),
    ],
    ids=["grouped", "dilated", "uneven_pads", "unequal_strides"],
)
def test_convolutions_the_accelerator_cannot_do_stay_on_the_host(attrs, why):
    pads = attrs.pop("pads", [1, 1, 1, 1])
    cin = 16 // attrs.get("group", 1)
    rng = np.random.default_rng(6)
    consts = {"w": randn(rng, 16, cin, 3, 3) * 0.3}
    nodes = [make("Conv", ["x", "w"], ["y"], name="conv", pads=pads, **attrs)]
    qg = quantized(make_model(nodes, {"x": (1, 16, 8, 8)}, consts, {"y": np.float32}),
                   shape=(1, 16, 8, 8))  # fmt: skip
    step = accel.graph.pack(qg).step("conv")
    assert step.target == "host" and why in step.reason
    check_exact(qg, shape=(1, 16, 8, 8), runs=1)


def test_a_convolution_no_tile_fits_falls_back_to_the_host():
    wide = conv_model(cin=16, cout=16)
    wide.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 3000
    qg = quantized(wide, shape=(1, 16, 8, 3000))
    step = accel.graph.pack(qg).step("conv")
    assert step.target == "host"
    assert "no tile" in step.reason and step.reason.endswith(": host")
    check_exact(qg, shape=(1, 16, 8, 3000), runs=1)


def test_average_pool_is_window_sums_and_requantize_on_the_alu():
    nodes = [
        make("AveragePool", ["x"], ["y"], name="avg", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    qg = quantized(make_model(nodes, {"x": (1, 32, 8, 8)}, {}, {"y": np.float32}),
                   shape=(1, 32, 8, 8))  # fmt: skip
    step = accel.graph.pack(qg).step("avg")
    assert (step.kind, step.nodes) == ("sum_pool", ("avg", "avg.requantize"))
    check_exact(qg, shape=(1, 32, 8, 8))


def test_flatten_is_folded_into_the_dense_weights():
    rng = np.random.default_rng(7)
    consts = {"w": randn(rng, 16, 3, 3, 3) * 0.3, "fw": randn(rng, 10, 16 * 4 * 4) * 0.1}
    nodes = [
        make("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        make("Relu", ["c"], ["r"], name="relu"),
        make("Flatten", ["r"], ["f"], name="flatten"),
        make("Gemm", ["f", "fw"], ["y"], name="fc", transB=1),
    ]
    qg = quantized(make_model(nodes, {"x": (1, 3, 4, 4)}, consts, {"y": np.float32}),
                   shape=(1, 3, 4, 4))  # fmt: skip
    step = accel.graph.pack(qg).step("fc")
    assert step.nodes[0] == "flatten" and "flatten folded into the weight order" in step.reason
    check_exact(qg, shape=(1, 3, 4, 4))


def test_softmax_and_other_float_operators_stay_on_the_host():
    rng = np.random.default_rng(8)
    consts = {"fw": randn(rng, 10, 32) * 0.3}
    nodes = [
        make("Gemm", ["x", "fw"], ["g"], name="fc", transB=1),
        make("Softmax", ["g"], ["s"], name="softmax", axis=1),
        make("Sigmoid", ["s"], ["y"], name="sigmoid"),
    ]
    qg = quantized(make_model(nodes, {"x": (1, 32)}, consts, {"y": np.float32}), shape=(1, 32))
    pg = accel.graph.pack(qg)
    assert pg.step("softmax").reason == "softmax: no integer form, host"
    assert "float operator with no integer form" in pg.step("sigmoid").reason
    check_exact(qg, shape=(1, 32))


def test_per_channel_multipliers_are_a_tensor_operand():
    qg = quantized(conv_model(cin=16, cout=32, after=("Relu",)), shape=(1, 16, 8, 8),
                   per_channel=True)  # fmt: skip
    step = accel.graph.pack(qg).step("conv")
    assert step.params["per_channel"] and "per-channel requantization" in step.reason
    assert any(s.operand == "multiplier" for s in step.params["steps"])
    check_exact(qg, shape=(1, 16, 8, 8))


def test_an_accumulator_read_by_another_operator_stays_on_the_host():
    """qconv whose int32 result is dequantized directly: the accelerator stores only int8."""
    w = np.ones((16, 16, 1, 1), np.int8)
    nodes = [
        Node("q", "quantize", ("x",), ("xq",), {"scale": 0.1}),
        Node("conv", "qconv", ("xq", "w"), ("acc",),
             {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "group": 1}),
        Node("dq", "dequantize", ("acc",), ("y",), {"scale": 0.01, "axis": None}),
    ]  # fmt: skip
    tensors = {
        "x": TensorInfo((1, 16, 4, 4), np.float32),
        "w": TensorInfo(w.shape, np.int8),
        "xq": TensorInfo((1, 16, 4, 4), np.int8),
        "acc": TensorInfo((1, 16, 4, 4), np.int32),
        "y": TensorInfo((1, 16, 4, 4), np.float32),
    }
    qg = QuantizedGraph(nodes, tensors, {"w": w}, ["x"], ["y"])
    step = accel.graph.pack(qg).step("conv")
    assert step.target == "host" and "int32 accumulator is read by something other" in step.reason
    check_exact(qg, shape=(1, 16, 4, 4), runs=1)


def test_float_graphs_are_refused_with_what_to_do():
    graph = from_onnx(conv_model())
    with pytest.raises(GraphError, match=r"float graph: quantize it first.*calibration"):
        accel.graph.pack(graph)
    with pytest.raises(GraphError, match="quantize it first"):
        accel.graph.build(graph)


def test_tiles_override_the_defaults_by_node_name():
    qg = quantized(conv_model(cin=16, cout=32), shape=(1, 16, 8, 8))
    tiles = Conv2dTiles(oc_blocks=1, rows=2, cols=8, threads=1)
    prog = check_exact(qg, shape=(1, 16, 8, 8), tiles={"conv.requantize": tiles})
    assert prog.tiles["conv"] == tiles
    with pytest.raises(GraphError, match="'nope', which is no accelerator step"):
        accel.graph.build(qg, tiles={"nope": tiles})


def test_layouts_pad_channels_and_round_trip():
    lay = layout_of((2, 20, 3, 5), ENV)
    assert lay.packed == (2 // ENV.BATCH, 2, 3, 5, ENV.BATCH, 16) and lay.padded_channels == 12
    x = np.random.default_rng(9).integers(-128, 128, (2, 20, 3, 5), dtype=np.int8)
    packed = lay.pack(x)
    assert packed.shape == lay.packed and not packed[:, 1, ..., 4:].any()
    np.testing.assert_array_equal(lay.unpack(packed), x)
    vec = layout_of((1, 10), ENV)
    v = np.arange(10, dtype=np.int8).reshape(1, 10)
    np.testing.assert_array_equal(vec.unpack(vec.pack(v)), v)
    with pytest.raises(GraphError, match="rank 2 or 4"):
        layout_of((1, 2, 3), ENV)


def test_tuned_tiles_apply_when_the_program_is_built():
    """build asks topi for default tiles itself, so tiles a tuning context answers are used."""
    qg = quantized(conv_model(cin=16, cout=32), shape=(1, 16, 8, 8))
    packed = accel.graph.pack(qg)
    tuned = {"oc_blocks": 1, "rows": 4, "cols": 8, "ic_blocks": 1, "threads": 2, "row_threads": 1}

    def lookup(workload, env, op):
        return tuned if workload["op"] == "Conv2d" else None

    with tuning.dispatch(lookup):
        prog = check_exact(packed.graph, shape=(1, 16, 8, 8), runs=1)
    assert prog.tiles["conv"] == Conv2dTiles(**tuned) != packed.step("conv").tiles
