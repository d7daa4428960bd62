"""``accel.nd``: arrays for built modules, on the host or in the simulated accelerator's DRAM
(see :mod:`accel.runtime.ndarray`)."""

from accel.runtime.ndarray import Device, DeviceArray, NDArray, array, cpu, empty

__all__ = ["Device", "DeviceArray", "NDArray", "array", "cpu", "empty"]
