"""Hardware design space: configurations swept over an operator or a network, with cycles,
energy and area per point and the Pareto front; and an I/O-only program.

- :func:`grid` makes configurations from a base and axes of values (GEMM block, SRAM sizes, bus
  width, clock, ALU throughput, ...: any configuration key); combinations the instruction set
  cannot encode are left out with the reason.
- :func:`sweep` tunes (or, with ``trials=0``, takes the rule's tiles for) every task at every
  configuration and returns a :class:`SweepPoint` each: total cycles (tasks weighted by their
  ``repeats``), time at the configuration's clock, energy with its breakdown, area, and the
  per-task results.
- :func:`io_task` is the I/O-only program: packed activations loaded into the accumulator SRAM
  and stored back, no compute; its cycles are the transfer floor a layer of that size cannot
  beat, separating transfer from compute.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from accel import te
from accel.env import Environment
from accel.errors import ConfigError
from accel.topi.vector import VectorOp
from accel.tune.energy import EnergyModel
from accel.tune.executors import resolve
from accel.tune.search import dominates
from accel.tune.tasks import Task, activations
from accel.tune.tuner import TuneResult, evaluate, tune


def grid(base: Environment, **axes: Sequence[int]) -> tuple[dict[str, Environment], dict]:
    """Configurations for every combination of ``axes`` (configuration keys -> values) over
    ``base``: ``({name: env}, {name: reason it cannot be built})``. Names list the changed
    keys, e.g. ``"LOG_BLOCK=5,DRAM_BUS_BYTES=16"``."""
    keys = list(axes)
    made, refused = {}, {}
    for values in itertools.product(*(axes[k] for k in keys)):
        changes = dict(zip(keys, values))
        name = ",".join(f"{k}={v}" for k, v in changes.items()) or "base"
        try:
            made[name] = Environment.from_dict({**base.to_dict(), **changes}, name)
        except ConfigError as exc:
            refused[name] = str(exc)
    return made, refused


@dataclass
class SweepPoint:
    """One configuration's figures over the swept tasks."""

    name: str
    env: Environment
    cycles: int
    microseconds: float
    energy_pj: dict[str, float]
    area_mm2: dict[str, float]
    results: list[TuneResult] = field(repr=False, default_factory=list)

    @property
    def utilization(self) -> float:
        useful = sum(r.best.result["gemm_useful_cycles"] * r.task.repeats for r in self.results)
        return useful / self.cycles if self.cycles else 0.0

    def objectives(self) -> dict[str, float]:
        return {
            "cycles": self.cycles,
            "time_us": self.microseconds,
            "energy_uj": self.energy_pj["total"] / 1e6,
            "area_mm2": self.area_mm2["total"],
        }


def sweep(
    configs: Mapping[str, Environment],
    tasks: Callable[[Environment], list[Task]],
    trials: int = 16,
    executor: Any = None,
    workers: int | None = None,
    log: str | None = None,
    energy_model: EnergyModel | None = None,
    progress: bool = False,
) -> list[SweepPoint]:
    """Every configuration of ``configs`` on the tasks ``tasks(env)`` makes; ``trials`` per
    task (0: the hand-written rule's tiles, measured)."""
    model = energy_model or EnergyModel()
    owned = resolve(executor, workers)
    points = []
    try:
        for name, env in configs.items():
            task_list = tasks(env)
            if trials:
                results = tune(
                    task_list,
                    trials=trials,
                    log=log,
                    executor=owned.executor,
                    progress=progress,
                    energy_model=model,
                )
            else:
                results = [_rule_only(t, owned.executor, model) for t in task_list]
            points.append(_point(name, env, results, model))
    finally:
        owned.close()
    return points


def _rule_only(task: Task, executor, model: EnergyModel) -> TuneResult:
    point = task.template.point(task.rule_tiles())
    record = executor.submit(evaluate, task, point, model).result()
    best = record if record.ok else None
    return TuneResult(
        task,
        ("cycles",),
        [record],
        [],
        best,
        [best] if best else [],
        record,
        "rule",
        record.seconds,
        1,
        0,
        1,
    )


def _point(name: str, env: Environment, results: list[TuneResult], model) -> SweepPoint:
    cycles = 0
    actions: dict[str, int] = {}
    for r in results:
        if r.best is None:
            raise ConfigError(f"sweep {name}: no candidate of {r.task} could be built")
        cycles += r.best.result["cycles"] * r.task.repeats
        for key, value in r.best.result["actions"].items():
            actions[key] = actions.get(key, 0) + value * r.task.repeats
    return SweepPoint(
        name,
        env,
        cycles,
        cycles / model.clock(env),
        model.energy(env, actions, cycles),
        model.area(env),
        results,
    )


def pareto_points(
    points: Sequence[SweepPoint], objectives: Sequence[str] = ("time_us", "energy_uj", "area_mm2")
) -> list[SweepPoint]:
    """The points no other point dominates in ``objectives`` (keys of
    :meth:`SweepPoint.objectives`), fastest first."""
    values = [tuple(p.objectives()[o] for o in objectives) for p in points]
    front = [p for p, v in zip(points, values) if not any(dominates(w, v) for w in values)]
    return sorted(front, key=lambda p: p.objectives()[objectives[0]])


def io_task(channels: int, hw: int, env: Environment, name: str = "") -> Task:
    """The I/O-only program on ``channels x hw x hw`` packed int8 activations: loaded into the
    accumulator SRAM and stored back unchanged (tiles: ``VectorTiles``)."""
    x = activations(channels, hw, env)
    x_buf = te.compute(x.shape, lambda *i: x(*i).astype(env.acc_dtype), name="x_buf")
    res = te.compute(x.shape, lambda *i: x_buf(*i).astype(env.out_dtype), name="res")
    return Task(VectorOp([x], [x_buf], [], res), env, name or f"io_{hw}x{hw}_{channels}")
