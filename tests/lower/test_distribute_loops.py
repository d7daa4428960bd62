"""The ``distribute_loops`` pass: one legal split, one test per refusal, a host program run
against numpy after the pass, and accelerator programs left as they are."""

from __future__ import annotations

import numpy as np
import pytest
from pass_helpers import TUTORIAL_SCHEDULES, lowered

import accel
from accel import te
from accel.lower import coproc, ir
from accel.lower.passes.distribute_loops import distribute_loops
from accel.lower.pipeline import pass_names
from accel.te.expr import Call, Const, Var

ENV = accel.get_env()
N = 8


def _buffers(*names: str) -> list[ir.Buffer]:
    return [ir.Buffer(name, (N,), "int32") for name in names]


def _loop(i: Var, *stmts: ir.Stmt) -> ir.For:
    return ir.loop(i, N, ir.seq(*stmts))


def test_it_is_the_last_pass():
    assert pass_names()[-1] == "distribute_loops"


def test_two_independent_statements_split_into_two_loops():
    A, B, C, D = _buffers("A", "B", "C", "D")
    i = Var("i")
    first = ir.Store(C, i, ir.Load(A, i) + 1)
    second = ir.Store(D, i, ir.Load(B, i) * 2)
    out = distribute_loops(_loop(i, first, second), ENV)
    assert out == ir.Seq((ir.loop(i, N, first), ir.loop(i, N, second)))


def test_a_buffer_shared_within_one_iteration_splits():
    # C[i] is written by the first statement and read by the second in the same iteration
    # only (window [i, i], narrower than the stride 1), so every read still sees its write.
    A, C, D = _buffers("A", "C", "D")
    i = Var("i")
    first = ir.Store(C, i, ir.Load(A, i))
    second = ir.Store(D, i, ir.Load(C, i) + 1)
    out = distribute_loops(_loop(i, first, second), ENV)
    assert out == ir.Seq((ir.loop(i, N, first), ir.loop(i, N, second)))


def test_refuses_a_buffer_read_across_iterations():
    # D[i] reads C[i + 1], which the first statement writes only in the next iteration: split,
    # the read would see the new value instead of the old one.
    C, D = ir.Buffer("C", (N + 1,), "int32"), ir.Buffer("D", (N,), "int32")
    i = Var("i")
    program = _loop(i, ir.Store(C, i, Const(1)), ir.Store(D, i, ir.Load(C, i + 1)))
    assert distribute_loops(program, ENV) is program


def test_refuses_a_runtime_call_in_the_body():
    (C,) = _buffers("C")
    i = Var("i")
    program = _loop(i, ir.Store(C, i, Const(0)), ir.Evaluate(Call("coproc_sync", ())))
    assert distribute_loops(program, ENV) is program


def test_refuses_a_module_scope_in_the_body():
    C, D = _buffers("C", "D")
    i = Var("i")
    program = _loop(
        i,
        coproc.in_stage(coproc.COMPUTE_STAGE, ir.Store(C, i, Const(0))),
        ir.Store(D, i, Const(1)),
    )
    assert distribute_loops(program, ENV) is program


def test_refuses_an_allocation_in_the_body():
    A, C, D = _buffers("A", "C", "D")
    tmp = ir.Buffer("tmp", (1,), "int32", ir.LOCAL)
    i = Var("i")
    program = _loop(
        i,
        ir.Allocate(tmp, ir.seq(ir.Store(tmp, Const(0), ir.Load(A, i)), ir.Store(C, i, Const(0)))),
        ir.Store(D, i, Const(1)),
    )
    assert distribute_loops(program, ENV) is program


def _row_sum():
    """C[i] = sum_k A[i, k] * k: an initialisation and a reduction in one row loop."""
    A = te.placeholder((6, 10), "int8", "A")
    k = te.reduce_axis((0, 10), "k")
    C = te.compute((6,), lambda i: te.sum(A[i, k].astype("int32") * k, axis=k), "C")
    return te.create_schedule(C.op), [A, C]


def test_a_host_reduction_splits_and_still_computes_the_numpy_result():
    before = lowered(*_row_sum(), "coproc_sync")
    assert isinstance(before, ir.For) and isinstance(before.body, ir.Seq)

    s, args = _row_sum()
    module = accel.build(s, args)
    after = module.lowered.body
    # One row loop around the initialisation, one around the reduction nest: both perfect
    # nests, so the host code has no Python loop left.
    assert isinstance(after, ir.Seq) and [type(lp.body) for lp in after.stmts] == [ir.Store, ir.For]
    assert [lp.var.name for lp in after.stmts] == ["i", "i"]
    assert "for " not in module.source

    a = np.random.default_rng(0).integers(-128, 128, (6, 10), dtype=np.int8)
    c = np.full(6, 99, np.int32)
    module(a, c)
    np.testing.assert_array_equal(c, (a.astype(np.int64) * np.arange(10)).sum(axis=1))


@pytest.mark.parametrize("name", sorted(TUTORIAL_SCHEDULES))
def test_accelerator_programs_pass_through_unchanged(name):
    program = lowered(*TUTORIAL_SCHEDULES[name](), "coproc_sync")
    assert distribute_loops(program, ENV) is program
