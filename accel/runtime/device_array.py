"""Arrays that live in the simulated accelerator's DRAM (``accel.nd.empty(..., accel.ext_dev(0))``).

The array's contents are a numpy view of device memory, so the simulator reads exactly what the
host wrote; the allocation is freed when the array is garbage-collected.
"""

from __future__ import annotations

import weakref

import numpy as np

from accel.nd import Device, NDArray


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
    from accel.sim import get_device

    memory = get_device().memory
    nbytes = max(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize, 1)
    addr = memory.alloc(nbytes)
    data = memory.view(addr, nbytes, np.uint8)
    data[...] = 0
    view = data[: nbytes - nbytes % np.dtype(dtype).itemsize].view(dtype).reshape(shape)
    return DeviceArray(view, dev, memory, addr)
