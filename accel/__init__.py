"""accel: a tensor-expression compiler for a VTA-style accelerator, and its simulator.

The pipeline runs ``te -> schedule -> lower -> runtime -> sim``; see ``docs/layout.md``.
"""

from accel import lower, nd, sim, te  # noqa: E402 - `accel.lower(...)` is the callable package
from accel.build import Module, build, load_module
from accel.env import Environment, get_env, using_env
from accel.errors import (
    AccelError,
    AllocationError,
    ArgumentError,
    BuildError,
    ConfigError,
    DeadlockError,
    ExprError,
    GraphError,
    ISAError,
    LoadError,
    LoweringError,
    SaveError,
    ScheduleError,
    SimulatorError,
    TensorizeError,
    UnsupportedOperatorError,
)
from accel.nd import Device, cpu

__version__ = "0.1.0"


def ext_dev(index: int = 0) -> Device:
    """The simulated accelerator as an array device (``accel.nd.array(x, accel.ext_dev(0))``)."""
    return Device("ext_dev", index)


# Imported on first use: the graph level pulls in onnx, the tuner its executors.
_LAZY = ("frontend", "graph", "tune")


def __getattr__(name: str):
    """``accel.frontend``, ``accel.graph`` and ``accel.tune`` without importing them up front."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"accel.{name}")
    raise AttributeError(f"module 'accel' has no attribute {name!r}")


__all__ = [
    "AccelError",
    "Device",
    "Module",
    "build",
    "load_module",
    "cpu",
    "ext_dev",
    "frontend",
    "graph",
    "lower",
    "tune",
    "nd",
    "sim",
    "te",
    "AllocationError",
    "ArgumentError",
    "BuildError",
    "ConfigError",
    "DeadlockError",
    "Environment",
    "ExprError",
    "GraphError",
    "ISAError",
    "LoadError",
    "LoweringError",
    "SaveError",
    "ScheduleError",
    "SimulatorError",
    "TensorizeError",
    "UnsupportedOperatorError",
    "get_env",
    "using_env",
]
