"""The full ResNet-18-shaped network (224x224x3) through the graph level: host time to import,
quantize (calibrated on a few images), pack and build (building prepares every module: records
its instruction streams and plans them); host time of one inference on the simulator (the
first and the next ones, which replay the recorded streams); simulated cycles, GEMM
utilization and time at 100 MHz; the accelerator's and the host's share. The program is
checked bit for bit against the integer reference executor before anything is printed.

Run: python benchmarks/bench_graph.py [--hw 224] [--width 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import accel  # noqa: E402
from models.resnet.resnet18 import calibration_images, make_resnet18  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hw", type=int, default=224)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--calibrate", type=int, default=2, help="calibration images")
    parser.add_argument("--repeat", type=int, default=3, help="warm inferences to time")
    args = parser.parse_args()
    env = accel.get_env()
    print(f"configuration {env.name}; ACCEL_BLAS_THREADS={os.environ.get('ACCEL_BLAS_THREADS')}")
    model, t_make = timed(make_resnet18, input_hw=args.hw, width=args.width,
                          num_classes=args.classes)  # fmt: skip
    images = calibration_images(args.calibrate + 1, args.hw, 7)
    calibration = [images[i : i + 1] for i in range(args.calibrate)]
    x = images[args.calibrate :]
    graph, t_import = timed(accel.frontend.from_onnx, model)
    qgraph, t_quant = timed(accel.graph.quantize, graph, calibration=calibration)
    packed, t_pack = timed(accel.graph.pack, qgraph, env)
    program, t_build = timed(accel.graph.build, packed)
    y_cold, t_cold = timed(program.run, x)
    warm = []
    for _ in range(args.repeat):
        y, t = timed(program.run, x)
        warm.append(t)
    reference, t_ref = timed(qgraph.run, x)
    assert np.array_equal(y_cold, reference) and np.array_equal(y, reference), "not bit for bit"
    profile = program.profile()
    metrics = program.metrics
    cycles = program.cycle_count()
    steps, nodes = metrics["steps"], metrics["nodes"]
    accel_ms = profile.host_ms("accelerator")
    host_ms = profile.host_ms("host")
    transfer_ms = profile.host_ms("upload") + profile.host_ms("download")
    total_ms = profile.host_ms()
    rows = [
        ("generate the ONNX model (not part of the flow)", f"{t_make:.2f} s"),
        ("import (accel.frontend.from_onnx)", f"{t_import:.2f} s"),
        (f"quantize, calibrated on {args.calibrate} images", f"{t_quant:.2f} s"),
        ("pack (partition, fusion, layouts, default tiles)", f"{t_pack:.2f} s"),
        (f"build ({len(set(map(id, program.modules.values())))} modules)", f"{t_build:.2f} s"),
        ("first inference", f"{t_cold:.2f} s"),
        (f"next inferences (median of {args.repeat})", f"{statistics.median(warm):.3f} s"),
        ("integer reference executor (numpy), one inference", f"{t_ref:.3f} s"),
        ("simulated cycles per inference", f"{cycles:,}"),
        ("GEMM utilization", f"{100 * profile.utilization:.1f} %"),
        ("time at 100 MHz", f"{program.compute_duration_us(100) / 1000:.2f} ms"),
        (
            "steps (nodes) on the accelerator / host",
            f"{steps['accelerator']} ({nodes['accelerator']}) / {steps['host']} ({nodes['host']})",
        ),
        (
            "share of the simulated time: accelerator / host",
            "100 % / 0 % (host steps take no accelerator cycles)",
        ),
        (
            "host time of the last inference: simulation / host ops / transfers",
            f"{100 * accel_ms / total_ms:.1f} % / {100 * host_ms / total_ms:.1f} % / "
            f"{100 * transfer_ms / total_ms:.1f} %",
        ),
        ("weights on the device", f"{metrics['weight_bytes'] / 2**20:.1f} MiB"),
        ("instructions per inference", f"{metrics['instructions']['total']:,}"),
        (
            "DRAM bytes per inference: loaded / stored",
            f"{sum(v for k, v in metrics['dram_bytes'].items() if k != 'out') / 2**20:.1f} MiB"
            f" / {metrics['dram_bytes']['out'] / 2**20:.1f} MiB",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"ResNet-18-shaped network, {args.hw}x{args.hw}x3, width {args.width}")
    print(f"| {'measure':<{width}} | value |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    print()
    print(profile.table())


if __name__ == "__main__":
    main()
