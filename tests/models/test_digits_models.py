"""The committed digits models (models/digits): both import, ``Graph.run`` equals onnxruntime
on the held-out images, and the classifier is as accurate as docs/models.md says."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from accel.frontend import from_onnx
from models.digits.data import FLOAT_MODEL, INPUT_NAME, INPUT_SHAPE, QDQ_MODEL, load_split
from models.digits.quantize_ort import scalar_quant_params


@pytest.fixture(scope="module")
def test_set():
    _, _, x_test, y_test = load_split()
    return x_test, y_test


def ort_logits(model, x):
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x})[0]


def test_split_is_fixed_and_stratified():
    x_train, y_train, x_test, y_test = load_split()
    assert x_train.shape == (1347, 1, 8, 8) and x_test.shape == (450, 1, 8, 8)
    assert x_train.dtype == x_test.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert np.bincount(y_test).tolist() == [45, 46, 44, 46, 45, 46, 45, 45, 43, 45]
    np.testing.assert_array_equal(load_split()[3], y_test)


@pytest.mark.parametrize("path", [FLOAT_MODEL, QDQ_MODEL], ids=["float", "qdq"])
def test_models_are_small_and_self_contained(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert path.stat().st_size < 300_000
    assert [i.name for i in model.graph.input] == [INPUT_NAME]


def test_float_model_imports_at_batch_one(test_set):
    x_test, _ = test_set
    graph = from_onnx(FLOAT_MODEL, shape={INPUT_NAME: INPUT_SHAPE})
    assert graph.tensors[graph.outputs[0]].shape == (1, 10)
    # The exporter's four BatchNormalization nodes are folded into their convolutions.
    assert [n.op for n in graph.nodes_in_order()].count("conv") == 4
    assert "batch_norm" not in {n.op for n in graph.nodes_in_order()}
    x = x_test[:1]
    np.testing.assert_allclose(graph.run(x), ort_logits(FLOAT_MODEL, x), rtol=1e-5, atol=1e-4)


def test_float_model_matches_onnxruntime_and_is_accurate(test_set):
    x_test, y_test = test_set
    graph = from_onnx(FLOAT_MODEL, shape={INPUT_NAME: x_test.shape})
    logits = graph.run(x_test)
    np.testing.assert_allclose(logits, ort_logits(FLOAT_MODEL, x_test), rtol=1e-5, atol=1e-4)
    assert (logits.argmax(1) == y_test).mean() >= 0.95


def test_qdq_model_as_written_imports():
    # onnxruntime writes the int32 biases' DequantizeLinear with a [1] scale and a 0-d zero
    # point (off the ONNX spec, read as per-tensor by onnxruntime); the importer reads it so too.
    from_onnx(QDQ_MODEL, shape={INPUT_NAME: INPUT_SHAPE})


def test_scalar_quant_params_changes_nothing_onnxruntime_computes(test_set):
    x_test, _ = test_set
    model = onnx.load(str(QDQ_MODEL))
    np.testing.assert_array_equal(
        ort_logits(scalar_quant_params(model), x_test), ort_logits(model, x_test)
    )


def test_qdq_model_imports_at_batch_one():
    graph = from_onnx(QDQ_MODEL, shape={INPUT_NAME: INPUT_SHAPE})
    assert graph.tensors[graph.outputs[0]].shape == (1, 10)
    ops = [n.op for n in graph.nodes_in_order()]
    assert ops.count("conv") == 4 and ops.count("gemm") == 1
    assert ops.count("quantize_linear") == 13  # the input and the output of every float node


def test_qdq_model_matches_onnxruntime(test_set):
    x_test, y_test = test_set
    graph = from_onnx(QDQ_MODEL, shape={INPUT_NAME: x_test.shape})
    logits = graph.run(x_test)
    expected = ort_logits(QDQ_MODEL, x_test)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.99
    assert (logits.argmax(1) == y_test).mean() >= 0.95
