"""The rules for a QDQ model's own quantization nodes (as `accel.frontend` imports them).

onnxruntime's ``quantize_static`` in QDQ format writes ``QuantizeLinear`` after each quantized
tensor and ``DequantizeLinear`` before each use, and stores weights and biases as integer
initializers read through ``DequantizeLinear``. These rules read that, keeping the model's
scales:

- ``dequantize_linear`` of a constant records the integers and scale (a conv / gemm / matmul
  rule then uses them as its int8 weight or int32 bias); of an activation, it makes the int8
  tensor's version at that scale (no node: the integers are the same).
- ``quantize_linear`` makes ``t`` int8 at its scale: a pending accumulator or sum is
  requantized straight to it (the float op between DQ and Q disappears), an int8 version at
  another scale is rescaled, a float one is quantized.
- ``qlinear_conv`` / ``qlinear_matmul`` become ``qconv`` / ``qdense`` and ``requantize``.

Only symmetric int8 is supported: a uint8 tensor or a non-zero zero point is refused with
:class:`UnsupportedOperatorError` naming the node. Per-axis quantization of activations and
QLinearMatMul with a computed or batched operand stay as they are (host operators).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from accel.errors import UnsupportedOperatorError
from accel.graph.ir import Node
from accel.graph.qbuilder import Builder, Int8, QConst
from accel.graph.qlayers import accumulate

QDQ_OPS = frozenset({"quantize_linear", "dequantize_linear", "qlinear_conv", "qlinear_matmul"})


def _refuse(node: Node, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(
        f"node {node.name!r} ({node.op}): {what} is not supported; only symmetric int8 "
        "quantization (int8 data, zero point 0; int32 biases) is"
    )


def _check_zero_point(b: Builder, node: Node, t: str, role: str, allowed=("int8",)) -> None:
    dtype = b.graph.tensors[t].dtype
    if dtype.name not in allowed:
        raise _refuse(node, f"{role} of data type {dtype.name}")
    value = b.graph.constants.get(t)
    if value is None:
        raise _refuse(node, f"a computed {role} ({t!r})")
    if np.any(value != 0):
        raise _refuse(node, f"{role} {t!r} with non-zero values ({value.reshape(-1)[:4]}...)")


def _scalar(b: Builder, t: str) -> float | None:
    value = b.graph.constants.get(t)
    return None if value is None or value.size != 1 else float(value.reshape(()))


def _quantize_linear(b: Builder, node: Node) -> bool:
    x, scale, zero_point = node.inputs
    _check_zero_point(b, node, zero_point, "zero point")
    s = _scalar(b, scale)
    out = node.outputs[0]
    if s is None or node.attrs["axis"] is not None:
        return False
    version = b.int8_at(x, s, out)
    b.int8[out] = version
    b.raw[out] = version.name
    return True


def _dequantize_linear(b: Builder, node: Node) -> bool:
    q, scale, zero_point = node.inputs
    _check_zero_point(b, node, zero_point, "zero point", ("int8", "int32"))
    out = node.outputs[0]
    values, scales = b.graph.constants.get(q), b.graph.constants.get(scale)
    if scales is None:
        return False
    if values is not None:
        b.qconst[out] = QConst(values, scales, node.attrs["axis"])
        return True
    s = _scalar(b, scale)
    if s is None or b.dtype(q).name != "int8":
        return False
    source = b.int8.get(q)
    if source is None:  # an int8 graph input or host result: no range known beyond int8's
        source = Int8(b.raw_of(q), s, -128, 127)
    b.int8[out] = Int8(source.name, s, source.lo, source.hi)
    return True


def _qlinear(op: str) -> Callable[[Builder, Node], bool]:
    """QLinearConv / QLinearMatMul: ``qconv`` / ``qdense`` then ``requantize`` to y's scale."""

    def rule(b: Builder, node: Node) -> bool:
        x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp = node.inputs[:8]
        for t, role in ((x, "input"), (w, "weight")):
            if b.dtype(t).name != "int8":
                raise _refuse(node, f"{role} of data type {b.dtype(t).name}")
        for t, role in ((x_zp, "x zero point"), (w_zp, "w zero point"), (y_zp, "y zero point")):
            _check_zero_point(b, node, t, role)
        s_x, s_y = _scalar(b, x_scale), _scalar(b, y_scale)
        weights, w_scales = b.graph.constants.get(w), b.graph.constants.get(w_scale)
        bias = node.inputs[8] if len(node.inputs) > 8 else None
        if s_x is None or s_y is None or weights is None or w_scales is None:
            return False
        if bias is not None and bias not in b.graph.constants:
            return False
        if op == "qdense":
            shapes = (b.graph.tensors[x].shape, weights.shape)
            if len(shapes[0]) != 2 or len(shapes[1]) != 2:
                return False
            weights = weights.T
        channels = weights.shape[0]
        w_scale_values = np.broadcast_to(w_scales.astype(np.float64).reshape(-1), (channels,))
        xq = b.int8.get(x) or Int8(b.raw_of(x), s_x, -128, 127)
        xq = Int8(xq.name, s_x, xq.lo, xq.hi)
        # The specification quantizes the bias at x_scale * w_scale: the integers are used as
        # they are.
        bias_ints = None if bias is None else b.graph.constants[bias].astype(np.int32)
        attrs = node.attrs if op == "qconv" else {}
        weight = (np.ascontiguousarray(weights), w_scale_values)
        pending = accumulate(b, node, op, xq, weight, bias_ints, attrs)
        out = node.outputs[0]
        b.int8[out] = b.requantize(pending, s_y, out)  # int8 in the model too: same name
        b.raw[out] = out
        return True

    return rule


QDQ_RULES: Mapping[str, Callable[[Builder, Node], bool]] = {
    "quantize_linear": _quantize_linear,
    "dequantize_linear": _dequantize_linear,
    "qlinear_conv": _qlinear("qconv"),
    "qlinear_matmul": _qlinear("qdense"),
}
