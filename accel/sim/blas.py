"""How many threads the simulator's matrix products use.

GEMM arithmetic ends in BLAS products (``gemm.py``, ``plan.py``). BLAS libraries pick their own
thread counts; a user comparing against a single-threaded reference, or running several
simulations side by side, wants to fix it. ``Simulator.blas_threads`` (or the environment
variable ``ACCEL_BLAS_THREADS``) sets it for the simulator's own products only, through
threadpoolctl, and leaves the process's setting alone everywhere else. Measured on the 2-core
machine this project is developed on, OpenBLAS already runs products under about a million
multiply-accumulates on one thread, and the batched products of a stream plan are faster with
both cores, so the default is the library's own choice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController

from accel.errors import ConfigError

_controller: ThreadpoolController | None = None


def default_blas_threads() -> int | None:
    """``ACCEL_BLAS_THREADS`` as a thread count, or None (the BLAS library decides)."""
    text = os.environ.get("ACCEL_BLAS_THREADS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"ACCEL_BLAS_THREADS must be a positive integer, not {text!r}")
    return int(text)


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the body with BLAS limited to ``threads`` (None: unchanged)."""
    global _controller
    if threads is None:
        yield
        return
    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=threads, user_api="blas"):
        yield
