"""STORE: accumulator tiles, narrowed to the output width, back to simulated DRAM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accel.errors import SimulatorError
from accel.hw.isa import MemInsn
from accel.hw.memory import DeviceMemory
from accel.sim.load import dram_rows, no_op
from accel.sim.state import Srams


def prepare_store(insn: MemInsn, srams: Srams, dram: DeviceMemory) -> Callable[[], None]:
    """Check one STORE and return the function that runs it.

    Accumulator lanes are narrowed to the output width by keeping their low bits. Raises
    SimulatorError when the source runs past the accumulator SRAM, DeviceMemoryError when the
    rows lie outside DRAM.
    """
    if insn.x_size == 0 or insn.y_size == 0:
        return no_op
    count = insn.y_size * insn.x_size
    depth = srams.env.ACC_BUFF_DEPTH
    if insn.sram_base + count > depth:
        raise SimulatorError(
            f"STORE of {count} acc elements at index {insn.sram_base} runs past the acc SRAM "
            f"(last index {insn.sram_base + count - 1}, depth {depth})"
        )
    src = srams.acc[insn.sram_base : insn.sram_base + count]
    out = dram_rows(dram, insn, srams.out_dtype, src.shape[1:])
    src = src.reshape(out.shape)

    def run() -> None:
        np.copyto(out, src, casting="unsafe")  # keeps the low bits: two's complement narrowing

    return run
