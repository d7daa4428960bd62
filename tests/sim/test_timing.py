"""The cycle model: per-instruction costs, overlap as the tokens allow, figures that add up,
the Chrome trace, and the cumulative statistics of accel.sim."""

import json

import numpy as np
import pytest
from sim_streams import Bench, finish, gemm, load, store

import accel.sim
from accel.hw.isa import MemType, Uop

TILES, TILE = 6, 128  # input elements per tile


def tiled_stream(bench, pipelined: bool):
    """Per tile: load inputs, one GEMM over them, store. Pipelined: two buffers, and the load
    of the next tile waits only for the GEMM two tiles back."""
    env = bench.env
    rng = np.random.default_rng(0)
    data = bench.put(rng.integers(-128, 128, (TILES * TILE, 1, 16), dtype=np.int8), MemType.INP)
    out = bench.space(TILES * TILE * 16, MemType.OUT)
    stream = [bench.uops([Uop(0, 0, 0), Uop(TILE, TILE, 0)])]
    for t in range(TILES):
        buf = t % 2 if pipelined else 0
        first = t >= (2 if pipelined else 1)
        stream += [
            load(
                MemType.INP,
                buf * TILE,
                data + t * TILE,
                1,
                TILE,
                TILE,
                pop_next_dep=first,
                push_next_dep=True,
            ),
            gemm(
                buf,
                buf + 1,
                1,
                TILE,
                dst_factor_in=1,
                src_factor_in=1,
                pop_prev_dep=True,
                pop_next_dep=first and pipelined,
                push_next_dep=True,
                push_prev_dep=pipelined and t + 2 < TILES,
            ),
            store(
                buf * TILE,
                out + t * TILE,
                1,
                TILE,
                TILE,
                pop_prev_dep=True,
                push_prev_dep=not pipelined or t + 2 < TILES,
            ),
        ]
        if not pipelined:  # compute waits for the store, then lets the next load start
            stream.append(
                load(MemType.ACC, 0, 0, 0, 0, 0, pop_next_dep=True, push_prev_dep=t + 1 < TILES)
            )
    stream.append(finish())
    assert env.INP_BUFF_DEPTH >= 2 * TILE
    return stream


def test_overlap_beats_serialisation_and_figures_add_up():
    reports = {}
    for pipelined in (False, True):
        bench = Bench()
        reports[pipelined] = bench.run(tiled_stream(bench, pipelined))
        assert bench.sim.queues.counts() == dict.fromkeys(bench.sim.queues.counts(), 0)
    serial, overlapped = reports[False].timing, reports[True].timing
    assert overlapped.total_cycles < serial.total_cycles
    assert overlapped.busy["load"] == serial.busy["load"]
    assert overlapped.gemm_useful_cycles == serial.gemm_useful_cycles == TILES * TILE
    for report in reports.values():
        timing = report.timing
        for module in ("load", "compute", "store"):
            assert (
                timing.busy[module] + timing.stall[module] + timing.idle[module]
                == timing.total_cycles
            )
            assert timing.idle[module] >= 0
            spans = sum(e.end - e.start for e in report.trace.events if e.module.label == module)
            assert spans == timing.busy[module]
        assert sum(timing.queue_stall.values()) == sum(timing.stall.values())
        assert timing.utilization == timing.gemm_useful_cycles / timing.total_cycles
        assert timing.microseconds == timing.total_cycles / 100
        assert report.stats["cycles"] == timing.total_cycles


def test_costs_of_single_instructions_follow_the_documented_model():
    bench = Bench()
    env = bench.env
    report = bench.run([bench.uops([Uop(0, 0, 0)] * 3), gemm(0, 3, 2, 5), finish()])
    events = report.trace.events
    uop_load, gemm_event, fin = (e.end - e.start for e in events)
    overhead = env.INSTRUCTION_OVERHEAD_CYCLES
    assert uop_load == overhead + env.DRAM_LATENCY_CYCLES + -(-12 // env.DRAM_BUS_BYTES)
    assert gemm_event == overhead + env.GEMM_PIPELINE_DEPTH + 2 * 5 * 3
    assert fin == overhead
    assert report.timing.total_cycles == uop_load + gemm_event + fin


def test_chrome_trace_json(tmp_path):
    bench = Bench()
    report = bench.run(tiled_stream(bench, True))
    path = tmp_path / "trace.json"
    text = report.trace.to_chrome_json(path)
    data = json.loads(path.read_text())
    assert json.loads(text) == data
    slices = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(slices) == len(report.trace.events)
    names = {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M"}
    assert names == {"load", "compute", "store"}
    assert max(e["ts"] + e["dur"] for e in slices) == pytest.approx(report.timing.microseconds)


def test_module_level_stats_are_cumulative_and_clearable():
    device = accel.sim.get_device()
    assert accel.sim.get_device() is device
    accel.sim.clear_stats()
    stream = [load(MemType.ACC, 0, 0, 0, 0, 0), gemm(0, 0), finish()]
    bench = Bench()
    words_at = bench.write_stream(stream)
    addr = device.memory.alloc(16 * len(stream), 16)
    device.memory.write(addr, bench.mem.read(words_at[0], 16 * len(stream)))
    first = device.simulator.run(addr, len(stream))
    device.simulator.run(addr, len(stream))
    stats = accel.sim.stats()
    assert stats["runs"] == 2 and stats["gemm_insns"] == 2 and stats["load_insns"] == 2
    assert stats["finish_insns"] == 2 and stats["cycles"] == 2 * first.timing.total_cycles
    assert stats["compute_busy_cycles"] == 2 * first.timing.busy["compute"]
    for key in (
        "inp_load_nbytes",
        "wgt_load_nbytes",
        "acc_load_nbytes",
        "uop_load_nbytes",
        "out_store_nbytes",
        "gemm_counter",
        "alu_counter",
        "load_stall_cycles",
        "store_busy_cycles",
    ):
        assert key in stats
    accel.sim.clear_stats()
    assert not any(accel.sim.stats().values())
