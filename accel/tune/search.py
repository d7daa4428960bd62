"""Search strategies over a template's valid candidates, objectives and Pareto fronts.

Every strategy is an *ask / tell* loop: :meth:`Strategy.ask` proposes up to ``n`` points not
measured yet, :meth:`Strategy.tell` hands back their records. The tuner asks for fixed-size
batches and tells the results in the order it asked, so a strategy sees the same history
whatever executor measured the batch, and the search is the same.

- :class:`Exhaustive`: every valid point, in space order.
- :class:`Guided`: model-guided, for spaces larger than the budget. Points are ranked by the
  analytic predictor (``accel/tune/predict.py``; for several objectives, by Pareto layers of
  the predicted objectives); each batch takes, in turn, an unmeasured neighbour of one of the
  best measured points (one knob one step away, which corrects the predictor where it is
  locally wrong) and the next point by predicted rank.
- :class:`Evolutionary`: a genetic search (tournament selection, uniform crossover, one-knob
  mutation) over measured points, seeded with the predictor's best; for large spaces where
  the predictor is poor (a new operator without a good model).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from accel.tune.log import Record
from accel.tune.space import Space

OBJECTIVES: dict[str, Callable[[Record], float]] = {
    "cycles": lambda r: r.result["cycles"],
    "energy": lambda r: r.energy_pj,
    "sram": lambda r: r.result["sram_bytes"],
}


def objective_names(objective: str | Sequence[str]) -> tuple[str, ...]:
    """The objectives asked for, checked: ``"cycles"``, ``"energy"``, ``"sram"`` or several."""
    names = (objective,) if isinstance(objective, str) else tuple(objective)
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown:
        raise ValueError(f"unknown objective(s) {unknown or names}; choose from {list(OBJECTIVES)}")
    return names


def score(record: Record, objectives: Sequence[str]) -> tuple:
    """Sort key of a measured record: the objectives in order, then the other figures (cycles,
    energy, SRAM), then the tiles, so ties break the same way everywhere."""
    rest = [n for n in OBJECTIVES if n not in objectives]
    return (
        *(OBJECTIVES[n](record) for n in objectives),
        *(OBJECTIVES[n](record) for n in rest),
        record.candidate,
    )


def best_record(records: Sequence[Record], objectives: Sequence[str]) -> Record | None:
    """The measured record that is best for ``objectives`` (lexicographic), or None."""
    measured = [r for r in records if r.ok]
    return min(measured, key=lambda r: score(r, objectives)) if measured else None


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(records: Sequence[Record], objectives: Sequence[str]) -> list[Record]:
    """The measured records no other one dominates in ``objectives`` (equal points kept once),
    sorted by the first objective."""
    measured = sorted((r for r in records if r.ok), key=lambda r: score(r, objectives))
    front: list[Record] = []
    seen: set[tuple] = set()
    for record in measured:
        values = tuple(OBJECTIVES[n](record) for n in objectives)
        if values in seen:
            continue
        if not any(dominates(tuple(OBJECTIVES[n](f) for n in objectives), values) for f in front):
            front.append(record)
            seen.add(values)
    return front


def pareto_layers(values: Sequence[tuple]) -> list[int]:
    """The non-dominated sorting layer (0 = front) of each vector in ``values``."""
    layer = [0] * len(values)
    remaining = set(range(len(values)))
    depth = 0
    while remaining:
        front = {
            i for i in remaining if not any(dominates(values[j], values[i]) for j in remaining)
        }
        for i in front:
            layer[i] = depth
        remaining -= front
        depth += 1
    return layer


def _frozen(point: dict) -> tuple:
    return tuple(sorted(point.items()))


class Strategy:
    """Proposes points (dicts) to measure; told the records measured."""

    def __init__(self, space: Space, valid: Sequence[dict], objectives: Sequence[str]):
        self.space = space
        self.valid = list(valid)
        self.valid_set = {_frozen(p) for p in self.valid}
        self.objectives = tuple(objectives)
        self.asked: set[tuple] = set()
        self.measured: list[Record] = []

    def seen(self, records: Sequence[Record]) -> None:
        """Records measured before (a resumed log): never proposed again."""
        for record in records:
            self.asked.add(_frozen(record.tiles))
        self.tell(records)

    def tell(self, records: Sequence[Record]) -> None:
        self.measured.extend(r for r in records if r.ok)

    def ask(self, n: int) -> list[dict]:
        raise NotImplementedError

    def _take(self, point: dict, into: list[dict]) -> bool:
        key = _frozen(point)
        if key in self.asked or key not in self.valid_set:
            return False
        self.asked.add(key)
        into.append(point)
        return True

    def _best_measured(self, count: int) -> list[Record]:
        return sorted(self.measured, key=lambda r: score(r, self.objectives))[:count]


class Exhaustive(Strategy):
    """Every valid point, in space order."""

    def ask(self, n: int) -> list[dict]:
        batch: list[dict] = []
        for point in self.valid:
            if len(batch) == n:
                break
            self._take(point, batch)
        return batch


class Guided(Strategy):
    """Predicted rank, alternated with neighbours of the best measured points."""

    def __init__(self, space, valid, objectives, predicted: Sequence[tuple]):
        super().__init__(space, valid, objectives)
        if len(objectives) == 1:
            order = sorted(range(len(valid)), key=lambda i: (predicted[i], i))
        else:
            layers = pareto_layers(predicted)
            order = sorted(range(len(valid)), key=lambda i: (layers[i], predicted[i], i))
        self.ranked = [self.valid[i] for i in order]
        self._next = 0

    def ask(self, n: int) -> list[dict]:
        batch: list[dict] = []
        local = [p for r in self._best_measured(3) for p in self.space.neighbours(r.tiles)]
        while len(batch) < n and (local or self._next < len(self.ranked)):
            while local and not self._take(local.pop(0), batch):
                pass
            while len(batch) < n and self._next < len(self.ranked):
                self._next += 1
                if self._take(self.ranked[self._next - 1], batch):
                    break
        return batch


class Evolutionary(Strategy):
    """Tournament selection, uniform crossover and one-knob mutation over measured points."""

    def __init__(self, space, valid, objectives, predicted: Sequence[tuple], seed: int = 0):
        super().__init__(space, valid, objectives)
        self.rng = random.Random(seed)
        order = sorted(range(len(valid)), key=lambda i: (predicted[i], i))
        self.seeds = [self.valid[i] for i in order]

    def ask(self, n: int) -> list[dict]:
        batch: list[dict] = []
        parents = self._best_measured(max(4, 2 * n))
        tries = 0
        while len(batch) < n and tries < 50 * n:
            tries += 1
            if len(parents) < 2 or tries % 4 == 0:
                point = self.seeds.pop(0) if self.seeds else self.rng.choice(self.valid)
            else:
                a, b = (self._tournament(parents) for _ in range(2))
                child = self.space.crossover(a.tiles, b.tiles, self.rng)
                point = self.space.mutate(child, self.rng)
            self._take(point, batch)
        return batch

    def _tournament(self, parents: list[Record]) -> Record:
        return min(self.rng.sample(parents, 2), key=lambda r: score(r, self.objectives))


STRATEGIES = ("auto", "exhaustive", "guided", "evolutionary")
