"""Declarative tuning spaces: named knobs and their values, in the spirit of AutoTVM's
``define_split`` / ``define_knob``.

A :class:`Space` is an ordered tuple of :class:`Knob` s; a *point* is one value per knob, given
as a dict ``{knob name: value}`` and numbered in mixed radix (the last knob varies fastest), so
a search can name a point by an integer, enumerate the space in a fixed order, draw points at
random and step to neighbours. The space holds no operator knowledge: templates
(``accel/tune/templates.py``) build one per operator and turn points into tiles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from accel.errors import ConfigError


@dataclass(frozen=True)
class Knob:
    """One tunable choice: ``name``, its candidate ``values`` in order, and what it means."""

    name: str
    values: tuple
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError(f"knob {self.name} has no values")


def split(name: str, extent: int, doc: str = "", limit: int | None = None) -> Knob:
    """A tile size along an axis of ``extent``: every divisor of it (up to ``limit``), so the
    tiles split the axis exactly (AutoTVM's ``define_split`` with one factor)."""
    top = extent if limit is None else min(extent, limit)
    values = tuple(d for d in range(1, top + 1) if extent % d == 0)
    return Knob(name, values, doc or f"tile along an axis of {extent}")


def choice(name: str, values: Sequence, doc: str = "") -> Knob:
    """A knob with explicit ``values`` (AutoTVM's ``define_knob``)."""
    return Knob(name, tuple(values), doc)


@dataclass(frozen=True)
class Space:
    """The product of ``knobs``; points are dicts ``{knob name: value}``."""

    knobs: tuple[Knob, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def __len__(self) -> int:
        return math.prod(len(k.values) for k in self.knobs)

    def point(self, index: int) -> dict[str, Any]:
        """The point numbered ``index`` (0 <= index < len(self))."""
        if not 0 <= index < len(self):
            raise IndexError(f"point {index} outside a space of {len(self)}")
        values = {}
        for knob in reversed(self.knobs):
            index, digit = divmod(index, len(knob.values))
            values[knob.name] = knob.values[digit]
        return {k.name: values[k.name] for k in self.knobs}

    def index(self, point: dict[str, Any]) -> int:
        """The number of ``point``; raises ConfigError for a value a knob does not have."""
        index = 0
        for knob in self.knobs:
            try:
                digit = knob.values.index(point[knob.name])
            except (KeyError, ValueError):
                raise ConfigError(
                    f"{point} is not in the space: knob {knob.name} takes {knob.values}"
                ) from None
            index = index * len(knob.values) + digit
        return index

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self.point(index)

    def __contains__(self, point: object) -> bool:
        return isinstance(point, dict) and all(
            point.get(k.name, object()) in k.values for k in self.knobs
        )

    def neighbours(self, point: dict[str, Any]) -> list[dict[str, Any]]:
        """The points that differ from ``point`` by one step of one knob (the next smaller or
        larger value)."""
        found = []
        for knob in self.knobs:
            at = knob.values.index(point[knob.name])
            for step in (-1, 1):
                if 0 <= at + step < len(knob.values):
                    found.append({**point, knob.name: knob.values[at + step]})
        return found

    def mutate(self, point: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """``point`` with one knob (with more than one value) set to another value at random."""
        knobs = [k for k in self.knobs if len(k.values) > 1]
        if not knobs:
            return dict(point)
        knob = rng.choice(knobs)
        others = [v for v in knob.values if v != point[knob.name]]
        return {**point, knob.name: rng.choice(others)}

    def crossover(self, a: dict, b: dict, rng: random.Random) -> dict[str, Any]:
        """Each knob's value from ``a`` or ``b`` at random."""
        return {k.name: (a if rng.random() < 0.5 else b)[k.name] for k in self.knobs}

    def describe(self) -> str:
        """One line per knob: name, values, meaning."""
        return "\n".join(f"{k.name:<12} {list(k.values)}  {k.doc}" for k in self.knobs)
