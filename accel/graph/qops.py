"""Numpy kernels of the quantized operators, following the ONNX specification exactly.

Integer accumulation is exact (float64 holds every 8-bit product sum these layers make well
below 2^53). Requantization does what the spec and onnxruntime do, in float32: the accumulator
becomes a float, is multiplied by ``x_scale * w_scale / y_scale`` (computed in that order in
float32), rounded half to even, shifted by the zero point and saturated to the output type.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from accel.graph import window


def per_axis(param: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """A per-tensor (``axis`` None) scale or zero point becomes a scalar; a 1-D one is laid
    along ``axis`` of a rank-ndim tensor so it broadcasts."""
    if axis is None or param.ndim == 0:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = param.size
    return param.reshape(shape)


def saturate(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(values, info.min, info.max).astype(dtype)


def quantize_linear(
    attrs: Mapping[str, Any], x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray
) -> np.ndarray:
    """saturate(round_half_even(x / scale) + zero_point), per tensor or per ``axis``."""
    s = per_axis(scale.astype(np.float32), x.ndim, attrs["axis"])
    zp = per_axis(zero_point, x.ndim, attrs["axis"])
    q = np.rint(x.astype(np.float32) / s) + zp.astype(np.float32)
    return saturate(q, zero_point.dtype)


def dequantize_linear(
    attrs: Mapping[str, Any], x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray
) -> np.ndarray:
    """(x - zero_point) * scale in float32, per tensor or per ``axis``."""
    s = per_axis(scale.astype(np.float32), x.ndim, attrs["axis"])
    zp = per_axis(zero_point, x.ndim, attrs["axis"])
    return (x.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * s


def requantize(
    acc: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray, dtype: np.dtype
) -> np.ndarray:
    """Exact int32 accumulator -> float32, times the float32 multiplier, round half to even,
    plus the output zero point, saturated."""
    scaled = acc.astype(np.int32).astype(np.float32) * multiplier
    return saturate(np.rint(scaled) + np.float32(zero_point), dtype)


def _centered(q: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    return q.astype(np.float64) - zero_point.astype(np.float64)


def qlinear_conv(
    attrs: Mapping[str, Any],
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zp: np.ndarray,
    w: np.ndarray,
    w_scale: np.ndarray,
    w_zp: np.ndarray,
    y_scale: np.ndarray,
    y_zp: np.ndarray,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Convolution of zero-point-centred integers, plus the int32 bias, requantized; the weight
    scale and zero point may be per output channel."""
    wc = _centered(w, per_axis(w_zp, w.ndim, 0))
    acc = window.conv(
        _centered(x, x_zp.reshape(())),
        wc,
        attrs["strides"],
        attrs["dilations"],
        attrs["pads"],
        attrs["group"],
    )
    if bias is not None:
        acc = acc + per_axis(bias.astype(np.float64), acc.ndim, 1)
    multiplier = x_scale.astype(np.float32).reshape(()) * w_scale.astype(np.float32)
    multiplier = per_axis(multiplier / y_scale.astype(np.float32).reshape(()), acc.ndim, 1)
    return requantize(acc, multiplier, y_zp.reshape(()), y_zp.dtype)


def qlinear_matmul(
    attrs: Mapping[str, Any],
    a: np.ndarray,
    a_scale: np.ndarray,
    a_zp: np.ndarray,
    b: np.ndarray,
    b_scale: np.ndarray,
    b_zp: np.ndarray,
    y_scale: np.ndarray,
    y_zp: np.ndarray,
) -> np.ndarray:
    """Matrix product of zero-point-centred integers, requantized; b's scale and zero point may
    be per column (its last axis)."""
    acc = np.matmul(_centered(a, a_zp.reshape(())), _centered(b, per_axis(b_zp, b.ndim, -1)))
    multiplier = a_scale.astype(np.float32).reshape(()) * b_scale.astype(np.float32)
    multiplier = multiplier / y_scale.astype(np.float32).reshape(())
    return requantize(acc, per_axis(multiplier, acc.ndim, -1), y_zp.reshape(()), y_zp.dtype)
