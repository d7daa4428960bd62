"""Simulated device DRAM: one byte array, an allocator, and element-index conversions.

The whole address space is one zero-initialised numpy array; numpy asks the system for zeroed
pages, so a large device (1 GiB by default) costs memory only where it is written. Views of it
therefore stay valid for the life of the device. Address 0 is never handed out: the first
:data:`RESERVED_BYTES` are a guard region and every access touching them is refused.

Instructions address DRAM in *elements* of their memory type (byte address / element bytes),
which is why allocations are aligned to element sizes.
"""

from __future__ import annotations

import bisect
import functools

import numpy as np

from accel.env import Environment
from accel.errors import DeviceMemoryError
from accel.hw.isa import MemType

DEFAULT_SIZE = 1 << 30
RESERVED_BYTES = 4096


def elem_bytes(env: Environment, mem_type: MemType) -> int:
    """Bytes of one DRAM element of ``mem_type`` (ACC_8BIT: one int8 accumulator tile)."""
    size = _elem_sizes(env).get(mem_type)
    return size if size is not None else _elem_sizes(env)[MemType(mem_type)]  # ValueError


@functools.lru_cache(maxsize=16)
def _elem_sizes(env: Environment) -> dict[MemType, int]:
    # Looked up for every instruction a stream's first run decodes and times: made once.
    return {
        MemType.UOP: env.UOP_ELEM_BYTES,
        MemType.WGT: env.WGT_ELEM_BYTES,
        MemType.INP: env.INP_ELEM_BYTES,
        MemType.ACC: env.ACC_ELEM_BYTES,
        MemType.OUT: env.OUT_ELEM_BYTES,
        MemType.ACC_8BIT: env.BATCH * env.BLOCK_OUT,
    }


class DeviceMemory:
    """Simulated DRAM of ``size_bytes`` bytes with a first-fit allocator.

    Args:
        env: the configuration (for element sizes and the default alignment).
        size_bytes: the address-space size; only written pages use host memory.
    """

    def __init__(self, env: Environment, size_bytes: int = DEFAULT_SIZE):
        if size_bytes <= RESERVED_BYTES:
            raise DeviceMemoryError(f"device memory of {size_bytes} bytes is too small")
        self.env = env
        self.size = size_bytes
        self.data = np.zeros(size_bytes, dtype=np.uint8)
        self.elem_sizes = {t: elem_bytes(env, t) for t in MemType}
        self.default_align = max(64, *self.elem_sizes.values())
        self._blocks: dict[int, int] = {}  # address -> size of live allocations
        self._starts: list[int] = []  # sorted addresses of live allocations

    # -- allocation ----------------------------------------------------------------------------
    def alloc(self, nbytes: int, align: int | None = None) -> int:
        """Allocate ``nbytes`` (> 0) aligned to ``align`` (default: the largest element size).

        Returns the byte address (never 0); raises DeviceMemoryError when no room is left.
        """
        align = self.default_align if align is None else align
        if nbytes <= 0:
            raise DeviceMemoryError(f"cannot allocate {nbytes} bytes")
        if align <= 0 or align & (align - 1):
            raise DeviceMemoryError(f"alignment {align} is not a power of two")
        cursor = RESERVED_BYTES
        for start in self._starts + [self.size]:
            candidate = -(-cursor // align) * align
            if candidate + nbytes <= start:
                self._blocks[candidate] = nbytes
                bisect.insort(self._starts, candidate)
                return candidate
            cursor = max(cursor, start + self._blocks.get(start, 0))
        raise DeviceMemoryError(
            f"device memory is full: cannot allocate {nbytes} bytes (size {self.size})"
        )

    def free(self, addr: int) -> None:
        """Free an allocation by its address; raises on an unknown address or a double free."""
        if addr not in self._blocks:
            raise DeviceMemoryError(f"free of address {addr:#x}, which is not allocated")
        del self._blocks[addr]
        self._starts.remove(addr)

    def allocation_size(self, addr: int) -> int:
        """Bytes of the live allocation starting at ``addr``."""
        if addr not in self._blocks:
            raise DeviceMemoryError(f"address {addr:#x} is not the start of an allocation")
        return self._blocks[addr]

    def allocation_of(self, addr: int) -> int | None:
        """The start of the live allocation holding byte ``addr``, or None."""
        k = bisect.bisect_right(self._starts, addr) - 1
        if k >= 0 and addr < self._starts[k] + self._blocks[self._starts[k]]:
            return self._starts[k]
        return None

    @property
    def allocated_bytes(self) -> int:
        return sum(self._blocks.values())

    # -- access --------------------------------------------------------------------------------
    def check_range(self, addr: int, nbytes: int) -> None:
        """Raise DeviceMemoryError unless ``[addr, addr + nbytes)`` lies in usable memory."""
        if nbytes < 0 or addr < RESERVED_BYTES or addr + nbytes > self.size:
            raise DeviceMemoryError(
                f"access of {nbytes} bytes at {addr:#x} is outside device memory "
                f"[{RESERVED_BYTES:#x}, {self.size:#x})"
            )

    def view(self, addr: int, nbytes: int, dtype=np.uint8) -> np.ndarray:
        """A writable view of ``nbytes`` at ``addr`` as ``dtype`` (addr aligned to its size)."""
        self.check_range(addr, nbytes)
        dtype = np.dtype(dtype)
        if addr % dtype.itemsize or nbytes % dtype.itemsize:
            raise DeviceMemoryError(
                f"view of {nbytes} bytes at {addr:#x} is not aligned to {dtype} "
                f"({dtype.itemsize} bytes)"
            )
        return self.data[addr : addr + nbytes].view(dtype)

    def read(self, addr: int, nbytes: int) -> np.ndarray:
        """A copy of ``nbytes`` bytes at ``addr``."""
        self.check_range(addr, nbytes)
        return self.data[addr : addr + nbytes].copy()

    def write(self, addr: int, data) -> None:
        """Write the bytes of ``data`` (an array or bytes) at ``addr``."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = np.frombuffer(data, dtype=np.uint8)
        else:
            raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        self.check_range(addr, raw.size)
        self.data[addr : addr + raw.size] = raw

    # -- element addressing --------------------------------------------------------------------
    def to_elem_index(self, addr: int, mem_type: MemType) -> int:
        """The element index an instruction uses for byte address ``addr``."""
        size = self.elem_sizes[MemType(mem_type)]
        if addr % size:
            raise DeviceMemoryError(
                f"address {addr:#x} is not aligned to a {MemType(mem_type).name} element "
                f"({size} bytes)"
            )
        return addr // size

    def to_byte_addr(self, index: int, mem_type: MemType) -> int:
        """The byte address of element ``index`` of ``mem_type``."""
        return index * self.elem_sizes[MemType(mem_type)]
