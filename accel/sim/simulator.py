"""The simulator: fetch a stream from simulated DRAM and run it on the three modules.

Execution order. The load, compute and store modules are concurrent in hardware; here each
keeps its own in-order instruction list, and the simulator repeatedly runs, among the modules
whose next instruction has every token it pops, the one whose instruction comes first in the
stream. That order is deterministic and respects every token, and each module's own order is
kept. Accesses from two modules to the same SRAM or DRAM that no token orders are races in the
hardware too; the simulator gives them stream order where it can. When no module can advance
and some still have instructions, the run stops with a DeadlockError describing each module and
queue. The cycle model (accel/sim/timing.py) runs alongside and places every instruction on its
module's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accel.env import Environment
from accel.errors import DeadlockError, DeviceMemoryError, ISAError, SimulatorError
from accel.runtime.isa import AluInsn, GemmInsn, Insn, MemInsn, Opcode, decode_int
from accel.runtime.memory import DeviceMemory
from accel.sim.alu import AluUnit
from accel.sim.dispatch import Route, insn_kind, route
from accel.sim.gemm import GemmUnit
from accel.sim.load import STAT_OF_TYPE, execute_load
from accel.sim.state import Module, Srams, TokenQueues
from accel.sim.stats import add_timing, empty_stats, merge
from accel.sim.store import execute_store
from accel.sim.timing import CycleModel, Timeline, TimingReport
from accel.sim.trace import Trace

INSN_BYTES = 16
_DECODE_CACHE_SIZE = 1 << 16


@dataclass(frozen=True)
class RunReport:
    """What one run did: its counters, its timing and (unless disabled) its trace."""

    stats: dict[str, int]
    timing: TimingReport
    trace: Trace | None

    def summary(self) -> str:
        """The counters and the cycle report as text."""
        width = max(map(len, self.stats))
        counters = [f"{k:<{width}}  {v:>14,}" for k, v in self.stats.items()]
        return "\n".join([*counters, "", self.timing.summary()])


class Simulator:
    """The behavioral simulator of one configuration, reading from ``dram``.

    Token queues, SRAM contents and the cumulative ``stats`` persist across runs.

    Args:
        env: the hardware configuration.
        dram: the simulated DRAM holding instructions, micro-ops and data.
        trace: record every instruction's start and end in ``RunReport.trace``.
    """

    def __init__(self, env: Environment, dram: DeviceMemory, trace: bool = True):
        self.env = env
        self.dram = dram
        self.trace_enabled = trace
        self.srams = Srams(env)
        self.queues = TokenQueues()
        self.model = CycleModel.from_env(env)
        self.stats = empty_stats()
        self._gemm = GemmUnit(env, self.srams)
        self._alu = AluUnit(env, self.srams)
        self._decoded: dict[tuple[int, int], tuple[Insn, Route, tuple[int, int]]] = {}

    def clear_stats(self) -> None:
        """Zero the cumulative counters."""
        self.stats = empty_stats()

    def fetch(self, insn_addr: int, insn_count: int) -> list[Insn]:
        """Decode ``insn_count`` instructions stored at byte address ``insn_addr``."""
        return [insn for insn, _, _ in self._fetch(insn_addr, insn_count)]

    def run(self, insn_addr: int, insn_count: int) -> RunReport:
        """Run the stream of ``insn_count`` instructions at byte address ``insn_addr``.

        Raises ISAError for an undecodable instruction and SimulatorError for one that cannot
        execute (both before anything runs when they can be seen from the stream alone),
        DeadlockError when the token queues can never make progress, DeviceMemoryError for a
        DRAM access outside device memory. Messages name the instruction index.
        """
        stream = self._fetch(insn_addr, insn_count)
        lists: list[list[int]] = [[] for _ in Module]
        for index, (_, where, _) in enumerate(stream):
            lists[where.module].append(index)
        stats = empty_stats()
        timeline = Timeline()
        trace = Trace(self.env.CLOCK_MHZ) if self.trace_enabled else None
        queues = self.queues
        queues.restart_clock()
        heads = [0] * len(Module)
        while True:
            chosen = -1
            for module in Module:
                if heads[module] < len(lists[module]):
                    index = lists[module][heads[module]]
                    if chosen >= 0 and index > chosen:
                        continue
                    if all(queues.count(q) for q in stream[index][1].pops):
                        chosen = index
            if chosen < 0:
                if any(heads[m] < len(lists[m]) for m in Module):
                    raise DeadlockError(self._deadlock_report(stream, lists, heads))
                break
            insn, where, cost = stream[chosen]
            heads[where.module] += 1
            ready, waited = 0, None
            for queue in where.pops:
                pushed = queues.pop(queue)
                if waited is None or pushed > ready:
                    ready, waited = pushed, queue
            self._execute(chosen, insn, stats)
            start, end = timeline.place(where.module, ready, waited, cost)
            for queue in where.pushes:
                queues.push(queue, end)
            if trace is not None:
                trace.add(chosen, where.module, insn_kind(insn), start, end)
        timing = timeline.report(self.env.CLOCK_MHZ)
        add_timing(stats, timing)
        stats["runs"] = 1
        merge(self.stats, stats)
        return RunReport(stats, timing, trace)

    # -- fetch and decode ------------------------------------------------------------------
    def _fetch(self, insn_addr: int, insn_count: int):
        if insn_addr % INSN_BYTES:
            raise SimulatorError(f"instruction address {insn_addr:#x} is not 16-byte aligned")
        words = self.dram.view(insn_addr, insn_count * INSN_BYTES, np.dtype("<u8"))
        if len(self._decoded) > _DECODE_CACHE_SIZE:
            self._decoded.clear()
        stream = []
        for index, pair in enumerate(map(tuple, words.reshape(-1, 2).tolist())):
            entry = self._decoded.get(pair)
            if entry is None:
                try:
                    insn = decode_int(pair[0] | (pair[1] << 64), self.env)
                except ISAError as exc:
                    raise ISAError(f"instruction {index}: {exc}") from None
                entry = (insn, route(index, insn, self.env), self.model.cost(insn))
                self._decoded[pair] = entry
            stream.append(entry)
        return stream

    # -- execution -------------------------------------------------------------------------
    def _execute(self, index: int, insn: Insn, stats: dict[str, int]) -> None:
        try:
            if isinstance(insn, MemInsn):
                if insn.opcode == Opcode.LOAD:
                    stats[STAT_OF_TYPE[insn.memory_type]] += execute_load(insn, self.srams, self.dram)
                    stats["load_insns"] += 1
                else:
                    stats["out_store_nbytes"] += execute_store(insn, self.srams, self.dram)
                    stats["store_insns"] += 1
            elif isinstance(insn, GemmInsn):
                self._gemm.execute(insn)
                stats["gemm_insns"] += 1
                if not insn.reset_reg:
                    stats["gemm_counter"] += _iterations(insn)
            elif isinstance(insn, AluInsn):
                self._alu.execute(insn)
                stats["alu_insns"] += 1
                stats["alu_counter"] += _iterations(insn)
            else:
                stats["finish_insns"] += 1
        except (SimulatorError, DeviceMemoryError) as exc:
            raise type(exc)(f"instruction {index} ({insn_kind(insn)}): {exc}") from None

    def _deadlock_report(self, stream, lists, heads) -> str:
        lines = ["deadlock: no module can make progress"]
        for module in Module:
            done, total = heads[module], len(lists[module])
            if done == total:
                lines.append(f"  {module.label}: finished ({total} instructions)")
                continue
            index = lists[module][done]
            insn, where, _ = stream[index]
            missing = [q.label for q in where.pops if not self.queues.count(q)]
            lines.append(
                f"  {module.label}: waits at instruction {index} ({insn_kind(insn)}) for a "
                f"{' and a '.join(missing)} token; {done} of {total} instructions done"
            )
        lines.append(f"  queues: {self.queues.describe()}")
        return "\n".join(lines)


def _iterations(insn: GemmInsn | AluInsn) -> int:
    return insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)
