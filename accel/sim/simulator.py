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
from functools import partial

import numpy as np

from accel.env import Environment
from accel.errors import DeadlockError, DeviceMemoryError, ISAError, SimulatorError
from accel.hw.isa import AluInsn, GemmInsn, Insn, MemInsn, Opcode, decode_int
from accel.hw.memory import DeviceMemory
from accel.hw.modules import Module, insn_kind
from accel.sim.alu import AluUnit
from accel.sim.dispatch import Route, route
from accel.sim.gemm import GemmUnit
from accel.sim.load import STAT_OF_TYPE, no_op, prepare_load
from accel.sim.state import Srams, TokenQueues
from accel.sim.stats import add_timing, empty_stats, merge
from accel.sim.store import prepare_store
from accel.sim.timing import CycleModel, Timeline, TimingReport
from accel.sim.trace import Trace

INSN_BYTES = 16
_MODULES = tuple(int(m) for m in Module)  # plain ints: iterating the enum is slow
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


class _Entry:
    """A decoded instruction, ready to run: its route, cost, counters and executor."""

    __slots__ = ("insn", "kind", "module", "pops", "pushes", "cost", "counts", "execute")

    def __init__(self, insn: Insn, where: Route, cost, counts, execute):
        self.insn = insn
        self.kind = insn_kind(insn)
        self.module = where.module
        self.pops = where.pops
        self.pushes = where.pushes
        self.cost = cost
        self.counts = counts  # the (counter, increment) pairs one execution adds
        self.execute = execute


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
        self._entries: dict[tuple[int, int], _Entry] = {}

    def clear_stats(self) -> None:
        """Zero the cumulative counters."""
        self.stats = empty_stats()

    def fetch(self, insn_addr: int, insn_count: int) -> list[Insn]:
        """Decode ``insn_count`` instructions stored at byte address ``insn_addr``."""
        return [entry.insn for entry in self._fetch(insn_addr, insn_count)]

    def run(self, insn_addr: int, insn_count: int) -> RunReport:
        """Run the stream of ``insn_count`` instructions at byte address ``insn_addr``.

        Raises ISAError for an undecodable instruction and SimulatorError for one that cannot
        execute, DeadlockError when the token queues can never make progress, and
        DeviceMemoryError for a DRAM access outside device memory; messages name the
        instruction index. Whatever can be seen from the stream alone (decoding, routes, LOAD
        and STORE regions) is checked before anything runs.
        """
        stream = self._fetch(insn_addr, insn_count)
        lists: list[list[int]] = [[] for _ in Module]
        for index, entry in enumerate(stream):
            lists[entry.module].append(index)
        timeline = Timeline()
        trace = Trace(self.env.CLOCK_MHZ) if self.trace_enabled else None
        self.queues.restart_clock()
        tokens = self.queues.tokens
        heads = [0] * len(Module)
        while True:
            chosen, entry = -1, None
            for module in _MODULES:
                if heads[module] < len(lists[module]):
                    index = lists[module][heads[module]]
                    if entry is not None and index > chosen:
                        continue
                    candidate = stream[index]
                    if all(tokens[q] for q in candidate.pops):
                        chosen, entry = index, candidate
            if entry is None:
                if any(heads[m] < len(lists[m]) for m in _MODULES):
                    raise DeadlockError(self._deadlock_report(stream, lists, heads))
                break
            heads[entry.module] += 1
            ready, waited = 0, None
            for queue in entry.pops:
                pushed = tokens[queue].popleft()
                if waited is None or pushed > ready:
                    ready, waited = pushed, queue
            try:
                entry.execute()
            except (SimulatorError, DeviceMemoryError) as exc:
                raise type(exc)(f"instruction {chosen} ({entry.kind}): {exc}") from None
            start, end = timeline.place(entry.module, ready, waited, entry.cost)
            for queue in entry.pushes:
                tokens[queue].append(end)
            if trace is not None:
                trace.records.append((chosen, entry.module, entry.kind, start, end))
        stats = empty_stats()
        for entry in stream:
            for key, value in entry.counts:
                stats[key] += value
        timing = timeline.report(self.env.CLOCK_MHZ)
        add_timing(stats, timing)
        stats["runs"] = 1
        merge(self.stats, stats)
        return RunReport(stats, timing, trace)

    # -- fetch and decode ------------------------------------------------------------------
    def _fetch(self, insn_addr: int, insn_count: int) -> list[_Entry]:
        if insn_addr % INSN_BYTES:
            raise SimulatorError(f"instruction address {insn_addr:#x} is not 16-byte aligned")
        words = self.dram.view(insn_addr, insn_count * INSN_BYTES, np.dtype("<u8"))
        if len(self._entries) > _DECODE_CACHE_SIZE:
            self._entries.clear()
        stream = []
        for index, pair in enumerate(map(tuple, words.reshape(-1, 2).tolist())):
            entry = self._entries.get(pair)
            if entry is None:
                entry = self._entries[pair] = self._prepare(index, pair)
            stream.append(entry)
        return stream

    def _prepare(self, index: int, pair: tuple[int, int]) -> _Entry:
        try:
            insn = decode_int(pair[0] | (pair[1] << 64), self.env)
        except ISAError as exc:
            raise ISAError(f"instruction {index}: {exc}") from None
        where = route(index, insn, self.env)
        try:
            counts, execute = self._executor(insn)
        except (SimulatorError, DeviceMemoryError) as exc:
            raise type(exc)(f"instruction {index} ({insn_kind(insn)}): {exc}") from None
        return _Entry(insn, where, self.model.cost(insn), counts, execute)

    def _executor(self, insn: Insn):
        """(counter increments, function running the instruction) for one instruction."""
        if isinstance(insn, MemInsn):
            nbytes = insn.y_size * insn.x_size * self.dram.elem_sizes[insn.memory_type]
            if insn.opcode == Opcode.LOAD:
                counts = ((STAT_OF_TYPE[insn.memory_type], nbytes), ("load_insns", 1))
                return counts, prepare_load(insn, self.srams, self.dram)
            counts = (("out_store_nbytes", nbytes), ("store_insns", 1))
            return counts, prepare_store(insn, self.srams, self.dram)
        if isinstance(insn, GemmInsn):
            steps = 0 if insn.reset_reg else _iterations(insn)
            return (("gemm_counter", steps), ("gemm_insns", 1)), partial(self._gemm.execute, insn)
        if isinstance(insn, AluInsn):
            counts = (("alu_counter", _iterations(insn)), ("alu_insns", 1))
            return counts, partial(self._alu.execute, insn)
        return (("finish_insns", 1),), no_op

    def _deadlock_report(self, stream, lists, heads) -> str:
        lines = ["deadlock: no module can make progress"]
        for module in Module:
            done, total = heads[module], len(lists[module])
            if done == total:
                lines.append(f"  {module.label}: finished ({total} instructions)")
                continue
            index = lists[module][done]
            entry = stream[index]
            missing = [q.label for q in entry.pops if not self.queues.count(q)]
            lines.append(
                f"  {module.label}: waits at instruction {index} ({entry.kind}) for a "
                f"{' and a '.join(missing)} token; {done} of {total} instructions done"
            )
        lines.append(f"  queues: {self.queues.describe()}")
        return "\n".join(lines)


def _iterations(insn: GemmInsn | AluInsn) -> int:
    return insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)
