"""The index arithmetic GEMM and ALU share: micro-ops expanded over their two loop levels."""

from __future__ import annotations

import numpy as np

from accel.errors import SimulatorError

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
