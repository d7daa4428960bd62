"""Tuning logs: one JSON object per line, appended as candidates are measured, so a run that
stops anywhere can be resumed and several runs can share a file.

A record (``docs/tuning.md`` has the full schema)::

    {"version": 1, "config": "<config id>", "workload": {...}, "task": "resnet18.0",
     "tiles": {"oc_blocks": 2, ...}, "status": "ok" | "rejected" | "error",
     "stage": "check" | "build" | "measure", "reason": "...",           # unless ok
     "result": {"cycles": ..., "actions": {...}, "sram": {...}, ...},   # when ok
     "energy_pj": ..., "seconds": ..., "time": <unix time>}

``config`` is ``accel.topi.tuning.config_id(env)``; ``workload`` is
``accel.topi.tuning.workload(op)``. Files from elsewhere are untrusted: every line is checked on
reading and a malformed one raises :class:`~accel.errors.LoadError` naming the file and line,
except a last line cut short by an interrupted write, which is ignored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accel.errors import LoadError
from accel.topi.tuning import workload_key

VERSION = 1
STATUSES = ("ok", "rejected", "error")


@dataclass
class Record:
    """One line of a tuning log."""

    config: str
    workload: dict
    tiles: dict
    status: str
    task: str = ""
    stage: str = ""
    reason: str = ""
    result: dict = field(default_factory=dict)
    energy_pj: float | None = None
    seconds: float = 0.0
    time: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """(config id, workload key): what the record tunes."""
        return self.config, workload_key(self.workload)

    @property
    def candidate(self) -> tuple:
        return tuple(sorted(self.tiles.items()))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cycles(self) -> int | None:
        return self.result.get("cycles") if self.ok else None

    @property
    def sram_bytes(self) -> int | None:
        return self.result.get("sram_bytes") if self.ok else None

    def to_json(self) -> dict[str, Any]:
        out = {
            "version": VERSION,
            "config": self.config,
            "workload": self.workload,
            "task": self.task,
            "tiles": self.tiles,
            "status": self.status,
        }
        if self.ok:
            out["result"] = self.result
            out["energy_pj"] = self.energy_pj
        else:
            out["stage"], out["reason"] = self.stage, self.reason
        out["seconds"] = round(self.seconds, 4)
        out["time"] = round(self.time or time.time(), 3)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Record:
        """Check and read one decoded line; raises LoadError naming ``where``."""
        if not isinstance(data, dict):
            raise LoadError(f"{where}: a record must be a JSON object")
        if data.get("version") != VERSION:
            raise LoadError(f"{where}: unknown record version {data.get('version')!r}")
        for name, kind in (("config", str), ("workload", dict), ("tiles", dict), ("status", str)):
            if not isinstance(data.get(name), kind):
                raise LoadError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
        if data["status"] not in STATUSES:
            raise LoadError(f"{where}: status {data['status']!r} is not one of {STATUSES}")
        tiles = data["tiles"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in tiles.values()):
            raise LoadError(f"{where}: tiles {tiles} must all be integers")
        result = data.get("result", {})
        if data["status"] == "ok":
            cycles = result.get("cycles") if isinstance(result, dict) else None
            if not isinstance(cycles, int) or cycles <= 0:
                raise LoadError(f"{where}: a measured record needs a positive integer cycles")
        return cls(
            config=data["config"],
            workload=data["workload"],
            tiles=tiles,
            status=data["status"],
            task=str(data.get("task", "")),
            stage=str(data.get("stage", "")),
            reason=str(data.get("reason", "")),
            result=result,
            energy_pj=data.get("energy_pj"),
            seconds=float(data.get("seconds", 0.0)),
            time=float(data.get("time", 0.0)),
        )


def read(path: str | os.PathLike) -> list[Record]:
    """Every record of the log at ``path`` (none if the file does not exist)."""
    return list(iter_records(path))


def iter_records(path: str | os.PathLike) -> Iterator[Record]:
    path = Path(path)
    if not path.exists():
        return
    text = path.read_text()
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                return  # a last line cut short by an interrupted write
            raise LoadError(f"{path}:{number}: not JSON ({exc.msg})") from None
        yield Record.from_json(data, f"{path}:{number}")


class LogWriter:
    """Appends records to a log file, one flushed line each (None: keeps them in memory)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self.records: list[Record] = []
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _drop_partial_line(self.path)
            self._file = self.path.open("a")

    def write(self, records: Iterable[Record]) -> None:
        for record in records:
            self.records.append(record)
            if self._file is not None:
                self._file.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _drop_partial_line(path: Path) -> None:
    """Cut a last line left unfinished by an interrupted write (readers ignore it too)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
