"""The simulator's counters (docs/isa.md §4, plus cycles and instruction counts)."""

from __future__ import annotations

from accel.hw.modules import Module
from accel.sim.timing import TimingReport

TRAFFIC_COUNTERS = (
    "inp_load_nbytes",
    "wgt_load_nbytes",
    "acc_load_nbytes",
    "uop_load_nbytes",
    "out_store_nbytes",
    "gemm_counter",
    "alu_counter",
)
INSN_COUNTERS = ("load_insns", "store_insns", "gemm_insns", "alu_insns", "finish_insns")
CYCLE_COUNTERS = (
    "cycles",
    "gemm_useful_cycles",
    *(f"{m.label}_{what}_cycles" for m in Module for what in ("busy", "stall")),
)


def empty_stats() -> dict[str, int]:
    """Every counter at zero."""
    return dict.fromkeys((*TRAFFIC_COUNTERS, *INSN_COUNTERS, *CYCLE_COUNTERS, "runs"), 0)


def add_timing(stats: dict[str, int], timing: TimingReport) -> None:
    """Add one run's cycle figures to ``stats``."""
    stats["cycles"] += timing.total_cycles
    stats["gemm_useful_cycles"] += timing.gemm_useful_cycles
    for module, busy in timing.busy.items():
        stats[f"{module}_busy_cycles"] += busy
        stats[f"{module}_stall_cycles"] += timing.stall[module]


def merge(into: dict[str, int], other: dict[str, int]) -> None:
    """Add every counter of ``other`` to ``into``."""
    for key, value in other.items():
        into[key] += value
