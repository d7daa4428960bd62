"""Every ALU operation, built for the accelerator and run on the simulator, equals numpy.

The accelerator stores int8 (the low byte of each int32 lane), so each case is followed by an
arithmetic shift by 0, 8, 16 or 24 on the ALU: together the four runs check every bit.
"""

import numpy as np
import pytest

import accel
from accel import te

ENV = accel.get_env()
SHAPE = (1, 8, ENV.BATCH, ENV.BLOCK_OUT)

# name -> (expression on the loaded tiles, numpy reference on int64, uses a second tensor)
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, True),
    "min": (lambda a, b: te.min(a, b), np.minimum, True),
    "max": (lambda a, b: te.max(a, b), np.maximum, True),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, True),
    "shr_tensor": (lambda a, b: a >> b, lambda a, b: a >> b, True),
    "add_imm": (lambda a, b: a + 1000, lambda a, b: a + 1000, False),
    "sub_imm": (lambda a, b: a - 77, lambda a, b: a - 77, False),
    "min_imm": (lambda a, b: te.min(a, -5), lambda a, b: np.minimum(a, -5), False),
    "max_imm": (lambda a, b: te.max(a, 0), lambda a, b: np.maximum(a, 0), False),
    "mul_imm": (lambda a, b: a * -3, lambda a, b: a * -3, False),
    "shr_imm": (lambda a, b: a >> 3, lambda a, b: a >> 3, False),
    "shl_imm": (lambda a, b: a << 4, lambda a, b: a << 4, False),
    "copy": (lambda a, b: a, lambda a, b: a, False),
}


def alu_program(case: str, byte: int):
    expr, _, uses_b = CASES[case]
    A = te.placeholder(SHAPE, name="A", dtype=ENV.acc_dtype)
    B = te.placeholder(SHAPE, name="B", dtype=ENV.acc_dtype)
    A_buf = te.compute(SHAPE, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(SHAPE, lambda *i: B(*i), "B_buf")
    R = te.compute(SHAPE, lambda *i: expr(A_buf(*i), B_buf(*i)), "R")
    R_shift = te.compute(SHAPE, lambda *i: R(*i) >> (8 * byte), "R_shift")
    C = te.compute(SHAPE, lambda *i: R_shift(*i).astype(ENV.out_dtype), "C")
    s = te.create_schedule(C.op)
    loaded = (A_buf, B_buf) if uses_b else (A_buf,)  # an unread B_buf is not in the schedule
    for t in (*loaded, R, R_shift):
        s[t].set_scope(ENV.acc_scope)
    for t in (*loaded, C):
        s[t].pragma(s[t].op.axis[0], ENV.dma_copy)
    for t in (R, R_shift):
        s[t].pragma(s[t].op.axis[0], ENV.alu)
    return s, [A, B, C]


@pytest.mark.parametrize("byte", [0, 1, 2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_alu_operation_matches_numpy(case, byte):
    s, args = alu_program(case, byte)
    f = accel.build(s, args, name=case)
    rng = np.random.default_rng(byte)
    a = rng.integers(-(2**31), 2**31, SHAPE, dtype=np.int64).astype(np.int32)
    b = rng.integers(-(2**31), 2**31, SHAPE, dtype=np.int64).astype(np.int32)
    if case == "shr_tensor":
        b = rng.integers(0, 32, SHAPE).astype(np.int32)  # shift amounts within the lane
    dev = accel.ext_dev(0)
    c = accel.nd.empty(SHAPE, ENV.out_dtype, dev)
    f(accel.nd.array(a, dev), accel.nd.array(b, dev), c)
    _, reference, _ = CASES[case]
    exact = reference(a.astype(np.int64), b.astype(np.int64))
    wrapped = exact.astype(np.int32)  # int32 wrap-around, as the ALU computes
    expected = (wrapped >> (8 * byte)).astype(np.int8)
    np.testing.assert_array_equal(c.numpy(), expected)


def test_immediate_that_does_not_fit_is_refused():
    from accel.errors import LoweringError

    CASES["big"] = (lambda a, b: a + 40000, None, False)
    try:
        s, args = alu_program("big", 0)
        with pytest.raises(LoweringError, match="immediate 40000 does not fit 16 signed bits"):
            accel.build(s, args)
    finally:
        del CASES["big"]
