"""inject_deps: dependency-token pushes and pops between the load (1), compute (2) and store (3)
modules, checked as the sequence of (call, from, to) in program order and by counting tokens.
"""

from collections import Counter

import numpy as np
import pytest
from pass_helpers import ENV, TUTORIAL_SCHEDULES, args, calls, lowered, value

import accel
from accel import te
from accel.errors import LoweringError
from accel.lower import coproc, ir

PUSH, POP = coproc.DEP_PUSH.name, coproc.DEP_POP.name


def pair(c) -> tuple[int, int]:
    """(from_stage, to_stage) of a token call."""
    return args(c).from_stage, args(c).to_stage


LOAD, COMPUTE, STORE = coproc.LOAD_STAGE, coproc.COMPUTE_STAGE, coproc.STORE_STAGE


def dep_sequence(body: ir.Stmt) -> list[tuple[str, int, int]]:
    """The (call, from, to) of every dependency call, in program order (loops not unrolled)."""
    return [(c.name, *pair(c)) for c in calls(body, coproc.DEP_PUSH, coproc.DEP_POP)]


def token_counts(body: ir.Stmt) -> tuple[Counter, Counter]:
    """(pushes, pops) per queue (from, to) over a whole run: every call counted as many times
    as the loops around it run (their extents multiplied)."""
    pushes, pops = Counter(), Counter()

    def visit(s: ir.Stmt, times: int) -> None:
        if isinstance(s, ir.For):
            times *= value(s.extent)
        name = coproc.call_name(s)
        if name in (PUSH, POP):
            (pushes if name == PUSH else pops)[pair(s.value)] += times
        for child in ir.child_stmts(s):
            visit(child, times)

    visit(body, 1)
    return pushes, pops


def tokens_in_order(body: ir.Stmt) -> list[tuple[str, int, int]]:
    """The dependency calls as the host makes them: loops unrolled (the programs are small)."""
    events = []

    def visit(s: ir.Stmt) -> None:
        if isinstance(s, ir.For):
            for _ in range(value(s.extent)):
                visit(s.body)
            return
        name = coproc.call_name(s)
        if name in (PUSH, POP):
            events.append((name, *pair(s.value)))
        for child in ir.child_stmts(s):
            visit(child)

    visit(body)
    return events


def test_vadd_orders_the_store_after_the_compute_module():
    # Both loads of vadd are accumulator loads, run by compute like the addition, so the only
    # hand-over is compute -> store: one token, pushed after the ALU, popped before the store.
    body = lowered(*TUTORIAL_SCHEDULES["vta_get_started"](), "inject_deps")
    assert dep_sequence(body) == [(PUSH, COMPUTE, STORE), (POP, COMPUTE, STORE)]


def test_matmul_sequence():
    # reset (compute); for ko { load A, B (load); GEMM (compute) }; store.
    # Inside the loop: load -> compute (the GEMM reads the tiles just loaded). The loop starts in
    # load and ends in compute, so each iteration's GEMM hands back to the next iteration's
    # loads (compute -> load: do not overwrite tiles still being read). The first pop is primed
    # by the reset before the loop; the last iteration's push is drained after the loop.
    # After the loop, compute -> store.
    body = lowered(*TUTORIAL_SCHEDULES["matrix_multiply"](), "inject_deps")
    assert dep_sequence(body) == [
        (PUSH, COMPUTE, LOAD),  # reset done: primes the first iteration's pop
        (POP, COMPUTE, LOAD),  # loop: loads wait for the previous GEMM
        (PUSH, LOAD, COMPUTE),  # loads done
        (POP, LOAD, COMPUTE),  # GEMM waits for the loads
        (PUSH, COMPUTE, LOAD),  # GEMM done: the next iteration may load
        (PUSH, COMPUTE, STORE),  # after the loop: the result is ready to store
        (POP, COMPUTE, LOAD),  # drains the last iteration's compute -> load token
        (POP, COMPUTE, STORE),  # the store waits for the GEMMs
    ]
    # The drain is outside every module scope, the others inside their module's.
    for s in ir.walk_stmt(body):
        if coproc.is_stage(s):
            for c in calls(s, coproc.DEP_PUSH, coproc.DEP_POP):
                frm, to = pair(c)
                assert s.value == (frm if c.name == PUSH else to)


def test_blocked_matmul_sequence():
    # for oc_out { reset (compute); for ic_out { loads; GEMM } ; 3 ALU kernels (compute);
    # store }. The outer loop starts in compute and ends in store, so it carries
    # store -> compute (the next block's reset must not overwrite res_gemm before the store
    # read it), primed before the loop and drained after it. The inner loop is the matmul's.
    body = lowered(*TUTORIAL_SCHEDULES["matrix_multiply_opt"](), "inject_deps")
    assert dep_sequence(body) == [
        (PUSH, STORE, COMPUTE),  # primes the first block's pop
        (POP, STORE, COMPUTE),  # block: wait for the previous store
        (PUSH, COMPUTE, LOAD),  # reset done
        (POP, COMPUTE, LOAD),  # inner loop: loads wait for the previous GEMM
        (PUSH, LOAD, COMPUTE),
        (POP, LOAD, COMPUTE),
        (PUSH, COMPUTE, LOAD),  # GEMM done
        (POP, COMPUTE, LOAD),  # after the inner loop: drain
        (PUSH, COMPUTE, STORE),  # ALU epilogue done
        (POP, COMPUTE, STORE),  # the store waits for it
        (PUSH, STORE, COMPUTE),  # store done: the next block may start
        (POP, STORE, COMPUTE),  # after the outer loop: drain
    ]


@pytest.mark.parametrize("name", sorted(TUTORIAL_SCHEDULES))
def test_every_queue_is_balanced_over_a_run(name):
    # Counting each call times the extents of its loops, every queue receives as many tokens
    # as it gives; and in the order the host issues them, no queue is ever popped below zero
    # (a module can only wait for a token that an earlier instruction will push).
    body = lowered(*TUTORIAL_SCHEDULES[name](), "inject_deps")
    pushes, pops = token_counts(body)
    assert pushes == pops and pushes
    level = Counter()
    for call, frm, to in tokens_in_order(body):
        level[frm, to] += 1 if call == PUSH else -1
        assert level[frm, to] >= 0, (call, frm, to)
    assert set(level.values()) == {0}


def test_blocked_matmul_token_counts():
    # 4 output blocks x 4 input blocks: the inner queues move 4 * 4 tokens, plus one prime
    # per block for compute -> load; store -> compute moves one per block plus the prime.
    body = lowered(*TUTORIAL_SCHEDULES["matrix_multiply_opt"](), "inject_deps")
    pushes, pops = token_counts(body)
    assert pushes == {
        (LOAD, COMPUTE): 4 * 4,
        (COMPUTE, LOAD): 4 * 4 + 4,
        (COMPUTE, STORE): 4,
        (STORE, COMPUTE): 4 + 1,
    }


def test_a_virtual_thread_inside_a_loop_is_refused():
    # Each thread pops its own loop-carried token on every iteration, but a token primed before
    # the loop would be pushed once for all of them: the program would deadlock, so it is
    # refused with the fix.
    shape = (1, 64, ENV.BATCH, ENV.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=ENV.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: A_buf(*i) + 1, "B_buf")
    C = te.compute(shape, lambda *i: B_buf(*i).astype(ENV.inp_dtype), "C")
    s = te.create_schedule(C.op)
    m_out, m_inn = s[C].split(s[C].op.axis[1], factor=8)
    loop, thread = s[C].split(m_out, factor=2)  # the thread stays inside `loop`
    s[C].bind(thread, te.thread_axis("cthread"))
    for buf in (A_buf, B_buf):
        s[buf].set_scope(ENV.acc_scope)
        s[buf].compute_at(s[C], thread)
    s[A_buf].pragma(s[A_buf].op.axis[0], ENV.dma_copy)
    s[B_buf].pragma(s[B_buf].op.axis[0], ENV.alu)
    s[C].pragma(m_inn, ENV.dma_copy)
    with pytest.raises(LoweringError, match="virtual thread .* is inside loop .*reorder"):
        lowered(s, [A, C], "inject_deps")
    s[C].reorder(thread, loop)  # threads outermost: accepted, and the program runs right
    f = accel.build(s, [A, C])
    a = np.random.default_rng(0).integers(-(2**31), 2**31 - 1, shape, dtype=np.int64)
    c = np.zeros(shape, np.int8)
    f(a.astype(np.int32), c)
    np.testing.assert_array_equal(c, (a + 1).astype(np.int8))  # the low 8 bits, as the store
