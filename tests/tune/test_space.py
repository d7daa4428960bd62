"""Tuning spaces: enumeration, numbering, neighbours and random steps."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accel.errors import ConfigError
from accel.tune.space import Knob, Space, choice, split


def test_split_gives_every_divisor_up_to_the_limit():
    assert split("rows", 56).values == (1, 2, 4, 7, 8, 14, 28, 56)
    assert split("rows", 56, limit=8).values == (1, 2, 4, 7, 8)


@given(st.lists(st.integers(1, 24), min_size=1, max_size=4))
def test_points_and_indices_round_trip(extents):
    space = Space(tuple(split(f"k{i}", e) for i, e in enumerate(extents)))
    points = list(space)
    assert len(points) == len(space)
    assert len({tuple(p.values()) for p in points}) == len(space)
    for index in (0, len(space) // 2, len(space) - 1):
        assert space.index(space.point(index)) == index


def test_neighbours_step_one_knob_by_one_value():
    space = Space((split("a", 12), choice("t", (1, 2, 4))))
    assert space.neighbours({"a": 4, "t": 1}) == [
        {"a": 3, "t": 1},
        {"a": 6, "t": 1},
        {"a": 4, "t": 2},
    ]


def test_mutate_changes_exactly_one_knob():
    space = Space((split("a", 12), choice("t", (1, 2, 4)), choice("fixed", (7,))))
    rng = random.Random(0)
    point = {"a": 4, "t": 2, "fixed": 7}
    for _ in range(20):
        child = space.mutate(point, rng)
        assert child in space
        assert sum(child[k] != point[k] for k in point) == 1


def test_points_outside_the_space_are_refused():
    space = Space((split("a", 12),))
    with pytest.raises(ConfigError, match="knob a takes"):
        space.index({"a": 5})
    with pytest.raises(IndexError):
        space.point(len(space))
    with pytest.raises(ConfigError, match="no values"):
        Knob("empty", ())
