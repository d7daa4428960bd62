"""Sliding-window arithmetic shared by convolution, transposed convolution and pooling.

Every function works on NC* layouts with any number of spatial axes. ``pads`` is ONNX's
``(begin_0, ..., begin_k, end_0, ..., end_k)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def window_extent(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def conv_out_size(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int) -> int:
    return (size + begin + end - window_extent(kernel, dilation)) // stride + 1


def pool_out_size(
    size: int, kernel: int, stride: int, dilation: int, begin: int, end: int, ceil_mode: bool
) -> int:
    span = size + begin + end - window_extent(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = math.ceil(span / stride) + 1
    # A last window that would start in the end padding is dropped (ONNX / PyTorch rule).
    if (out - 1) * stride >= size + begin:
        out -= 1
    return out


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """(begin, end) padding of auto_pad SAME_UPPER (extra at the end) or SAME_LOWER."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + window_extent(kernel, dilation) - size)
    small, big = total // 2, total - total // 2
    return (small, big) if upper else (big, small)


def windows(
    x: np.ndarray,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    out: tuple[int, ...],
) -> np.ndarray:
    """The (N, C, *out, *kernel) view of the windows of an already padded ``x``."""
    k = len(kernel)
    axes = tuple(range(2, 2 + k))
    extents = tuple(window_extent(kk, d) for kk, d in zip(kernel, dilations))
    view = sliding_window_view(x, extents, axis=axes)
    index = (
        (slice(None), slice(None))
        + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides))
        + tuple(slice(None, None, d) for d in dilations)
    )
    return view[index]


def pad_spatial(x: np.ndarray, pads: tuple[int, ...], value: float) -> np.ndarray:
    k = len(pads) // 2
    widths = [(0, 0), (0, 0)] + [(pads[i], pads[i + k]) for i in range(k)]
    return np.pad(x, widths, constant_values=value)


def conv(
    x: np.ndarray,
    w: np.ndarray,
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pads: tuple[int, ...],
    group: int,
) -> np.ndarray:
    """Grouped N-d convolution of x (N, C, *S) with w (M, C/group, *K); result dtype follows the
    inputs (callers pass float32, or float64 holding exact integers)."""
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    k = len(kernel)
    out = tuple(
        conv_out_size(x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + k])
        for i in range(k)
    )
    win = windows(pad_spatial(x, pads, 0), kernel, strides, dilations, out)
    win = win.reshape((n, group, cg) + out + kernel)
    wg = w.reshape((group, m // group, cg) + kernel)
    sp = "hwdxyz"[:k]
    ks = "ijklpq"[:k]
    expr = f"ngc{sp}{ks},gmc{ks}->ngm{sp}"
    y = np.einsum(expr, win, wg, optimize=True)
    return y.reshape((n, m) + out)


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pads: tuple[int, ...],
    group: int,
    output_padding: tuple[int, ...],
) -> np.ndarray:
    """Grouped N-d transposed convolution of x (N, C, *S) with w (C, M/group, *K).

    Each kernel tap scatters the whole input, strided, into the full output; the result is then
    cropped by ``pads`` (the full output also holds ``output_padding`` zeros at the end)."""
    n, c = x.shape[:2]
    mg = w.shape[1]
    kernel = w.shape[2:]
    k = len(kernel)
    size = x.shape[2:]
    full = tuple(
        (size[i] - 1) * strides[i] + window_extent(kernel[i], dilations[i]) + output_padding[i]
        for i in range(k)
    )
    y = np.zeros((n, group, mg) + full, dtype=np.result_type(x, w))
    xg = x.reshape((n, group, c // group) + size)
    wg = w.reshape((group, c // group, mg) + kernel)
    sp = "hwdxyz"[:k]
    for tap in np.ndindex(*kernel):
        contrib = np.einsum(f"ngc{sp},gcm->ngm{sp}", xg, wg[(Ellipsis,) + tap])
        index = tuple(
            slice(t * d, t * d + (s_ - 1) * st + 1, st)
            for t, d, s_, st in zip(tap, dilations, size, strides)
        )
        y[(slice(None), slice(None), slice(None)) + index] += contrib
    crop = tuple(slice(pads[i], full[i] - pads[i + k]) for i in range(k))
    return y.reshape((n, group * mg) + full)[(slice(None), slice(None)) + crop]


def pool(
    x: np.ndarray,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pads: tuple[int, ...],
    ceil_mode: bool,
    mode: str,
    count_include_pad: bool = False,
) -> np.ndarray:
    """Max (``mode="max"``), average (``"avg"``) or sum (``"sum"``) pooling. Windows that
    ceil_mode lets run past the end padding see nothing there: not in the max, not in the
    average's count (a sum adds zeros there and in the padding)."""
    k = len(kernel)
    out = tuple(
        pool_out_size(
            x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + k], ceil_mode
        )
        for i in range(k)
    )
    # Extra end padding so every window of a ceil_mode output lies inside the array.
    extra = tuple(
        max(
            0,
            (out[i] - 1) * strides[i]
            + window_extent(kernel[i], dilations[i])
            - (x.shape[2 + i] + pads[i] + pads[i + k]),
        )
        for i in range(k)
    )
    full_pads = pads[:k] + tuple(pads[k + i] + extra[i] for i in range(k))
    axes = tuple(range(-k, 0))
    if mode == "max":
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = pad_spatial(x, full_pads, lowest)
        return windows(xp, kernel, strides, dilations, out).max(axis=axes).astype(x.dtype)
    total = windows(pad_spatial(x, full_pads, 0), kernel, strides, dilations, out).sum(axis=axes)
    if mode == "sum":
        return total
    # Count what each window averages over: the real elements, plus explicit pads if asked.
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    if count_include_pad:
        ones = pad_spatial(ones, pads, 1)
        ones = pad_spatial(ones, (0,) * k + extra, 0)
    else:
        ones = pad_spatial(ones, full_pads, 0)
    count = windows(ones, kernel, strides, dilations, out).sum(axis=axes)
    return (total / count).astype(x.dtype)
