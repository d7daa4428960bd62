"""Small ONNX models for the quantization tests, built with onnx.helper, and onnxruntime as the
reference that runs them."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from accel.frontend import from_onnx


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def make_model(nodes, inputs: dict, consts: dict, outputs: dict, opset: int = 13):
    """A model of ``nodes`` with graph inputs ``{name: shape}``, initializers ``consts`` and
    outputs ``{name: dtype}``."""
    elem = helper.np_dtype_to_tensor_dtype
    ins = [
        helper.make_tensor_value_info(n, elem(np.dtype(np.float32)), list(s))
        for n, s in inputs.items()
    ]
    outs = [helper.make_tensor_value_info(n, elem(np.dtype(d)), None) for n, d in outputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()]
    graph = helper.make_graph(nodes, "qtest", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_onnxruntime(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def bn(rng, prefix: str, x: str, y: str, c: int, consts: dict):
    consts.update(
        {
            f"{prefix}_scale": rng.uniform(0.5, 1.5, c).astype(np.float32),
            f"{prefix}_bias": randn(rng, c) * 0.3,
            f"{prefix}_mean": randn(rng, c) * 0.3,
            f"{prefix}_var": rng.uniform(0.5, 2.0, c).astype(np.float32),
        }
    )
    names = [f"{prefix}_{k}" for k in ("scale", "bias", "mean", "var")]
    return helper.make_node("BatchNormalization", [x, *names], [y], name=prefix)


def residual_net(rng, channels: int = 8, classes: int = 10, bias: bool = True):
    """conv-bn-relu -> maxpool -> residual block (conv-bn-relu-conv-bn + skip, relu) -> global
    average pool -> flatten -> dense: the nodes and their initializers."""
    c = channels
    consts = {
        "w0": randn(rng, c, 3, 3, 3) * 0.4,
        "w1": randn(rng, c, c, 3, 3) * 0.2,
        "w2": randn(rng, c, c, 3, 3) * 0.2,
        "fc_w": randn(rng, classes, c) * 0.5,
        "fc_b": randn(rng, classes) * 0.1,
    }
    make = helper.make_node
    conv1_inputs = ["p0", "w1"]
    if bias:
        consts["b1"] = randn(rng, c) * 0.1
        conv1_inputs.append("b1")
    nodes = [
        make("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        bn(rng, "bn0", "c0", "n0", c, consts),
        make("Relu", ["n0"], ["r0"], name="relu0"),
        make("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1]),
        make("Conv", conv1_inputs, ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        bn(rng, "bn1", "c1", "n1", c, consts),
        make("Relu", ["n1"], ["r1"], name="relu1"),
        make("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        bn(rng, "bn2", "c2", "n2", c, consts),
        make("Add", ["n2", "p0"], ["s"], name="residual"),
        make("Relu", ["s"], ["r2"], name="relu2"),
        make("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        make("Flatten", ["g"], ["f"], name="flatten"),
        make("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]  # fmt: skip
    return nodes, consts


def residual_graph(rng, shape=(1, 3, 16, 16), **kwargs):
    nodes, consts = residual_net(rng, **kwargs)
    model = make_model(nodes, {"x": shape}, consts, {"logits": np.float32})
    return model, from_onnx(model)
