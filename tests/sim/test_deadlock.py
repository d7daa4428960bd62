"""Dependency tokens: out-of-order progress across modules, persistence, deadlock reports."""

import pytest
from sim_streams import Bench, finish, gemm, load, store

from accel.errors import DeadlockError, SimulatorError
from accel.hw.isa import MemType


def test_pop_from_a_queue_never_filled_reports_a_deadlock():
    bench = Bench()
    stream = [
        load(MemType.INP, 0, 0, 0, 0, 0),
        gemm(0, 0, pop_prev_dep=True),  # nobody pushes load->compute
        store(0, 0, 0, 0, 0, pop_prev_dep=True),
        finish(),
    ]
    with pytest.raises(DeadlockError) as info:
        bench.run(stream)
    text = str(info.value)
    assert "load: finished (1 instructions)" in text
    assert "compute: waits at instruction 1 (GEMM) for a load->compute token" in text
    assert "0 of 2 instructions done" in text
    assert "store: waits at instruction 2 (STORE OUT) for a compute->store token" in text
    assert "queues: load->compute=0 compute->load=0 compute->store=0 store->compute=0" in text


def test_modules_run_out_of_stream_order_when_tokens_allow():
    # The store waits for compute, which waits for a load that comes last in the stream.
    bench = Bench()
    report = bench.run(
        [
            store(0, 0, 0, 0, 0, pop_prev_dep=True, push_prev_dep=True),
            gemm(0, 0, pop_prev_dep=True, push_next_dep=True),
            load(MemType.INP, 0, 0, 0, 0, 0, push_next_dep=True),
            load(MemType.ACC, 0, 0, 0, 0, 0, pop_next_dep=True),
            finish(),
        ]
    )
    order = [e.index for e in report.trace.events]
    assert order.index(2) < order.index(1) < order.index(0) < order.index(3)


def test_tokens_persist_from_one_run_to_the_next():
    bench = Bench()
    bench.run([load(MemType.WGT, 0, 0, 0, 0, 0, push_next_dep=True), finish()])
    assert bench.sim.queues.counts()["load->compute"] == 1
    bench.run([gemm(0, 0, pop_prev_dep=True), finish()])
    assert bench.sim.queues.counts()["load->compute"] == 0
    with pytest.raises(DeadlockError, match="waits at instruction 0 .GEMM."):
        bench.run([gemm(0, 0, pop_prev_dep=True), finish()])


@pytest.mark.parametrize(
    "insn, flag",
    [
        (load(MemType.INP, 0, 0, 0, 0, 0, pop_prev_dep=True), "pop_prev_dep"),
        (load(MemType.WGT, 0, 0, 0, 0, 0, push_prev_dep=True), "push_prev_dep"),
        (store(0, 0, 0, 0, 0, pop_next_dep=True), "pop_next_dep"),
        (store(0, 0, 0, 0, 0, push_next_dep=True), "push_next_dep"),
    ],
)
def test_flags_a_module_does_not_have_are_refused(insn, flag):
    with pytest.raises(SimulatorError, match=f"instruction 0 .* has no {flag}"):
        Bench().run([insn, finish()])


def test_a_deadlocked_stream_leaves_no_token_behind_for_the_next_one():
    # The failing stream pushes compute->store before it deadlocks: that token must not reach
    # the next, valid stream, whose store would then run before its data is ready.
    import numpy as np
    from sim_streams import rand_int32

    bench = Bench()
    env = bench.env
    acc = rand_int32(np.random.default_rng(0), (4, env.BATCH, env.BLOCK_OUT))
    src = bench.put(acc, MemType.ACC)
    out = bench.space(4 * env.BATCH * env.BLOCK_OUT, MemType.OUT)
    with pytest.raises(DeadlockError):
        bench.run([gemm(0, 0, push_next_dep=True), gemm(0, 0, pop_prev_dep=True), finish()])
    assert not any(bench.sim.queues.counts().values())
    bench.run(
        [
            load(MemType.ACC, 0, src, 1, 4, 4, push_next_dep=True),
            store(0, out, 1, 4, 4, pop_prev_dep=True),
            finish(),
        ]
    )
    got = bench.get(out, MemType.OUT, (4, env.BATCH, env.BLOCK_OUT), np.int8)
    np.testing.assert_array_equal(got, acc.astype(np.int8))
