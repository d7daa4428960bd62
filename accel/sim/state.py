"""The simulator's on-chip state: the four SRAMs and the four dependency-token queues.

Input and weight SRAMs hold their integer values as floating point (float32 when the element
width is at most 16 bits, float64 otherwise): those values are exact, and GEMM can hand the
arrays straight to BLAS. Each of those two SRAMs has one extra all-zero element past its depth,
which GEMM uses to pad uneven reductions; instructions can never address it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.errors import SimulatorError
from accel.hw.modules import Queue

_INT_DTYPES = {8: np.int8, 16: np.int16, 32: np.int32}


def int_dtype(bits: int, what: str) -> np.dtype:
    """The numpy integer type of ``bits``-wide values; the simulator models 8, 16 and 32."""
    if bits not in _INT_DTYPES:
        raise SimulatorError(f"the simulator supports 8, 16 or 32-bit {what}, not {bits}-bit")
    return np.dtype(_INT_DTYPES[bits])


def value_float_dtype(bits: int) -> np.dtype:
    """A float type that holds every ``bits``-wide integer exactly."""
    return np.dtype(np.float32 if bits <= 16 else np.float64)


class Srams:
    """The micro-op, input, weight and accumulator SRAMs of one configuration.

    A stream plan may leave its final input, weight and accumulator contents as *pending row
    copies* (:meth:`defer`) rather than writing them: when the same plan runs next, its own
    copies replace them, so they are never written at all. Reading an SRAM array through its
    property (``inp``, ``wgt``, ``acc``, ``uop``) makes pending copies first, so read the arrays
    through the properties after every run: a reference kept from before a run does not see
    what the run left pending, and a write through it may be overwritten when the copies are
    made.
    """

    def __init__(self, env: Environment):
        self.env = env
        self.inp_dtype = int_dtype(env.INP_WIDTH, "inputs")
        self.wgt_dtype = int_dtype(env.WGT_WIDTH, "weights")
        self.acc_dtype = int_dtype(env.ACC_WIDTH, "accumulators")
        self.out_dtype = int_dtype(env.OUT_WIDTH, "outputs")
        self._arrays = {
            "uop": np.zeros(env.UOP_BUFF_DEPTH, dtype=np.uint32),
            "inp": np.zeros(
                (env.INP_BUFF_DEPTH + 1, env.BATCH, env.BLOCK_IN),
                value_float_dtype(env.INP_WIDTH),
            ),
            "wgt": np.zeros(
                (env.WGT_BUFF_DEPTH + 1, env.BLOCK_OUT, env.BLOCK_IN),
                value_float_dtype(env.WGT_WIDTH),
            ),
            "acc": np.zeros((env.ACC_BUFF_DEPTH, env.BATCH, env.BLOCK_OUT), dtype=self.acc_dtype),
        }
        # (owner, copies): row copies (SRAM name, rows, source array, source rows) not yet made.
        self._pending: tuple[object, list[tuple]] | None = None
        # Bumped by every weight load, so GEMM can reuse weight matrices it gathered before.
        self.wgt_version = 0
        self.depths = {
            "uop": env.UOP_BUFF_DEPTH,
            "inp": env.INP_BUFF_DEPTH,
            "wgt": env.WGT_BUFF_DEPTH,
            "acc": env.ACC_BUFF_DEPTH,
        }

    @property
    def uop(self) -> np.ndarray:
        return self._array("uop")

    @property
    def inp(self) -> np.ndarray:
        return self._array("inp")

    @property
    def wgt(self) -> np.ndarray:
        return self._array("wgt")

    @property
    def acc(self) -> np.ndarray:
        return self._array("acc")

    def _array(self, name: str) -> np.ndarray:
        if self._pending is not None:
            self.flush()
        return self._arrays[name]

    def defer(self, owner: object, copies: list[tuple]) -> None:
        """Leave ``copies`` -- ``(sram name, rows, source, source rows)``: ``sram[rows] =
        source[source rows]`` -- to be made when an SRAM is next read. Pending copies that
        ``owner`` left earlier are replaced (the owner, a plan, writes the same rows again);
        anyone else's are made first. Until this call, the earlier copies stay pending, so a
        run interrupted before it leaves the SRAMs as the last complete run left them."""
        if self._pending is not None and self._pending[0] is not owner:
            self.flush()
        self._pending = (owner, copies)

    def pending_from(self, owner: object) -> bool:
        """Whether the pending copies are ``owner``'s."""
        return self._pending is not None and self._pending[0] is owner

    def pending_source(self, owner: object, name: str) -> np.ndarray | None:
        """The array ``owner``'s pending copy into SRAM ``name`` reads (None if there is none):
        the owner must not write it while the copy is pending."""
        if not self.pending_from(owner):
            return None
        for sram, _rows, source, _source_rows in self._pending[1]:
            if sram == name:
                return source
        return None

    def unflushed(self, name: str) -> np.ndarray:
        """SRAM ``name`` without making pending copies first: for a plan run that reads none
        of its contents from before the run (its shape, or rows no pending copy writes)."""
        return self._arrays[name]

    def flush(self) -> None:
        """Make the pending copies. They stay pending until all are made, so an interrupted
        flush is completed by the next access (each copy can be made twice)."""
        if self._pending is None:
            return
        for name, rows, source, source_rows in self._pending[1]:
            target = self._arrays[name]
            if isinstance(rows, slice) and source.dtype == target.dtype:
                np.take(source, source_rows, axis=0, out=target[rows])  # one pass
            else:
                target[rows] = source[source_rows]
        self._pending = None


_LABELS = [q.label for q in Queue]  # in queue order (looked up on every run)


@dataclass
class TokenQueues:
    """The four dependency queues. Each token remembers the cycle it was pushed at.

    Tokens persist from one run to the next; at the start of a run they are all available at
    cycle 0 of that run.
    """

    tokens: list[deque] = field(default_factory=lambda: [deque() for _ in Queue])

    def count(self, queue: Queue) -> int:
        return len(self.tokens[queue])

    def push(self, queue: Queue, cycle: int) -> None:
        self.tokens[queue].append(cycle)

    def pop(self, queue: Queue) -> int:
        return self.tokens[queue].popleft()

    def counts(self) -> dict[str, int]:
        return {label: len(tokens) for label, tokens in zip(_LABELS, self.tokens)}

    def set_counts(self, counts: dict[str, int]) -> None:
        """Replace the queue contents by ``counts`` tokens available at cycle 0."""
        self.tokens[:] = [deque([0] * counts.get(label, 0)) for label in _LABELS]

    def restart_clock(self) -> None:
        for q in Queue:
            self.tokens[q] = deque([0] * len(self.tokens[q]))

    def describe(self) -> str:
        return " ".join(f"{label}={n}" for label, n in self.counts().items())
