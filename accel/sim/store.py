"""STORE: accumulator tiles, narrowed to the output width, back to simulated DRAM."""

from __future__ import annotations

from accel.errors import SimulatorError
from accel.runtime.isa import MemInsn
from accel.runtime.memory import DeviceMemory, elem_bytes
from accel.sim.load import dram_rows
from accel.sim.state import Srams


def execute_store(insn: MemInsn, srams: Srams, dram: DeviceMemory) -> int:
    """Run one STORE; returns the DRAM bytes written.

    Accumulator lanes are narrowed to the output width by keeping their low bits.
    """
    if insn.x_size == 0:
        return 0
    count = insn.y_size * insn.x_size
    depth = srams.env.ACC_BUFF_DEPTH
    if insn.sram_base + count > depth:
        raise SimulatorError(
            f"STORE of {count} acc elements at index {insn.sram_base} runs past the acc SRAM "
            f"(last index {insn.sram_base + count - 1}, depth {depth})"
        )
    src = srams.acc[insn.sram_base : insn.sram_base + count]
    out = dram_rows(dram, insn, srams.out_dtype, src.shape[1:])
    out[...] = src.reshape(out.shape).astype(srams.out_dtype)
    return count * elem_bytes(dram.env, insn.memory_type)
