"""Measuring a candidate: build it, run its instruction streams through the cycle model only.

The cycle model depends on the instruction stream alone, never on data (docs/cycle_model.md),
and the simulator computes a stream's timing in its scheduling step, before and apart from the
arithmetic. A *timing-only run* keeps that step and skips the arithmetic: the module's host
code drives a command queue on a scratch device whose simulator decodes and schedules every
stream it is given (token protocol, module clocks, counters) and executes nothing. Its cycles
are the simulator's cycles for the same stream -- ``tests/tune`` checks them against
``Module.metrics["cycles"]``, the full run on zeroed arrays -- at about a third of the cost.

While scheduling, it counts the *actions* of the stream for the energy model
(``accel/tune/energy.py``), as Accelergy counts them from a Timeloop mapping, but exactly, from
the instructions: DRAM bytes read and written per memory type, instruction fetches, reads and
writes of each SRAM in elements, multiply-accumulates and ALU lane operations.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

import numpy as np

from accel.build import build
from accel.env import Environment, using_env
from accel.hw.isa import AluInsn, GemmInsn, MemInsn, MemType, Opcode
from accel.hw.memory import DeviceMemory, elem_bytes
from accel.lower.passes.sram import sram_layout
from accel.runtime.command_queue import CommandQueue
from accel.sim import Device, Simulator
from accel.sim.timing import CycleModel
from accel.tune.templates import Template

INSN_BYTES = 16
_SRAM_OF_LOAD = {
    MemType.UOP: "uop",
    MemType.WGT: "wgt",
    MemType.INP: "inp",
    MemType.ACC: "acc",
    MemType.ACC_8BIT: "acc",
}


@dataclass(frozen=True)
class WhatIf:
    """Hardware changes the cycle model has no configuration key for, priced in a timing-only
    run by changing what instructions cost (the simulator proper is unchanged):

    - ``alu_overlap``: the vector ALU runs beside the GEMM core instead of on the compute
      module's one pipeline; an ALU instruction then keeps the compute module only for its
      issue (``INSTRUCTION_OVERHEAD_CYCLES``). This is the ideal case (the ALU never waits for
      the GEMM's accumulator port), an upper bound of what overlapping them can give.
    """

    alu_overlap: bool = False

    def __str__(self) -> str:
        return "+".join(name for name in ("alu_overlap",) if getattr(self, name))


@dataclass(frozen=True)
class _WhatIfModel(CycleModel):
    what_if: WhatIf = field(default_factory=WhatIf)

    def cost(self, insn):
        if self.what_if.alu_overlap and isinstance(insn, AluInsn):
            return self.overhead, 0
        return super().cost(insn)


class TimingSimulator(Simulator):
    """A simulator that schedules every stream (timing, counters, deadlock detection) and
    executes nothing; ``actions`` accumulates the streams' action counts."""

    def __init__(self, env: Environment, dram: DeviceMemory, what_if: WhatIf | None = None):
        super().__init__(env, dram, trace=False)
        self.actions: Counter[str] = Counter()
        if what_if is not None:
            base = CycleModel.from_env(env)
            fields = {f.name: getattr(base, f.name) for f in dataclass_fields(CycleModel)}
            self.model = _WhatIfModel(**fields, what_if=what_if)

    def run(self, insn_addr: int, insn_count: int):
        stream = self._fetch_words(self._words(insn_addr, insn_count))
        schedule = self._schedule(stream)
        count_actions(self.actions, [entry.insn for entry in stream], self.env)
        return self._finish(schedule)


def count_actions(into: Counter, insns: list, env: Environment) -> None:
    """Add the actions of ``insns`` to ``into`` (keys documented in docs/tuning.md):
    ``dram_read_<type>`` / ``dram_write_out`` bytes, ``insn_fetch_bytes``,
    ``<sram>_read`` / ``<sram>_write`` elements for the inp, wgt, acc and uop SRAMs, ``macs``,
    ``alu_lane_ops``."""
    lanes = env.BATCH * env.BLOCK_OUT
    macs_per_step = env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
    into["insn_fetch_bytes"] += INSN_BYTES * len(insns)
    for insn in insns:
        if isinstance(insn, MemInsn):
            if insn.x_size == 0 and insn.y_size == 0:
                continue
            elems = insn.y_size * insn.x_size
            nbytes = elems * elem_bytes(env, insn.memory_type)
            if insn.opcode == Opcode.STORE:
                into["dram_write_out"] += nbytes
                into["acc_read"] += elems
                continue
            rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
            written = rows * (insn.x_pad_0 + insn.x_size + insn.x_pad_1)
            into[f"dram_read_{MemType(insn.memory_type).name.lower()}"] += nbytes
            into[f"{_SRAM_OF_LOAD[MemType(insn.memory_type)]}_write"] += written
        elif isinstance(insn, (GemmInsn, AluInsn)):
            steps = insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)
            into["uop_read"] += steps
            into["acc_write"] += steps
            if isinstance(insn, GemmInsn):
                if not insn.reset_reg:
                    into["inp_read"] += steps
                    into["wgt_read"] += steps
                    into["acc_read"] += steps
                    into["macs"] += steps * macs_per_step
            elif not insn.reset_reg:
                into["acc_read"] += steps * (1 if insn.use_imm else 2)
                into["alu_lane_ops"] += steps * lanes


@dataclass
class Measurement:
    """What one timing-only run of a built candidate gives."""

    cycles: int
    gemm_useful_cycles: int
    busy: dict[str, int]
    stall: dict[str, int]
    instructions: int
    actions: dict[str, int]
    sram: dict[str, int]  # tiles used per scope
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def utilization(self) -> float:
        return self.gemm_useful_cycles / self.cycles if self.cycles else 0.0

    def to_json(self) -> dict:
        return {
            "cycles": self.cycles,
            "gemm_useful_cycles": self.gemm_useful_cycles,
            "busy": self.busy,
            "stall": self.stall,
            "instructions": self.instructions,
            "actions": dict(sorted(self.actions.items())),
            "sram": self.sram,
        }


def build_candidate(template: Template, op: Any, env: Environment, tiles: Any, name: str):
    """Build ``op`` with ``tiles`` on ``env``: the module (raises what building raises)."""
    with using_env(env):
        return build(template.schedule(op, env, tiles), op.args, name=name)


def timing_run(module, what_if: WhatIf | None = None) -> Measurement:
    """Run ``module`` once through the cycle model only, on a scratch device (with the
    hardware changes ``what_if``, if given)."""
    env = module.env
    memory = DeviceMemory(env)
    simulator = TimingSimulator(env, memory, what_if)
    queue = CommandQueue(Device(env, memory, simulator))
    addrs = [
        memory.alloc(max(int(np.prod(b.shape)) * np.dtype(b.dtype).itemsize, 1))
        for b in module.params
    ]
    module._run(queue, addrs)  # the module's own JIT path, on this queue
    stats = simulator.stats
    modules = ("load", "compute", "store")
    used = sram_layout(module.lowered.body, env)["scopes"]
    return Measurement(
        cycles=stats["cycles"],
        gemm_useful_cycles=stats["gemm_useful_cycles"],
        busy={m: stats[f"{m}_busy_cycles"] for m in modules},
        stall={m: stats[f"{m}_stall_cycles"] for m in modules},
        instructions=sum(stats[k] for k in stats if k.endswith("_insns")),
        actions=dict(simulator.actions),
        sram={scope: figures["used"] for scope, figures in used.items()},
    )


def measure(template: Template, op: Any, env: Environment, tiles: Any, name: str = "candidate"):
    """Build and time one candidate; a :class:`Measurement` with host seconds for each step."""
    start = time.perf_counter()
    module = build_candidate(template, op, env, tiles, name)
    built = time.perf_counter()
    result = timing_run(module)
    result.build_seconds = built - start
    result.run_seconds = time.perf_counter() - built
    return result
