"""Helpers for simulator tests: a fresh device, data in DRAM, and instruction builders."""

from __future__ import annotations

import numpy as np

from accel.env import get_env
from accel.hw.isa import (
    AluInsn,
    FinishInsn,
    GemmInsn,
    MemInsn,
    MemType,
    Opcode,
    Uop,
    encode_stream,
    encode_uops,
)
from accel.hw.memory import DeviceMemory, elem_bytes
from accel.sim import Simulator


class Bench:
    """A fresh DRAM + simulator, with helpers to place data and run streams."""

    def __init__(self, env=None, size=1 << 26, trace=True):
        self.env = env or get_env()
        self.mem = DeviceMemory(self.env, size_bytes=size)
        self.sim = Simulator(self.env, self.mem, trace=trace)

    def put(self, array: np.ndarray, mem_type: MemType) -> int:
        """Write ``array`` to fresh DRAM; returns its element index for ``mem_type``."""
        data = np.ascontiguousarray(array)
        addr = self.mem.alloc(max(data.nbytes, 1), align=elem_bytes(self.env, mem_type))
        self.mem.write(addr, data)
        return self.mem.to_elem_index(addr, mem_type)

    def space(self, nbytes: int, mem_type: MemType) -> int:
        addr = self.mem.alloc(nbytes, align=elem_bytes(self.env, mem_type))
        return self.mem.to_elem_index(addr, mem_type)

    def get(self, index: int, mem_type: MemType, shape, dtype) -> np.ndarray:
        addr = self.mem.to_byte_addr(index, mem_type)
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self.mem.read(addr, nbytes).view(dtype).reshape(shape)

    def uops(self, uops: list[Uop], sram_base: int = 0, **deps) -> MemInsn:
        """A LOAD UOP instruction bringing ``uops`` into micro-op SRAM at ``sram_base``."""
        base = self.put(encode_uops(uops, self.env), MemType.UOP)
        return load(MemType.UOP, sram_base, base, 1, len(uops), len(uops), **deps)

    def write_stream(self, insns) -> tuple[int, int]:
        words = encode_stream(insns, self.env)
        addr = self.mem.alloc(words.nbytes, align=16)
        self.mem.write(addr, words)
        return addr, len(insns)

    def run(self, insns):
        return self.sim.run(*self.write_stream(insns))


def load(mem_type, sram_base, dram_base, y_size, x_size, x_stride, **kw) -> MemInsn:
    return MemInsn(
        opcode=Opcode.LOAD,
        memory_type=mem_type,
        sram_base=sram_base,
        dram_base=dram_base,
        y_size=y_size,
        x_size=x_size,
        x_stride=x_stride,
        **kw,
    )


def store(sram_base, dram_base, y_size, x_size, x_stride, mem_type=MemType.OUT, **kw):
    return MemInsn(
        opcode=Opcode.STORE,
        memory_type=mem_type,
        sram_base=sram_base,
        dram_base=dram_base,
        y_size=y_size,
        x_size=x_size,
        x_stride=x_stride,
        **kw,
    )


def gemm(uop_bgn, uop_end, iter_out=1, iter_in=1, **kw) -> GemmInsn:
    return GemmInsn(uop_bgn=uop_bgn, uop_end=uop_end, iter_out=iter_out, iter_in=iter_in, **kw)


def alu(op, uop_bgn, uop_end, iter_out=1, iter_in=1, **kw) -> AluInsn:
    return AluInsn(
        alu_opcode=op, uop_bgn=uop_bgn, uop_end=uop_end, iter_out=iter_out, iter_in=iter_in, **kw
    )


def finish(**kw) -> FinishInsn:
    return FinishInsn(**kw)


def rand_int8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def rand_int32(rng, shape, bound=1 << 31) -> np.ndarray:
    return rng.integers(-bound, bound, size=shape, dtype=np.int64).astype(np.int32)
