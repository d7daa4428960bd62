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

from collections import deque
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from accel.env import Environment
from accel.errors import DeadlockError, DeviceMemoryError, ISAError, SimulatorError
from accel.hw.isa import (
    AluInsn,
    GemmInsn,
    Insn,
    MemInsn,
    MemType,
    Opcode,
    decode_int,
    field_tables,
)
from accel.hw.memory import DeviceMemory
from accel.hw.modules import Module, Queue, insn_kind
from accel.sim.alu import AluUnit
from accel.sim.blas import blas_threads, default_blas_threads
from accel.sim.dispatch import Route, route
from accel.sim.gemm import GemmUnit
from accel.sim.load import STAT_OF_TYPE, no_op, prepare_load
from accel.sim.plan import DATA_TYPES, NotTranslated, StreamProgram, translate
from accel.sim.state import Srams, TokenQueues
from accel.sim.stats import add_timing, empty_stats, merge
from accel.sim.store import prepare_store
from accel.sim.timing import CycleModel, Timeline, TimingReport
from accel.sim.trace import Trace

INSN_BYTES = 16
_MODULES = tuple(int(m) for m in Module)  # plain ints: iterating the enum is slow
_DECODE_CACHE_SIZE = 1 << 16
_RECENT_KEYS = 4  # streams whose plan keys are remembered by their words
_PLAN_CACHE_SIZE = 256  # distinct streams remembered before the cache starts over
_PLANS_PER_STREAM = 16  # micro-op variants of one stream remembered
# memory type (a 3-bit field) -> whether its DRAM address comes from a program's arguments
_IS_DATA_TYPE = np.array([t in DATA_TYPES for t in range(8)])


@dataclass(frozen=True)
class _Schedule:
    """What a stream does regardless of data: execution order, timing, counters, trace."""

    order: list[int]
    timing: TimingReport
    stats: dict[str, int]
    records: tuple
    end_tokens: dict[str, int]


@dataclass
class _StreamFamily:
    """The plans of one stream (its words, data addresses aside, and tokens), by the bytes of
    the micro-ops it loads."""

    uop_positions: np.ndarray  # DRAM byte positions of those micro-ops
    plans: dict[bytes, _CachedStream] = field(default_factory=dict)


@dataclass(frozen=True)
class _CachedStream:
    schedule: _Schedule
    program: StreamProgram | None  # None: interpreted every time (see plan.NotTranslated)


class _Columns:
    """What the plan key needs from every instruction's first 64-bit word, read for a whole
    stream at once (no LOAD/STORE field crosses into the second word): the low bits holding
    opcode and memory type index three tables -- whether the instruction addresses DRAM,
    whether it loads micro-ops, and the mask that clears a relocatable DRAM address -- and the
    DRAM address field itself."""

    def __init__(self, env: Environment):
        fields = {f.name: f for f in field_tables(env).mem}
        op, kind, base = fields["opcode"], fields["memory_type"], fields["dram_base"]
        assert max(op.lo + op.width, kind.lo + kind.width, base.lo + base.width) <= 64
        self.low_mask = np.uint64((1 << max(op.lo + op.width, kind.lo + kind.width)) - 1)
        code = np.arange(int(self.low_mask) + 1)
        opcode = (code >> op.lo) & ((1 << op.width) - 1)
        mem_type = (code >> kind.lo) & ((1 << kind.width) - 1)
        self.is_mem = (opcode == Opcode.LOAD) | (opcode == Opcode.STORE)
        self.is_uop_load = (opcode == Opcode.LOAD) & (mem_type == MemType.UOP)
        relocatable = self.is_mem & _IS_DATA_TYPE[mem_type & 7]
        all_ones = np.uint64((1 << 64) - 1)
        cleared = all_ones ^ np.uint64(((1 << base.width) - 1) << base.lo)
        self.keep = np.where(relocatable, cleared, all_ones).astype(np.uint64)
        self.base_shift = np.uint64(base.lo)
        self.base_mask = np.uint64((1 << base.width) - 1)


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

    Attributes:
        use_plans: run repeated streams from their cached plan (``accel/sim/plan.py``, the
            default); False interprets every run instruction by instruction (the reference
            the plans are tested against).
        blas_threads: threads for the simulator's matrix products (default 1, or
            ``ACCEL_BLAS_THREADS``; None: the BLAS library's choice; see ``accel/sim/blas.py``).
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
        self._plans: dict[bytes, _StreamFamily] = {}
        self._recent_keys: list[tuple] = []  # (words, tokens, _plan_key), a few, newest last
        self.use_plans = True
        self.blas_threads = default_blas_threads()
        self._columns = _Columns(env)

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
        instruction index. The whole stream is decoded, checked and scheduled before anything
        runs, so a stream refused for any of these reasons changes no state.

        A stream seen before (the same words except for data addresses, the same micro-ops
        loaded, the same tokens waiting) reuses its schedule, timing and translated plan
        (``accel/sim/plan.py``) while the micro-ops it inherited from earlier streams are
        unchanged; only the array work runs again.
        """
        words = self._words(insn_addr, insn_count)
        if not self.use_plans:
            stream = self._fetch_words(words)
            schedule = self._schedule(stream)
            with blas_threads(self.blas_threads):
                self._interpret(stream, schedule.order)
            return self._finish(schedule)
        tokens = tuple(self.queues.count(q) for q in Queue)
        key, dram_base, uop_rows = self._recent_plan_key(words, tokens)
        family = self._plans.get(key)
        if family is None:
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            family = self._plans[key] = _StreamFamily(self._uop_positions(words[uop_rows]))
        uop_bytes = self.dram.data[family.uop_positions].tobytes()
        cached = family.plans.get(uop_bytes)
        if cached is None:
            stream = self._fetch_words(words)
            schedule = self._schedule(stream)
            try:
                program = translate(
                    [e.insn for e in stream],
                    schedule.order,
                    dram_base,
                    self.env,
                    self.srams,
                    self.dram,
                )
            except NotTranslated:
                program = None
            cached = _CachedStream(schedule, program)
            if len(family.plans) >= _PLANS_PER_STREAM:
                family.plans.clear()
            family.plans[uop_bytes] = cached
        schedule = cached.schedule
        with blas_threads(self.blas_threads):
            if cached.program is None or not cached.program.run(dram_base):
                self._interpret(self._fetch_words(words), schedule.order)
        return self._finish(schedule)

    def plans(self) -> list[StreamProgram]:
        """The cached plans of the streams seen (for inspection: ``plan.steps`` lists the array
        operations a run does)."""
        return [
            cached.program
            for family in self._plans.values()
            for cached in family.plans.values()
            if cached.program is not None
        ]

    def _finish(self, schedule: _Schedule) -> RunReport:
        """Commit a run's tokens and counters; its report."""
        self.queues.set_counts(schedule.end_tokens)
        stats = dict(schedule.stats)
        merge(self.stats, stats)
        trace = None
        if self.trace_enabled:
            trace = Trace(self.env.CLOCK_MHZ)
            trace.records.extend(schedule.records)
        return RunReport(stats, schedule.timing, trace)

    def _words(self, insn_addr: int, insn_count: int) -> np.ndarray:
        if insn_addr % INSN_BYTES:
            raise SimulatorError(f"instruction address {insn_addr:#x} is not 16-byte aligned")
        return self.dram.view(insn_addr, insn_count * INSN_BYTES, np.dtype("<u8")).reshape(-1, 2)

    def _recent_plan_key(self, words: np.ndarray, tokens: tuple) -> tuple:
        """:meth:`_plan_key`, remembered for the last few streams run (words and tokens): a
        stream run again is compared byte for byte, not masked again. Compared, not looked up:
        hashing the words of a long stream (100 KB for 6,400 instructions) costs 20 us a run,
        comparing them a tenth of that (the key found is hashed once, then cached)."""
        raw = words.tobytes()
        for recent_raw, recent_tokens, found in reversed(self._recent_keys):
            if recent_tokens == tokens and recent_raw == raw:
                return found
        found = self._plan_key(words, tokens)
        found[1].flags.writeable = False  # shared by the runs that find it here
        if len(self._recent_keys) >= _RECENT_KEYS:
            del self._recent_keys[0]  # the oldest
        self._recent_keys.append((raw, tokens, found))
        return found

    def _plan_key(self, words: np.ndarray, tokens: tuple) -> tuple[bytes, np.ndarray, np.ndarray]:
        """The stream's words with data addresses masked out and the tokens waiting; every
        instruction's DRAM address (0 where it has none); which instructions load micro-ops."""
        c = self._columns
        lo = words[:, 0]
        code = (lo & c.low_mask).astype(np.intp)
        is_mem = c.is_mem[code]
        dram_base = ((lo >> c.base_shift) & c.base_mask).astype(np.int64)
        dram_base[~is_mem] = 0
        masked = words.copy()
        masked[:, 0] &= c.keep[code]
        uops = c.is_uop_load[code]
        return masked.tobytes() + np.array(tokens, np.int64).tobytes(), dram_base, uops

    def _uop_positions(self, rows: np.ndarray) -> np.ndarray:
        """The DRAM byte positions the micro-op loads ``rows`` read (out-of-range rows read
        nothing here; decoding refuses them). Micro-op loads are not relocated, so a stream's
        key fixes these positions; their bytes pick the plan."""
        insns = []
        for pair in map(tuple, rows.tolist()):  # decoded instructions are cached by their words
            entry = self._entries.get(pair)
            insns.append(entry.insn if entry else decode_int(pair[0] | (pair[1] << 64), self.env))
        size = self.dram.elem_sizes[MemType.UOP]
        spans = []
        for insn in insns:
            for y in range(insn.y_size):
                start = (insn.dram_base + y * insn.x_stride) * size
                end = start + insn.x_size * size
                if 0 <= start and end <= self.dram.size:
                    spans.append(np.arange(start, end, dtype=np.int64))
        return np.concatenate(spans) if spans else np.zeros(0, np.int64)

    def _schedule(self, stream: list[_Entry]) -> _Schedule:
        """The order the modules run the stream in, its timing, counters and trace records.

        Runs the token protocol on copies of the queues: nothing executes and no state changes,
        so a deadlock is reported before any instruction has run.
        """
        lists: list[list[int]] = [[] for _ in Module]
        for index, entry in enumerate(stream):
            lists[entry.module].append(index)
        timeline = Timeline()
        tokens = [deque([0] * self.queues.count(q)) for q in Queue]
        heads = [0] * len(Module)
        order: list[int] = []
        records: list[tuple] = []
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
                    raise DeadlockError(self._deadlock_report(stream, lists, heads, tokens))
                break
            heads[entry.module] += 1
            ready, waited = 0, None
            for queue in entry.pops:
                pushed = tokens[queue].popleft()
                if waited is None or pushed > ready:
                    ready, waited = pushed, queue
            start, end = timeline.place(entry.module, ready, waited, entry.cost)
            for queue in entry.pushes:
                tokens[queue].append(end)
            order.append(chosen)
            records.append((chosen, entry.module, entry.kind, start, end))
        stats = empty_stats()
        for entry in stream:
            for key, value in entry.counts:
                stats[key] += value
        timing = timeline.report(self.env.CLOCK_MHZ)
        add_timing(stats, timing)
        stats["runs"] = 1
        end_tokens = {q.label: len(tokens[q]) for q in Queue}
        return _Schedule(order, timing, stats, tuple(records), end_tokens)

    def _interpret(self, stream: list[_Entry], order: list[int]) -> None:
        """Run the instructions one by one in schedule order (when a plan cannot be used)."""
        self.srams.flush()  # prepared loads and stores hold views of the SRAM arrays
        for index in order:
            entry = stream[index]
            try:
                entry.execute()
            except (SimulatorError, DeviceMemoryError) as exc:
                raise type(exc)(f"instruction {index} ({entry.kind}): {exc}") from None

    # -- fetch and decode ------------------------------------------------------------------
    def _fetch(self, insn_addr: int, insn_count: int) -> list[_Entry]:
        return self._fetch_words(self._words(insn_addr, insn_count))

    def _fetch_words(self, words: np.ndarray) -> list[_Entry]:
        """Decode and check every instruction. Raises SimulatorError for an instruction after
        FINISH: the host regains control at FINISH, so hardware would never run it."""
        if len(self._entries) > _DECODE_CACHE_SIZE:
            self._entries.clear()
        stream = []
        finish = None
        for index, pair in enumerate(map(tuple, words.tolist())):
            entry = self._entries.get(pair)
            if entry is None:
                entry = self._entries[pair] = self._prepare(index, pair)
            if finish is not None:
                raise SimulatorError(
                    f"instruction {index} ({entry.kind}) follows FINISH (instruction {finish}); "
                    "the host regains control at FINISH, so it would never run: end the "
                    "stream with FINISH"
                )
            if entry.kind == "FINISH":
                finish = index
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
            nbytes = insn.y_size * insn.x_size * _counted_bytes(self.dram, insn.memory_type)
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

    def _deadlock_report(self, stream, lists, heads, tokens) -> str:
        lines = ["deadlock: no module can make progress"]
        for module in Module:
            done, total = heads[module], len(lists[module])
            if done == total:
                lines.append(f"  {module.label}: finished ({total} instructions)")
                continue
            index = lists[module][done]
            entry = stream[index]
            missing = [q.label for q in entry.pops if not tokens[q]]
            lines.append(
                f"  {module.label}: waits at instruction {index} ({entry.kind}) for a "
                f"{' and a '.join(missing)} token; {done} of {total} instructions done"
            )
        queues = " ".join(f"{q.label}={len(tokens[q])}" for q in Queue)
        lines.append(f"  queues: {queues}")
        return "\n".join(lines)


def _counted_bytes(dram: DeviceMemory, mem_type: MemType) -> int:
    """Bytes one element adds to its load or store counter. An ACC_8BIT element is one int8
    tile in DRAM, but the original simulator counts it as the accumulator tile it fills, and
    so does this one (docs/isa.md §4)."""
    if mem_type == MemType.ACC_8BIT:
        return dram.elem_sizes[MemType.ACC]
    return dram.elem_sizes[mem_type]


def _iterations(insn: GemmInsn | AluInsn) -> int:
    return insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)
