"""Schedules: *how* a tensor expression is computed (loop order, placement, scopes, pragmas)."""

from accel.schedule.schedule import Schedule, create_schedule
from accel.schedule.stage import Fuse, Split, Stage

__all__ = ["Fuse", "Schedule", "Split", "Stage", "create_schedule"]
