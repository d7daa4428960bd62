"""Plots (matplotlib, optional): Pareto fronts of sweeps and per-layer utilization against a
roofline.

The roofline of a configuration: a layer doing ``M`` multiply-accumulates while moving ``D``
bytes between DRAM and the chip can reach at most ``min(P, B * M / D)`` MACs per cycle, with
``P = BATCH * BLOCK_IN * BLOCK_OUT`` (the GEMM core) and ``B = DRAM_BUS_BYTES``. Each layer is a
point at its operational intensity ``M / D`` and its measured MACs per cycle; the distance to
the roof is what the schedule or the compute module's other work (the epilogue) costs.
"""

from __future__ import annotations

from collections.abc import Sequence

from accel.errors import ConfigError
from accel.tune.tuner import TuneResult


def _pyplot():
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise ConfigError("plots need matplotlib (pip install matplotlib)") from None
    return plt


def plot_pareto(points: Sequence, path: str, x: str = "time_us", y: str = "energy_uj") -> None:
    """Sweep points (``accel.tune.sweep.SweepPoint``) in the ``x`` / ``y`` objective plane,
    the Pareto front joined, each point labelled with its name and area."""
    from accel.tune.sweep import pareto_points  # noqa: PLC0415 - sweep imports the tuner

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for p in points:
        o = p.objectives()
        ax.scatter(o[x], o[y], s=30 + 40 * o["area_mm2"], alpha=0.6)
        ax.annotate(f"{p.name}\n{o['area_mm2']:.2f} mm²", (o[x], o[y]), fontsize=7)
    front = pareto_points(points, (x, y))
    ax.plot([p.objectives()[x] for p in front], [p.objectives()[y] for p in front], "k--", lw=1)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("configurations (marker size: area); dashed: Pareto front")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def roofline_points(results: Sequence[TuneResult]) -> list[dict]:
    """Per result: name, MACs, DRAM bytes, intensity, MACs per cycle, the roof there, and
    GEMM utilization."""
    rows = []
    for r in results:
        env = r.task.env
        actions = r.best.result["actions"]
        macs = actions.get("macs", 0)
        dram = sum(v for k, v in actions.items() if k.startswith("dram_"))
        peak = env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
        intensity = macs / dram if dram else float("inf")
        rows.append(
            {
                "name": str(r.task),
                "macs": macs,
                "dram_bytes": dram,
                "intensity": intensity,
                "macs_per_cycle": macs / r.best.result["cycles"],
                "roof": min(peak, env.DRAM_BUS_BYTES * intensity),
                "utilization": r.best.result["gemm_useful_cycles"] / r.best.result["cycles"],
            }
        )
    return rows


def plot_roofline(results: Sequence[TuneResult], path: str, before: Sequence | None = None):
    """Each layer's MACs per cycle against the roofline of its configuration; with
    ``before`` (results of the untuned rule), arrows from before to after."""
    plt = _pyplot()
    env = results[0].task.env
    peak = env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
    rows = roofline_points(results)
    fig, ax = plt.subplots(figsize=(7, 5))
    lo = min(r["intensity"] for r in rows) / 2
    hi = max(r["intensity"] for r in rows) * 2
    xs = [lo * (hi / lo) ** (i / 100) for i in range(101)]
    ax.plot(xs, [min(peak, env.DRAM_BUS_BYTES * x) for x in xs], "k-", lw=1, label="roofline")
    for r in rows:
        ax.scatter(r["intensity"], r["macs_per_cycle"], s=25)
        ax.annotate(
            f"{r['name']} {r['utilization']:.0%}", (r["intensity"], r["macs_per_cycle"]), fontsize=7
        )
    if before is not None:
        for old, new in zip(roofline_points(before), rows):
            ax.annotate(
                "",
                (new["intensity"], new["macs_per_cycle"]),
                (old["intensity"], old["macs_per_cycle"]),
                arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8},
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs per DRAM byte")
    ax.set_ylabel("MACs per cycle")
    ax.set_title(f"layers against the roofline of {env.name}\n(labels: GEMM utilization)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
