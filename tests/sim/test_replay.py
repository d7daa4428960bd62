"""Replay files: capture a run, save it, re-run it on a fresh device with the same result."""

import numpy as np
import pytest
from sim_streams import Bench, alu, finish, gemm, load, store

from accel.errors import LoadError
from accel.hw.isa import AluOp, MemType, Uop
from accel.sim.replay import capture, load_replay


def small_network(bench):
    env = bench.env
    rng = np.random.default_rng(20)
    inp = bench.put(rng.integers(-128, 128, (8, env.BATCH, env.BLOCK_IN), np.int8), MemType.INP)
    wgt = bench.put(rng.integers(-128, 128, (2, env.BLOCK_OUT, env.BLOCK_IN), np.int8), MemType.WGT)
    out = bench.space(16 * 16, MemType.OUT)
    stream = [
        bench.uops([Uop(0, 0, 0), Uop(0, 0, 0)]),
        load(MemType.INP, 0, inp, 2, 3, 4, x_pad_0=1, push_next_dep=False),
        load(MemType.WGT, 0, wgt, 1, 2, 2, push_next_dep=True),
        gemm(0, 1, 2, 4, reset_reg=True, dst_factor_out=4, dst_factor_in=1),
        gemm(
            0,
            1,
            2,
            4,
            dst_factor_out=4,
            dst_factor_in=1,
            src_factor_in=1,
            src_factor_out=4,
            wgt_factor_out=1,
            pop_prev_dep=True,
        ),
        alu(AluOp.SHR, 1, 2, 1, 8, dst_factor_in=1, src_factor_in=1, use_imm=True, imm=6),
        alu(
            AluOp.MIN,
            1,
            2,
            1,
            8,
            dst_factor_in=1,
            src_factor_in=1,
            use_imm=True,
            imm=127,
            push_next_dep=True,
        ),
        store(0, out, 2, 4, 8, pop_prev_dep=True, push_prev_dep=True),
        load(MemType.ACC, 0, 0, 0, 0, 0, pop_next_dep=True),
        finish(),
    ]
    return stream, out


def test_replay_reproduces_outputs_counters_and_cycles(tmp_path):
    bench = Bench()
    stream, out = small_network(bench)
    addr, count = bench.write_stream(stream)
    bench.sim.queues.set_counts({"store->compute": 1})  # tokens left by an earlier run
    replay = capture(bench.sim, addr, count)
    original = bench.sim.run(addr, count)
    expected = bench.get(out, MemType.OUT, (2, 8, 16), np.int8)

    path = tmp_path / "run.npz"
    replay.save(path)
    loaded = load_replay(path)
    assert loaded.tokens["store->compute"] == 1
    report, dram = loaded.run()
    image = dram.read(dram.to_byte_addr(out, MemType.OUT), expected.nbytes)
    assert np.array_equal(image.view(np.int8).reshape(expected.shape), expected)
    assert report.stats == original.stats
    assert report.timing == original.timing


def test_replay_keeps_sram_contents_from_earlier_runs(tmp_path):
    bench = Bench()
    acc = bench.put(np.arange(64, dtype=np.int32).reshape(4, 1, 16), MemType.ACC)
    bench.run([load(MemType.ACC, 0, acc, 1, 4, 4), finish()])
    out = bench.space(64, MemType.OUT)
    addr, count = bench.write_stream([store(0, out, 1, 4, 4), finish()])
    capture(bench.sim, addr, count).save(tmp_path / "r.npz")
    _, dram = load_replay(tmp_path / "r.npz").run()
    image = dram.read(dram.to_byte_addr(out, MemType.OUT), 64).view(np.int8)
    assert image.tolist() == list(range(64))


def test_unreadable_replay_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a replay")
    with pytest.raises(LoadError, match="not a readable replay archive"):
        load_replay(path)
