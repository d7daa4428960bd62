"""LOAD: 2-D DMA from simulated DRAM into an SRAM, with zero padding (ISA.md section 4)."""

from __future__ import annotations

import numpy as np

from accel.errors import SimulatorError
from accel.runtime.isa import MemInsn, MemType
from accel.runtime.memory import DeviceMemory, elem_bytes
from accel.sim.state import Srams

STAT_OF_TYPE = {
    MemType.UOP: "uop_load_nbytes",
    MemType.WGT: "wgt_load_nbytes",
    MemType.INP: "inp_load_nbytes",
    MemType.ACC: "acc_load_nbytes",
    MemType.ACC_8BIT: "acc_load_nbytes",
}


def dram_rows(dram: DeviceMemory, insn: MemInsn, dtype, elem_shape) -> np.ndarray:
    """A ``(y_size, x_size, *elem_shape)`` view of the DRAM rows ``insn`` reads or writes."""
    size = elem_bytes(dram.env, insn.memory_type)
    start = insn.dram_base * size
    span = ((insn.y_size - 1) * insn.x_stride + insn.x_size) * size
    dram.check_range(start, span)
    rows = np.lib.stride_tricks.as_strided(
        dram.data[start : start + span],
        shape=(insn.y_size, insn.x_size * size),
        strides=(insn.x_stride * size, 1),
    )
    return rows.view(dtype).reshape(insn.y_size, insn.x_size, *elem_shape)


def _target(srams: Srams, mem_type: MemType):
    """(SRAM array, SRAM name, DRAM element dtype) of a loadable memory type."""
    if mem_type == MemType.UOP:
        return srams.uop, "uop", np.dtype("<u4")
    if mem_type == MemType.INP:
        return srams.inp, "inp", srams.inp_dtype
    if mem_type == MemType.WGT:
        return srams.wgt, "wgt", srams.wgt_dtype
    if mem_type == MemType.ACC:
        return srams.acc, "acc", srams.acc_dtype
    return srams.acc, "acc", np.dtype(np.int8)  # ACC_8BIT


def execute_load(insn: MemInsn, srams: Srams, dram: DeviceMemory) -> int:
    """Run one LOAD; returns the DRAM bytes read (padding not counted).

    ACC_8BIT reads int8 lanes and sign-extends them into the accumulators.
    """
    if insn.x_size == 0:
        return 0
    sram, name, dtype = _target(srams, insn.memory_type)
    rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
    cols = insn.x_pad_0 + insn.x_size + insn.x_pad_1
    depth = srams.depths[name]
    if insn.sram_base + rows * cols > depth:
        raise SimulatorError(
            f"LOAD of {rows * cols} {name} elements at index {insn.sram_base} runs past the "
            f"{name} SRAM (last index {insn.sram_base + rows * cols - 1}, depth {depth})"
        )
    elem_shape = sram.shape[1:]
    data = dram_rows(dram, insn, dtype, elem_shape)
    region = sram[insn.sram_base : insn.sram_base + rows * cols].reshape(rows, cols, *elem_shape)
    if rows * cols != insn.y_size * insn.x_size:
        region[...] = 0
    region[insn.y_pad_0 : insn.y_pad_0 + insn.y_size, insn.x_pad_0 : insn.x_pad_0 + insn.x_size] = data
    if name == "wgt":
        srams.wgt_version += 1
    return insn.y_size * insn.x_size * elem_bytes(dram.env, insn.memory_type)
