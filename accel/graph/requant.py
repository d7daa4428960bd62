"""Fixed-point requantization: the integer program the accelerator's vector ALU runs to bring an
int32 accumulator to int8 at another scale, how its multiplier and shifts are chosen, and why it
cannot overflow (docs/quantization.md).

A real scale ``S`` is approximated by ``M / 2^(p + s)`` with ``M`` a signed 16-bit immediate
(the ALU's operand), a *pre-shift* ``p`` that shrinks the accumulator before the multiply so the
product fits int32, and a final shift ``s``::

    y = clip(rs(rs(acc, p) * M, s), lo, hi)    rs(x, n) = floor((x + 2^(n-1)) / 2^n), rs(x, 0) = x

``rs`` rounds half up. As ALU steps, ``rs(x, n)`` is ``ADD 2^(n-1); SHR n`` when the immediate
``2^(n-1)`` fits 16 bits (``n <= 15``), and ``SHR n-15; ADD 2^14; SHR 15`` otherwise: adding an
integer multiple of ``2^a`` commutes with ``floor(./2^a)`` and nested floor divisions compose, so
``floor((floor(x / 2^a) + 2^14) / 2^15) = floor((x + 2^(a+14)) / 2^(a+15))`` exactly.

**No overflow.** If ``|acc| <= A`` then ``|rs(acc, p)| <= rs(A, p)`` (``rs`` is monotone and
``rs(-A, p) >= -rs(A, p)``), so every intermediate is bounded by ``A + 2^(p-1)`` (the pre-shift's
add), ``rs(A, p) * |M|`` (the product) and that plus ``2^(s-1)`` (the final add); the split form
of a shift adds only to an already shifted value, far from the limit. :func:`overflow_free`
checks exactly these against int32, and :func:`fixed_point` only returns parameters that pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from accel.hw.isa import AluOp

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
IMM_MIN, IMM_MAX = -(2**15), 2**15 - 1  # the ALU immediate: signed 16 bits
SPLIT_SHIFT = 15  # beyond this a rounding shift takes three steps (2^(n-1) is no immediate)
MAX_PRE_SHIFT = 31
MAX_SHIFT = 31 + SPLIT_SHIFT  # the first step of the split form shifts by at most 31


@dataclass(frozen=True, slots=True)
class AluStep:
    """One vector-ALU operation on the int32 accumulator: ``acc = op(acc, operand)``; the operand
    is the immediate ``imm``, or (``imm`` None) the per-channel multiplier tensor."""

    op: AluOp
    imm: int | None

    def __str__(self) -> str:
        return f"{self.op.name} {'multiplier' if self.imm is None else self.imm}"


def rshift_round(x: int, n: int) -> int:
    """``floor((x + 2^(n-1)) / 2^n)`` for exact Python integers (``x`` when ``n`` is 0)."""
    return (x + (1 << (n - 1))) >> n if n else x


def rounding_shift(n: int) -> tuple[AluStep, ...]:
    """The ALU steps of ``rs(x, n)`` (see the module docstring)."""
    if n == 0:
        return ()
    if n <= SPLIT_SHIFT:
        return (AluStep(AluOp.ADD, 1 << (n - 1)), AluStep(AluOp.SHR, n))
    return (
        AluStep(AluOp.SHR, n - SPLIT_SHIFT),
        AluStep(AluOp.ADD, 1 << (SPLIT_SHIFT - 1)),
        AluStep(AluOp.SHR, SPLIT_SHIFT),
    )


def clip_steps(lo: int, hi: int) -> tuple[AluStep, ...]:
    return (AluStep(AluOp.MAX, lo), AluStep(AluOp.MIN, hi))


def requantize_program(
    multiplier: int | None, pre_shift: int, shift: int, lo: int, hi: int
) -> tuple[AluStep, ...]:
    """The ALU steps of ``requantize``; ``multiplier`` None means a per-channel tensor."""
    return (
        rounding_shift(pre_shift)
        + (AluStep(AluOp.MUL, multiplier),)
        + rounding_shift(shift)
        + clip_steps(lo, hi)
    )


def run_program(
    steps: Sequence[AluStep], x: np.ndarray, tensor: np.ndarray | None = None
) -> np.ndarray:
    """Execute ``steps`` on the int32 array ``x`` with int32 wrap-around, as the ALU does;
    ``tensor`` (broadcast against ``x``) is the operand of steps without an immediate."""
    acc = np.array(x, dtype=np.int32)
    for step in steps:  # int32 arrays wrap silently, as the accumulator does
        operand = tensor.astype(np.int32) if step.imm is None else np.int32(step.imm)
        if step.op == AluOp.ADD:
            acc = np.add(acc, operand, dtype=np.int32)
        elif step.op == AluOp.MUL:
            acc = np.multiply(acc, operand, dtype=np.int32)
        elif step.op == AluOp.SHR:
            acc = np.right_shift(acc, operand, dtype=np.int32)
        elif step.op == AluOp.MAX:
            acc = np.maximum(acc, operand, dtype=np.int32)
        else:
            acc = np.minimum(acc, operand, dtype=np.int32)
    return acc


def overflow_free(bound: int, multiplier: int, pre_shift: int, shift: int) -> bool:
    """Whether ``requantize`` with these parameters keeps every intermediate in int32 for all
    accumulators with ``|acc| <= bound`` (the argument of the module docstring)."""
    if not 0 <= bound <= INT32_MAX:
        return False
    if 1 <= pre_shift <= SPLIT_SHIFT and bound + (1 << (pre_shift - 1)) > INT32_MAX:
        return False
    product = rshift_round(bound, pre_shift) * abs(multiplier)
    if 1 <= shift <= SPLIT_SHIFT:
        product += 1 << (shift - 1)
    return product <= INT32_MAX


def pair_overflow_free(bound: int, multiplier_a: int, multiplier_b: int, shift: int) -> bool:
    """Whether ``qadd`` keeps every intermediate in int32 when ``|a|, |b| <= bound``."""
    total = bound * (abs(multiplier_a) + abs(multiplier_b))
    if 1 <= shift <= SPLIT_SHIFT:
        total += 1 << (shift - 1)
    return total <= INT32_MAX


@dataclass(frozen=True, slots=True)
class FixedPoint:
    """Multipliers (one per channel, or one per operand of ``qadd``) sharing the shifts, and the
    worst relative error ``|M / 2^(pre_shift + shift) - S| / S`` over them."""

    multiplier: tuple[int, ...]
    pre_shift: int
    shift: int
    rel_error: float


def _multipliers(scales: np.ndarray, total: int) -> np.ndarray | None:
    """``round(S * 2^total)``, or None when one does not fit the 16-bit immediate."""
    m = np.rint(scales * 2.0**total)
    if np.abs(m).max() > IMM_MAX:
        return None
    return m.astype(np.int64)


def _error(scales: np.ndarray, multipliers: np.ndarray, total: int) -> float:
    approx = multipliers.astype(np.float64) / 2.0**total
    return float(np.max(np.abs(approx - scales) / np.abs(scales)))


def fixed_point(scales: Sequence[float], bounds: Sequence[int]) -> FixedPoint | None:
    """The requantize parameters for real scales ``scales`` (one per channel) and accumulator
    bounds ``bounds`` (``|acc| <= bound``, per channel).

    The multipliers are the most precise the 16-bit immediate allows: the largest total shift
    ``T`` with every ``|M| = |round(S * 2^T)|`` at most 32767; then the smallest pre-shift that
    keeps every channel overflow-free; a smaller ``T`` only when no pre-shift works. Returns None
    when nothing does: a bound outside int32, or ``S * bound`` near 2^31 or above (the product
    ``~ S * acc * 2^shift`` cannot fit; such a layer saturates long before its bound anyway).
    """
    s = np.asarray(scales, dtype=np.float64)
    for total in range(MAX_PRE_SHIFT + MAX_SHIFT, -1, -1):
        m = _multipliers(s, total)
        if m is None:
            continue
        for pre in range(max(0, total - MAX_SHIFT), min(total, MAX_PRE_SHIFT) + 1):
            if all(overflow_free(b, int(mi), pre, total - pre) for b, mi in zip(bounds, m)):
                return FixedPoint(tuple(int(v) for v in m), pre, total - pre, _error(s, m, total))
    return None


def fixed_point_pair(scale_a: float, scale_b: float, bound: int) -> FixedPoint | None:
    """The ``qadd`` parameters: ``a * Ma + b * Mb`` then a rounding shift, no pre-shift, where
    ``|a|, |b| <= bound`` (128 for int8) and a scale may be negative (subtraction)."""
    s = np.array([scale_a, scale_b], dtype=np.float64)
    for shift in range(MAX_SHIFT, -1, -1):
        m = _multipliers(s, shift)
        if m is None:
            continue
        if pair_overflow_free(bound, int(m[0]), int(m[1]), shift):
            return FixedPoint(tuple(int(v) for v in m), 0, shift, _error(s, m, shift))
    return None
