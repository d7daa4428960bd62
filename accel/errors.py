"""The exception hierarchy: one base class, one subclass per layer.

Every error a user can cause is raised as a subclass of :class:`AccelError`, with a message that
names what was wrong, where, and (when it is obvious) what would fix it.
"""


class AccelError(Exception):
    """Base class of every error accel raises on purpose."""


class ConfigError(AccelError):
    """A hardware configuration is missing, unreadable, or has a bad or missing key."""


class ExprError(AccelError):
    """A tensor expression is ill-formed (bad dtype mix, wrong index count, ...)."""


class ScheduleError(AccelError):
    """A schedule primitive was misused (unknown axis, bad factor, bad scope, ...)."""


class TensorizeError(ScheduleError):
    """A tensorized body does not match the declared tensor intrinsic."""


class LoweringError(AccelError):
    """A schedule could not be lowered to the loop IR or through a pass."""


class AllocationError(LoweringError):
    """A buffer does not fit the memory it was placed in."""


class BuildError(AccelError):
    """A lowered program could not be turned into a runnable module."""


class ArgumentError(AccelError):
    """Arrays passed to a module do not match its signature (shape, dtype, count)."""


class ISAError(AccelError):
    """An instruction or micro-op is malformed, or a field value does not fit its bit width."""


class DeviceMemoryError(AccelError):
    """Simulated DRAM was accessed out of range, or an allocation failed."""


class SimulatorError(AccelError):
    """The simulator met an instruction it cannot execute (bad index, bad memory type, ...)."""


class DeadlockError(SimulatorError):
    """The dependency-token queues can never make progress."""


class UnsupportedOperatorError(AccelError):
    """A graph operator or attribute is not supported by the frontend."""


class GraphError(AccelError):
    """A model graph is inconsistent: shapes that do not agree, a missing initializer, a cycle."""


class SaveError(AccelError):
    """A program or module could not be written."""


class LoadError(BuildError):
    """A program, module or replay file could not be read: missing, not a file of its kind,
    malformed, or from another version. (A BuildError, since loading builds from the file.)"""
