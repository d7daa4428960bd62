"""The ResNet-18-shaped models (models/resnet): they build, pass the ONNX checker, import, and
``Graph.run`` equals onnxruntime, with activations that neither blow up nor collapse."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from accel.frontend import from_onnx
from models.resnet.resnet18 import INPUT_NAME, calibration_images, make_resnet18

SMALL = {"input_hw": 32, "width": 16, "num_classes": 10}


def ort_logits(model, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {INPUT_NAME: x})[0]


def ops(model):
    return [node.op_type for node in model.graph.node]


def check_logits(logits, classes):
    """Finite, spread over a few units, and not the same class for every image."""
    assert np.isfinite(logits).all()
    assert 0.5 < logits.std() < 20
    assert len(set(logits.argmax(1).tolist())) >= min(classes, 3)


@pytest.fixture(scope="module")
def small():
    return make_resnet18(**SMALL, batch=None)


@pytest.fixture(scope="module")
def full():
    return make_resnet18()


def test_small_resnet_layer_sequence(small):
    onnx.checker.check_model(small, full_check=True)
    sequence = ops(small)
    assert sequence.count("Conv") == 20  # 1 + 16 in the blocks + 3 shortcuts
    assert sequence.count("BatchNormalization") == 20
    assert sequence.count("Add") == 8 and sequence.count("Relu") == 17
    assert sequence[-4:] == ["Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    weights = {t.name: t for t in small.graph.initializer}
    assert list(weights["conv1.weight"].dims) == [16, 3, 7, 7]
    assert list(weights["layer4.0.downsample.0.weight"].dims) == [128, 64, 1, 1]
    assert list(weights["fc.weight"].dims) == [10, 128]


def test_small_resnet_is_deterministic_and_seeded(small):
    again = make_resnet18(**SMALL, batch=None)
    assert again.SerializeToString() == small.SerializeToString()
    other = make_resnet18(**SMALL, seed=1, batch=None)
    assert other.graph.initializer[0].raw_data != small.graph.initializer[0].raw_data


def test_batch_norm_statistics_are_sane(small):
    weights = {t.name: numpy_helper.to_array(t) for t in small.graph.initializer}
    for name in (n.name for n in small.graph.node if n.op_type == "BatchNormalization"):
        assert np.all(np.abs(weights[f"{name}.weight"] - 1) < 0.5)
        assert np.all(np.abs(weights[f"{name}.bias"]) < 0.5)
        assert np.all(weights[f"{name}.running_var"] > 0)
        assert np.all(np.abs(weights[f"{name}.running_mean"]) < 5)


def test_small_resnet_matches_onnxruntime(small):
    x = calibration_images(8, 32, seed=123)
    graph = from_onnx(small, shape={INPUT_NAME: x.shape})
    assert "batch_norm" not in {n.op for n in graph.nodes_in_order()}
    logits = graph.run(x)
    np.testing.assert_allclose(logits, ort_logits(small, x), rtol=1e-4, atol=1e-4)
    check_logits(logits, 10)


def test_small_resnet_imports_at_batch_one():
    graph = from_onnx(make_resnet18(**SMALL))
    assert graph.tensors[graph.inputs[0]].shape == (1, 3, 32, 32)
    assert graph.tensors[graph.outputs[0]].shape == (1, 10)


def test_full_resnet18_builds_and_imports(full):
    onnx.checker.check_model(full)
    learned = [  # what torchvision counts as parameters: all but the running statistics
        t for t in full.graph.initializer if not t.name.endswith(("running_mean", "running_var"))
    ]
    assert sum(numpy_helper.to_array(t).size for t in learned) == 11_689_512  # as resnet18's
    graph = from_onnx(full)
    assert graph.tensors[graph.inputs[0]].shape == (1, 3, 224, 224)
    assert graph.tensors[graph.outputs[0]].shape == (1, 1000)
    assert {n.op for n in graph.nodes_in_order()} == {
        "conv",
        "relu",
        "max_pool",
        "add",
        "global_avg_pool",
        "reshape",
        "gemm",
    }


def test_full_resnet18_matches_onnxruntime(full):
    x = calibration_images(1, 224, seed=123)
    logits = from_onnx(full).run(x)
    np.testing.assert_allclose(logits, ort_logits(full, x), rtol=1e-4, atol=2e-4)
    assert np.isfinite(logits).all() and 0.5 < logits.std() < 20


@pytest.mark.parametrize(
    "kwargs, message",
    [({"width": 12}, "multiple of 8"), ({"width": 0}, "multiple of 8"), ({"input_hw": 16}, "32")],
)
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_resnet18(**kwargs)
