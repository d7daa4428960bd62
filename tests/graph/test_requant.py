"""Fixed-point requantization: the chosen multiplier and shifts approximate the real scale as
closely as the 16-bit immediate allows, and the ALU program never overflows int32 for the
accumulator bound it claims (checked step by step in exact integers, and against the wrapping
kernel at and near the bound)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel.graph import intops
from accel.graph.requant import (
    fixed_point,
    fixed_point_pair,
    requantize_program,
    rounding_shift,
)
from accel.hw.isa import AluOp

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def rs(x: int, n: int) -> int:
    return x if n == 0 else (x + (1 << (n - 1))) >> n


def exact_steps(steps, x: int, multiplier: int) -> list[int]:
    """The value after each ALU step, in unbounded Python integers."""
    values = []
    for step in steps:
        operand = multiplier if step.imm is None else step.imm
        if step.op == AluOp.ADD:
            x = x + operand
        elif step.op == AluOp.MUL:
            x = x * operand
        elif step.op == AluOp.SHR:
            x = x >> operand
        elif step.op == AluOp.MAX:
            x = max(x, operand)
        else:
            x = min(x, operand)
        values.append(x)
    return values


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(0, 46))
@settings(max_examples=300, deadline=None)
def test_rounding_shift_steps_equal_the_formula(x, n):
    steps = rounding_shift(n)
    assert all(s.imm is not None and -(2**15) <= s.imm < 2**15 for s in steps)
    assert all(s.imm <= 31 for s in steps if s.op == AluOp.SHR)
    if n <= 15 and n and x + (1 << (n - 1)) > INT32_MAX:
        return  # the two-step form's precondition, which the bound check guarantees
    values = exact_steps(steps, x, 0)
    assert (values[-1] if values else x) == rs(x, n)
    assert all(INT32_MIN <= v <= INT32_MAX for v in values)


scales = st.floats(2.0**-24, 8.0)
bounds = st.integers(1, 2**31 - 2**20)


@given(st.lists(st.tuples(scales, bounds), min_size=1, max_size=4), st.integers(0, 2**32))
@settings(max_examples=150, deadline=None)
def test_fixed_point_never_overflows_the_bound_it_claims(channels, seed):
    real = [s for s, _ in channels]
    bound = [min(b, int(2**30 / s)) for s, b in channels]  # S * bound < 2^30 (see fixed_point)
    fp = fixed_point(real, bound)
    assert fp is not None
    assert all(-(2**15) <= m < 2**15 for m in fp.multiplier)
    total = fp.pre_shift + fp.shift
    approx = np.array(fp.multiplier) / 2.0**total
    errors = np.abs(approx - real) / np.array(real)
    assert fp.rel_error == pytest.approx(errors.max(), rel=1e-12, abs=1e-300)
    rng = np.random.default_rng(seed)
    for m, b in zip(fp.multiplier, bound):
        steps = requantize_program(None, fp.pre_shift, fp.shift, -128, 127)
        samples = [b, -b, b - 1, -b + 1, 0, *rng.integers(-b, b + 1, 4).tolist()]
        for acc in samples:
            values = exact_steps(steps, acc, m)
            assert all(INT32_MIN <= v <= INT32_MAX for v in values), (acc, m, fp)
            expected = min(max(rs(rs(acc, fp.pre_shift) * m, fp.shift), -128), 127)
            attrs = {
                "multiplier": m,
                "pre_shift": fp.pre_shift,
                "shift": fp.shift,
                "lo": -128,
                "hi": 127,
            }
            got = intops.requantize(attrs, np.array([acc], np.int32))
            assert int(got[0]) == expected


@given(st.floats(2.0**-20, 1.0), bounds)
@settings(max_examples=100, deadline=None)
def test_per_tensor_multiplier_uses_the_full_immediate(scale, bound):
    """For S <= 1 the multiplier lands in [2^14, 2^15): the relative error is below 2^-15."""
    fp = fixed_point([scale], [bound])
    assert 2**14 <= fp.multiplier[0] < 2**15
    assert fp.rel_error <= 2.0**-15
    # The pre-shift is the smallest that keeps the product in int32: one less (with the same
    # total shift, so one more final shift) would overflow the multiply or the rounding add.
    if fp.pre_shift:
        p, s = fp.pre_shift - 1, fp.shift + 1
        product = rs(bound, p) * fp.multiplier[0] + ((1 << (s - 1)) if s <= 15 else 0)
        assert product > INT32_MAX


def test_fixed_point_worked_example():
    """S = 0.0034057 with |acc| <= 221771: 16-bit M with the largest total shift is
    round(S * 2^23) = 28569; rs(221771, p) * 28569 must stay below 2^31 - 2^(s-1), which
    p = 2 first achieves (55443 * 28569 = 1.58e9; p = 1 gives 3.17e9)."""
    fp = fixed_point([0.0034057], [221771])
    assert (fp.multiplier, fp.pre_shift, fp.shift) == ((28569,), 2, 21)
    assert fp.rel_error == pytest.approx(abs(28569 / 2**23 - 0.0034057) / 0.0034057)


def test_fixed_point_refuses_what_cannot_fit():
    assert fixed_point([40000.0], [100]) is None  # M would exceed the immediate
    assert fixed_point([6.0], [357914624]) is None  # S * bound > 2^31: the product overflows
    assert fixed_point([0.5], [2**31]) is None  # the bound itself is beyond int32


@given(st.floats(2.0**-10, 4.0), st.floats(2.0**-10, 4.0), st.booleans())
@settings(max_examples=100, deadline=None)
def test_fixed_point_pair(sa, sb, subtract):
    sb = -sb if subtract else sb
    fp = fixed_point_pair(sa, sb, 128)
    ma, mb = fp.multiplier
    assert max(abs(ma), abs(mb)) < 2**15 and fp.pre_shift == 0
    assert 128 * (abs(ma) + abs(mb)) + (1 << max(fp.shift - 1, 0)) <= INT32_MAX
    for m, s in ((ma, sa), (mb, sb)):
        assert abs(m / 2**fp.shift - s) <= 2.0 ** -(fp.shift + 1) + 1e-15
    assert max(abs(ma), abs(mb)) >= 2**14  # the larger multiplier uses the immediate's range
