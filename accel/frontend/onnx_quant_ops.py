"""Converters of the quantized operators onnxruntime writes: QuantizeLinear and
DequantizeLinear (the QDQ format, per-tensor or per-axis), QLinearConv and QLinearMatMul.

Absent zero points become zero constants, so every canonical quantized node has all its inputs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from accel.frontend.context import ImportContext, OnnxNode
from accel.frontend.onnx_ops import Converter, axis_index, conv_attrs, float_input, onnx_dtype

QUANT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))


def _quant_dtype(node: OnnxNode, dtype: np.dtype, role: str) -> None:
    if dtype not in QUANT_DTYPES:
        raise node.unsupported(f"{role} of data type {dtype.name}", "int8 and uint8 are")


def _zero_point(ctx: ImportContext, node: OnnxNode, dtype: np.dtype) -> str:
    """The zero point input, or zeros of ``dtype`` shaped like the scale when it is absent."""
    tensor = node.input(2)
    if tensor is not None:
        return tensor
    shape = ctx.info(node, node.inputs[1]).shape
    return ctx.add_constant(ctx.fresh(f"{node.name}.zero_point"), np.zeros(shape, dtype))


def _quant_axis(ctx: ImportContext, node: OnnxNode) -> int | None:
    """The normalized axis of a per-axis scale; None for a per-tensor one."""
    if node.attrs.get("block_size", 0):
        raise node.unsupported("attribute block_size", "per-tensor and per-axis scales are")
    if ctx.info(node, node.inputs[1]).shape in ((), (1,)):
        return None
    rank = len(ctx.info(node, node.inputs[0]).shape)
    return axis_index(node, node.attrs.get("axis", 1), rank)


def _quantize_linear(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    if node.input(2) is not None:
        dtype = ctx.info(node, node.inputs[2]).dtype
    else:
        dtype = onnx_dtype(node, node.attrs.get("output_dtype", 2) or 2, "output_dtype")
    _quant_dtype(node, dtype, "zero point")
    inputs = (node.inputs[0], node.inputs[1], _zero_point(ctx, node, dtype))
    attrs = {"axis": _quant_axis(ctx, node)}
    ctx.emit(node, "quantize_linear", inputs, node.outputs[0], attrs)


def _dequantize_linear(ctx: ImportContext, node: OnnxNode) -> None:
    x = ctx.info(node, node.inputs[0])
    if x.dtype != np.int32:  # int32 is how QDQ models keep biases
        _quant_dtype(node, x.dtype, "input")
    inputs = (node.inputs[0], node.inputs[1], _zero_point(ctx, node, x.dtype))
    attrs = {"axis": _quant_axis(ctx, node)}
    ctx.emit(node, "dequantize_linear", inputs, node.outputs[0], attrs)


def _qlinear_conv(ctx: ImportContext, node: OnnxNode) -> None:
    for index, role in ((0, "x"), (2, "x_zero_point"), (3, "w"), (5, "w_zero_point")):
        _quant_dtype(node, ctx.info(node, node.inputs[index]).dtype, role)
    _quant_dtype(node, ctx.info(node, node.inputs[7]).dtype, "y_zero_point")
    attrs = conv_attrs(ctx, node, node.inputs[0], node.inputs[3])
    inputs = tuple(t for t in node.inputs if t)
    if len(inputs) != len(node.inputs) or len(inputs) < 8:
        raise node.error("inputs 0-7 (x, scales, zero points, w, y) are required")
    if len(inputs) > 8 and ctx.info(node, inputs[8]).dtype != np.int32:
        raise node.unsupported("a bias that is not int32", "the bias must be int32")
    ctx.emit(node, "qlinear_conv", inputs, node.outputs[0], attrs)


def _qlinear_matmul(ctx: ImportContext, node: OnnxNode) -> None:
    if len([t for t in node.inputs if t]) != 8:
        raise node.error("takes 8 inputs (a, scale, zero point, b, scale, zero point, y ...)")
    for index, role in ((0, "a"), (2, "a_zero_point"), (3, "b"), (5, "b_zero_point")):
        _quant_dtype(node, ctx.info(node, node.inputs[index]).dtype, role)
    _quant_dtype(node, ctx.info(node, node.inputs[7]).dtype, "y_zero_point")
    ctx.emit(node, "qlinear_matmul", node.inputs, node.outputs[0])


CONVERTERS: Mapping[str, Converter] = {
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
}
