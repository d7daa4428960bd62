"""inject_alu: elementwise stages under the ``alu`` pragma become ALU micro-op kernels.

A micro-op is ``uop_push(mode=1, reset=0, dst, src, wgt=0, opcode, use_imm, imm)``; opcodes are
MIN 0, MAX 1, ADD 2, SHR 3, MUL 4 (docs/isa.md §2). Addresses are accumulator tiles of 16
int32 lanes, so a (1, n, 1, 16) buffer is n tiles and its tile loop steps 1.
"""

import pytest
from pass_helpers import (
    ENV,
    args,
    blocked_matmul_schedule,
    calls,
    lowered,
    sram,
    vadd_schedule,
    value,
)

import accel
from accel import te
from accel.errors import LoweringError
from accel.hw.isa import AluOp
from accel.lower import coproc, ir

N = 4  # accumulator tiles per buffer in the small schedules
SHAPE = (1, N, ENV.BATCH, ENV.BLOCK_OUT)


def alu_schedule(fexpr, two_operands=True, shape=SHAPE, b_shape=None):
    """``C_buf = fexpr(A_buf, B_buf, *i)`` on the ALU, between DMA loads and a store."""
    A = te.placeholder(shape, name="A", dtype="int32")
    B = te.placeholder(b_shape or shape, name="B", dtype="int32")
    A_buf = te.compute(A.shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(B.shape, lambda *i: B(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: fexpr(A_buf, B_buf, *i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype("int8"), "C")
    s = te.create_schedule(C.op)
    loads = (A_buf, B_buf) if two_operands else (A_buf,)
    for buf in (*loads, C_buf):
        s[buf].set_scope(ENV.acc_scope)
    for stage in (*loads, C):
        s[stage].pragma(s[stage].op.axis[0], ENV.dma_copy)
    s[C_buf].pragma(s[C_buf].op.axis[0], ENV.alu)
    return s, [A, B, C] if two_operands else [A, C]


def kernels(body: ir.Stmt) -> list[tuple[list[tuple], list[tuple]]]:
    """Each ALU kernel of ``body`` in program order: (its loop levels, its micro-ops)."""
    found = []
    for s in ir.walk_stmt(body):
        if coproc.is_uop_scope(s) and s.value == coproc.ALU_KERNEL:
            levels = [args(c) for c in calls(s, coproc.LOOP_BEGIN)]
            pushes = [args(c) for c in calls(s, coproc.UOP_PUSH)]
            found.append((levels, pushes))
    return found


def micro_op(push: tuple) -> dict:
    assert (push.mode, push.reset, push.wgt) == (coproc.ALU_MODE, 0, 0)
    return {
        "dst": sram(push.dst),
        "src": sram(push.src),
        "opcode": push.opcode,
        "use_imm": push.use_imm,
        "imm": push.imm,
    }


# -- every operation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fexpr, opcode",
    [
        ("add", lambda a, b, *i: a(*i) + b(*i), AluOp.ADD),
        ("min", lambda a, b, *i: te.min(a(*i), b(*i)), AluOp.MIN),
        ("max", lambda a, b, *i: te.max(a(*i), b(*i)), AluOp.MAX),
        ("mul", lambda a, b, *i: a(*i) * b(*i), AluOp.MUL),
        ("shr", lambda a, b, *i: a(*i) >> b(*i), AluOp.SHR),
    ],
)
def test_tensor_operations(name, fexpr, opcode):
    # C_buf takes A_buf's storage (nothing else reads A_buf), so the one micro-op updates
    # A_buf tile 0 from B_buf tile 0, looping over the N tiles with steps 1 on both sides.
    ((levels, pushes),) = kernels(lowered(*alu_schedule(fexpr), "inject_alu"))
    assert levels == [(N, 1, 1, 0)]
    (push,) = pushes
    assert micro_op(push) == {
        "dst": ("A_buf", 0),
        "src": ("B_buf", 0),
        "opcode": opcode,
        "use_imm": 0,
        "imm": 0,
    }


@pytest.mark.parametrize(
    "name, fexpr, opcode, imm",
    [
        ("add", lambda a, b, *i: a(*i) + 1000, AluOp.ADD, 1000),
        ("add on the left", lambda a, b, *i: 7 + a(*i), AluOp.ADD, 7),
        ("sub", lambda a, b, *i: a(*i) - 77, AluOp.ADD, -77),  # no subtract: add -77
        ("min", lambda a, b, *i: te.min(a(*i), -5), AluOp.MIN, -5),
        ("max", lambda a, b, *i: te.max(a(*i), 0), AluOp.MAX, 0),
        ("mul", lambda a, b, *i: a(*i) * -3, AluOp.MUL, -3),
        ("shr", lambda a, b, *i: a(*i) >> 3, AluOp.SHR, 3),
        ("shl", lambda a, b, *i: a(*i) << 4, AluOp.SHR, -4),  # a left shift is SHR by -4
        ("copy", lambda a, b, *i: a(*i), AluOp.SHR, 0),  # in place, a copy is SHR by 0
        ("largest", lambda a, b, *i: a(*i) + 32767, AluOp.ADD, 32767),
        ("smallest", lambda a, b, *i: a(*i) - 32768, AluOp.ADD, -32768),
    ],
)
def test_immediate_operations(name, fexpr, opcode, imm):
    # An immediate operation reads its destination: src = dst = A_buf tile 0 (C_buf took
    # A_buf's storage), and the loop steps both by 1 tile.
    ((levels, pushes),) = kernels(lowered(*alu_schedule(fexpr, False), "inject_alu"))
    assert levels == [(N, 1, 1, 0)]
    (push,) = pushes
    assert micro_op(push) == {
        "dst": ("A_buf", 0),
        "src": ("A_buf", 0),
        "opcode": opcode,
        "use_imm": 1,
        "imm": imm,
    }


def test_blocked_epilogue_is_three_in_place_immediate_kernels():
    # >> 8, max 0, min 127 on res_gemm's 16 tiles: each stage takes its operand's storage, so
    # all three update res_gemm in place.
    found = kernels(lowered(*blocked_matmul_schedule(), "inject_alu"))
    ops = [(levels, [micro_op(p) for p in pushes]) for levels, pushes in found]
    tile0 = ("res_gemm", 0)
    assert ops == [
        ([(16, 1, 1, 0)], [dict(dst=tile0, src=tile0, opcode=op, use_imm=1, imm=imm)])
        for op, imm in ((AluOp.SHR, 8), (AluOp.MAX, 0), (AluOp.MIN, 127))
    ]


# -- storage: in place or copied ---------------------------------------------------------------


def test_output_takes_the_storage_of_an_operand_read_nowhere_else():
    # vadd: C_buf = A_buf + B_buf. A_buf is read only by the addition, so C_buf becomes A_buf:
    # its allocation goes, and the store reads A_buf.
    body = lowered(*vadd_schedule(), "inject_alu")
    assert [s.buffer.name for s in ir.walk_stmt(body) if isinstance(s, ir.Allocate)] == [
        "A_buf",
        "B_buf",
    ]
    (store,) = calls(body, coproc.STORE_2D)
    assert sram(store.args[0]) == ("A_buf", 0)
    ((levels, (push,)),) = kernels(body)
    assert levels == [(64, 1, 1, 0)]
    assert micro_op(push)["dst"] == ("A_buf", 0) and micro_op(push)["src"] == ("B_buf", 0)


def test_operand_read_elsewhere_is_copied_first():
    # C_buf = A_buf + 1 while D_buf = C_buf + A_buf also reads A_buf: C_buf cannot take
    # A_buf's storage. C_buf is zeroed (MUL by immediate 0), A_buf added in (ADD tensor), then
    # the operation itself (ADD immediate 1). D_buf then takes C_buf's storage (C_buf is read
    # nowhere else) and adds A_buf in place.
    A = te.placeholder(SHAPE, name="A", dtype="int32")
    A_buf = te.compute(SHAPE, lambda *i: A(*i), "A_buf")
    C_buf = te.compute(SHAPE, lambda *i: A_buf(*i) + 1, "C_buf")
    D_buf = te.compute(SHAPE, lambda *i: C_buf(*i) + A_buf(*i), "D_buf")
    D = te.compute(SHAPE, lambda *i: D_buf(*i).astype("int8"), "D")
    s = te.create_schedule(D.op)
    for buf in (A_buf, C_buf, D_buf):
        s[buf].set_scope(ENV.acc_scope)
    for stage in (A_buf, D):
        s[stage].pragma(s[stage].op.axis[0], ENV.dma_copy)
    for stage in (C_buf, D_buf):
        s[stage].pragma(s[stage].op.axis[0], ENV.alu)
    body = lowered(s, [A, D], "inject_alu")
    c, a = ("C_buf", 0), ("A_buf", 0)
    assert [[micro_op(p) for p in pushes] for _levels, pushes in kernels(body)] == [
        [dict(dst=c, src=c, opcode=AluOp.MUL, use_imm=1, imm=0)],
        [dict(dst=c, src=a, opcode=AluOp.ADD, use_imm=0, imm=0)],
        [dict(dst=c, src=c, opcode=AluOp.ADD, use_imm=1, imm=1)],
        [dict(dst=c, src=a, opcode=AluOp.ADD, use_imm=0, imm=0)],
    ]
    assert [lv for lv, _ in kernels(body)] == [[(N, 1, 1, 0)]] * 4
    assert [s.buffer.name for s in ir.walk_stmt(body) if isinstance(s, ir.Allocate)] == [
        "A_buf",
        "C_buf",
    ]


# -- loop levels -------------------------------------------------------------------------------


def test_two_loops_that_do_not_merge_are_two_levels():
    # C[i, j] = A[i, j] + B[j, i] over 2 x 3 tiles, B stored 3 x 2: loop i steps A by 3 tiles
    # and B by 1; loop j steps A by 1 and B by 2. Neither continues the other on both sides,
    # so they stay two levels: (2, 3, 1) outer, (3, 1, 2) inner, one micro-op at tile 0.
    def fexpr(a, b, i, j, lane):
        return a[i, j, lane] + b[j, i, lane]

    s, arguments = alu_schedule(fexpr, shape=(2, 3, 16), b_shape=(3, 2, 16))
    ((levels, (push,)),) = kernels(lowered(s, arguments, "inject_alu"))
    assert levels == [(2, 3, 1, 0), (3, 1, 2, 0)]
    assert micro_op(push)["dst"] == ("A_buf", 0) and micro_op(push)["src"] == ("B_buf", 0)


def test_loops_beyond_two_are_unrolled_into_micro_ops():
    # C[i, j, k] = A[i, j, k] + B[k, j, i] over 2 x 3 x 4 tiles, B stored 4 x 3 x 2.
    # Steps (A, B) in tiles: i (12, 1), j (4, 2), k (1, 6); no two merge. The outer two are the
    # instruction's levels (extent, dst, src, wgt): (2, 12, 1, 0), (3, 4, 2, 0); k is unrolled
    # into 4 micro-ops: A tile k, B tile 6k.
    def fexpr(a, b, i, j, k, lane):
        return a[i, j, k, lane] + b[k, j, i, lane]

    s, arguments = alu_schedule(fexpr, shape=(2, 3, 4, 16), b_shape=(4, 3, 2, 16))
    body = lowered(s, arguments, "inject_alu")
    (kernel_scope,) = [s for s in ir.walk_stmt(body) if coproc.is_uop_scope(s)]
    ((levels, (push,)),) = kernels(body)
    assert levels == [(2, 12, 1, 0), (3, 4, 2, 0)]
    (unrolled,) = [s for s in ir.walk_stmt(kernel_scope) if isinstance(s, ir.For)]
    k = unrolled.var.name
    assert unrolled.extent == te.const(4)
    _mode, _reset, dst, src, *_ = push
    assert [(value(dst, **{k: v}), value(src, **{k: v})) for v in range(4)] == [
        (0, 0),
        (1, 6),
        (2, 12),
        (3, 18),
    ]


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "c_scope, b_scope, message",
    [
        (ENV.acc_scope, None, r"works on int32 accumulators .* B is int32 in global"),
        (
            ENV.inp_scope,
            ENV.acc_scope,
            r"works on int32 accumulators .* C_buf is int32 in local.inp",
        ),
    ],
)
def test_refuses_a_buffer_outside_the_accumulator(c_scope, b_scope, message):
    # Either the operand B is read straight from global memory, or the result is not kept in
    # the accumulator. (No DMA pragmas: only the ALU stage is lowered here.)
    A = te.placeholder(SHAPE, name="A", dtype="int32")
    B = te.placeholder(SHAPE, name="B", dtype="int32")
    A_buf = te.compute(SHAPE, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(SHAPE, lambda *i: B(*i), "B_buf")
    operand = B if b_scope is None else B_buf
    C_buf = te.compute(SHAPE, lambda *i: A_buf(*i) + operand(*i), "C_buf")
    C = te.compute(SHAPE, lambda *i: C_buf(*i).astype("int8"), "C")
    s = te.create_schedule(C.op)
    s[A_buf].set_scope(ENV.acc_scope)
    s[C_buf].set_scope(c_scope)
    if b_scope is not None:
        s[B_buf].set_scope(b_scope)
    s[C_buf].pragma(s[C_buf].op.axis[0], ENV.alu)
    with pytest.raises(LoweringError, match=message):
        accel.lower(s, [A, B, C], dump_after="inject_alu")


@pytest.mark.parametrize(
    "fexpr, imm",
    [
        (lambda a, b, *i: a(*i) + 32768, 32768),
        (lambda a, b, *i: a(*i) - 32769, -32769),
        (lambda a, b, *i: a(*i) * 100000, 100000),
    ],
)
def test_refuses_an_immediate_beyond_16_signed_bits(fexpr, imm):
    s, arguments = alu_schedule(fexpr, False)
    with pytest.raises(LoweringError, match=rf"the immediate {imm} does not fit 16 signed bits"):
        accel.lower(s, arguments, dump_after="inject_alu")


@pytest.mark.parametrize(
    "fexpr, two_operands, message",
    [
        (lambda a, b, *i: a(*i) // 2, False, "is not an ALU operation"),
        (lambda a, b, *i: a(*i) - b(*i), True, "the right operand must be a constant or"),
        (lambda a, b, *i: 3 - a(*i), False, r"the left operand .* must be an accumulator buffer"),
    ],
)
def test_refuses_other_operations(fexpr, two_operands, message):
    s, arguments = alu_schedule(fexpr, two_operands)
    with pytest.raises(LoweringError, match=message):
        accel.lower(s, arguments, dump_after="inject_alu")
