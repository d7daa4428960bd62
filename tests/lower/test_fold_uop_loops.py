"""fold_uop_loops: loops around a micro-op kernel become its VTAUopLoopBegin levels.

A level is ``VTAUopLoopBegin(extent, dst_step, src_step, wgt_step)``; steps are in tiles of the
accumulator (dst), input (src) and weight (wgt) buffers. At most two levels; other loops stay
inside the kernel and are unrolled into micro-ops when it is recorded.
"""

import pytest
from pass_helpers import (
    ENV,
    args,
    blocked_matmul_schedule,
    calls,
    lowered,
    matmul_schedule,
    sram,
    value,
)

from accel import te
from accel.lower import coproc, ir
from accel.lower.passes.fold_uop_loops import fold_uop_loops


def gemm_kernels(body: ir.Stmt) -> list[dict]:
    """Each GEMM kernel in program order: its levels, micro-ops and the loops left inside."""
    found = []
    for s in ir.walk_stmt(body):
        if coproc.is_uop_scope(s) and s.value == coproc.GEMM_KERNEL:
            found.append(
                {
                    "levels": [args(c) for c in calls(s, coproc.LOOP_BEGIN)],
                    "ends": len(calls(s, coproc.LOOP_END)),
                    "pushes": [args(c) for c in calls(s, coproc.UOP_PUSH)],
                    "loops": [x for x in ir.walk_stmt(s) if isinstance(x, ir.For)],
                }
            )
    return found


def test_matmul_loops_fold_into_one_level_each():
    # C_buf is 16 accumulator tiles, A_buf one input tile, B_buf (column ko of B) 16 weight
    # tiles, one per output tile. Loop co: C_buf +1, A_buf +0, B_buf +1 (update);
    # the reset only writes C_buf: +1, 0, 0. The micro-op itself addresses tile 0 of each.
    reset, update = gemm_kernels(lowered(*matmul_schedule(), "fold_uop_loops"))
    assert reset["levels"] == [(16, 1, 0, 0)] and update["levels"] == [(16, 1, 0, 1)]
    assert reset["ends"] == update["ends"] == 1
    (push,) = update["pushes"]
    mode, rst, dst, src, wgt = push.mode, push.reset, push.dst, push.src, push.wgt
    assert (mode, rst, sram(dst), sram(src), sram(wgt)) == (
        coproc.GEMM_MODE,
        0,
        ("C_buf", 0),
        ("A_buf", 0),
        ("B_buf", 0),
    )
    (push,) = reset["pushes"]
    rst, dst, src, wgt = push.reset, push.dst, push.src, push.wgt
    assert (rst, sram(dst), src, wgt) == (1, ("C_buf", 0), 0, 0)
    assert not reset["loops"] and not update["loops"]


def test_blocked_matmul_update_has_two_levels():
    # res_gemm is 16 accumulator tiles; data_buf 16 input tiles; weight_buf 16 x 16 weight
    # tiles (row = output tile co, column = input tile ic.inner). Loop co: res_gemm +1,
    # data_buf +0, weight_buf +16 (one row); loop ic.inner: +0, +1, +1.
    reset, update = gemm_kernels(lowered(*blocked_matmul_schedule(), "fold_uop_loops"))
    assert reset["levels"] == [(16, 1, 0, 0)]
    assert update["levels"] == [(16, 1, 0, 16), (16, 0, 1, 1)]
    assert update["ends"] == 2 and not update["loops"]


def gemm_schedule(nb, nk, no, a_row=lambda ko: ko):
    """C[b, o] = sum_k A[b, k] * B[o, k] over nb x nk input tiles and no x nk weight tiles,
    all on chip at once, the reduction loop ko outermost (so the update has three loops:
    ko, bo, co). ``a_row`` is the input tile column read at reduction step ko."""
    A = te.placeholder((nb, nk, ENV.BATCH, ENV.BLOCK_IN), name="A", dtype="int8")
    B = te.placeholder((no, nk, ENV.BLOCK_OUT, ENV.BLOCK_IN), name="B", dtype="int8")
    A_buf = te.compute(A.shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(B.shape, lambda *i: B(*i), "B_buf")
    ko = te.reduce_axis((0, nk), name="ko")
    ki = te.reduce_axis((0, ENV.BLOCK_IN), name="ki")
    C_buf = te.compute(
        (nb, no, ENV.BATCH, ENV.BLOCK_OUT),
        lambda bo, co, bi, ci: te.sum(
            A_buf[bo, a_row(ko), bi, ki].astype("int32") * B_buf[co, ko, ci, ki].astype("int32"),
            axis=[ko, ki],
        ),
        "C_buf",
    )
    C = te.compute(C_buf.shape, lambda *i: C_buf(*i).astype("int8"), "C")
    s = te.create_schedule(C.op)
    s[A_buf].set_scope(ENV.inp_scope)
    s[B_buf].set_scope(ENV.wgt_scope)
    s[C_buf].set_scope(ENV.acc_scope)
    for stage in (A_buf, B_buf, C):
        s[stage].pragma(s[stage].op.axis[0], ENV.dma_copy)
    bo, co, bi, ci = s[C_buf].op.axis
    s[C_buf].reorder(ko, bo, co, bi, ci, ki)
    s[C_buf].tensorize(bi, ENV.gemm)
    return s, [A, B, C]


def test_at_most_two_levels_the_third_loop_stays_in_the_kernel():
    # 2 x 3 input tiles, 4 x 3 weight tiles, 2 x 4 accumulator tiles. Steps (dst, src, wgt):
    # ko (0, 1, 1), bo (4, 3, 0), co (1, 0, 3). The outer two loops, ko and bo, become the
    # levels; co stays a loop of 4 inside: micro-ops at C_buf co, A_buf 0, B_buf 3*co.
    # The reset has only bo (4, 0, 0) and co (1, 0, 0): two levels, nothing left.
    reset, update = gemm_kernels(lowered(*gemm_schedule(2, 3, 4), "fold_uop_loops"))
    assert reset["levels"] == [(2, 4, 0, 0), (4, 1, 0, 0)] and not reset["loops"]
    assert update["levels"] == [(3, 0, 1, 1), (2, 4, 3, 0)]
    assert update["ends"] == 2
    (co,) = update["loops"]
    assert (co.var.name, value(co.extent)) == ("co", 4)
    (push,) = update["pushes"]
    dst, src, wgt = push.dst, push.src, push.wgt
    assert [(value(dst, co=c), value(src, co=c), value(wgt, co=c)) for c in range(4)] == [
        (0, 0, 0),
        (1, 0, 3),
        (2, 0, 6),
        (3, 0, 9),
    ]


def test_loop_without_a_constant_step_stays_in_the_kernel():
    # The input column is ko // 2: not a constant step in ko, so ko cannot be a level. bo and
    # co can: bo (4, 3, 0), co (1, 0, 3). ko stays a loop inside, micro-op at A_buf ko // 2,
    # B_buf ko.
    s, arguments = gemm_schedule(2, 3, 4, a_row=lambda ko: ko // 2)
    _reset, update = gemm_kernels(lowered(s, arguments, "fold_uop_loops"))
    assert update["levels"] == [(2, 4, 3, 0), (4, 1, 0, 3)]
    (ko,) = update["loops"]
    assert (ko.var.name, value(ko.extent)) == ("ko", 3)
    (push,) = update["pushes"]
    dst, src, wgt = push.dst, push.src, push.wgt
    assert [(value(dst, ko=k), value(src, ko=k), value(wgt, ko=k)) for k in range(3)] == [
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 2),
    ]


def test_alu_kernels_with_their_level_and_no_loop_around_are_left_alone():
    # The blocked matmul's ALU kernels get their level (16, 1, 1, 0) from inject_alu and sit
    # directly in the output-block loop, next to other work: nothing to fold, same objects.
    body = lowered(*blocked_matmul_schedule(), "inject_alu")
    folded = fold_uop_loops(body, ENV)
    before, after = (
        [s for s in ir.walk_stmt(b) if coproc.is_uop_scope(s) and s.value == coproc.ALU_KERNEL]
        for b in (body, folded)
    )
    assert len(before) == 3 and all(a is b for a, b in zip(before, after))


@pytest.mark.parametrize(
    "schedule", [matmul_schedule, blocked_matmul_schedule, lambda: gemm_schedule(2, 3, 4)]
)
def test_folding_twice_changes_nothing(schedule):
    # Kernels already hold their two levels (or have no loop left to fold).
    body = lowered(*schedule(), "fold_uop_loops")
    assert fold_uop_loops(body, ENV) is body
