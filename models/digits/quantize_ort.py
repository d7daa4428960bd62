"""Quantize the digits CNN with onnxruntime into ``models/digits/digits_cnn_qdq.onnx``.

Run from the repository root, after ``python -m models.digits.train``::

    python -m models.digits.quantize_ort

Static quantization in QDQ format: int8 activations and weights, both symmetric (zero point 0),
per-tensor weight scales, int32 biases, MinMax calibration on the first 100 training images.
onnxruntime's pre-processing (shape inference and graph optimization) runs first, so each
BatchNormalization is folded into its convolution before the weights are quantized, as
onnxruntime recommends. The accuracy of the QDQ model under onnxruntime on the held-out images
is printed and stored in its ``metadata_props`` (``test_accuracy``), beside the float model's.

The file is onnxruntime's output unchanged (bar the graph name and metadata). onnxruntime
writes each int32 bias's DequantizeLinear with a one-element 1-d scale (shape ``[1]``) beside a
0-d zero point, which the ONNX specification does not allow (the two must have the same shape)
but onnxruntime reads as per-tensor; :func:`scalar_quant_params` rewrites such scales to 0-d
for importers that follow the specification.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from models.digits.data import FLOAT_MODEL, INPUT_NAME, QDQ_MODEL, load_split

CALIBRATION_IMAGES = 100


class DigitsCalibration(CalibrationDataReader):
    """Feeds calibration images one at a time (batch 1) under the model's input name."""

    def __init__(self, images: np.ndarray):
        self._batches = iter([{INPUT_NAME: image[None]} for image in images])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(float_model: pathlib.Path, out: pathlib.Path, calibration: np.ndarray) -> None:
    """Pre-process ``float_model`` and quantize it statically (QDQ, symmetric int8) to ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = pathlib.Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            DigitsCalibration(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=False,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )


def scalar_quant_params(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose one-element 1-d Quantize/DequantizeLinear scales and zero
    points are 0-d (per-tensor, as onnxruntime reads them); the computation is unchanged."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    params = {
        name
        for node in model.graph.node
        if node.op_type in ("QuantizeLinear", "DequantizeLinear")
        for name in node.input[1:]
    }
    for init in model.graph.initializer:
        if init.name in params and list(init.dims) == [1]:
            scalar = numpy_helper.to_array(init).reshape(())
            init.CopyFrom(numpy_helper.from_array(scalar, init.name))
    return model


def ort_accuracy(path: pathlib.Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the ONNX model at ``path`` under onnxruntime (CPU, one thread)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {INPUT_NAME: x})
    return float((logits.argmax(1) == y).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=pathlib.Path, default=FLOAT_MODEL)
    parser.add_argument("--out", type=pathlib.Path, default=QDQ_MODEL)
    args = parser.parse_args(argv)

    x_train, _, x_test, y_test = load_split()
    quantize(args.model, args.out, x_train[:CALIBRATION_IMAGES])
    float_acc = ort_accuracy(args.model, x_test, y_test)
    qdq_acc = ort_accuracy(args.out, x_test, y_test)
    print(f"float model, onnxruntime: test accuracy {float_acc:.4f} ({len(y_test)} images)")
    print(f"QDQ model, onnxruntime:   test accuracy {qdq_acc:.4f} ({len(y_test)} images)")

    proto = onnx.load(str(args.out))
    proto.graph.name = "digits_cnn_qdq"
    proto.doc_string = "digits CNN quantized by models/digits/quantize_ort.py (QDQ, int8)"
    onnx.helper.set_model_props(
        proto,
        {
            "test_accuracy": f"{qdq_acc:.4f}",
            "float_test_accuracy": f"{float_acc:.4f}",
            "calibration_images": str(CALIBRATION_IMAGES),
        },
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
