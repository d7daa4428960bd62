"""Where one inference of a program spent its time: per step, host milliseconds, simulated
cycles and GEMM utilization, as records and as a printable table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepProfile:
    """One action of an inference: a step (``where`` "accelerator" or "host") or a transfer
    (``where`` "upload" / "download": packing a tensor into device memory or reading it back).

    ``host_ms`` is wall-clock time on the host (for an accelerator step: the simulation);
    ``cycles`` and ``gemm_cycles`` (useful GEMM cycles) come from the simulator's cycle model,
    0 on the host; ``nodes`` are the graph nodes the step computes."""

    name: str
    where: str
    kind: str
    nodes: tuple[str, ...]
    host_ms: float
    cycles: int = 0
    gemm_cycles: int = 0

    @property
    def utilization(self) -> float:
        """Useful GEMM cycles / cycles (0 without cycles)."""
        return self.gemm_cycles / self.cycles if self.cycles else 0.0


class Profile:
    """The per-step records of one inference (``records``), with totals and a text table."""

    def __init__(self, records: list[StepProfile], clock_mhz: float):
        self.records = list(records)
        self.clock_mhz = clock_mhz

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.records)

    @property
    def gemm_cycles(self) -> int:
        return sum(r.gemm_cycles for r in self.records)

    @property
    def utilization(self) -> float:
        return self.gemm_cycles / self.cycles if self.cycles else 0.0

    def host_ms(self, where: str | None = None) -> float:
        """Host milliseconds of the records at ``where`` (all when None)."""
        return sum(r.host_ms for r in self.records if where in (None, r.where))

    def table(self, host_times: bool = True) -> str:
        """An aligned table, one row per record, then the totals. ``host_times=False`` leaves
        out the host milliseconds (they vary from run to run; the rest does not)."""
        header = ["step", "where", "kind", "nodes"]
        header += ["host ms"] if host_times else []
        header += ["cycles", "share", "GEMM util"]
        total = self.cycles or 1
        rows = [header]
        for r in self.records:
            row = [r.name, r.where, r.kind, str(len(r.nodes))]
            row += [f"{r.host_ms:.2f}"] if host_times else []
            row += [
                f"{r.cycles:,}" if r.cycles else "-",
                f"{100 * r.cycles / total:.1f} %" if r.cycles else "-",
                f"{100 * r.utilization:.1f} %" if r.cycles else "-",
            ]
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        right = {i for i, h in enumerate(header) if h not in ("step", "where", "kind")}
        lines = [
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            ).rstrip()
            for row in rows
        ]
        lines.append(self.summary(host_times))
        return "\n".join(lines)

    def summary(self, host_times: bool = True) -> str:
        """The totals in one or two lines."""
        us = self.cycles / self.clock_mhz
        text = (
            f"total: {self.cycles:,} cycles ({us:,.1f} us at {self.clock_mhz:g} MHz), "
            f"GEMM utilization {100 * self.utilization:.1f} %"
        )
        if host_times:
            text += (
                f"\nhost time: {self.host_ms():.1f} ms (accelerator simulation "
                f"{self.host_ms('accelerator'):.1f} ms, host operators {self.host_ms('host'):.1f} "
                f"ms, transfers {self.host_ms('upload') + self.host_ms('download'):.1f} ms)"
            )
        return text

    def __str__(self) -> str:
        return self.table()

    def to_chrome_trace(self) -> dict:
        """The inference as Chrome trace events: the accelerator steps back to back on the
        simulated clock (track 1), every action on the host's wall clock (track 2)."""
        events = [
            {
                "name": "thread_name",
                "ph": "M",
                "pid": 1,
                "tid": 1,
                "args": {"name": "accelerator (simulated)"},
            },
            {
                "name": "thread_name",
                "ph": "M",
                "pid": 1,
                "tid": 2,
                "args": {"name": "host (wall clock)"},
            },
        ]
        sim_us = host_us = 0.0
        for r in self.records:
            if r.cycles:
                dur = r.cycles / self.clock_mhz
                events.append(_slice(r, 1, sim_us, dur, {"cycles": r.cycles}))
                sim_us += dur
            dur = r.host_ms * 1000
            events.append(_slice(r, 2, host_us, dur, {"where": r.where}))
            host_us += dur
        return {"traceEvents": events, "displayTimeUnit": "ms"}


def _slice(r: StepProfile, tid: int, start: float, dur: float, args: dict) -> dict:
    return {
        "name": r.name,
        "cat": r.kind,
        "ph": "X",
        "pid": 1,
        "tid": tid,
        "ts": start,
        "dur": dur,
        "args": {**args, "nodes": list(r.nodes)},
    }
