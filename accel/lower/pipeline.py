"""The lowering pipeline: schedule -> loop program, then a named list of passes.

``PASSES`` is the visible sequence of program-to-program passes; ``lower`` runs a schedule through
it, optionally stopping after a named pass (``accel lower --dump-after NAME``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from accel.env import Environment, get_env
from accel.errors import LoweringError
from accel.lower import ir
from accel.lower.ir import function_str, stmt_str
from accel.lower.passes.check_bounds import check_bounds
from accel.lower.passes.distribute_loops import distribute_loops
from accel.lower.passes.distribute_tiles import distribute_tiles
from accel.lower.passes.fold_uop_loops import fold_uop_loops
from accel.lower.passes.inject_alu import inject_alu
from accel.lower.passes.inject_deps import inject_deps
from accel.lower.passes.inject_dma import inject_dma
from accel.lower.passes.inject_vthread import inject_vthread
from accel.lower.passes.inline_copies import inline_copies
from accel.lower.passes.simplify import simplify_pass
from accel.lower.passes.sram import allocate_sram, coproc_sync, lift_alloc
from accel.lower.schedule_ops import schedule_to_stmt
from accel.lower.verify import verify as verify_stmt
from accel.schedule.schedule import Schedule
from accel.te.tensor import Tensor

Pass = Callable[[ir.Stmt, Environment], ir.Stmt]

VERIFY_ENV_VAR = "ACCEL_VERIFY_IR"

# Each pass matches its own pattern and leaves everything else alone, so a program without
# accelerator scopes or pragmas passes through the accelerator passes unchanged.
PASSES: list[tuple[str, Pass]] = [
    ("simplify", simplify_pass),
    ("check_bounds", check_bounds),
    ("inject_dma", inject_dma),
    ("inject_alu", inject_alu),
    ("fold_uop_loops", fold_uop_loops),
    ("inject_deps", inject_deps),
    ("inject_vthread", inject_vthread),
    ("lift_alloc", lift_alloc),
    ("allocate_sram", allocate_sram),
    ("coproc_sync", coproc_sync),
    ("inline_copies", inline_copies),
    ("distribute_tiles", distribute_tiles),
    ("distribute_loops", distribute_loops),
]


@dataclass
class LoweredFunc:
    """A lowered program: its parameters (flat global buffers) and body."""

    name: str
    params: list[ir.Buffer]
    body: ir.Stmt
    args: list[Tensor] = field(default_factory=list)
    simple_mode: bool = False

    def __str__(self) -> str:
        if self.simple_mode:
            return stmt_str(self.body)
        return function_str(self.name, self.params, self.body)

    def script(self) -> str:
        """The whole function, with its signature."""
        return function_str(self.name, self.params, self.body)


def pass_names() -> list[str]:
    return ["schedule_ops"] + [name for name, _ in PASSES]


def lower(
    sch: Schedule,
    args: list[Tensor],
    name: str = "main",
    simple_mode: bool = False,
    dump_after: str | None = None,
    verify: bool | None = None,
) -> LoweredFunc:
    """Lower ``sch`` to a loop program whose parameters are ``args`` (inputs and outputs).

    ``dump_after`` stops after the named pass (see ``pass_names()``); ``simple_mode`` makes
    ``str()`` print the body only, like the classic tutorials. ``verify`` checks the program's
    invariants (``accel.lower.verify``) after every pass and raises ``LoweringError`` naming the
    first pass that broke one; None (the default) verifies when the environment variable
    ``ACCEL_VERIFY_IR`` is ``1``, as the test suite sets it.
    """
    if verify is None:
        verify = os.environ.get(VERIFY_ENV_VAR) == "1"
    if not isinstance(sch, Schedule):
        raise LoweringError(f"lower: expected a schedule, got {type(sch).__name__}")
    args = list(args)
    for a in args:
        if not isinstance(a, Tensor):
            raise LoweringError(f"lower: arguments must be tensors, got {a!r}")
    seen: set[int] = set()
    for a in args:
        if id(a) in seen:
            raise LoweringError(f"lower: tensor {a.name} is listed twice among the arguments")
        seen.add(id(a))
    if dump_after is not None and dump_after not in pass_names():
        raise LoweringError(
            f"lower: unknown pass {dump_after!r}; passes are {', '.join(pass_names())}"
        )
    body, lowering = schedule_to_stmt(sch, args)
    params = [lowering.arg_buffers[id(a)] for a in args]
    env = get_env()
    if verify:
        verify_stmt(body, params, env.scopes, where=f"{name} after schedule_ops")
    if dump_after != "schedule_ops":
        for pass_name, fn in PASSES:
            body = fn(body, env)
            if verify:
                verify_stmt(body, params, env.scopes, where=f"{name} after {pass_name}")
            if pass_name == dump_after:
                break
    return LoweredFunc(name, params, body, args, simple_mode)
