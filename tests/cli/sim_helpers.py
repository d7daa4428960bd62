"""A small replay file for command-line tests."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "sim"))
from sim_streams import Bench, finish  # noqa: E402

from accel.sim.replay import capture  # noqa: E402


def write_replay(path):
    bench = Bench()
    addr, count = bench.write_stream([finish()])
    capture(bench.sim, addr, count).save(path)
    return path
