"""The per-instruction trace of a run, exportable as Chrome trace-event JSON (Perfetto,
chrome://tracing): one track per module, one slice per instruction."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from accel.hw.modules import Module


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One instruction: its stream index, module, kind and start / end cycles."""

    index: int
    module: Module
    kind: str
    start: int
    end: int


@dataclass
class Trace:
    """The events of one run, in execution order."""

    clock_mhz: int
    # (index, module, kind, start, end) tuples: cheaper to record than events.
    records: list[tuple[int, int, str, int, int]] = field(default_factory=list)

    @property
    def events(self) -> list[TraceEvent]:
        return [TraceEvent(i, Module(m), kind, s, e) for i, m, kind, s, e in self.records]

    def to_chrome_dict(self) -> dict:
        """The trace as a Chrome trace-event object; timestamps in microseconds."""
        us = 1.0 / self.clock_mhz
        meta = [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": int(m), "args": {"name": m.label}}
            for m in Module
        ]
        slices = [
            {
                "name": e.kind,
                "cat": e.module.label,
                "ph": "X",
                "pid": 1,
                "tid": int(e.module),
                "ts": e.start * us,
                "dur": (e.end - e.start) * us,
                "args": {"insn": e.index, "start_cycle": e.start, "end_cycle": e.end},
            }
            for e in self.events
        ]

        return {"traceEvents": meta + slices, "displayTimeUnit": "ns"}

    def to_chrome_json(self, path: str | os.PathLike | None = None) -> str:
        """The Chrome trace-event JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_chrome_dict())
        if path is not None:
            with open(path, "w") as handle:
                handle.write(text)
        return text
