"""The other operators of ``accel.topi`` on the simulated accelerator, with their default tiles.

Dense layers, a grouped convolution, DCGAN's transposed convolutions, and the vector operators
(ReLU, residual add, max pooling). For each it prints the tiles, simulated cycles, GEMM
utilization where there is a GEMM, the time at the configuration's clock, and the host time to
simulate (median of ``--repeat`` runs). Every result is first checked against numpy.
Run: ``python benchmarks/bench_operators.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import accel
from accel import te, topi

ENV = accel.get_env()
B = ENV.BLOCK_IN
RNG = np.random.default_rng(0)


def int8(shape):
    return RNG.integers(-128, 128, shape, dtype=np.int8)


def requantize(acc, bias):
    return np.clip((acc.astype(np.int32) + bias) >> 8, 0, 127).astype(np.int8)


def dense(n, i, o):
    data = te.placeholder((n // ENV.BATCH, i // B, ENV.BATCH, B), name="data", dtype="int8")
    weight = te.placeholder((o // B, i // B, B, B), name="weight", dtype="int8")
    bias = te.placeholder((o // B, ENV.BATCH, B), name="bias", dtype="int32")
    op = topi.dense_packed(data, weight, ENV, bias=bias)
    x, w, b = int8((n, i)), int8((o, i)), RNG.integers(-4096, 4096, o, dtype=np.int32)
    arrays = [topi.pack_dense_data(x, ENV), topi.pack_dense_weight(w, ENV)]
    arrays.append(topi.pack_dense_bias(b, ENV))
    expected = requantize(x.astype(np.int64) @ w.T.astype(np.int64), b)
    tiles = topi.default_dense_tiles(op, ENV)
    return (
        op,
        topi.schedule_dense_packed(op, ENV, tiles),
        tiles,
        arrays,
        expected,
        topi.unpack_dense,
    )


def group_conv(hw, c, groups):
    data = te.placeholder((1, c // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((c // B, c // groups // B, 3, 3, B, B), name="kernel", dtype="int8")
    bias = te.placeholder((c // B, 1, B), name="bias", dtype="int32")
    op = topi.group_conv2d_packed(data, kernel, ENV, groups, 1, 1, bias=bias)
    x, w = int8((1, c, hw, hw)), int8((c, c // groups, 3, 3))
    b = RNG.integers(-4096, 4096, c, dtype=np.int32)
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((1, c, hw, hw), np.int64)
    cg = c // groups
    for g in range(groups):
        part = slice(g * cg, (g + 1) * cg)
        for r in range(3):
            for s in range(3):
                win = xp[:, part, r : r + hw, s : s + hw]
                acc[:, part] += np.einsum("bihw,oi->bohw", win, w[part, :, r, s].astype(np.int64))
    expected = requantize(acc, b.reshape(1, c, 1, 1))
    tiles = topi.default_tiles(op, ENV)
    arrays = [topi.pack_nchw(x, ENV), topi.pack_kernel(w, ENV), b.reshape(c // B, 1, B)]

    def unpack(out):
        return topi.unpack_nchw(out.reshape(1, c // B, hw, hw, 1, B))

    return op, topi.schedule_conv2d_packed(op, ENV, tiles), tiles, arrays, expected, unpack


def conv_transpose(hw, ci, co):
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((co // B, ci // B, 2, 2, 2, 2, B, B), name="kernel", dtype="int8")
    bias = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
    op = topi.conv2d_transpose_packed(data, kernel, ENV, 2, 1, bias=bias)
    x, w = int8((1, ci, hw, hw)), int8((co, ci, 4, 4))
    b = RNG.integers(-4096, 4096, co, dtype=np.int32)
    full = np.zeros((1, co, 2 * hw + 2, 2 * hw + 2), np.int64)
    for iy in range(hw):
        for ix in range(hw):
            contrib = np.einsum(
                "bi,oikl->bokl", x[:, :, iy, ix].astype(np.int64), w.astype(np.int64)
            )
            full[:, :, 2 * iy : 2 * iy + 4, 2 * ix : 2 * ix + 4] += contrib
    expected = requantize(full[:, :, 1:-1, 1:-1], b.reshape(1, co, 1, 1))
    tiles = topi.default_transpose_tiles(op, ENV)
    arrays = [topi.pack_nchw(x, ENV), topi.pack_kernel_transpose(w, ENV, 2, 1)]
    arrays.append(b.reshape(co // B, 1, B))

    def unpack(out):
        return topi.unpack_nchw(out.reshape(1, co // B, 2 * hw, 2 * hw, 1, B))

    schedule = topi.schedule_conv2d_transpose_packed(op, ENV, tiles)
    return op, schedule, tiles, arrays, expected, unpack


def vector(kind, hw, c):
    shape = (1, c // B, hw, hw, 1, B)
    a = te.placeholder(shape, name="a", dtype="int8")
    x = int8((1, c, hw, hw))
    if kind == "relu":
        op, arrays, expected = topi.relu_packed(a, ENV), [x], np.maximum(x, 0)
    elif kind == "add":
        y = int8((1, c, hw, hw))
        op = topi.add_packed(a, te.placeholder(shape, name="b", dtype="int8"), ENV)
        expected = np.clip(x.astype(np.int32) + y, -128, 127).astype(np.int8)
        arrays = [x, y]
    else:  # 3x3 stride-2 max pooling after a ReLU, so the zero padding is exact
        x = np.maximum(x, 0)
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = (hw - 1) // 2 + 1
        wins = [
            xp[:, :, r : r + 2 * out : 2, s : s + 2 * out : 2] for r in range(3) for s in range(3)
        ]
        op, arrays, expected = topi.max_pool2d_packed(a, ENV), [x], np.max(wins, axis=0)
    tiles = topi.default_vector_tiles(op, ENV)
    arrays = [topi.pack_nchw(v, ENV) for v in arrays]
    return (
        op,
        topi.schedule_vector_packed(op, ENV, tiles),
        tiles,
        arrays,
        expected,
        topi.unpack_nchw,
    )


CASES = [
    ("dense 1x2048->1024", lambda: dense(ENV.BATCH, 2048, 1024)),
    ("dense 16x512->512", lambda: dense(16, 512, 512)),
    ("group conv 28x28 128 g4", lambda: group_conv(28, 128, 4)),
    ("group conv 14x14 256 g16", lambda: group_conv(14, 256, 16)),
    ("conv_T 4x4 512->256", lambda: conv_transpose(4, 512, 256)),
    ("conv_T 8x8 256->128", lambda: conv_transpose(8, 256, 128)),
    ("conv_T 16x16 128->64", lambda: conv_transpose(16, 128, 64)),
    ("relu 56x56x64", lambda: vector("relu", 56, 64)),
    ("add 56x56x64", lambda: vector("add", 56, 64)),
    ("max pool 112x112x64", lambda: vector("pool", 112, 64)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    print(
        f"{'operator':<26}{'cycles':>10}{'util':>8}{'us @' + str(ENV.CLOCK_MHZ):>10}"
        f"{'sim ms':>9}  tiles"
    )
    for name, make in CASES:
        op, schedule, tiles, arrays, expected, unpack = make()
        f = accel.build(schedule, op.args, name="op")
        out = np.zeros(op.res.shape, np.int8)
        accel.sim.clear_stats()
        f(*arrays, out)
        stats = accel.sim.stats()
        np.testing.assert_array_equal(unpack(out), expected)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            f(*arrays, out)
            times.append(time.perf_counter() - start)
        cycles = stats["cycles"]
        util = f"{stats['gemm_useful_cycles'] / cycles:.1%}" if stats["gemm_useful_cycles"] else "-"
        print(
            f"{name:<26}{cycles:>10}{util:>8}{cycles / ENV.CLOCK_MHZ:>10.0f}"
            f"{1e3 * statistics.median(times):>9.1f}  {tiles}"
        )


if __name__ == "__main__":
    main()
