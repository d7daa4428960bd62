"""Helpers for the ONNX import tests: build small models with onnx.helper and compare
``Graph.run`` with onnxruntime, which provides every expected value."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from accel.frontend import from_onnx

RTOL = ATOL = 1e-5


def tensor_type(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def make_model(
    nodes: list[onnx.NodeProto],
    feeds: dict[str, np.ndarray],
    consts: dict[str, np.ndarray],
    outputs: dict[str, object],
    opset: int = 17,
    input_shapes: dict[str, list] | None = None,
) -> onnx.ModelProto:
    """A model of ``nodes``: graph inputs typed from ``feeds`` (or ``input_shapes``),
    initializers from ``consts``, outputs named with their dtype (shape left open)."""
    shapes = input_shapes or {}
    inputs = [
        helper.make_tensor_value_info(n, tensor_type(a.dtype), shapes.get(n, list(a.shape)))
        for n, a in feeds.items()
    ]
    outs = [helper.make_tensor_value_info(n, tensor_type(d), None) for n, d in outputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()]
    graph = helper.make_graph(nodes, "test", inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 18 else 10
    return model


def one_node(
    op: str,
    inputs: list[str],
    feeds: dict[str, np.ndarray],
    consts: dict[str, np.ndarray] | None = None,
    opset: int = 17,
    out_dtype=np.float32,
    **attrs,
) -> onnx.ModelProto:
    """A model of one ``op`` node reading ``inputs`` ("" for an absent one) and writing ``y``."""
    node = helper.make_node(op, inputs, ["y"], name=f"the_{op.lower()}", **attrs)
    return make_model([node], feeds, consts or {}, {"y": out_dtype}, opset)


def reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    exact: bool = False,
    rtol: float = RTOL,
    atol: float = ATOL,
):
    """Import ``model``, run it on ``feeds`` and compare every output with onnxruntime's
    (bit for bit when ``exact``). Returns the graph."""
    expected = reference(model, feeds)
    graph = from_onnx(model)
    got = graph.run(**feeds)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        if exact:
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    return graph


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)
