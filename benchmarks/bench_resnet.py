"""Every ResNet-18 convolution on the simulated accelerator, with 1, 2 and 2x2 virtual threads.

For each layer (with the bias / >> 8 / clip epilogue and the default tiles of
``accel.topi.default_tiles``) it prints the simulated cycles, the GEMM utilization (useful GEMM
cycles / total cycles), the bound on that utilization set by the epilogue (GEMM and ALU share
the compute module, so utilization <= GEMM cycles / (GEMM cycles + ALU cycles)), the time at
the configuration's clock, and the host time to build and to simulate. Results are checked
against numpy before anything is printed. Host times are medians
of ``--repeat`` runs. Run: ``python benchmarks/bench_resnet.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import accel
from accel import te, topi

LAYERS = topi.RESNET18_CONV2D


def reference(x, w, bias, stride, pad):
    o, _, k, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = (x.shape[2] + 2 * pad - k) // stride + 1
    acc = np.zeros((1, o, out, out), np.int64)
    for r in range(k):
        for c in range(k):
            win = xp[:, :, r : r + out * stride : stride, c : c + out * stride : stride]
            acc += np.einsum("bihw,oi->bohw", win, w[:, :, r, c].astype(np.int64))
    return np.clip((acc.astype(np.int32) + bias.reshape(1, o, 1, 1)) >> 8, 0, 127).astype(np.int8)


def median_s(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    env = accel.get_env()
    B = env.BLOCK_IN
    rng = np.random.default_rng(0)
    print(
        f"{'layer':<24}{'threads':>8}{'cycles':>10}{'util':>8}{'bound':>8}"
        f"{'us @' + str(env.CLOCK_MHZ):>10}"
        f"{'build ms':>10}{'sim ms':>9}"
    )
    total = 0.0
    for hw, ci, co, k, stride in LAYERS:
        pad = k // 2
        data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
        kernel = te.placeholder((co // B, ci // B, k, k, B, B), name="kernel", dtype="int8")
        bias = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
        op = topi.conv2d_packed(data, kernel, env, stride, pad, shift=8, bias=bias)
        x = rng.integers(-128, 128, (1, ci, hw, hw), dtype=np.int8)
        w = rng.integers(-128, 128, (co, ci, k, k), dtype=np.int8)
        b = rng.integers(-4096, 4096, (co,), dtype=np.int32)
        arrays = [topi.pack_nchw(x, env), topi.pack_kernel(w, env), b.reshape(co // B, 1, B)]
        expected = reference(x, w, b, stride, pad)
        name = f"{hw}x{hw} {ci}->{co} {k}x{k} s{stride}"
        for threads, row_threads in ((1, 1), (2, 1), (2, 2)):
            tiles = topi.default_tiles(op, env, threads, row_threads)

            def build(tiles=tiles, op=op):
                return accel.build(topi.schedule_conv2d_packed(op, env, tiles), op.args)

            f = build()
            out = np.zeros(op.res.shape, np.int8)
            accel.sim.clear_stats()
            f(*arrays, out)
            stats = accel.sim.stats()
            np.testing.assert_array_equal(topi.unpack_nchw(out), expected)
            build_s = median_s(build, repeat)
            sim_s = median_s(lambda f=f, out=out, arrays=arrays: f(*arrays, out), repeat)
            total += sim_s
            cycles, gemm = stats["cycles"], stats["gemm_useful_cycles"]
            bound = gemm / (gemm + env.ALU_CYCLES_PER_VECTOR * stats["alu_counter"])
            label = f"{tiles.threads}x{tiles.row_threads}"
            print(
                f"{name:<24}{label:>8}{cycles:>10}{gemm / cycles:>8.1%}{bound:>8.1%}"
                f"{cycles / env.CLOCK_MHZ:>10.0f}{1e3 * build_s:>10.1f}{1e3 * sim_s:>9.1f}"
            )
    print(f"whole table simulated in {total:.2f} s (one run of each layer and thread count)")


if __name__ == "__main__":
    main()
