"""Tuning ResNet-18 on the simulated accelerator: time to tune, utilization against the epilogue
bound, a design-space sweep, and energy per inference (tables in docs/tuning.md and
docs/performance.md).

    python benchmarks/bench_tune.py                # about 3 minutes on the 2-core machine
    python benchmarks/bench_tune.py --exhaustive   # also the exhaustive reference (~20 min)
    python benchmarks/bench_tune.py --plots DIR    # roofline and Pareto plots (matplotlib)

Sections:

1. per layer: the rule's tiles and the tuned ones (model-guided, ``--trials`` candidates on two
   worker processes), GEMM utilization beside the epilogue bound G / (G + A) and the bound
   that also counts the reset GEMM, G / (G + A + R); host seconds to tune, and to come within
   2 % of the exhaustive best (the reference below, or ``--exhaustive``);
2. the whole network: tuning time, cycles and time per inference, before and after;
3. the I/O-only program on each layer's output: the transfer floor beside the layer;
4. design space: every 3x3 layer tuned on configurations that change the ALU's throughput,
   the bus width, the SRAMs and the GEMM block, and with the ALU beside the GEMM core
   (a what-if the cycle model prices, see accel/tune/measure.py): the lowest utilization
   over the 3x3 layers, time per inference, energy and area;
5. energy per inference with its breakdown, beside AccelForge's published-style figure;
6. with ``--graph``: the whole ResNet-18 of models/resnet through the graph level (its fused
   operators have requantizing epilogues of 8 to 15 ALU steps): every operator the build asks
   tiles for, tuned, the program's cycles before and after, checked against the integer
   reference (about 2 minutes more).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import accel
from accel import topi
from accel.env import preset
from accel.tune import EnergyModel, read, resnet18_tasks, tune, untuned
from accel.tune.measure import WhatIf
from accel.tune.sweep import io_task

# Exhaustive bests (every candidate that fits and that the predictor puts within 2x of its
# best prediction; 1,126 / 414 / 443 / 838 / 146 / 166 / 254 / 35 / 21 / 47 candidates),
# from `python benchmarks/bench_tune.py --exhaustive` on the default configuration.
EXHAUSTIVE = (570008, 289722, 99545, 512147, 259444, 67604, 484357, 245497, 49371, 471347)

ALU_OPS = 4  # bias add, shift, clip low, clip high: the fewest ALU operations the epilogue needs


def bounds(task) -> tuple[float, float]:
    """(G / (G + A), G / (G + A + R)) per output vector: G GEMM cycles, A the epilogue's ALU
    cycles, R the reset GEMM's one cycle."""
    env = task.env
    kernel = task.op.kernel.shape
    g = kernel[1] * kernel[2] * kernel[3]  # input-channel blocks x KH x KW
    a = env.ALU_CYCLES_PER_VECTOR * ALU_OPS
    return g / (g + a), g / (g + a + 1)


def util(record) -> float:
    return record.result["gemm_useful_cycles"] / record.result["cycles"]


def time_to_within(log_path, key, target: float, start: float) -> tuple[float | None, int | None]:
    """Host seconds from ``start`` (the call to tune) until the batch holding the first record
    of ``key`` within ``target`` cycles was logged, and the candidates measured by then."""
    records = [r for r in read(log_path) if r.key == key]
    for count, r in enumerate(records, 1):
        if r.ok and r.cycles <= target:
            return r.time - start, count
    return None, None


def per_layer(args, log_dir):
    print("\n## 1. ResNet-18 layers: rule vs tuned (default configuration)\n")
    print(
        "| layer | rule tiles | rule | tuned tiles | tuned | bound G/(G+A) | with reset "
        "| tuned / bound | tune s | to 2 % of exhaustive |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    log = os.path.join(log_dir, "layers.jsonl")
    tasks = resnet18_tasks()
    reference = list(EXHAUSTIVE)
    if args.exhaustive:
        ex = tune(
            tasks,
            trials=None,
            strategy="exhaustive",
            log=os.path.join(log_dir, "ex.jsonl"),
            workers=2,
            progress=False,
        )
        reference = [r.best.cycles for r in ex]
        for r in ex:
            print(
                f"exhaustive {r.task}: {r.candidates} candidates, {r.best.cycles:,} cycles, "
                f"{r.seconds:.0f} s"
            )
    results = []
    for i, task in enumerate(tasks):
        start = time.time()
        r = tune(task, trials=args.trials, log=log, workers=2, progress=False)
        results.append(r)
        bound, bound_reset = bounds(task)
        seconds, count = time_to_within(log, (task.config, task.key), reference[i] * 1.02, start)
        reach = f"{seconds:.1f} s ({count} cand.)" if seconds is not None else "not reached"
        hw, ci, co, k, s = topi.RESNET18_CONV2D[i]
        print(
            f"| {hw}×{hw} {ci}→{co} {k}×{k} s{s} | {_tiles(r.rule.tiles)} | "
            f"{r.rule.cycles:,}, {util(r.rule):.1%} | {_tiles(r.best.tiles)} | "
            f"{r.best.cycles:,}, {util(r.best):.1%} | {bound:.1%} | {bound_reset:.1%} | "
            f"{util(r.best) / bound:.1%} | {r.seconds:.1f} | {reach} |"
        )
    return results


def _tiles(t: dict) -> str:
    if "oc_blocks" in t and "cols" in t:
        return (
            f"{t['oc_blocks']}oc {t['rows']}r {t['cols']}c {t['ic_blocks']}ic "
            f"{t['threads']}x{t['row_threads']}"
        )
    return str(t)


def network(results, tuning_seconds):
    print("\n## 2. The whole network (convolutions x their repeats per inference)\n")
    before = sum(r.rule.cycles * r.task.repeats for r in results)
    after = sum(r.best.cycles * r.task.repeats for r in results)
    env = accel.get_env()
    print(f"tuning all 10 layers: {tuning_seconds:.1f} s on 2 worker processes")
    print(
        f"cycles per inference: rule {before:,} ({before / env.CLOCK_MHZ / 1000:.2f} ms at "
        f"{env.CLOCK_MHZ} MHz), tuned {after:,} ({after / env.CLOCK_MHZ / 1000:.2f} ms), "
        f"{before / after:.3f}x"
    )


def io_only(results):
    print("\n## 3. The I/O-only program on each layer's output (load + store, no compute)\n")
    print("| layer | layer cycles | I/O-only cycles | bytes moved | bytes/cycle |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        _n, ob, h, w, _b, bo = r.task.op.res.shape
        task = io_task(ob * bo, h, r.task.env)
        io = tune(task, trials=8, log=None, executor="serial", progress=False).best
        moved = 2 * ob * bo * h * w
        print(
            f"| {r.task} | {r.best.cycles:,} | {io.cycles:,} | {moved:,} | "
            f"{moved / io.cycles:.1f} |"
        )


DESIGNS = {
    "default": (None, None),
    "ALU 1 cycle/vector": ({"ALU_CYCLES_PER_VECTOR": 1}, None),
    "128-bit bus": ({"DRAM_BUS_BYTES": 16}, None),
    "1x16, 512 KB weights, 64 KB acc": ("1x16_big_wgt", None),
    "1x32 core": ("1x32", None),
    "ALU beside GEMM (what-if)": (None, WhatIf(alu_overlap=True)),
    "ALU beside GEMM + 128-bit bus": ({"DRAM_BUS_BYTES": 16}, WhatIf(alu_overlap=True)),
}


def design_env(change):
    base = accel.get_env()
    if change is None:
        return base
    if isinstance(change, str):
        return preset(change)
    return accel.Environment.from_dict({**base.to_dict(), **change})


def design_space(args, log_dir):
    print("\n## 4. Design space: every 3x3 layer tuned per configuration\n")
    print(
        "| configuration | lowest 3×3 utilization | 3×3 utilizations | ms / inference "
        "| energy mJ | area mm² (45 nm) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    model = EnergyModel()
    log = os.path.join(log_dir, "designs.jsonl")
    rows = {}
    for name, (change, what_if) in DESIGNS.items():
        env = design_env(change)
        tasks = resnet18_tasks(env)
        for t in tasks:
            t.what_if = what_if
        results = tune(tasks, trials=args.design_trials, log=log, workers=2, progress=False)
        three = [r for r in results if r.task.op.kernel.shape[2] == 3]
        utils = [util(r.best) for r in three]
        cycles = sum(r.best.cycles * r.task.repeats for r in results)
        actions: dict = {}
        for r in results:
            for k, v in r.best.result["actions"].items():
                actions[k] = actions.get(k, 0) + v * r.task.repeats
        energy = model.energy(env, actions, cycles)["total"] / 1e9
        area = model.area(env)
        total_area = area["total"]
        if what_if is not None and what_if.alu_overlap:
            # a second accumulator port for the ALU: assume the accumulator SRAM doubles
            total_area += area["sram_acc"]
        rows[name] = (min(utils), cycles)
        print(
            f"| {name} | {min(utils):.1%} | {' '.join(f'{u:.1%}' for u in utils)} | "
            f"{cycles / env.CLOCK_MHZ / 1000:.2f} | {energy:.2f} | {total_area:.2f} |"
        )
    return rows


def energy_per_inference(results):
    print("\n## 5. Energy per ResNet-18 inference (the accelerated convolutions, tuned tiles)\n")
    env = accel.get_env()
    model = EnergyModel()
    cycles, actions = 0, {}
    for r in results:
        cycles += r.best.cycles * r.task.repeats
        for k, v in r.best.result["actions"].items():
            actions[k] = actions.get(k, 0) + v * r.task.repeats
    energy = model.energy(env, actions, cycles)
    for k, v in sorted(energy.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<12} {v / 1e9:8.3f} mJ  ({v / energy['total']:.1%})")
    macs = actions.get("macs", 0)
    dram = sum(v for k, v in actions.items() if k.startswith("dram_"))
    print(
        f"  {macs / 1e9:.2f} G MACs, {dram / 1e6:.1f} MB of DRAM traffic, "
        f"{cycles / env.CLOCK_MHZ / 1000:.2f} ms at {env.CLOCK_MHZ} MHz; "
        f"{energy['total'] / macs:.2f} pJ per MAC"
    )
    for node, volts in ((28, 0.9), (16, 0.8)):
        other = EnergyModel(node_nm=node, voltage=volts).energy(env, actions, cycles)["total"]
        print(f"  at {node} nm, {volts} V: {other / 1e9:.3f} mJ")


def graph_network(log_dir):
    import sys

    import numpy as np

    import accel.graph
    from accel.frontend import from_onnx
    from accel.tune import apply_history_best, extract_tasks

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from models.resnet.resnet18 import calibration_images, make_resnet18

    print("\n## 6. ResNet-18 through the graph level (models/resnet, 224x224)\n")
    qg = accel.graph.quantize(
        from_onnx(make_resnet18()), calibration=[calibration_images(1, 224, 0)]
    )
    log = os.path.join(log_dir, "graph.jsonl")
    start = time.perf_counter()
    tasks = extract_tasks(lambda: accel.graph.pack(qg))
    tune(tasks, trials=64, log=log, workers=2, progress=False)
    seconds = time.perf_counter() - start
    before = accel.graph.build(qg)
    with apply_history_best(log):
        after = accel.graph.build(qg)
    x = calibration_images(2, 224, 1)[1:2]
    exact = np.array_equal(np.asarray(after.run(x)), np.asarray(qg.run(x)))
    print(
        f"{len(tasks)} operators tuned in {seconds:.0f} s (64 trials each, 2 workers); "
        f"program {before.cycle_count():,} -> {after.cycle_count():,} cycles "
        f"({before.cycle_count() / after.cycle_count():.3f}x); equal to the reference: {exact}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--design-trials", type=int, default=64)
    parser.add_argument("--exhaustive", action="store_true")
    parser.add_argument("--plots", metavar="DIR")
    parser.add_argument("--graph", action="store_true")
    args = parser.parse_args()
    log_dir = tempfile.mkdtemp(prefix="bench_tune_")
    with untuned():  # the rule's tiles are the "before"; the shipped table is what tuning makes
        start = time.perf_counter()
        results = per_layer(args, log_dir)
        tuning_seconds = time.perf_counter() - start
        network(results, tuning_seconds)
        io_only(results)
        design_space(args, log_dir)
        energy_per_inference(results)
        if args.graph:
            graph_network(log_dir)
    if args.plots:
        from accel.tune.plots import plot_roofline

        os.makedirs(args.plots, exist_ok=True)
        rule = [_as_rule(r) for r in results]
        plot_roofline(results, os.path.join(args.plots, "roofline.png"), before=rule)
        print(f"\nplots in {args.plots}")


def _as_rule(result):
    from dataclasses import replace

    return replace(result, best=result.rule)


if __name__ == "__main__":
    main()
