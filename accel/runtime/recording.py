"""Recorded instruction streams: a module's streams captured once, replayed with new addresses.

The host code of an accelerator module makes the same runtime calls on every call: its loops
run over constants and its branches test loop variables only (code generation refuses a host
loop that reads or writes data, so no control flow can depend on data). Only the DRAM addresses
of the arguments change from call to call. So the first call runs the JIT path once and the
command queue records, for every stream it runs, the encoded words and a *relocation table*:
which instructions address which argument, at what element offset from the argument's start.
Later calls patch the ``dram_base`` fields of those instructions with one vectorized operation
and hand the words to the simulator -- no per-instruction Python on the host side.

A recording refers to DRAM the queue owns (micro-op kernels, the zero block for padding-only
loads); it is valid only for the queue that made it and while that queue's ``generation`` is
unchanged (a queue bumps it whenever it frees such a block). A configuration change gives
another device and another queue, so recordings never cross configurations.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.hw.isa import field_tables

_PATCHED_KEPT = 4  # address sets whose patched words a run keeps


@dataclass(frozen=True)
class RecordedRun:
    """One stream: its words and which of them address which argument."""

    words: np.ndarray  # (n, 2) uint64, as written to the instruction buffer
    rows: np.ndarray  # instructions whose dram_base addresses an argument
    params: np.ndarray  # the argument each of them addresses
    offsets: np.ndarray  # dram_base - the argument's first element index
    elem_bytes: np.ndarray  # element size of each such instruction's memory type
    counts: Counter  # the queue's per-kind counters for this stream
    check_tokens: bool  # ended by an explicit synchronize (not an automatic flush)
    # The distinct (argument, element size) pairs, which pair each row uses, and each row's
    # first word with its dram_base cleared: a replay computes one base per pair.
    pairs: list[tuple[int, int]] = field(default_factory=list)
    pair_of_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cleared: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    # The patched words (read-only) of the last few argument addresses: a module called again
    # on the same arrays, or on arrays an allocator hands out again, patches nothing.
    patched: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, words, relocs: np.ndarray, counts, check_tokens, env: Environment) -> RecordedRun:
        """The run of ``words`` with relocations ``relocs`` (rows of: row, argument, offset,
        element bytes)."""
        rows, params, offsets, elem_bytes = (relocs[:, i] for i in range(4))
        keys, pair_of_row = np.unique(relocs[:, [1, 3]], axis=0, return_inverse=True)
        shift, mask = _dram_base_field(env)
        cleared = words[rows, 0] & ~np.uint64(mask << shift)
        pairs = [(int(p), int(b)) for p, b in keys]
        return cls(
            words, rows, params, offsets, elem_bytes, counts, check_tokens,
            pairs, pair_of_row.ravel(), cleared,
        )  # fmt: skip


@dataclass
class Recording:
    """Every stream one call of a module ran, in order."""

    queue_id: int  # the serial number of the queue that recorded it
    generation: int
    runs: list[RecordedRun] = field(default_factory=list)

    def words_for(self, run: RecordedRun, addrs: list[int], env: Environment) -> np.ndarray | None:
        """``run``'s words with every argument address patched for ``addrs``; None when an
        argument is not aligned to an element its instructions address (the JIT path then
        reports it)."""
        if not run.rows.size:
            return run.words
        key = tuple(addrs)
        words = run.patched.get(key)
        if words is not None:
            return words
        bases = []
        for param, elem_bytes in run.pairs:
            base, misaligned = divmod(int(addrs[param]), elem_bytes)
            if misaligned:
                return None
            bases.append(base)
        values = np.array(bases, np.int64)[run.pair_of_row] + run.offsets
        shift, mask = _dram_base_field(env)
        if int(values.max()) > mask or int(values.min()) < 0:
            return None
        words = run.words.copy()
        words[run.rows, 0] = run.cleared | (values.astype(np.uint64) << np.uint64(shift))
        words.flags.writeable = False
        if len(run.patched) >= _PATCHED_KEPT:
            del run.patched[next(iter(run.patched))]  # the oldest
        run.patched[key] = words
        return words


class Recorder:
    """Collects the relocations of the streams a queue builds while it records a call."""

    def __init__(self, addrs: list[int], generation: int, queue_id: int, env: Environment):
        self.env = env
        self.param_of = {int(a): i for i, a in enumerate(addrs)}
        self.valid = len(self.param_of) == len(addrs)  # aliased arguments: not recorded
        self.recording = Recording(queue_id, generation)
        self._relocs: list[tuple[int, int, int, int]] = []  # (row, param, offset, elem bytes)

    def note(self, row: int, addr: int, dram_base: int, elem_bytes: int) -> None:
        """Instruction ``row`` of the stream being built addresses DRAM at byte ``addr``."""
        param = self.param_of.get(int(addr))
        if param is None:
            return  # a block the queue owns (zeros for padding): its address does not move
        self._relocs.append((row, param, dram_base - int(addr) // elem_bytes, elem_bytes))

    def end_stream(self, words: np.ndarray, counts: Counter, check_tokens: bool) -> None:
        rel = np.array(self._relocs, np.int64).reshape(-1, 4)
        self.recording.runs.append(RecordedRun.of(words, rel, counts, check_tokens, self.env))
        self._relocs = []


@functools.lru_cache(maxsize=16)  # looked up on every replayed stream
def _dram_base_field(env: Environment) -> tuple[int, int]:
    """(bit offset in the first word, value mask) of the LOAD/STORE dram_base field."""
    f = next(f for f in field_tables(env).mem if f.name == "dram_base")
    assert f.lo + f.width <= 64  # fields never cross the 64-bit words
    return f.lo, (1 << f.width) - 1
