"""Simulated DRAM: allocation, alignment, element addressing and refused accesses."""

import itertools

import numpy as np
import pytest

from accel.env import get_env
from accel.errors import DeviceMemoryError
from accel.hw.isa import MemType
from accel.hw.memory import DeviceMemory, elem_bytes

ENV = get_env()


@pytest.fixture
def mem():
    return DeviceMemory(ENV, size_bytes=1 << 20)


def test_alloc_never_returns_zero_and_aligns(mem):
    addrs = [mem.alloc(n, align=a) for n, a in [(1, 16), (100, 64), (300, 256), (5, 4096)]]
    assert all(a > 0 for a in addrs)
    assert [a % al for a, al in zip(addrs, [16, 64, 256, 4096])] == [0, 0, 0, 0]
    spans = sorted((a, a + n) for a, n in zip(addrs, [1, 100, 300, 5]))
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
    assert mem.alloc(10) % elem_bytes(ENV, MemType.WGT) == 0  # default: largest element


def test_free_reuses_space_and_refuses_double_free(mem):
    a = mem.alloc(1024)
    b = mem.alloc(1024)
    mem.free(a)
    assert mem.alloc(512) == a
    with pytest.raises(DeviceMemoryError, match="not allocated"):
        mem.free(a + 1)
    mem.free(b)
    with pytest.raises(DeviceMemoryError, match="not allocated"):
        mem.free(b)


def test_full_memory_is_an_error(mem):
    with pytest.raises(DeviceMemoryError, match="full"):
        mem.alloc(2 << 20)


def test_read_write_view(mem):
    addr = mem.alloc(64)
    data = np.arange(16, dtype=np.int32)
    mem.write(addr, data)
    assert np.array_equal(mem.view(addr, 64, np.int32), data)
    assert mem.read(addr, 4).tolist() == [0, 0, 0, 0]
    mem.view(addr, 64, np.int32)[1] = -1
    assert mem.read(addr + 4, 4).tolist() == [255] * 4


def test_out_of_range_and_address_zero_are_refused(mem):
    with pytest.raises(DeviceMemoryError, match="outside device memory"):
        mem.read(0, 4)
    with pytest.raises(DeviceMemoryError, match="outside device memory"):
        mem.write(mem.size - 2, b"1234")
    with pytest.raises(DeviceMemoryError, match="not aligned"):
        mem.view(mem.alloc(64) + 2, 8, np.int32)


def test_element_index_conversion(mem):
    addr = mem.alloc(1024, align=256)
    for mtype in MemType:
        size = elem_bytes(ENV, mtype)
        assert mem.to_byte_addr(mem.to_elem_index(addr, mtype), mtype) == addr
        assert mem.to_elem_index(addr, mtype) == addr // size
    with pytest.raises(DeviceMemoryError, match="not aligned to a WGT element"):
        mem.to_elem_index(addr + 64, MemType.WGT)
