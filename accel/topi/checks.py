"""Checks of the arguments users pass to operators, so that a bad stride, shift, thread count or
tile is a ScheduleError naming the operator and the argument, never a ZeroDivisionError or an
AttributeError from deep inside."""

from __future__ import annotations

from accel.errors import ScheduleError


def whole(what: str, name: str, value, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``; raises ScheduleError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScheduleError(f"{what}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def shift(what: str, value) -> None:
    """A right shift of the int32 accumulators: None (none) or 0..31."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 32
    ):
        raise ScheduleError(
            f"{what}: shift must be None or an integer in [0, 31] (a right shift of int32 "
            f"accumulators), got {value!r}"
        )


def tiles_of(what: str, tiles, cls):
    """``tiles`` checked to be a ``cls`` (None passes: the default tiles are chosen)."""
    if tiles is not None and not isinstance(tiles, cls):
        raise ScheduleError(
            f"{what}: tiles must be a {cls.__name__}, got {type(tiles).__name__} {tiles!r}"
        )
    return tiles
