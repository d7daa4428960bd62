"""Numpy kernels, one per canonical operator: ``KERNELS[op](attrs, *inputs) -> array``.

Float kernels compute in the inputs' dtype (float32 for float graphs), except the products
(convolutions, Gemm, MatMul) and means, which sum in float64 and round once to float32: a float32
BLAS sums in an order that depends on the kernel it picks for the CPU, so float32 sums differ in
their last bits from machine to machine, and so would the scales calibrated from them and every
quantized model built with those. In float64 the order almost never shows after the rounding
(only where heavy cancellation brings a float64 rounding error up to float32's precision).
Attributes arrive already normalized by the frontend (explicit pads, positive axes, static
shapes).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from accel.graph import intops, qops, window

Attrs = Mapping[str, Any]


def _wide(a: np.ndarray) -> np.ndarray:
    """A float32 operand of a product as float64: products of float32 values are exact there
    and their sums round far below float32's precision, so the result rounded back to float32
    does not depend on the summation order (barring heavy cancellation)."""
    return a.astype(np.float64) if a.dtype == np.float32 else a


def conv(attrs: Attrs, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None):
    y = window.conv(
        _wide(x), _wide(w), attrs["strides"], attrs["dilations"], attrs["pads"], attrs["group"]
    )
    if bias is not None:
        y = y + bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y.astype(x.dtype)


def conv_transpose(attrs: Attrs, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None):
    y = window.conv_transpose(
        _wide(x),
        _wide(w),
        attrs["strides"],
        attrs["dilations"],
        attrs["pads"],
        attrs["group"],
        attrs["output_padding"],
    )
    if bias is not None:
        y = y + bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y.astype(x.dtype)


def gemm(attrs: Attrs, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None):
    a = a.T if attrs["trans_a"] else a
    b = b.T if attrs["trans_b"] else b
    y = np.float32(attrs["alpha"]) * (_wide(a) @ _wide(b))
    if c is not None:
        y = y + np.float32(attrs["beta"]) * c
    return y.astype(a.dtype)


def div(attrs: Attrs, a: np.ndarray, b: np.ndarray):
    if a.dtype.kind in "iu":
        # ONNX integer division truncates toward zero, as C does; numpy's // floors.
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q).astype(a.dtype)
    return a / b


def sigmoid(attrs: Attrs, x: np.ndarray):
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


def pool(mode: str) -> Callable[..., np.ndarray]:
    def kernel(attrs: Attrs, x: np.ndarray):
        return window.pool(
            x,
            attrs["kernel"],
            attrs["strides"],
            attrs["dilations"],
            attrs["pads"],
            attrs["ceil_mode"],
            mode,
            attrs.get("count_include_pad", False),
        )

    return kernel


def pad(attrs: Attrs, x: np.ndarray):
    """Constant padding; negative pads crop."""
    k = x.ndim
    begin, end = attrs["pads"][:k], attrs["pads"][k:]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    y = np.pad(x, widths, constant_values=np.array(attrs["value"]).astype(x.dtype))
    crop = tuple(slice(-min(b, 0), n - (-min(e, 0))) for b, e, n in zip(begin, end, y.shape))
    return y[crop]


def batch_norm(attrs: Attrs, x, scale, bias, mean, var):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = scale / np.sqrt(var + np.float32(attrs["epsilon"]))
    return ((x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)).astype(x.dtype)


def softmax(attrs: Attrs, x: np.ndarray):
    e = np.exp(x - x.max(axis=attrs["axis"], keepdims=True))
    return (e / e.sum(axis=attrs["axis"], keepdims=True)).astype(x.dtype)


def global_avg_pool(attrs: Attrs, x: np.ndarray):
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float64).astype(x.dtype)


def slice_(attrs: Attrs, x: np.ndarray):
    """Per-axis start, end and step, already clamped; an end of -1 means "before index 0"."""
    index = tuple(
        slice(start, end if end >= 0 else None, step)
        for start, end, step in zip(attrs["starts"], attrs["ends"], attrs["steps"])
    )
    return x[index]


def reduce_mean(attrs: Attrs, x: np.ndarray):
    mean = x.mean(axis=attrs["axes"], keepdims=attrs["keepdims"], dtype=np.float64)
    return mean.astype(x.dtype)


KERNELS: Mapping[str, Callable[..., np.ndarray]] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "gemm": gemm,
    "matmul": lambda attrs, a, b: np.matmul(_wide(a), _wide(b)).astype(np.result_type(a, b)),
    "add": lambda attrs, a, b: np.add(a, b),
    "sub": lambda attrs, a, b: np.subtract(a, b),
    "mul": lambda attrs, a, b: np.multiply(a, b),
    "div": div,
    "relu": lambda attrs, x: np.maximum(x, x.dtype.type(0)),
    "leaky_relu": lambda attrs, x: np.where(x >= 0, x, x * np.float32(attrs["alpha"])),
    "clip": lambda attrs, x: np.clip(x, attrs["min"], attrs["max"]).astype(x.dtype),
    "sigmoid": sigmoid,
    "max_pool": pool("max"),
    "avg_pool": pool("avg"),
    "global_avg_pool": global_avg_pool,
    "reshape": lambda attrs, x: x.reshape(attrs["shape"]),
    "transpose": lambda attrs, x: np.transpose(x, attrs["perm"]),
    "concat": lambda attrs, *xs: np.concatenate(xs, axis=attrs["axis"]),
    "pad": pad,
    "batch_norm": batch_norm,
    "softmax": softmax,
    "cast": lambda attrs, x: x.astype(attrs["dtype"]),
    "gather": lambda attrs, x, i: np.take(x, i, axis=attrs["axis"]),
    "slice": slice_,
    "reduce_mean": reduce_mean,
    "quantize_linear": qops.quantize_linear,
    "dequantize_linear": qops.dequantize_linear,
    "qlinear_conv": qops.qlinear_conv,
    "qlinear_matmul": qops.qlinear_matmul,
    "quantize": intops.quantize,
    "dequantize": intops.dequantize,
    "qconv": intops.qconv,
    "qdense": intops.qdense,
    "qsum_pool": intops.qsum_pool,
    "requantize": intops.requantize,
    "qadd": intops.qadd,
}
