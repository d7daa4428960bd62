"""Accelerator modules: repeated runs, several modules, static metrics, save and load."""

import numpy as np
import pytest
from accel_schedules import packed_matmul, random_int8

import accel
from accel import te
from accel.errors import BuildError
from accel.runtime.command_queue import get_command_queue
from accel.sim import get_device

ENV = accel.get_env()


def matmul_module(in_ch=256, out_ch=256, i_block=64, o_block=128, shift=None):
    s, args, reference = packed_matmul(ENV, 1, in_ch, out_ch, i_block, o_block, shift)
    return accel.build(s, args, name="mm"), args, reference


def check(f, args, reference, seed):
    rng = np.random.default_rng(seed)
    data, weight = random_int8(rng, args[0].shape), random_int8(rng, args[1].shape)
    out = np.zeros(args[2].shape, np.int8)
    f(data, weight, out)
    np.testing.assert_array_equal(out, reference(data, weight))


def test_a_module_runs_twice_and_two_modules_alternate():
    f, f_args, f_ref = matmul_module(shift=6)
    g, g_args, g_ref = matmul_module(in_ch=64, out_ch=32, i_block=32, o_block=16)
    for seed in range(3):  # kernels stay cached across runs, and are reloaded in each run
        check(f, f_args, f_ref, seed)
        check(g, g_args, g_ref, seed + 10)
    queues = get_device(ENV).simulator.queues.counts()
    assert not any(queues.values())  # every token pushed was popped


def test_kernels_are_recorded_once_and_loaded_once_per_run():
    f, args, reference = matmul_module()
    queue = get_command_queue(get_device(ENV))
    before = queue.counters["kernels_recorded"]
    accel.sim.clear_stats()
    check(f, args, reference, 0)
    recorded = queue.counters["kernels_recorded"] - before
    check(f, args, reference, 1)
    assert queue.counters["kernels_recorded"] - before == recorded  # nothing new the 2nd time
    # Two output blocks (256 / 128); per block, reset and update kernels of 1 micro-op whose
    # indices do not depend on the block: 2 kernels, each loaded once per run, 4 bytes a uop.
    assert recorded == 2
    assert accel.sim.stats()["uop_load_nbytes"] == 2 * 2 * 4


def test_static_metrics_of_the_single_block_matmul():
    # 256 x 256, one block: 4 reduction blocks (i_block 64 = 4 tiles each) of 16 output tiles.
    f, _args, _ = matmul_module(i_block=64, o_block=256)
    m = f.metrics
    ins = m["instructions"]
    # Load module: per reduction block one input load (4 tiles) and one weight load (16 rows of
    # 4 tiles); a final no-op carries the pending compute->load pop and the push to compute.
    assert (ins["LOAD INP"], ins["LOAD WGT"]) == (4 + 1, 4)
    # Compute: one reset GEMM then one GEMM per reduction block; two kernel loads plus one no-op
    # taking the final pops before FINISH.
    assert (ins["GEMM"], ins["LOAD UOP"], ins["FINISH"]) == (1 + 4, 2 + 1, 1)
    assert ins["STORE OUT"] == 1 and ins["no-op"] == 2
    assert ins["total"] == 5 + 4 + 5 + 3 + 1 + 1
    assert m["dram_bytes"] == {
        "inp": 4 * 4 * 16,  # 4 blocks x 4 input tiles x 16 B
        "wgt": 4 * 16 * 4 * 256,  # 4 blocks x 16 x 4 weight tiles x 256 B
        "acc": 0,
        "uop": 2 * 4,
        "out": 16 * 16,
    }
    assert m["gemm_counter"] == 4 * 16 * 4  # per block: 16 output x 4 input tiles, 1 micro-op
    sram = m["sram"]
    assert sram["buffers"]["weight_buf"] == {
        "scope": ENV.wgt_scope,
        "base": 0,
        "tiles": 64,
        "bytes": 64 * 256,
    }
    assert sram["scopes"][ENV.acc_scope] == {"used": 16, "capacity": ENV.ACC_BUFF_DEPTH}


def test_save_and_load_round_trip(tmp_path):
    f, args, reference = matmul_module(shift=8)
    path = tmp_path / "mm.accel.json"
    f.save(path)
    g = accel.load_module(path)
    assert g.source == f.source
    assert str(g.lowered) == str(f.lowered)
    check(g, args, reference, 5)


def test_a_tampered_module_file_is_refused(tmp_path):
    f, _args, _ = matmul_module()
    path = tmp_path / "mm.accel.json"
    f.save(path)
    text = path.read_text().replace('"int8"', '"int8); import os #"', 1)
    path.write_text(text)
    with pytest.raises(BuildError, match="dtype"):
        accel.load_module(path)


def test_an_intermediate_tensor_in_device_memory_is_refused_at_build():
    env = accel.get_env()
    shape = (1, 4, env.BATCH, env.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    M = te.compute(shape, lambda *i: A_buf(*i).astype(env.inp_dtype), "M")  # in DRAM
    M_buf = te.compute(shape, lambda *i: M(*i).astype(env.acc_dtype), "M_buf")
    C = te.compute(shape, lambda *i: M_buf(*i).astype(env.inp_dtype), "C")
    s = te.create_schedule(C.op)
    for b in (A_buf, M_buf):
        s[b].set_scope(env.acc_scope)
    for stage in (A_buf, M, M_buf, C):
        s[stage].pragma(s[stage].op.axis[0], env.dma_copy)
    with pytest.raises(BuildError, match="M .* is an intermediate tensor in device memory"):
        accel.build(s, [A, C], name="chain")
