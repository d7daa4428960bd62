"""ALU: a whole vector instruction as a few array operations, with in-order semantics.

Every iteration does ``acc[dst] = f(acc[dst], imm or acc[src])``. Read-all-then-write-all is
exact as long as no iteration reads (through ``dst`` or ``src``) a tile that an earlier
iteration of the same instruction wrote. A plan, cached per instruction shape and micro-op
contents, finds the iterations that do and cuts the iteration sequence into the fewest
consecutive chunks without such a hazard inside; chunks then run one after another. The common
case (distinct destinations, sources elsewhere or equal to their destination) is one chunk.

Arithmetic is done in int64 and wrapped to the accumulator width. SHR by a negative amount
shifts left; amounts of the width or more shift everything out (an arithmetic right shift
leaves the sign, a left shift leaves 0), which is the exact mathematical result, wrapped.
"""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.hw.isa import AluInsn, AluOp
from accel.sim.loops import PlanCache, as_slice, check_bound, expand, run_in_pieces, shifted_columns
from accel.sim.state import Srams


def _shr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b >= 0, a >> np.clip(b, 0, 63), a << np.clip(-b, 0, 63))


def _imm32(insn: AluInsn):
    """The immediate as the int32 operand of the native path (SHR: the shift, clamped)."""
    if insn.alu_opcode == AluOp.SHR:
        return min(insn.imm, 31) if insn.imm >= 0 else max(insn.imm, -32)
    return np.int32(insn.imm)


def _native(insn: AluInsn, a: np.ndarray, b, out=None) -> np.ndarray:
    """One ALU step in int32, for every case except a shift by a tensor operand."""
    op = insn.alu_opcode
    if op != AluOp.SHR:
        return _OPS[op](a, b, out=out)
    if b >= 0:  # shifting right by 31 already leaves only the sign
        return np.right_shift(a, np.int32(b), out=out)
    if b == -32:  # everything shifted out
        return np.multiply(a, 0, out=out)
    return np.left_shift(a, np.int32(-b), out=out)


_OPS = {
    AluOp.MIN: np.minimum,
    AluOp.MAX: np.maximum,
    AluOp.ADD: np.add,
    AluOp.MUL: np.multiply,
    AluOp.SHR: _shr,
}


def apply_alu(acc: np.ndarray, insn: AluInsn, dst, src) -> None:
    """``acc[dst] = op(acc[dst], imm or acc[src])`` for ``insn``'s operation, all read before any
    is written (the caller has made sure no element reads what another one writes)."""
    if acc.dtype == np.int32 and (insn.use_imm or insn.alu_opcode != AluOp.SHR):
        # int32 arithmetic wraps by itself; only a tensor shift needs the int64 path.
        b = _imm32(insn) if insn.use_imm else acc[src]
        if isinstance(dst, slice):
            view = acc[dst]
            _native(insn, view, b, out=view)
        else:
            acc[dst] = _native(insn, acc[dst], b)
    else:
        a = acc[dst].astype(np.int64)
        b = np.int64(insn.imm) if insn.use_imm else acc[src].astype(np.int64)
        acc[dst] = _OPS[insn.alu_opcode](a, b).astype(acc.dtype)


class AluPlan:
    """Destination and source indices in execution order, split into hazard-free chunks."""

    __slots__ = ("chunks",)

    def __init__(self, dst: np.ndarray, src: np.ndarray | None, bounds: list[int]):
        self.chunks = [
            (as_slice(dst[lo:hi]), None if src is None else as_slice(src[lo:hi]))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]


class AluUnit:
    """Executes ALU instructions on ``srams``, caching plans."""

    def __init__(self, env: Environment, srams: Srams):
        self.env = env
        self.srams = srams
        self.plans = PlanCache()

    def execute(self, insn: AluInsn, uops: np.ndarray | None = None) -> None:
        """Run one ALU instruction with the micro-ops in SRAM (or ``uops``, its micro-op words,
        when a stream plan supplies them); raises SimulatorError for an SRAM index past the end.
        A huge instruction runs in pieces, in execution order (``loops.chunks``)."""
        words = self.srams.uop[insn.uop_bgn : insn.uop_end] if uops is None else uops
        run_in_pieces(insn, words, self._execute)

    def _execute(self, insn: AluInsn, words: np.ndarray, start: tuple[int, int]) -> None:
        plan = self._plan(insn, words, start)
        for dst, src in plan.chunks:
            apply_alu(self.srams.acc, insn, dst, src)

    def _plan(self, insn: AluInsn, words: np.ndarray, start: tuple[int, int]) -> AluPlan:
        key = (
            start,
            insn.use_imm,
            insn.iter_out,
            insn.iter_in,
            insn.dst_factor_out,
            insn.dst_factor_in,
            insn.src_factor_out,
            insn.src_factor_in,
            words.tobytes(),
        )
        return self.plans.get(key, lambda: self._build(insn, words, start))

    def _build(self, insn: AluInsn, words: np.ndarray, start: tuple[int, int]) -> AluPlan:
        depth = self.env.ACC_BUFF_DEPTH
        udst, usrc, _ = shifted_columns(words, self.env, insn, start)
        loops = (insn.iter_out, insn.iter_in)
        dst = expand(udst, *loops, insn.dst_factor_out, insn.dst_factor_in)
        check_bound(dst, depth, "acc")
        src = None
        if not insn.use_imm:
            src = expand(usrc, *loops, insn.src_factor_out, insn.src_factor_in)
            check_bound(src, depth, "acc")
        return AluPlan(dst, src, chunk_bounds(dst, src, depth))


def chunk_bounds(dst: np.ndarray, src: np.ndarray | None, depth: int) -> list[int]:
    """Cut points of the fewest consecutive chunks with no read-after-write inside."""
    n = dst.size
    order = np.arange(n)
    if int(np.bincount(dst, minlength=depth).max()) <= 1:
        if src is None:
            return [0, n]
        writer = np.full(depth, n)
        writer[dst] = order
        if not (writer[src] < order).any():
            return [0, n]
    # prev[k]: the latest earlier iteration that wrote what iteration k reads (-1 if none).
    prev = _last_write_before(dst, dst)
    if src is not None:
        prev = np.maximum(prev, _last_write_before(dst, src))
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        hazards = np.flatnonzero(prev[start + 1 :] >= start)
        bounds.append(start + 1 + int(hazards[0]) if hazards.size else n)
    return bounds


def _last_write_before(dst: np.ndarray, reads: np.ndarray) -> np.ndarray:
    """For each iteration k, the largest m < k with ``dst[m] == reads[k]``, or -1."""
    n = dst.size
    order = np.arange(n)
    keys = np.sort(dst * n + order)
    pos = np.searchsorted(keys, reads * n + order) - 1
    found = keys[np.maximum(pos, 0)]
    hit = (pos >= 0) & (found // n == reads)
    return np.where(hit, found % n, -1)
