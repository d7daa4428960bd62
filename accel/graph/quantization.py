"""``quantize(graph)``: a float graph (or a QDQ model's graph) made into int8 / int32 operators
whose ``run`` is the integer reference executor (docs/quantization.md).

The nodes are visited in order. Each operator with an integer form has a rule here; a rule
first checks that it applies (constant weights, a supported attribute, an int8 input to be
had) and only then writes nodes. Any node no rule takes is copied as a float node (it will run
on the host) reading float versions of its inputs, which are dequantized where needed. The
graph's outputs come back as float32 under their own names.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from accel.errors import GraphError
from accel.graph import window
from accel.graph.calibrate import max_abs
from accel.graph.graph import Graph
from accel.graph.ir import Node
from accel.graph.qbuilder import F32, NO_CLAMP, Accumulator, Builder, Int8, Sum, clamp_range
from accel.graph.qdq import QDQ_OPS, QDQ_RULES
from accel.graph.qlayers import accumulate, bias_values, is_constant, weight_values
from accel.graph.quantized import QuantizedGraph

INTEGER_OPS = frozenset(
    {"quantize", "dequantize", "qconv", "qdense", "qsum_pool", "requantize", "qadd"}
)


def quantize(graph: Graph, calibration=None, per_channel: bool = False) -> QuantizedGraph:
    """Quantize ``graph`` to symmetric int8 activations and weights with int32 accumulators.

    ``calibration`` is a list of inputs (arrays for a one-input graph, dicts by input name, or
    tuples in input order): the float graph runs on each and every activation's scale becomes
    ``max |x| / 127``; without it every activation gets `calibrate.DEFAULT_ACTIVATION_SCALE`.
    ``per_channel`` gives each output channel of a weight its own scale. A graph with
    QuantizeLinear / DequantizeLinear / QLinear nodes (a QDQ model) keeps the model's own scales
    and takes no calibration.

    Returns a :class:`QuantizedGraph` (its ``quant_report`` lists every requantization).
    Raises :class:`GraphError` for a graph that is already integer, calibration given to a QDQ
    model, or a layer whose accumulator or bias cannot fit int32;
    :class:`UnsupportedOperatorError` for QDQ nodes with uint8 data or non-zero zero points;
    :class:`ArgumentError` for calibration inputs that do not fit the graph.
    """
    integer = sorted({n.op for n in graph.nodes_in_order()} & INTEGER_OPS)
    if integer:
        raise GraphError(
            f"graph {graph.name!r} already has integer operators ({', '.join(integer)}); "
            "quantize the float graph"
        )
    qdq = any(n.op in QDQ_OPS for n in graph.nodes_in_order())
    if qdq and calibration is not None:
        raise GraphError(
            f"graph {graph.name!r} is a QDQ model: it is quantized with its own scales; "
            "call quantize without calibration"
        )
    if qdq:
        peaks = None
    elif calibration is None:
        peaks = {}
    else:
        peaks = max_abs(graph, calibration)
    builder = Builder(graph, peaks, per_channel)
    for node in graph.nodes_in_order():
        rule = QDQ_RULES.get(node.op) if qdq else None
        rule = rule or RULES.get(node.op)
        if rule is None or not rule(builder, node):
            copy_float(builder, node)
    return builder.finish()


def copy_float(b: Builder, node: Node) -> None:
    """The node as it was (to run on the host), reading the raw values of its inputs."""
    inputs = tuple(b.raw_of(t) for t in node.inputs)
    b.emit(node.name, node.op, inputs, node.outputs[0], node.attrs)
    b.raw[node.outputs[0]] = node.outputs[0]


def _floats(b: Builder, *tensors: str) -> bool:
    return all(b.dtype(t) == F32 for t in tensors)


# -- convolution and matrix products -----------------------------------------------------------


def _layer(
    b: Builder,
    node: Node,
    op: str,
    weight: tuple[np.ndarray, np.ndarray] | None,
    bias: str | None,
    beta: float,
    attrs: Mapping,
) -> bool:
    """qconv / qdense of the int8 version of input 0 with ``weight``, plus the constant ``bias``
    times ``beta``; the accumulator is left pending."""
    x = node.inputs[0]
    if weight is None or not _floats(b, x) or (bias is not None and not is_constant(b, bias)):
        return False
    xq = b.int8_of(x, quantize_float=True)
    if xq is None:
        return False
    bias_ints = None
    if bias is not None:
        bias_ints = bias_values(b, node, bias, beta, xq.scale * weight[1])
    b.pending[node.outputs[0]] = accumulate(b, node, op, xq, weight, bias_ints, attrs)
    return True


def _conv(b: Builder, node: Node) -> bool:
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    weight = weight_values(b, node.inputs[1], axis=0)
    return _layer(b, node, "qconv", weight, bias, 1.0, node.attrs)


def _gemm(b: Builder, node: Node) -> bool:
    """Gemm without trans_a, alpha > 0 (folded into the weight scales) and a constant C that
    is a per-column bias (broadcast along rows)."""
    a = node.attrs
    if a["trans_a"] or a["alpha"] <= 0:
        return False
    weight = weight_values(b, node.inputs[1], 0 if a["trans_b"] else 1, a["alpha"])
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if weight is not None and bias is not None:
        columns = weight[0].shape[0]
        if b.graph.tensors[bias].shape not in ((), (1,), (columns,), (1, columns)):
            return False
    return _layer(b, node, "qdense", weight, bias, a["beta"], {})


def _matmul(b: Builder, node: Node) -> bool:
    """A matrix (N, K) times a constant (K, O)."""
    x, w = node.inputs
    if len(b.graph.tensors[x].shape) != 2 or len(b.graph.tensors[w].shape) != 2:
        return False
    return _layer(b, node, "qdense", weight_values(b, w, axis=1), None, 1.0, {})


# -- elementwise ---------------------------------------------------------------------------------


def _add(sign: int) -> Callable[[Builder, Node], bool]:
    def rule(b: Builder, node: Node) -> bool:
        x, y = node.inputs
        if not _floats(b, x, y) or not all(b.has_int8(t, True) for t in (x, y)):
            return False
        xq, yq = b.int8_of(x, quantize_float=True), b.int8_of(y, quantize_float=True)
        b.pending[node.outputs[0]] = Sum(node.name, NO_CLAMP, xq, yq, sign, x, y)
        return True

    return rule


def _clamp(b: Builder, node: Node, lo: float, hi: float) -> bool:
    """ReLU / Clip: folded into a pending result's clip bounds, else an int8 clip."""
    x, out = node.inputs[0], node.outputs[0]
    if not _floats(b, x):
        return False
    if x in b.pending:
        b.pending[out] = b.pending[x].clamped(lo, hi)
        return True
    xq = b.int8_of(x)
    if xq is None:
        return False
    q_lo, q_hi = clamp_range((lo, hi), xq.scale)
    output = b.fresh(f"{out}.q")
    if (lo, hi) == (0.0, math.inf):
        b.emit(node.name, "relu", (xq.name,), output, {})
    else:
        b.emit(node.name, "clip", (xq.name,), output, {"min": q_lo, "max": q_hi})
    b.int8[out] = b.track(Int8(output, xq.scale, max(xq.lo, q_lo), min(xq.hi, q_hi)))
    return True


def _relu(b: Builder, node: Node) -> bool:
    return _clamp(b, node, 0.0, math.inf)


def _clip(b: Builder, node: Node) -> bool:
    lo, hi = float(node.attrs["min"]), float(node.attrs["max"])
    return lo <= hi and _clamp(b, node, lo, hi)


# -- data movement and pooling -------------------------------------------------------------------


def _same_scale(b: Builder, node: Node) -> bool:
    """Reshape, transpose, slice, zero padding, max pooling: the same op on the int8 data, at
    the same scale."""
    x, out = node.inputs[0], node.outputs[0]
    if not _floats(b, x) or (node.op == "pad" and node.attrs["value"] != 0):
        return False
    xq = b.int8_of(x)
    if xq is None:
        return False
    output = b.fresh(f"{out}.q")
    b.emit(node.name, node.op, (xq.name,), output, node.attrs)
    lo, hi = xq.lo, xq.hi
    if node.op == "pad" and any(node.attrs["pads"]):
        lo, hi = min(lo, 0), max(hi, 0)
    b.int8[out] = b.track(Int8(output, xq.scale, lo, hi))
    if node.op == "max_pool" and _pads_window(node):
        b.notes.append(_max_pool_note(node, xq))
    return True


def _pads_window(node: Node) -> bool:
    return any(node.attrs["pads"]) or bool(node.attrs["ceil_mode"])


def _max_pool_note(node: Node, x: Int8) -> str:
    if x.lo >= 0:
        return (
            f"{node.name} (max_pool): padded, input {x.name} >= 0 (range [{x.lo}, {x.hi}]), "
            "so padding with 0 (the accelerator's) gives the same result as padding with -128"
        )
    return (
        f"{node.name} (max_pool): padded and input {x.name} may be negative (range "
        f"[{x.lo}, {x.hi}]): padding must not win the max (pad with -128, not 0)"
    )


def _concat(b: Builder, node: Node) -> bool:
    """Inputs requantized to the largest of their scales, then concatenated."""
    if not _floats(b, *node.inputs) or not all(b.has_int8(t, True) for t in node.inputs):
        return False
    parts = [b.int8_of(t, quantize_float=True) for t in node.inputs]
    scale = max(p.scale for p in parts)
    parts = [b.rescale(p, scale, node.name) for p in parts]
    output = b.fresh(f"{node.outputs[0]}.q")
    b.emit(node.name, "concat", tuple(p.name for p in parts), output, node.attrs)
    lo, hi = min(p.lo for p in parts), max(p.hi for p in parts)
    b.int8[node.outputs[0]] = b.track(Int8(output, scale, lo, hi))
    return True


def _sum_pool(b: Builder, node: Node, attrs: Mapping, count: int) -> bool:
    """Average pooling with a constant window count: int32 window sums, pending a requantize
    whose scale carries the division (``S = s_in / (count * s_out)``)."""
    x = node.inputs[0]
    if not _floats(b, x):
        return False
    xq = b.int8_of(x, quantize_float=True)
    if xq is None:
        return False
    output = node.outputs[0]
    acc = b.fresh(f"{output}.acc")
    b.emit(node.name, "qsum_pool", (xq.name,), acc, attrs)
    b.pending[output] = Accumulator(
        node.name, NO_CLAMP, acc, (xq.scale / count,), (count * xq.magnitude,)
    )
    return True


def _avg_pool(b: Builder, node: Node) -> bool:
    a = node.attrs
    spatial = b.graph.tensors[node.inputs[0]].shape[2:]
    k = len(a["kernel"])
    for i in range(k):
        args = (spatial[i], a["kernel"][i], a["strides"][i], a["dilations"][i])
        pads = (a["pads"][i], a["pads"][i + k])
        if window.pool_out_size(*args, *pads, a["ceil_mode"]) != window.pool_out_size(
            *args, *pads, False
        ):
            return False  # a ceil_mode window past the end: its count differs
    if any(a["pads"]) and not a["count_include_pad"]:
        return False  # border windows count fewer elements
    attrs = {key: a[key] for key in ("kernel", "strides", "dilations", "pads", "ceil_mode")}
    return _sum_pool(b, node, attrs, int(np.prod(a["kernel"])))


def _global_avg_pool(b: Builder, node: Node) -> bool:
    spatial = b.graph.tensors[node.inputs[0]].shape[2:]
    k = len(spatial)
    attrs = {
        "kernel": spatial,
        "strides": (1,) * k,
        "dilations": (1,) * k,
        "pads": (0,) * (2 * k),
        "ceil_mode": False,
    }
    return _sum_pool(b, node, attrs, int(np.prod(spatial)))


Rule = Callable[[Builder, Node], bool]

RULES: Mapping[str, Rule] = {
    "conv": _conv,
    "gemm": _gemm,
    "matmul": _matmul,
    "add": _add(+1),
    "sub": _add(-1),
    "relu": _relu,
    "clip": _clip,
    "max_pool": _same_scale,
    "reshape": _same_scale,
    "transpose": _same_scale,
    "slice": _same_scale,
    "pad": _same_scale,
    "concat": _concat,
    "avg_pool": _avg_pool,
    "global_avg_pool": _global_avg_pool,
}
