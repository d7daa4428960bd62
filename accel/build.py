"""``accel.build``: lower a schedule and make a callable module of it."""

from __future__ import annotations

import numpy as np

from accel.errors import ArgumentError
from accel.lower import host_support
from accel.lower.codegen_host import generate_host_source
from accel.lower.pipeline import LoweredFunc, lower
from accel.nd import NDArray
from accel.schedule.schedule import Schedule


class Module:
    """A built program: call it with arrays (``accel.nd`` or numpy), outputs are written in place.

    ``source`` is the generated host code; ``lowered`` the loop program it came from.
    """

    def __init__(self, lowered: LoweredFunc, source: str, consts: dict):
        self.name = lowered.name
        self.lowered = lowered
        self.source = source
        namespace = {"np": np, "rt": host_support, **consts}
        # The source was generated here from the lowered program, never read from a file.
        exec(compile(source, f"<accel module {self.name}>", "exec"), namespace)
        self._fn = namespace[_python_name(source)]

    @property
    def params(self):
        return self.lowered.params

    def __call__(self, *arrays) -> None:
        flat = self._check(arrays)
        with np.errstate(all="ignore"):
            self._fn(*flat)

    def _check(self, arrays) -> list[np.ndarray]:
        if len(arrays) != len(self.params):
            names = ", ".join(b.name for b in self.params)
            raise ArgumentError(
                f"{self.name} takes {len(self.params)} arrays ({names}), got {len(arrays)}"
            )
        flat = []
        for buf, arr in zip(self.params, arrays):
            data = arr._data if isinstance(arr, NDArray) else arr
            if not isinstance(data, np.ndarray):
                raise ArgumentError(
                    f"{self.name}: argument {buf.name} must be an array, got {type(arr).__name__}"
                )
            if tuple(data.shape) != tuple(buf.shape):
                raise ArgumentError(
                    f"{self.name}: argument {buf.name} has shape "
                    f"{tuple(data.shape)}, expected {tuple(buf.shape)}"
                )
            if data.dtype.name != buf.dtype:
                raise ArgumentError(
                    f"{self.name}: argument {buf.name} has dtype "
                    f"{data.dtype.name}, expected {buf.dtype}"
                )
            if not data.flags.c_contiguous:
                raise ArgumentError(f"{self.name}: argument {buf.name} must be C-contiguous")
            flat.append(data.reshape(-1))
        return flat

    def __repr__(self) -> str:
        return f"<accel.Module {self.name}({', '.join(b.name for b in self.params)})>"


def _python_name(source: str) -> str:
    return source.split("(", 1)[0].removeprefix("def ").strip()


def build(sch: Schedule, args, name: str = "default_function") -> Module:
    """Lower ``sch`` with parameters ``args`` and build a callable module.

    Raises ``LoweringError`` / ``ScheduleError`` for a bad schedule and ``BuildError`` if the
    program cannot run on the target.
    """
    lowered = lower(sch, args, name=name)
    source, consts = generate_host_source(name, lowered.params, lowered.body)
    return Module(lowered, source, consts)
