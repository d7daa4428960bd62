"""Numpy kernels of the integer operators `accel.graph.quantize` writes: exactly what the
accelerator computes, bit for bit (docs/quantization.md).

Accumulators are int32 and wrap around as the hardware's do: sums are formed exactly (float64
holds every partial sum of int8 products these layers make, far below 2^53) and then reduced
modulo 2^32, which is what a sequence of wrapping int32 additions gives. ``requantize`` and
``qadd`` run their vector-ALU steps literally (`accel.graph.requant`), and results are stored as
the low 8 bits, after the clip that makes that exact.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from accel.graph import window
from accel.graph.requant import (
    AluStep,
    clip_steps,
    requantize_program,
    rounding_shift,
    run_program,
)
from accel.hw.isa import AluOp

Attrs = Mapping[str, Any]


def _wrap(exact: np.ndarray) -> np.ndarray:
    """Exact integer values (float64 or int64) reduced modulo 2^32 into int32."""
    return exact.astype(np.int64).astype(np.int32)


def _channels(values, ndim: int) -> np.ndarray:
    """A per-channel tuple laid along axis 1 of a rank-``ndim`` tensor."""
    shape = [1] * ndim
    shape[1] = len(values)
    return np.asarray(values).reshape(shape)


def quantize(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """float32 -> int8: ``saturate(round_half_even(x / scale))``, divided in float32."""
    q = np.rint(x.astype(np.float32) / np.float32(attrs["scale"]))
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """int8 or int32 -> float32: ``float32(x) * float32(scale)``; a tuple scale runs along
    ``axis``."""
    scale = attrs["scale"]
    if isinstance(scale, tuple):
        shape = [1] * x.ndim
        shape[attrs["axis"]] = len(scale)
        s = np.asarray(scale, np.float32).reshape(shape)
    else:
        s = np.float32(scale)
    return x.astype(np.float32) * s


def qconv(attrs: Attrs, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None):
    """int8 data, int8 weights, optional int32 bias -> the int32 accumulator (wrapping)."""
    acc = window.conv(
        x.astype(np.float64),
        w.astype(np.float64),
        attrs["strides"],
        attrs["dilations"],
        attrs["pads"],
        attrs["group"],
    ).astype(np.int64)
    if bias is not None:
        acc = acc + _channels(bias.astype(np.int64), acc.ndim)
    return _wrap(acc)


def qdense(attrs: Attrs, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None):
    """int8 (N, K) times int8 (O, K) transposed, plus the int32 bias (O,) -> int32 (N, O)."""
    acc = (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return _wrap(acc)


def qsum_pool(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """int8 -> int32 window sums; padding and windows past the end contribute 0."""
    total = window.pool(
        x.astype(np.int64),
        attrs["kernel"],
        attrs["strides"],
        attrs["dilations"],
        attrs["pads"],
        attrs["ceil_mode"],
        "sum",
    )
    return _wrap(total)


def requantize(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """int32 (or int8, widened) -> int8 by the ALU program of
    :func:`accel.graph.requant.requantize_program`; a tuple multiplier is per channel (axis 1)."""
    multiplier = attrs["multiplier"]
    per_channel = isinstance(multiplier, tuple)
    steps = requantize_program(
        None if per_channel else multiplier,
        attrs["pre_shift"],
        attrs["shift"],
        attrs["lo"],
        attrs["hi"],
    )
    tensor = _channels(multiplier, x.ndim) if per_channel else None
    return run_program(steps, x.astype(np.int32), tensor).astype(np.int8)


def qadd_program(attrs: Attrs) -> tuple[tuple[AluStep, ...], ...]:
    """The steps of ``qadd``: one ``MUL`` for each operand, then (after the tensor ``ADD`` of the
    two) the rounding shift and the clip."""
    scale_a = (AluStep(AluOp.MUL, attrs["multiplier_a"]),)
    scale_b = (AluStep(AluOp.MUL, attrs["multiplier_b"]),)
    return scale_a, scale_b, rounding_shift(attrs["shift"]) + clip_steps(attrs["lo"], attrs["hi"])


def qadd(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int8 + int8 -> int8: ``clip(rs(a * Ma + b * Mb, shift), lo, hi)`` in int32 (broadcasting)."""
    scale_a, scale_b, tail = qadd_program(attrs)
    a32 = run_program(scale_a, a.astype(np.int32))
    b32 = run_program(scale_b, b.astype(np.int32))
    return run_program(tail, np.add(a32, b32, dtype=np.int32)).astype(np.int8)
