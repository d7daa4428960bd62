"""check_bounds: unguarded accesses outside their buffer are refused (they were clamped by the
host code and gave wrong answers); guarded ones and in-range ones pass."""

import numpy as np
import pytest

import accel
from accel import te
from accel.errors import LoweringError

A = te.placeholder((4,), "int32", "A")


@pytest.mark.parametrize(
    "fcompute, message",
    [
        (lambda i: A[i + 1], r"reads A\[\(i \+ 1\)\] at flat indices 1..4, but A has 4 elements"),
        (lambda i: A[i * 3], r"reads A\[\(i\*3\)\] at flat indices 0..9"),
        (lambda i: A[i - 1] + A[i], r"reads A\[\(i - 1\)\] at flat indices -1..2"),
    ],
)
def test_an_unguarded_read_outside_its_tensor_is_refused(fcompute, message):
    B = te.compute((4,), fcompute, "B")
    with pytest.raises(LoweringError, match=message):
        accel.build(te.create_schedule(B.op), [A, B])


def test_a_guarded_read_is_left_to_its_guard():
    B = te.compute((4,), lambda i: te.if_then_else(i < 3, A[i + 1], 0), "B")
    f = accel.build(te.create_schedule(B.op), [A, B])
    b = np.zeros(4, np.int32)
    f(np.arange(10, 14, dtype=np.int32), b)
    np.testing.assert_array_equal(b, [11, 12, 13, 0])


def test_a_split_that_does_not_divide_stays_in_bounds():
    B = te.compute((4,), lambda i: A[i] * 2, "B")
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=3)  # 2 x 3 iterations, guarded past 4
    f = accel.build(s, [A, B])
    b = np.zeros(4, np.int32)
    f(np.arange(4, dtype=np.int32), b)
    np.testing.assert_array_equal(b, [0, 2, 4, 6])


def test_a_read_past_the_end_under_the_guard_of_a_split_is_refused():
    n = 10
    A10 = te.placeholder((n,), "int32", "A")
    B = te.compute((n,), lambda i: A10[i + 1], "B")
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=3)  # guard i.outer*3 + i.inner < 10 bounds the index by 10
    with pytest.raises(LoweringError, match=r"at flat indices 1..10, but A has 10 elements"):
        accel.build(s, [A10, B])
