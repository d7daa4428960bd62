"""Using tuning results at build time (AutoTVM's ``apply_history_best`` convention).

``with accel.tune.apply_history_best("tune.jsonl"):`` makes every ``default_*tiles`` of
``accel.topi`` -- and so ``schedule_*`` without explicit tiles, and graph builds -- return the
best measured tiles the log holds for that operator on that configuration (the rule answers for
anything the log does not hold). ``untuned()`` makes the hand-written rules answer inside its
block, shipped tables included. ``export_table`` writes the best of a log as a table that
``accel/topi/tuned/`` can ship (how ``resnet18.json`` there was made; see docs/tuning.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from accel.env import Environment
from accel.topi import tuning
from accel.tune.log import Record, read
from accel.tune.search import best_record, objective_names

LogSource = str | os.PathLike | Record | Iterable


def _records(logs: Any) -> list[Record]:
    if logs is None:
        return []
    if isinstance(logs, (str, os.PathLike)):
        return read(logs)
    if isinstance(logs, Record):
        return [logs]
    out: list[Record] = []
    for item in logs:
        out.extend(_records(item))
    return out


def best_table(logs: Any, objective: str | Sequence[str] = "cycles") -> dict[tuple, Record]:
    """The best measured record per (configuration id, workload key) of ``logs`` (paths,
    records or lists of them)."""
    objectives = objective_names(objective)
    grouped: dict[tuple, list[Record]] = {}
    for record in _records(logs):
        if record.ok:
            grouped.setdefault(record.key, []).append(record)
    return {key: best_record(records, objectives) for key, records in grouped.items()}


@lru_cache(maxsize=64)
def _config_id(env: Environment) -> str:
    return tuning.config_id(env)


@contextlib.contextmanager
def apply_history_best(logs: Any, objective: str | Sequence[str] = "cycles") -> Iterator[dict]:
    """Inside the block, topi's default tiles are the best in ``logs`` for ``objective``
    (one or several log paths or records). Yields the table ``{(config id, workload key):
    best record}``."""
    table = best_table(logs, objective)

    def lookup(described: dict, env: Environment, _op: Any) -> dict | None:
        record = table.get((_config_id(env), tuning.workload_key(described)))
        return dict(record.tiles) if record is not None else None

    with tuning.dispatch(lookup):
        yield table


@contextlib.contextmanager
def untuned() -> Iterator[None]:
    """Inside the block, topi's hand-written rules answer (no log, no shipped table)."""
    with tuning.dispatch(lambda *_: tuning.RULE):
        yield


def export_table(logs: Any, path: str | os.PathLike, objective="cycles") -> int:
    """Write the best of ``logs`` as a tuned-tiles table (``accel.topi.tuning.dump_table``);
    returns the number of entries."""
    entries = []
    for (config, _key), record in sorted(best_table(logs, objective).items()):
        result = record.result
        entries.append(
            {
                "config": config,
                "workload": record.workload,
                "tiles": record.tiles,
                "task": record.task,
                "cycles": result["cycles"],
                "utilization": round(result["gemm_useful_cycles"] / result["cycles"], 4),
                "energy_pj": round(record.energy_pj or 0.0, 1),
            }
        )
    tuning.dump_table(entries, path)
    return len(entries)
