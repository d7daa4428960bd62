"""accel: a tensor-expression compiler for a VTA-style accelerator, and its simulator.

The pipeline runs ``te -> schedule -> lower -> runtime -> sim``; see ``docs/layout.md``.
"""

from accel.env import Environment, get_env, using_env
from accel.errors import (
    AccelError,
    AllocationError,
    ArgumentError,
    BuildError,
    ConfigError,
    DeadlockError,
    ExprError,
    ISAError,
    LoweringError,
    ScheduleError,
    SimulatorError,
    TensorizeError,
    UnsupportedOperatorError,
)

__version__ = "0.1.0"

__all__ = [
    "AccelError",
    "AllocationError",
    "ArgumentError",
    "BuildError",
    "ConfigError",
    "DeadlockError",
    "Environment",
    "ExprError",
    "ISAError",
    "LoweringError",
    "ScheduleError",
    "SimulatorError",
    "TensorizeError",
    "UnsupportedOperatorError",
    "get_env",
    "using_env",
]
