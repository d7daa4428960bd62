"""The GEMM intrinsic (``env.gemm``): what tensorizing with it emits, and what it refuses."""

import pytest
from pass_helpers import ENV, args, calls, lowered, value

import accel
from accel import te
from accel.errors import TensorizeError
from accel.lower import coproc, ir

NB, NK, NO = 1, 2, 3  # input rows, reduction tiles, output tiles


def gemm(reduce=te.sum, cast=ENV.acc_dtype, scopes=None):
    """C[bo, co] = reduce over (ko, ki) of cast(A) * cast(B), tensorized at bi, with the
    on-chip copies of A, B and the result in ``scopes`` (input, weight, accumulator)."""
    A = te.placeholder((NB, NK, ENV.BATCH, ENV.BLOCK_IN), name="A", dtype=ENV.inp_dtype)
    B = te.placeholder((NO, NK, ENV.BLOCK_OUT, ENV.BLOCK_IN), name="B", dtype=ENV.wgt_dtype)
    A_buf = te.compute(A.shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(B.shape, lambda *i: B(*i), "B_buf")
    ko = te.reduce_axis((0, NK), name="ko")
    ki = te.reduce_axis((0, ENV.BLOCK_IN), name="ki")
    C_buf = te.compute(
        (NB, NO, ENV.BATCH, ENV.BLOCK_OUT),
        lambda bo, co, bi, ci: reduce(
            A_buf[bo, ko, bi, ki].astype(cast) * B_buf[co, ko, ci, ki].astype(cast),
            axis=[ko, ki],
        ),
        "C_buf",
    )
    C = te.compute(C_buf.shape, lambda *i: C_buf(*i).astype(ENV.out_dtype), "C")
    s = te.create_schedule(C.op)
    for buf, scope in zip((A_buf, B_buf, C_buf), scopes or ENV.scopes):
        s[buf].set_scope(scope)
    bo, co, bi, ci = s[C_buf].op.axis
    s[C_buf].reorder(bo, co, ko, bi, ci, ki)
    s[C_buf].tensorize(bi, ENV.gemm)
    return s, [A, B, C]


def test_tensorize_emits_a_reset_and_an_update_micro_op():
    # Loops bo (1, removed), co (3), ko (2). Before ko starts, the reset zeroes accumulator
    # tile co; at each ko the update adds input tile ko (A_buf is 1 x 2 tiles) times weight
    # tile co*2 + ko (B_buf is 3 x 2 tiles) into tile co. Each is a GEMM kernel on compute.
    body = lowered(*gemm(), "simplify")
    reset, update = calls(body, coproc.UOP_PUSH)
    push = args(reset)
    assert (push.mode, push.reset, push.src, push.wgt) == (coproc.GEMM_MODE, 1, 0, 0)
    assert (push.opcode, push.use_imm, push.imm) == (0, 0, 0)
    dst = push.dst
    assert [value(dst, co=c) for c in range(3)] == [0, 1, 2]
    assert dst.buffer.name == "C_buf"
    push = args(update)
    assert (push.mode, push.reset, push.opcode, push.use_imm, push.imm) == (
        coproc.GEMM_MODE,
        0,
        0,
        0,
        0,
    )
    dst, src, wgt = push.dst, push.src, push.wgt
    assert (dst.buffer.name, src.buffer.name, wgt.buffer.name) == ("C_buf", "A_buf", "B_buf")
    for c in range(3):
        for k in range(2):
            at = {"co": c, "ko": k}
            assert (value(dst, **at), value(src, **at), value(wgt, **at)) == (c, k, 2 * c + k)
    kernels = [s for s in ir.walk_stmt(body) if coproc.is_uop_scope(s)]
    assert [k.value for k in kernels] == [coproc.GEMM_KERNEL] * 2
    stages = [s for s in ir.walk_stmt(body) if coproc.is_stage(s)]
    assert [s.value for s in stages] == [coproc.COMPUTE_STAGE] * 2


@pytest.mark.parametrize(
    "reduce, cast, found",
    [
        (te.max, ENV.acc_dtype, r"but found max\("),  # a max reduction, not a sum
        (te.sum, "int16", r"but found \(int16\(A_buf"),  # products widened to int16
    ],
)
def test_refuses_a_body_that_is_not_the_product(reduce, cast, found):
    s, arguments = gemm(reduce=reduce, cast=cast)
    with pytest.raises(TensorizeError, match=r"the body does not match the intrinsic.*" + found):
        accel.lower(s, arguments, dump_after="schedule_ops")


@pytest.mark.parametrize(
    "scopes, operand, scope, wanted",
    [
        ((ENV.wgt_scope, ENV.wgt_scope, ENV.acc_scope), "A_buf", ENV.wgt_scope, ENV.inp_scope),
        ((ENV.inp_scope, ENV.inp_scope, ENV.acc_scope), "B_buf", ENV.inp_scope, ENV.wgt_scope),
        ((ENV.inp_scope, ENV.wgt_scope, "global"), "C_buf", "global", ENV.acc_scope),
    ],
)
def test_refuses_an_operand_in_the_wrong_scope(scopes, operand, scope, wanted):
    s, arguments = gemm(scopes=scopes)
    message = (
        rf"gemm: operand {operand} is in scope {scope}, but the GEMM core reads {wanted}; "
        rf"set_scope\('{wanted}'\) on its stage"
    )
    with pytest.raises(TensorizeError, match=message):
        accel.lower(s, arguments, dump_after="schedule_ops")
