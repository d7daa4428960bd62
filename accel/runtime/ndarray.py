"""Arrays passed to built modules: host arrays, or arrays in the accelerator's device memory.

``accel.nd.array(numpy_array)`` copies into a new array; ``accel.nd.empty(shape, dtype)``
allocates one. With ``dev=accel.ext_dev(0)`` the data lives in simulated DRAM: a
:class:`DeviceArray`'s contents are a numpy view of device memory, so the simulator reads exactly
what the host wrote; the allocation is freed when the array is garbage-collected.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from accel.errors import ArgumentError
from accel.sim import get_device
from accel.te import dtype as dt


class Device:
    """Where an array lives: the host CPU, or the simulated accelerator."""

    def __init__(self, kind: str, index: int = 0):
        self.kind = kind
        self.index = index

    def __repr__(self) -> str:
        return f"{self.kind}({self.index})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))


def cpu(index: int = 0) -> Device:
    return Device("cpu", index)


class NDArray:
    """A dense array on a device; ``numpy()`` returns a copy of its contents."""

    def __init__(self, data: np.ndarray, device: Device):
        self._data = data
        self.device = device

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> str:
        return self._data.dtype.name

    def numpy(self) -> np.ndarray:
        return self._data.copy()

    asnumpy = numpy

    def copyfrom(self, source: Any) -> NDArray:
        """Overwrite the contents with ``source`` (same shape; converted to this dtype)."""
        src = source.numpy() if isinstance(source, NDArray) else np.asarray(source)
        if src.shape != self.shape:
            raise ArgumentError(
                f"copyfrom: shape {src.shape} does not match the array's {self.shape}"
            )
        self._data[...] = src.astype(self._data.dtype, copy=False)
        return self

    def __repr__(self) -> str:
        return f"<accel.nd.NDArray shape={self.shape} dtype={self.dtype} on {self.device}>"


def array(data: Any, dev: Device | None = None, dtype: str | None = None) -> NDArray:
    """A new array holding a copy of ``data``."""
    src = np.asarray(data, dtype=dtype)
    dt.check_dtype(src.dtype.name)
    return empty(src.shape, src.dtype.name, dev).copyfrom(src)


def empty(shape, dtype: str = "float32", dev: Device | None = None) -> NDArray:
    """A new array of ``shape`` and ``dtype`` (zero-filled)."""
    dtype = dt.check_dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    dev = dev or cpu()
    if dev.kind == "ext_dev":
        return device_empty(shape, dtype, dev)
    return NDArray(np.zeros(shape, dtype), dev)


class DeviceArray(NDArray):
    """An ``NDArray`` stored in simulated DRAM at byte address ``addr``."""

    def __init__(self, data: np.ndarray, device: Device, memory, addr: int):
        super().__init__(data, device)
        self.memory = memory
        self.addr = addr
        weakref.finalize(self, memory.free, addr)

    def __repr__(self) -> str:
        return (
            f"<accel.nd.NDArray shape={self.shape} dtype={self.dtype} on {self.device} "
            f"at {self.addr:#x}>"
        )


def device_empty(shape: tuple[int, ...], dtype: str, dev: Device) -> DeviceArray:
    """A zero-filled array of ``shape`` and ``dtype`` in the current configuration's DRAM."""
    memory = get_device().memory
    nbytes = max(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize, 1)
    addr = memory.alloc(nbytes)
    data = memory.view(addr, nbytes, np.uint8)
    data[...] = 0
    view = data[: nbytes - nbytes % np.dtype(dtype).itemsize].view(dtype).reshape(shape)
    return DeviceArray(view, dev, memory, addr)
