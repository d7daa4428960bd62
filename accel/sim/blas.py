"""How many threads the simulator's matrix products use.

GEMM arithmetic ends in BLAS products (``gemm.py``, ``plan.py``). BLAS libraries pick their own
thread counts, which suits one big product on an idle machine and hurts everywhere else: on the
2-core machine this project is developed on, with other work running (a parallel test suite,
a second simulation), OpenBLAS's two threads made whole-network simulations up to ten times
slower than one thread, while on the idle machine two threads gained at most 1.7x on the
largest products. So the simulator runs its own products on **one thread** by default, through
threadpoolctl, and leaves the process's setting alone everywhere else. ``Simulator.blas_threads``
or the environment variable ``ACCEL_BLAS_THREADS`` (a positive integer, or ``default`` for the
library's own choice) changes it.

The limit is set on every run, so it goes straight to the BLAS libraries' own getters and
setters (threadpoolctl's library controllers, found once): threadpoolctl's ``limit`` context
re-inspects every loaded library each time, which cost 20 us a run, a tenth of a small layer's
call. The libraries are found at the first limited run: a BLAS library loaded after that (by
another package) keeps its own thread count, which changes speed, never results.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController

from accel.errors import ConfigError

_libraries: list | None = None


def default_blas_threads() -> int | None:
    """``ACCEL_BLAS_THREADS`` as a thread count (1 when unset), or None for ``default`` (the
    BLAS library decides)."""
    text = os.environ.get("ACCEL_BLAS_THREADS", "").strip()
    if not text:
        return 1
    if text == "default":
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            f"ACCEL_BLAS_THREADS must be a positive integer or 'default', not {text!r}"
        )
    return int(text)


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the body with BLAS limited to ``threads`` (None: unchanged); the previous limits
    come back however the body ends."""
    global _libraries
    if threads is None:
        yield
        return
    if _libraries is None:
        _libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    previous = [library.get_num_threads() for library in _libraries]
    try:
        for library, before in zip(_libraries, previous):
            if before != threads:
                library.set_num_threads(threads)
        yield
    finally:
        for library, before in zip(_libraries, previous):
            if before != threads:
                library.set_num_threads(before)
