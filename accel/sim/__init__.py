"""The behavioral simulator of the accelerator.

``get_device()`` gives the process-wide simulated device of the current configuration: its
DRAM (:class:`~accel.hw.memory.DeviceMemory`) and its :class:`Simulator`. ``stats()`` and
``clear_stats()`` read and reset that simulator's cumulative counters::

    dev = accel.sim.get_device()
    addr = dev.memory.alloc(16 * len(insns))
    dev.memory.write(addr, encode_stream(insns, dev.env))
    report = dev.simulator.run(addr, len(insns))
    print(report.summary()); report.trace.to_chrome_json("trace.json")
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.env import Environment, get_env
from accel.hw.memory import DeviceMemory
from accel.sim.simulator import RunReport, Simulator

__all__ = ["Device", "RunReport", "Simulator", "clear_stats", "get_device", "stats"]


@dataclass(frozen=True)
class Device:
    """A simulated accelerator: one configuration, its DRAM and its simulator."""

    env: Environment
    memory: DeviceMemory
    simulator: Simulator


_DEVICES: dict[Environment, Device] = {}


def get_device(env: Environment | None = None) -> Device:
    """The device of ``env`` (default: ``accel.get_env()``), created on first use."""
    env = get_env() if env is None else env
    device = _DEVICES.get(env)
    if device is None:
        memory = DeviceMemory(env)
        device = _DEVICES[env] = Device(env, memory, Simulator(env, memory))
    return device


def stats() -> dict[str, int]:
    """The cumulative counters of the current configuration's simulator (a copy)."""
    return dict(get_device().simulator.stats)


def clear_stats() -> None:
    """Zero the cumulative counters of the current configuration's simulator."""
    get_device().simulator.clear_stats()
