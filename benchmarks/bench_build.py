"""Compile and run times of the accelerator tutorials.

For each of ``vta_get_started``, ``matrix_multiply`` and ``matrix_multiply_opt`` it prints the host
time to lower the schedule and to build it (lowering included), and for the blocked
``matrix_multiply_opt`` layer the end-to-end time of one call (host code, runtime, instruction
encoding, simulation) next to the time of the simulator alone on the same instruction stream, so
the runtime's own overhead is visible. It also prints the time of numpy doing the layer's
arithmetic (an int32 matrix-vector product and the clip) as a reference.

Figures are medians of ``--repeat`` runs (default 7). Run: ``python benchmarks/bench_build.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pathlib
import runpy
import statistics
import time

import numpy as np

import accel
from accel.hw.isa import encode_stream
from accel.runtime.command_queue import get_command_queue
from accel.sim import get_device

TUTORIALS = pathlib.Path(__file__).parents[1] / "tutorials"
ARGS = {
    "vta_get_started": ("A", "B", "C"),
    "matrix_multiply": ("A", "B", "C"),
    "matrix_multiply_opt": ("data", "weight", "res"),
}


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def tutorial(name: str) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        return runpy.run_path(str(TUTORIALS / f"{name}.py"), run_name="__main__")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat

    print(f"{'tutorial':<22}{'lower (ms)':>12}{'build (ms)':>12}")
    namespaces = {}
    for name, arg_names in ARGS.items():
        ns = namespaces[name] = tutorial(name)
        s, args = ns["s"], [ns[a] for a in arg_names]
        lower_ms = median_ms(lambda s=s, args=args: accel.lower(s, args), repeat)
        build_ms = median_ms(lambda s=s, args=args: accel.build(s, args), repeat)
        print(f"{name:<22}{lower_ms:>12.2f}{build_ms:>12.2f}")

    ns = namespaces["matrix_multiply_opt"]
    f, data, weight, res = ns["f"], ns["data_nd"], ns["weight_nd"], ns["res_nd"]
    end_to_end = median_ms(lambda: f(data, weight, res), repeat)

    device = get_device()
    stream = get_command_queue(device).last_stream  # the call's instructions, FINISH included
    words = encode_stream(stream, device.env)
    addr = device.memory.alloc(words.nbytes, align=16)
    device.memory.write(addr, words)
    sim_only = median_ms(lambda: device.simulator.run(addr, len(stream)), repeat)
    device.memory.free(addr)

    d = ns["data_np"].transpose(0, 2, 1, 3).reshape(1, -1).astype(np.int32)
    w = ns["weight_np"].transpose(0, 2, 1, 3).reshape(d.shape[1], -1).astype(np.int32)
    numpy_ms = median_ms(lambda: np.clip((d @ w) >> 8, 0, 127).astype(np.int8), repeat)

    print()
    print(f"matrix_multiply_opt ({len(stream)} instructions per call)")
    print(f"  end to end      {end_to_end:8.2f} ms")
    print(f"  simulator only  {sim_only:8.2f} ms")
    overhead = end_to_end - sim_only
    print(f"  runtime + host  {overhead:8.2f} ms ({overhead / end_to_end:.0%} of the call)")
    print(f"  numpy reference {numpy_ms:8.2f} ms (end to end is {end_to_end / numpy_ms:.2f}x that)")


if __name__ == "__main__":
    main()
