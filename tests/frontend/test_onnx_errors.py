"""Every refusal of the importer and the executor: the exception type and what it names."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_models import make_model, one_node, randn

from accel.errors import ArgumentError, GraphError, LoadError, UnsupportedOperatorError
from accel.frontend import from_onnx

X = np.zeros((1, 2, 4, 4), np.float32)


# --- unsupported operators, attributes, data types -----------------------------------------


def test_unsupported_operator_names_node_and_op():
    model = one_node("Erf", ["x"], {"x": X})
    with pytest.raises(UnsupportedOperatorError, match=r"'the_erf' \(Erf\).*supported: .*Conv"):
        from_onnx(model)


def test_custom_domain_operator():
    node = helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")
    model = make_model([node], {"x": X}, {}, {"y": np.float32})
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOperatorError, match=r"'fc' \(com.microsoft.FusedConv\)"):
        from_onnx(model)


def test_old_opset():
    with pytest.raises(UnsupportedOperatorError, match="opset 9; accel imports opset 11"):
        from_onnx(one_node("Relu", ["x"], {"x": X}, opset=9))


@pytest.mark.parametrize(
    "op, inputs, consts, attrs, match",
    [
        ("Pad", ["x", "p"], {"p": np.zeros(8, np.int64)}, {"mode": "reflect"},
         r"'the_pad' \(Pad\): attribute mode='reflect' is not supported; only mode 'constant'"),
        ("ConvTranspose", ["x", "w"], {"w": np.zeros((2, 2, 3, 3), np.float32)},
         {"auto_pad": "SAME_UPPER"}, r"\(ConvTranspose\): attribute auto_pad='SAME_UPPER'.*NOTSET"),
        ("ConvTranspose", ["x", "w"], {"w": np.zeros((2, 2, 3, 3), np.float32)},
         {"output_shape": [6, 6]}, r"attribute output_shape is not supported"),
        ("Conv", ["x", "w"], {"w": np.zeros((2, 2, 3, 3), np.float32)}, {"auto_pad": "BOGUS"},
         r"\(Conv\): attribute auto_pad='BOGUS' is not supported; use NOTSET, VALID"),
        ("Cast", ["x"], {}, {"to": TensorProto.DOUBLE},
         r"'the_cast' \(Cast\): attribute to= DOUBLE is not supported; supported data types"),
        ("Reshape", ["x", "x"], {}, {}, r"\(Reshape\): a computed shape .* must be a constant"),
    ],
)  # fmt: skip
def test_unsupported_attribute(op, inputs, consts, attrs, match):
    with pytest.raises(UnsupportedOperatorError, match=match):
        from_onnx(one_node(op, inputs, {"x": X}, consts, **attrs))


def test_max_pool_indices_output():
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], name="mp", kernel_shape=[2, 2])
    model = make_model([node], {"x": X}, {}, {"y": np.float32, "i": np.int64})
    with pytest.raises(UnsupportedOperatorError, match=r"'mp' \(MaxPool\): the Indices output"):
        from_onnx(model)


def test_dropout_mask_and_training():
    node = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")
    model = make_model([node], {"x": X}, {}, {"y": np.float32, "mask": np.bool_})
    with pytest.raises(UnsupportedOperatorError, match=r"'drop' \(Dropout\): the mask output"):
        from_onnx(model)
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")
    consts = {"r": np.float32(0.5), "t": np.array(True)}
    model = make_model([node], {"x": X}, consts, {"y": np.float32}, opset=13)
    with pytest.raises(UnsupportedOperatorError, match="training_mode=True is not supported"):
        from_onnx(model)


def test_batch_norm_training_mode():
    consts = {k: np.ones(2, np.float32) for k in "sbmv"}
    model = one_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], {"x": X}, consts, opset=15,
        training_mode=1,
    )  # fmt: skip
    with pytest.raises(UnsupportedOperatorError, match=r"\(BatchNormalization\): training mode"):
        from_onnx(model)


def test_unsupported_input_and_initializer_dtypes():
    with pytest.raises(UnsupportedOperatorError, match="input 'x' has data type DOUBLE"):
        from_onnx(one_node("Relu", ["x"], {"x": X.astype(np.float64)}))
    model = one_node("Add", ["x", "c"], {"x": X}, {"c": np.float16(1)})
    with pytest.raises(
        UnsupportedOperatorError, match=r"'the_add' \(Add\): input 'c' of data type FLOAT16"
    ):
        from_onnx(model)


def test_quantized_int16_zero_point():
    consts = {"s": np.float32(0.1), "z": np.int16(0)}
    model = one_node("QuantizeLinear", ["x", "s", "z"], {"x": X}, consts, opset=21)
    with pytest.raises(
        UnsupportedOperatorError, match=r"\(QuantizeLinear\): input 'z' of data type INT16"
    ):
        from_onnx(model)


def test_float_operator_on_integers():
    x = X.astype(np.int8)
    with pytest.raises(UnsupportedOperatorError, match=r"\(Conv\): input of data type int8"):
        from_onnx(one_node("Conv", ["x", "w"], {"x": x}, {"w": np.zeros((2, 2, 1, 1), np.int8)}))


# --- inconsistent graphs ---------------------------------------------------------------------


def test_broadcast_mismatch_names_node():
    model = one_node("Add", ["x", "c"], {"x": X}, {"c": np.zeros(3, np.float32)})
    with pytest.raises(GraphError, match=r"'the_add' \(add\): shapes .* do not broadcast"):
        from_onnx(model)


def test_conv_channel_mismatch():
    model = one_node("Conv", ["x", "w"], {"x": X}, {"w": np.zeros((4, 3, 3, 3), np.float32)})
    with pytest.raises(GraphError, match=r"'the_conv' \(conv\): input has 2 channels"):
        from_onnx(model)


def test_missing_initializer():
    model = one_node("Conv", ["x", "w"], {"x": X})
    with pytest.raises(GraphError, match=r"'the_conv' \(Conv\): input 'w' is not a graph input"):
        from_onnx(model)


def test_bad_reshape():
    model = one_node("Reshape", ["x", "s"], {"x": X}, {"s": np.array([5, -1])})
    with pytest.raises(GraphError, match=r"'the_reshape' \(Reshape\): cannot reshape"):
        from_onnx(model)


def test_declared_output_shape_disagrees():
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(GraphError, match=r"output 'y' is inferred as \(2, 3\)"):
        from_onnx(model)


# --- dynamic shapes ---------------------------------------------------------------------------


def dynamic_model():
    x = randn(np.random.default_rng(50), 3, 5)
    w = randn(np.random.default_rng(51), 5, 2)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return make_model([node], {"x": x}, {"w": w}, {"y": np.float32}, input_shapes={"x": ["N", 5]})


def test_dynamic_dimension_needs_shape():
    with pytest.raises(
        GraphError, match=r"input 'x' has dynamic dimension 'N' at axis 0; pass shape="
    ):
        from_onnx(dynamic_model())


def test_shape_override():
    graph = from_onnx(dynamic_model(), shape={"x": (4, 5)})
    assert graph.tensors["y"].shape == (4, 2)
    with pytest.raises(GraphError, match="shape= names z, which are not graph inputs"):
        from_onnx(dynamic_model(), shape={"z": (1,)})
    with pytest.raises(GraphError, match="gives input 'x' rank 3"):
        from_onnx(dynamic_model(), shape={"x": (1, 4, 5)})


# --- executor arguments ----------------------------------------------------------------------


def test_run_argument_errors():
    graph = from_onnx(one_node("Relu", ["x"], {"x": X}))
    with pytest.raises(
        ArgumentError, match=r"input 'x': expected float32\[1, 2, 4, 4\], got float32\[1, 2, 4\]"
    ):
        graph.run(X[..., 0])
    with pytest.raises(
        ArgumentError, match=r"input 'x': expected float32\[1, 2, 4, 4\], got float64"
    ):
        graph.run(X.astype(np.float64))
    with pytest.raises(ArgumentError, match="unknown: z, missing: x"):
        graph.run(z=X)
    with pytest.raises(ArgumentError, match=r"takes 1 inputs \(x\), got 2"):
        graph.run(X, X)


# --- unreadable files ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(LoadError, match="cannot read ONNX model .*nope.onnx"):
        from_onnx(tmp_path / "nope.onnx")


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n", bytes(range(256)) * 4])
def test_not_a_model(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(LoadError, match="is not an ONNX model") as info:
        from_onnx(str(path))
    assert "\n" not in str(info.value)


def test_bytes_and_paths_load(tmp_path):
    model = one_node("Relu", ["x"], {"x": X})
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    for source in (path, str(path), model.SerializeToString()):
        assert [n.op for n in from_onnx(source).nodes_in_order()] == ["relu"]
    with pytest.raises(LoadError, match="not int"):
        from_onnx(3)


def test_external_data_is_refused(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"x": np.ones((2, 2), np.float32)},
        {},
        {"y": np.float32},
    )
    model.graph.initializer.append(w)
    path = tmp_path / "m.onnx"
    onnx.save(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="w.bin",
        size_threshold=0,
    )
    with pytest.raises(LoadError, match=r"tensor 'w' keeps its data in an external file"):
        from_onnx(path)
