"""``accel.tune.tune``: find the best tiles of operators by measuring candidates.

For each task the tuner

1. enumerates the template's space and rejects, before anything is built, candidates whose
   threads cannot share the tiles or whose tiles cannot fit an SRAM (``Template.check``), and
   those the analytic predictor puts beyond ``prune`` times its best prediction (hopeless
   candidates, e.g. one-column tiles, that would take seconds each to build); the reasons are
   kept in :attr:`TuneResult.rejected`;
2. reads the log: candidates already there (from an earlier, possibly interrupted, run) are
   not measured again and count toward ``trials``;
3. measures the hand-written rule's tiles first (the untuned default, so that the result is
   never worse), then asks the strategy for batches (exhaustive when the remaining candidates
   fit in ``trials``, model-guided otherwise) and measures each batch on the executor, logging
   every result (measured figures, or the stage and reason a candidate failed at);
4. returns the best measured record for the objective(s) and, for several objectives, the
   Pareto front.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from accel.env import get_env
from accel.errors import AccelError
from accel.tune.energy import EnergyModel
from accel.tune.executors import resolve
from accel.tune.log import LogWriter, Record, read
from accel.tune.measure import build_candidate, timing_run
from accel.tune.predict import predict, traffic
from accel.tune.search import (
    STRATEGIES,
    Evolutionary,
    Exhaustive,
    Guided,
    best_record,
    objective_names,
    pareto_front,
)
from accel.tune.tasks import Task

DEFAULT_TRIALS = 64
DEFAULT_BATCH = 8
DEFAULT_PRUNE = 2.0


@dataclass
class TuneResult:
    """What tuning one task found.

    ``records``: every measured or failed candidate of the task (resumed ones included);
    ``rejected``: ``(tiles, stage, reason)`` of candidates refused before building;
    ``best``: the best measured record for the objectives; ``front``: the Pareto front (the
    best alone for one objective); ``rule``: the record of the hand-written rule's tiles.
    """

    task: Task
    objectives: tuple[str, ...]
    records: list[Record]
    rejected: list[tuple[dict, str, str]]
    best: Record | None
    front: list[Record]
    rule: Record | None
    strategy: str
    seconds: float
    measured_now: int = 0
    space_size: int = 0
    candidates: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def best_tiles(self) -> Any:
        """The best tiles as the operator's tiles dataclass (None if nothing was measured)."""
        return self.task.template.tiles(self.best.tiles) if self.best else None

    @property
    def speedup(self) -> float:
        """Rule cycles over best cycles."""
        if not (self.best and self.rule and self.rule.ok):
            return 1.0
        return self.rule.cycles / self.best.cycles

    def summary(self, times: bool = True) -> str:
        """The search in a line, then the rule's and the best records (``times``: with the
        host seconds the search took)."""
        took = f" in {self.seconds:.1f} s" if times else ""
        lines = [
            f"{self.task}: {self.space_size} points, {self.candidates} candidates after checks "
            f"and pruning, {len(self.records)} measured ({self.measured_now} now, "
            f"{self.strategy}){took}"
        ]
        if self.rule is not None and self.rule.ok:
            lines.append(f"  rule  {self.rule.tiles}: {_figures(self.rule)}")
        for record in self.front:
            lines.append(f"  best  {record.tiles}: {_figures(record)}")
        return "\n".join(lines)


def _figures(record: Record) -> str:
    r = record.result
    util = r["gemm_useful_cycles"] / r["cycles"]
    return (
        f"{r['cycles']:,} cycles, {util:.1%} GEMM, {record.energy_pj / 1e6:.2f} uJ, "
        f"{r['sram_bytes']:,} B SRAM"
    )


def evaluate(task: Task, point: dict, model: EnergyModel) -> Record:
    """Build and time one candidate of ``task`` (run by the executor's workers). A failure
    the user's configuration can cause (AccelError) is a *rejected* record naming the stage;
    anything else an *error* record with the traceback's last line."""
    template = task.template
    tiles = template.tiles(point)
    base = {
        "config": task.config,
        "workload": task.workload,
        "tiles": dict(point),
        "task": str(task),
    }
    start = time.perf_counter()
    stage = "build"
    try:
        module = build_candidate(template, task.op, task.env, tiles, "candidate")
        stage = "measure"
        measured = timing_run(module, task.what_if)
    except AccelError as exc:
        return Record(
            **base,
            status="rejected",
            stage=stage,
            reason=f"{type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:  # a bug: keep tuning, keep the evidence
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Record(
            **base, status="error", stage=stage, reason=last, seconds=time.perf_counter() - start
        )
    result = measured.to_json()
    result["sram_bytes"] = _sram_bytes(task, result["sram"])
    energy = model.energy(task.env, measured.actions, measured.cycles)
    return Record(
        **base,
        status="ok",
        result=result,
        energy_pj=energy["total"],
        seconds=time.perf_counter() - start,
    )


def _sram_bytes(task: Task, used: dict[str, int]) -> int:
    env = task.env
    elem = {
        env.inp_scope: env.INP_ELEM_BYTES,
        env.wgt_scope: env.WGT_ELEM_BYTES,
        env.acc_scope: env.ACC_ELEM_BYTES,
    }
    return sum(tiles * elem.get(scope, 0) for scope, tiles in used.items())


def tune(
    target: Any,
    objective: str | Sequence[str] = "cycles",
    trials: int | None = DEFAULT_TRIALS,
    log: str | None = "tune.jsonl",
    executor: Any = None,
    strategy: str = "auto",
    *,
    workers: int | None = None,
    batch: int = DEFAULT_BATCH,
    prune: float | None = DEFAULT_PRUNE,
    seed: int = 0,
    progress: bool = True,
    energy_model: EnergyModel | None = None,
) -> TuneResult | list[TuneResult]:
    """Tune ``target``: a :class:`~accel.tune.tasks.Task`, a topi declaration (on the current
    configuration), or a list of them (then a list of results).

    Args:
        objective: ``"cycles"``, ``"energy"``, ``"sram"`` (bytes of SRAM used) or a tuple of
            them (best: lexicographic; ``front``: the Pareto front).
        trials: candidates to measure per task (those already in the log count); None for
            every candidate.
        log: the JSON-lines log to append to and resume from (None: keep nothing).
        executor: where to measure (see ``accel.tune.executors.resolve``); default: a pool of
            ``workers`` processes.
        strategy: ``"auto"`` (exhaustive when the candidates fit in ``trials``, else
            ``"guided"``), ``"exhaustive"``, ``"guided"`` or ``"evolutionary"``.
        batch: candidates per batch (fixed, so results do not depend on the executor).
        prune: reject candidates predicted slower than ``prune`` x the best prediction
            (None: keep all).
        energy_model: energies and areas (default: ``EnergyModel()``, 45 nm at the
            configuration's clock).
    """
    objectives = objective_names(objective)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    targets = target if isinstance(target, (list, tuple)) else [target]
    tasks = [t if isinstance(t, Task) else Task(t, get_env()) for t in targets]
    model = energy_model or EnergyModel()
    owned = resolve(executor, workers)
    try:
        with LogWriter(log) as writer:
            results = [
                _tune_task(
                    task,
                    objectives,
                    trials,
                    writer,
                    owned.executor,
                    strategy,
                    batch,
                    prune,
                    seed,
                    progress,
                    model,
                )
                for task in tasks
            ]
    finally:
        owned.close()
    return results if isinstance(target, (list, tuple)) else results[0]


def _tune_task(
    task, objectives, trials, writer, executor, strategy, batch, prune, seed, progress, model
) -> TuneResult:
    start = time.perf_counter()
    template = task.template
    space = template.space(task.op, task.env)
    valid, rejected, predicted = _candidates(task, space, objectives, prune, model)
    earlier = [r for r in _earlier(writer) if r.key == (task.config, task.key)]
    budget = len(valid) if trials is None else trials
    chosen = strategy
    if strategy == "auto":
        chosen = "exhaustive" if len(valid) <= budget else "guided"
    if chosen == "exhaustive":
        strat = Exhaustive(space, valid, objectives)
    elif chosen == "guided":
        strat = Guided(space, valid, objectives, predicted)
    else:
        strat = Evolutionary(space, valid, objectives, predicted, seed)
    strat.seen(earlier)
    records = list(earlier)
    done = {r.candidate for r in records}
    rule = None
    first: list[dict] = []
    try:
        rule_point = asdict(task.rule_tiles())
    except AccelError:
        rule_point = None
    if rule_point is not None:
        if tuple(sorted(rule_point.items())) in done:
            rule = next(r for r in records if r.tiles == rule_point)
        else:
            first = [rule_point]
            strat.asked.add(tuple(sorted(rule_point.items())))
    bar = _progress(progress, budget, str(task))
    bar.update(min(len(records), budget))
    measured_now = 0
    try:
        while len(records) < budget:
            room = min(batch, budget - len(records))
            points = first + strat.ask(room - len(first))
            first = []
            if not points:
                break
            futures = [executor.submit(evaluate, task, p, model) for p in points]
            new = [f.result() for f in futures]
            writer.write(new)
            strat.tell(new)
            records.extend(new)
            measured_now += len(new)
            if rule_point is not None and rule is None:
                rule = next((r for r in new if r.tiles == rule_point), None)
            bar.update(len(new))
    finally:
        bar.close()
    best = best_record(records, objectives)
    front = pareto_front(records, objectives) if len(objectives) > 1 else ([best] if best else [])
    return TuneResult(
        task,
        objectives,
        records,
        rejected,
        best,
        front,
        rule,
        chosen,
        time.perf_counter() - start,
        measured_now,
        len(space),
        len(valid),
    )


def _earlier(writer: LogWriter) -> list[Record]:
    return read(writer.path) if writer.path is not None else list(writer.records)


def _candidates(task, space, objectives, prune, model):
    """(valid points, rejected (tiles, stage, reason), predicted objective tuples)."""
    template = task.template
    valid, rejected, predicted = [], [], []
    for point in space:
        reason = template.check(task.op, task.env, template.tiles(point))
        if reason is None:
            valid.append(point)
        else:
            rejected.append((point, "check", reason))
    cycles = [predict(template.kind, task.op, task.env, template.tiles(p)) for p in valid]
    if prune is not None and cycles:
        limit = prune * min(cycles)
        kept = [i for i, c in enumerate(cycles) if c <= limit]
        for i, c in enumerate(cycles):
            if c > limit:
                rejected.append(
                    (
                        valid[i],
                        "predict",
                        f"predicted {c:,.0f} cycles, over {prune} x the best "
                        f"prediction {min(cycles):,.0f}",
                    )
                )
        valid, cycles = [valid[i] for i in kept], [cycles[i] for i in kept]
    leak_pj_per_cycle = model.leakage_mw(task.env) * 1e-3 / (model.clock(task.env) * 1e6) * 1e12
    for point, c in zip(valid, cycles):
        tiles = template.tiles(point)
        figures = {
            "cycles": c,
            "energy": traffic(template.kind, task.op, task.env, tiles) * model.dram_pj_per_byte
            + c * leak_pj_per_cycle,
            "sram": sum(template.footprint(task.op, task.env, tiles).values()),
        }
        predicted.append(tuple(figures[n] for n in objectives))
    return valid, rejected, predicted


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, total: int, name: str):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=name, unit="cand", leave=False)
