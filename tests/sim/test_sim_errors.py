"""Ill-formed streams raise clear errors naming the instruction, and run nothing."""

import numpy as np
import pytest
from sim_streams import Bench, alu, finish, gemm, load, store

from accel.errors import DeviceMemoryError, ISAError, SimulatorError
from accel.hw.isa import AluOp, MemType, Opcode, Uop


def run_words(bench, words):
    addr = bench.mem.alloc(words.nbytes, align=16)
    bench.mem.write(addr, words)
    return bench.sim.run(addr, len(words))


def test_gemm_index_past_the_end_of_the_accumulators():
    bench = Bench()
    stream = [bench.uops([Uop(2000, 0, 0)]), gemm(0, 1, 1, 2, dst_factor_in=48), finish()]
    with pytest.raises(
        SimulatorError,
        match=r"instruction 1 \(GEMM\): acc SRAM index 2048 is past the end "
        r"\(depth 2048\)",
    ):
        bench.run(stream)


def test_gemm_input_and_weight_and_alu_indices_are_checked():
    bench = Bench()
    with pytest.raises(SimulatorError, match="inp SRAM index 2050 is past the end"):
        bench.run([bench.uops([Uop(0, 2047, 0)]), gemm(0, 1, 1, 4, src_factor_in=1), finish()])
    with pytest.raises(SimulatorError, match="wgt SRAM index 1024 is past the end"):
        bench.run([bench.uops([Uop(0, 0, 1023)]), gemm(0, 1, 2, 1, wgt_factor_out=1), finish()])
    with pytest.raises(SimulatorError, match=r"instruction 1 \(ALU\): acc SRAM index 2050"):
        bench.run(
            [bench.uops([Uop(0, 2047)]), alu(AluOp.ADD, 0, 1, 1, 4, src_factor_in=1), finish()]
        )


def test_load_past_the_end_of_an_sram_is_refused_before_running():
    bench = Bench()
    data = bench.put(np.ones((4, 16), np.int8), MemType.INP)
    stream = [
        load(MemType.INP, 0, data, 1, 1, 1, push_next_dep=True),
        load(MemType.INP, 2046, data, 1, 2, 2, x_pad_1=1),
        finish(),
    ]
    with pytest.raises(
        SimulatorError,
        match=r"instruction 1 \(LOAD INP\): LOAD of 3 inp elements at index "
        r"2046 runs past the inp SRAM",
    ):
        bench.run(stream)
    assert bench.sim.queues.counts()["load->compute"] == 0  # nothing ran


def test_store_checks():
    bench = Bench()
    with pytest.raises(SimulatorError, match="a STORE cannot pad"):
        bench.run([store(0, 1, 1, 1, 1, x_pad_0=1), finish()])
    with pytest.raises(SimulatorError, match="a STORE writes memory type OUT only, not INP"):
        bench.run([store(0, 1, 1, 1, 1, mem_type=MemType.INP), finish()])
    with pytest.raises(SimulatorError, match="STORE of 4 acc elements at index 2045"):
        bench.run([store(2045, 1, 1, 4, 4), finish()])
    with pytest.raises(SimulatorError, match="a LOAD cannot target memory type OUT"):
        bench.run([load(MemType.OUT, 0, 1, 1, 1, 1), finish()])


def test_unknown_opcode_and_memory_type_in_dram():
    bench = Bench()
    with pytest.raises(ISAError, match="instruction 1: unknown opcode 6"):
        run_words(bench, np.array([[3, 0], [6, 0]], dtype=np.uint64))
    with pytest.raises(ISAError, match="instruction 0: LOAD has unknown memory type 7"):
        run_words(bench, np.array([[Opcode.LOAD | (7 << 7), 0]], dtype=np.uint64))
    with pytest.raises(ISAError, match="unknown ALU opcode 6"):
        run_words(bench, np.array([[Opcode.ALU, 6 << 44]], dtype=np.uint64))


def test_dram_out_of_range_and_misaligned_stream():
    bench = Bench()
    with pytest.raises(DeviceMemoryError, match=r"instruction 0 \(LOAD INP\): access of"):
        bench.run([load(MemType.INP, 0, 2**31, 1, 1, 1), finish()])
    with pytest.raises(DeviceMemoryError, match="outside device memory"):
        bench.run([load(MemType.WGT, 0, 0, 1, 1, 1), finish()])  # address 0 is never valid
    with pytest.raises(SimulatorError, match="not 16-byte aligned"):
        bench.sim.run(bench.mem.alloc(64) + 8, 1)


def test_micro_op_range_checks():
    bench = Bench()
    with pytest.raises(SimulatorError, match="uop_end 1 is before uop_bgn 2"):
        bench.run([gemm(2, 1), finish()])


def test_an_instruction_after_finish_is_refused():
    bench = Bench()
    with pytest.raises(SimulatorError, match=r"instruction 1 \(GEMM\) follows FINISH"):
        bench.run([finish(), gemm(0, 0)])
