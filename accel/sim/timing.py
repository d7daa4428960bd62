"""The cycle model: what each instruction costs, and the three module clocks (see
docs/cycle_model.md).

Every module has its own clock. An instruction starts when its module is free and every token
it pops has been pushed; the wait is a stall of its module, charged to the queue whose token
came last. Pushes carry the instruction's finish time.
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.env import Environment
from accel.hw.isa import AluInsn, GemmInsn, Insn, MemInsn
from accel.hw.memory import elem_bytes
from accel.hw.modules import Module, Queue


@dataclass(frozen=True)
class CycleModel:
    """Per-instruction costs in cycles, from the configuration's timing keys."""

    overhead: int
    dram_latency: int
    bus_bytes: int
    gemm_pipeline: int
    alu_pipeline: int
    alu_cycles_per_vector: int
    env: Environment

    @classmethod
    def from_env(cls, env: Environment) -> CycleModel:
        return cls(
            overhead=env.INSTRUCTION_OVERHEAD_CYCLES,
            dram_latency=env.DRAM_LATENCY_CYCLES,
            bus_bytes=env.DRAM_BUS_BYTES,
            gemm_pipeline=env.GEMM_PIPELINE_DEPTH,
            alu_pipeline=env.ALU_PIPELINE_DEPTH,
            alu_cycles_per_vector=env.ALU_CYCLES_PER_VECTOR,
            env=env,
        )

    def cost(self, insn: Insn) -> tuple[int, int]:
        """(cycles the instruction keeps its module busy, useful GEMM cycles among them)."""
        if isinstance(insn, MemInsn):
            if insn.x_size == 0:
                return self.overhead, 0
            nbytes = insn.y_size * insn.x_size * elem_bytes(self.env, insn.memory_type)
            rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
            pad_elems = rows * (insn.x_pad_0 + insn.x_size + insn.x_pad_1) - (
                insn.y_size * insn.x_size
            )
            beats = -(-nbytes // self.bus_bytes)
            return self.overhead + self.dram_latency + beats + pad_elems, 0
        if isinstance(insn, (GemmInsn, AluInsn)):
            steps = insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)
            if isinstance(insn, GemmInsn):
                useful = 0 if insn.reset_reg else steps
                return self.overhead + self.gemm_pipeline + steps, useful
            return self.overhead + self.alu_pipeline + steps * self.alu_cycles_per_vector, 0
        return self.overhead, 0


class Timeline:
    """The module clocks of one run, with busy and stall cycles per module."""

    def __init__(self) -> None:
        self.clock = [0] * len(Module)
        self.busy = [0] * len(Module)
        self.stall = [0] * len(Module)
        self.queue_stall = [0] * len(Queue)
        self.gemm_useful = 0

    def place(self, module: Module, ready: int, waited: Queue | None, cost: tuple[int, int]):
        """Place an instruction whose tokens are all there at cycle ``ready``; (start, end)."""
        start = max(self.clock[module], ready)
        if start > self.clock[module]:
            self.stall[module] += start - self.clock[module]
            self.queue_stall[waited] += start - self.clock[module]
        cycles, useful = cost
        end = start + cycles
        self.busy[module] += cycles
        self.gemm_useful += useful
        self.clock[module] = end
        return start, end

    def report(self, clock_mhz: int) -> TimingReport:
        total = max(self.clock)
        return TimingReport(
            total_cycles=total,
            busy={m.label: self.busy[m] for m in Module},
            stall={m.label: self.stall[m] for m in Module},
            idle={m.label: total - self.busy[m] - self.stall[m] for m in Module},
            queue_stall={q.label: self.queue_stall[q] for q in Queue},
            gemm_useful_cycles=self.gemm_useful,
            clock_mhz=clock_mhz,
        )


@dataclass(frozen=True)
class TimingReport:
    """Cycles of one run. For every module, busy + stall + idle = total_cycles."""

    total_cycles: int
    busy: dict[str, int]
    stall: dict[str, int]
    idle: dict[str, int]
    queue_stall: dict[str, int]
    gemm_useful_cycles: int
    clock_mhz: int

    @property
    def utilization(self) -> float:
        """Useful GEMM cycles (non-reset micro-op iterations) over total cycles."""
        return self.gemm_useful_cycles / self.total_cycles if self.total_cycles else 0.0

    @property
    def microseconds(self) -> float:
        return self.total_cycles / self.clock_mhz

    def summary(self) -> str:
        lines = [
            f"total cycles      {self.total_cycles:>14,}  "
            f"({self.microseconds:,.2f} us at {self.clock_mhz} MHz)",
            f"GEMM utilization  {self.utilization:>14.1%}",
            f"{'module':<10}{'busy':>14}{'stall':>14}{'idle':>14}",
        ]
        for m in self.busy:
            lines.append(f"{m:<10}{self.busy[m]:>14,}{self.stall[m]:>14,}{self.idle[m]:>14,}")
        waits = ", ".join(f"{q} {c:,}" for q, c in self.queue_stall.items())
        lines.append(f"stall by queue: {waits}")
        return "\n".join(lines)
