"""Where candidates are measured: any ``concurrent.futures.Executor``.

:func:`resolve` turns what a caller gives into an executor and says whether the tuner owns it
(and shuts it down):

- ``None`` or ``"processes"``: a ``ProcessPoolExecutor`` of ``workers`` processes (default:
  the CPU count), the default;
- ``"serial"``: :class:`SerialExecutor`, everything in the calling process;
- an address such as ``"tcp://10.0.0.5:8786"``: a Dask ``distributed`` cluster's scheduler;
  the tuner connects a client and submits to it;
- a Dask ``distributed.Client`` (anything with ``get_executor()``): submits to it directly
  (:class:`DaskExecutor`; the client's own ``get_executor()`` took about 4 s per call here, a
  direct submit 0.1 s);
- any other ``concurrent.futures.Executor``: used as it is (e.g. Ray's
  ``ray.util.multiprocessing`` pool wrapped by the caller, or a thread pool).

Results do not depend on the executor: the tuner submits fixed-size batches, waits for a whole
batch and reads its results in submission order.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any


class SerialExecutor(Executor):
    """Runs each submitted call at once, in the calling process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


class DaskExecutor(Executor):
    """Submits to a Dask ``distributed.Client``; each call is impure (never deduplicated)."""

    def __init__(self, client: Any):
        self.client = client

    def submit(self, fn, /, *args, **kwargs):
        return self.client.submit(fn, *args, pure=False, **kwargs)


class _Owned:
    """An executor the tuner made, with what to close when done."""

    def __init__(self, executor: Executor, closers: list):
        self.executor = executor
        self.closers = closers

    def close(self) -> None:
        for close in self.closers:
            close()


def resolve(executor: Any = None, workers: int | None = None) -> _Owned:
    """The executor to measure on (see the module docstring)."""
    if executor is None or executor == "processes":
        pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1)
        return _Owned(pool, [lambda: pool.shutdown(wait=True, cancel_futures=True)])
    if executor == "serial":
        return _Owned(SerialExecutor(), [])
    if isinstance(executor, str):
        from distributed import Client  # noqa: PLC0415 - optional dependency

        client = Client(executor)
        return _Owned(DaskExecutor(client), [client.close])
    if hasattr(executor, "get_executor"):
        return _Owned(DaskExecutor(executor), [])
    if isinstance(executor, Executor):
        return _Owned(executor, [])
    raise TypeError(
        f"executor must be None, 'processes', 'serial', a scheduler address, a Dask Client or a "
        f"concurrent.futures.Executor, not {executor!r}"
    )
