"""The index arithmetic GEMM and ALU share: micro-ops expanded over their two loop levels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from accel.errors import SimulatorError
from accel.hw.isa import uop_columns

PLAN_CACHE_SIZE = 4096  # distinct instruction shapes remembered before the cache starts over


class PlanCache:
    """Index plans of GEMM / ALU instructions, keyed by everything that shapes them.

    Compiled programs repeat the same few instruction shapes many times, so the index arrays
    are built once per shape and reused.
    """

    def __init__(self) -> None:
        self._plans: dict[tuple, object] = {}

    def get(self, key: tuple, build):
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            plan = self._plans[key] = build()
        return plan


# Iterations (loop steps x micro-ops) whose index arrays one step builds at once. A legal
# instruction can have 16383 x 16383 iterations per micro-op; larger ones run in pieces of this
# size, in their execution order, so memory stays bounded.
CHUNK_ITERATIONS = 1 << 20


def chunks(iter_out: int, iter_in: int, n_uops: int) -> list[tuple[int, int, int, int]]:
    """``(i0, i_count, j0, j_count)`` pieces of the ``iter_out`` x ``iter_in`` loop nest, each
    with at most ``CHUNK_ITERATIONS`` iterations (at least one loop step), in execution order:
    whole rows of the inner loop when they fit, else pieces of one row."""
    row = iter_in * n_uops
    if iter_out * row <= CHUNK_ITERATIONS:
        return [(0, iter_out, 0, iter_in)]
    if row <= CHUNK_ITERATIONS:
        step = CHUNK_ITERATIONS // row
        return [(i, min(step, iter_out - i), 0, iter_in) for i in range(0, iter_out, step)]
    step = max(1, CHUNK_ITERATIONS // n_uops)
    return [
        (i, 1, j, min(step, iter_in - j)) for i in range(iter_out) for j in range(0, iter_in, step)
    ]


def run_in_pieces(insn, words: np.ndarray, execute) -> None:
    """``execute(piece, words, (i0, j0))`` for the pieces of ``insn`` (``chunks``) in execution
    order; nothing for an instruction with no iteration."""
    if not (words.size and insn.iter_out and insn.iter_in):
        return
    pieces = chunks(insn.iter_out, insn.iter_in, words.size)
    if len(pieces) == 1:
        execute(insn, words, (0, 0))
        return
    for i0, ic, j0, jc in pieces:
        execute(replace(insn, iter_out=ic, iter_in=jc), words, (i0, j0))


def shifted_columns(words: np.ndarray, env, insn, start: tuple[int, int]):
    """The micro-ops' (dst, src, wgt) index columns for the piece of ``insn`` whose loops start
    at ``start`` = (i0, j0): each index moved by ``i0 * factor_out + j0 * factor_in``."""
    udst, usrc, uwgt = uop_columns(words, env)
    i0, j0 = start
    if not (i0 or j0):
        return udst, usrc, uwgt
    udst = udst + i0 * insn.dst_factor_out + j0 * insn.dst_factor_in
    usrc = usrc + i0 * insn.src_factor_out + j0 * insn.src_factor_in
    if hasattr(insn, "wgt_factor_out"):
        uwgt = uwgt + i0 * insn.wgt_factor_out + j0 * insn.wgt_factor_in
    return udst, usrc, uwgt


def expand(base: np.ndarray, iter_out: int, iter_in: int, f_out: int, f_in: int) -> np.ndarray:
    """Flat indices ``base[u] + i*f_out + j*f_in`` in execution order (i, then j, then u)."""
    i = np.arange(iter_out, dtype=np.int64).reshape(-1, 1, 1) * f_out
    j = np.arange(iter_in, dtype=np.int64).reshape(1, -1, 1) * f_in
    return (base.reshape(1, 1, -1) + i + j).ravel()


def check_bound(indices: np.ndarray, depth: int, buffer: str) -> None:
    """Raise SimulatorError when an index reaches past the ``depth`` of SRAM ``buffer``."""
    if indices.size and int(indices.max()) >= depth:
        raise SimulatorError(
            f"{buffer} SRAM index {int(indices.max())} is past the end (depth {depth})"
        )


def as_slice(indices: np.ndarray) -> slice | np.ndarray:
    """A slice when ``indices`` are consecutive and ascending (cheaper to index with)."""
    if indices.size and indices[-1] - indices[0] == indices.size - 1:
        if indices.size == 1 or bool((np.diff(indices) == 1).all()):
            return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices
