"""``accel.build``: lower a schedule and make a callable module of it.

A program without accelerator calls becomes a :class:`~accel.runtime.module.HostModule` (numpy
host code); one with them an :class:`~accel.runtime.module.AccelModule`, whose host code drives
the runtime's command queue.
"""

from __future__ import annotations

from pathlib import Path

from accel.env import Environment, get_env
from accel.errors import BuildError, ConfigError, LoadError, LoweringError
from accel.lower.codegen_accel import generate_accel_source, uses_accelerator
from accel.lower.codegen_host import generate_host_source
from accel.lower.pipeline import LoweredFunc, lower
from accel.lower.verify import verify
from accel.runtime import module_file
from accel.runtime.module import AccelModule, HostModule, Module
from accel.schedule.schedule import Schedule


def build(
    sch: Schedule,
    args,
    name: str = "default_function",
    verify: bool | None = None,
    prepare: bool = True,
) -> Module:
    """Lower ``sch`` with parameters ``args`` and build a callable module (``verify``: check the
    program after every pass, as in :func:`accel.lower`). An accelerator module is ``prepare``d:
    called once on scratch arrays, so that its streams are recorded and planned and its first
    call costs what later ones cost (``prepare=False``: the first call does that work).

    Raises ``LoweringError`` / ``ScheduleError`` for a bad schedule, ``AllocationError`` when
    on-chip buffers do not fit their SRAM, and ``BuildError`` if the program cannot run on the
    target.
    """
    lowered = lower(sch, args, name=name, verify=verify)
    env = get_env()
    target = "accel" if uses_accelerator(lowered.body) else "cpu"
    return module_from_lowered(lowered, env, target, prepare=prepare)


def module_from_lowered(
    lowered: LoweredFunc, env: Environment, target: str, prepare: bool = False
) -> Module:
    """Generate the host code of ``lowered`` for ``target`` ("cpu" or "accel"); ``prepare``: see
    :func:`build`."""
    if target == "accel":
        source, consts = generate_accel_source(lowered.name, lowered.params, lowered.body, env)
        module = AccelModule(lowered, source, consts, env)
        if prepare:
            module.prepare()
        return module
    source, consts = generate_host_source(lowered.name, lowered.params, lowered.body)
    return HostModule(lowered, source, consts, env)


def load_module(path: str | Path) -> Module:
    """Load a module written by ``Module.save``; its host code is generated anew from the
    program in the file (which holds no code). Raises LoadError (a BuildError) for a file that
    cannot be read or is not a valid module file, saying what is wrong and where."""
    path = Path(path)
    try:
        if path.stat().st_size > module_file.MAX_TEXT_CHARS:
            raise LoadError(f"{path} is larger than a module file may be")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise LoadError(f"cannot read module file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LoadError(f"{path} is not a module file (not UTF-8 JSON text)") from None
    lowered, config, target, _extra = module_file.loads(text)
    try:
        env = Environment.from_dict(config, str(path))
        # The file's form was checked field by field; now its meaning: every variable bound,
        # every buffer allocated, every scope known, and code that generates.
        verify(lowered.body, lowered.params, env.scopes, where=f"module file {path}")
        return module_from_lowered(lowered, env, target, prepare=True)
    except (ConfigError, LoweringError, BuildError) as exc:
        if isinstance(exc, LoadError):
            raise
        raise LoadError(f"module file {path}: {exc}") from None


__all__ = ["Module", "build", "load_module", "module_from_lowered"]
