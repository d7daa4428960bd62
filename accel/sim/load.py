"""LOAD: 2-D DMA from simulated DRAM into an SRAM, with zero padding (docs/isa.md §4)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accel.errors import SimulatorError
from accel.hw.isa import MemInsn, MemType
from accel.hw.memory import DeviceMemory
from accel.sim.state import Srams

STAT_OF_TYPE = {
    MemType.UOP: "uop_load_nbytes",
    MemType.WGT: "wgt_load_nbytes",
    MemType.INP: "inp_load_nbytes",
    MemType.ACC: "acc_load_nbytes",
    MemType.ACC_8BIT: "acc_load_nbytes",
}


def dram_rows(dram: DeviceMemory, insn: MemInsn, dtype, elem_shape) -> np.ndarray:
    """A ``(y_size, x_size, *elem_shape)`` view of the DRAM rows ``insn`` reads or writes
    (empty, touching no DRAM, when ``y_size`` is 0: a load of padding rows only)."""
    if insn.y_size == 0:
        return np.zeros((0, insn.x_size, *elem_shape), dtype)
    size = dram.elem_sizes[insn.memory_type]
    start = insn.dram_base * size
    span = ((insn.y_size - 1) * insn.x_stride + insn.x_size) * size
    dram.check_range(start, span)
    dtype = np.dtype(dtype)
    per_elem = size // dtype.itemsize
    return np.ndarray(
        (insn.y_size, insn.x_size, per_elem),
        dtype=dtype,
        buffer=dram.data,
        offset=start,
        strides=(insn.x_stride * size, size, dtype.itemsize),
    ).reshape(insn.y_size, insn.x_size, *elem_shape)


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


def prepare_load(insn: MemInsn, srams: Srams, dram: DeviceMemory) -> Callable[[], None]:
    """Check one LOAD and return the function that runs it.

    The SRAM and DRAM regions are fixed by the instruction, so they are checked and turned
    into array views once; running the LOAD is then one or two array copies. ACC_8BIT reads
    int8 lanes and sign-extends them into the accumulators. Raises SimulatorError when the
    footprint does not fit the SRAM, DeviceMemoryError when the rows lie outside DRAM.
    """
    if insn.x_size == 0:
        return no_op
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
    inner = region[
        insn.y_pad_0 : insn.y_pad_0 + insn.y_size, insn.x_pad_0 : insn.x_pad_0 + insn.x_size
    ]
    padded = rows * cols != insn.y_size * insn.x_size
    weights = name == "wgt"

    def run() -> None:
        if padded:
            region[...] = 0
        inner[...] = data
        if weights:
            srams.wgt_version += 1

    return run


def no_op() -> None:
    """A LOAD or STORE with x_size 0 only moves tokens."""
