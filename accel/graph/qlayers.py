"""What convolution and matrix-product layers share when quantized: int8 weights with their
scales, int32 biases at the accumulator's scale, and the accumulator with its exact bound."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from accel.errors import GraphError
from accel.graph.ir import Node
from accel.graph.qbuilder import NO_CLAMP, Accumulator, Builder, Int8
from accel.graph.requant import INT32_MAX


def quantize_weight(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights (output channels first) and their scales, one per output channel
    (equal unless ``per_channel``): ``scale = max |w| / 127`` (1 for an all-zero weight),
    ``q = round_half_even(w / scale)``, so ``|q| <= 127``."""
    w = w.astype(np.float64)
    flat = np.abs(w.reshape(w.shape[0], -1))
    peak = flat.max(axis=1) if per_channel else np.full(w.shape[0], flat.max(initial=0.0))
    scale = np.where(peak > 0, peak / 127, 1.0)
    q = np.rint(w / scale.reshape((-1,) + (1,) * (w.ndim - 1)))
    return np.clip(q, -127, 127).astype(np.int8), scale


def weight_values(
    b: Builder, t: str, axis: int, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray] | None:
    """The int8 weight ``t`` with its output-channel ``axis`` moved first, and one scale per
    output channel (times ``alpha``): a QDQ model's DequantizeLinear of int8 integers (per
    tensor, or per axis along ``axis``), or, when calibrating, a float constant quantized here.
    None otherwise (a QDQ model's float weights stay float: the model left that layer float)."""
    if t in b.qconst:
        q = b.qconst[t]
        if q.values.dtype != np.int8 or q.axis not in (None, axis % q.values.ndim):
            return None
        values = np.moveaxis(q.values, axis, 0)
        scale = np.broadcast_to(q.scale.astype(np.float64).reshape(-1), values.shape[:1])
        return np.ascontiguousarray(values), scale * alpha
    value = b.float_constant(t)
    if not b.calibrated or value is None or value.dtype != np.float32:
        return None
    return quantize_weight(np.moveaxis(value, axis, 0) * np.float64(alpha), b.per_channel)


def is_constant(b: Builder, t: str) -> bool:
    """Whether ``t`` is a float constant or a QDQ model's dequantized constant."""
    return t in b.qconst or b.float_constant(t) is not None


def bias_values(b: Builder, node: Node, t: str, beta: float, acc_scale: np.ndarray) -> np.ndarray:
    """The constant bias ``t`` (times ``beta``) as int32 at the accumulator's scale, one per
    output channel: ``round_half_even(bias / acc_scale)``. A QDQ model's int32 bias already at
    that scale (as onnxruntime writes it) is taken as it is. Raises :class:`GraphError` naming
    the node when a value does not fit int32."""
    channels = acc_scale.shape[0]
    if t in b.qconst:
        q = b.qconst[t]
        scale = np.broadcast_to(q.scale.astype(np.float64).reshape(-1), (q.values.size,))
        ints = q.values.reshape(-1)
        if beta == 1 and ints.dtype == np.int32 and ints.size == channels:
            if np.allclose(scale, acc_scale, rtol=1e-6, atol=0):
                return ints.astype(np.int32)
        real = ints.astype(np.float64) * scale * beta
    else:
        real = b.float_constant(t).astype(np.float64).reshape(-1) * beta
    exact = np.rint(np.broadcast_to(real, (channels,)) / acc_scale)
    if np.abs(exact).max(initial=0) > INT32_MAX:
        raise GraphError(
            f"node {node.name!r} ({node.op}): the bias does not fit int32 at the accumulator's "
            f"scale (largest {np.abs(real).max():g} / {acc_scale.min():g}); the input or weight "
            "scale is too small for it"
        )
    return exact.astype(np.int32)


def accumulate(
    b: Builder,
    node: Node,
    op: str,
    x: Int8,
    weight: tuple[np.ndarray, np.ndarray],
    bias: np.ndarray | None,
    attrs: Mapping,
    output: str | None = None,
) -> Accumulator:
    """Write ``op`` (qconv / qdense) over int8 ``x`` and return its int32 accumulator, pending,
    with the exact bound of ``|acc|`` per channel over every input in ``x``'s range (and the 0
    of padding): ``sum(w+) * hi + sum(w-) * lo + bias`` above and ``sum(w+) * lo + sum(w-) * hi
    + bias`` below. Raises :class:`GraphError` naming the node when that exceeds int32."""
    wq, w_scale = weight
    inputs = [x.name, b.constant(f"{node.name}.weight_q", wq)]
    if bias is not None:
        inputs.append(b.constant(f"{node.name}.bias_q", bias))
    lo, hi = min(x.lo, 0), max(x.hi, 0)
    flat = wq.reshape(wq.shape[0], -1).astype(np.int64)
    pos = np.where(flat > 0, flat, 0).sum(axis=1)
    neg = np.where(flat < 0, flat, 0).sum(axis=1)
    offset = np.zeros(wq.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    top, bottom = pos * hi + neg * lo + offset, pos * lo + neg * hi + offset
    bound = np.maximum(np.abs(top), np.abs(bottom))
    if bound.max() > INT32_MAX:
        channel = int(bound.argmax())
        raise GraphError(
            f"node {node.name!r} ({node.op}): output channel {channel} can reach |acc| = "
            f"{int(bound[channel])}, beyond int32; the layer is too large for int32 accumulation"
        )
    acc = b.fresh(f"{output or node.outputs[0]}.acc")
    b.emit(node.name, op, tuple(inputs), acc, attrs)
    scale = tuple((x.scale * w_scale).tolist())
    return Accumulator(node.name, NO_CLAMP, acc, scale, tuple(int(v) for v in bound))
