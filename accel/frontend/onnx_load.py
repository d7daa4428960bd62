"""Reading an ONNX model from untrusted bytes: parse, check it is a model, refuse external data.

Nothing in the file is executed; weights stored outside the file are refused rather than read,
so a model cannot make the importer open other paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import onnx
from onnx import numpy_helper

from accel.errors import GraphError, LoadError, UnsupportedOperatorError

ModelSource = Union[onnx.ModelProto, str, os.PathLike, bytes, bytearray, memoryview]

MIN_OPSET = 11

# ONNX element types the importer accepts, and their numpy dtypes.
DTYPES = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.INT8: np.dtype(np.int8),
    onnx.TensorProto.UINT8: np.dtype(np.uint8),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    onnx.TensorProto.INT64: np.dtype(np.int64),
    onnx.TensorProto.BOOL: np.dtype(np.bool_),
}
SUPPORTED_DTYPES = "float32, int8, uint8, int32, int64, bool"


def dtype_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"data type {elem_type}"


def load_model(source: ModelSource) -> onnx.ModelProto:
    """The model in ``source`` (a ModelProto, a path, or serialized bytes), checked to be an
    ONNX model with all its weights inside. Raises :class:`LoadError` with a one-line message."""
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        model = _parse(bytes(source), "the given bytes")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise LoadError(f"cannot read ONNX model {str(path)!r}: {e.strerror or e}") from None
        model = _parse(data, repr(str(path)))
    else:
        raise LoadError(
            f"from_onnx takes an onnx.ModelProto, a path or bytes, not {type(source).__name__}"
        )
    _check_model(model)
    return model


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    try:
        # Parsed from memory, never through onnx.load(path): no external data is followed.
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError, RuntimeWarning-like errors, ...
        raise LoadError(f"{where} is not an ONNX model ({type(e).__name__})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise LoadError(f"{where} is not an ONNX model (no graph or IR version)")
    return model


def _check_model(model: onnx.ModelProto) -> None:
    if not model.HasField("graph") or not model.graph.output:
        raise LoadError("the ONNX model has no graph outputs")
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise LoadError(
                f"tensor {tensor.name!r} keeps its data in an external file; accel does not read "
                "external data: save the model with its weights inside the .onnx file"
            )
    if model.graph.sparse_initializer:
        raise LoadError("the ONNX model has sparse initializers, which accel does not read")


def _all_tensors(graph: onnx.GraphProto):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            yield from attr.tensors
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def opset_version(model: onnx.ModelProto) -> int:
    """The default-domain opset, refused below 11."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise LoadError("the ONNX model imports no default-domain opset")
    version = versions[0]
    if version < MIN_OPSET:
        raise UnsupportedOperatorError(
            f"the model uses opset {version}; accel imports opset {MIN_OPSET} and newer "
            "(convert it with onnx.version_converter)"
        )
    return version


def to_array(tensor: onnx.TensorProto, owner: str) -> np.ndarray:
    """A tensor's value as a numpy array; ``owner`` names it in errors."""
    if tensor.data_type not in DTYPES:
        raise UnsupportedOperatorError(
            f"{owner} has data type {dtype_name(tensor.data_type)}; supported: {SUPPORTED_DTYPES}"
        )
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as e:  # a data length that does not match the dims, ...
        raise GraphError(f"{owner} holds malformed data: {e}") from None
    return np.array(array, dtype=DTYPES[tensor.data_type])  # a copy; keeps 0-d arrays 0-d
