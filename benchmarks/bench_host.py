"""Host (CPU) build performance: generated code next to numpy doing the same work.

Prints, for each case, the median of several runs of the built module and of a plain numpy
version of the same arithmetic, and their ratio; then the time to lower and print a tiled matmul.
Run: python benchmarks/bench_host.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import accel
from accel import te

REPEATS = 7


def median_time(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def elementwise():
    shape = (1, 16, 224, 224)
    A = te.placeholder(shape, "int32", "A")
    B = te.placeholder(shape, "int32", "B")
    C = te.compute(shape, lambda *i: (A(*i) * B(*i)).astype("int8"), "C")
    f = accel.build(te.create_schedule(C.op), [A, B, C])
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1000, shape, dtype=np.int32)
    b = rng.integers(-1000, 1000, shape, dtype=np.int32)
    c = np.empty(shape, np.int8)
    ours = median_time(lambda: f(a, b, c))
    ref = median_time(lambda: np.multiply(a, b).astype(np.int8))
    assert np.array_equal(c, (a * b).astype(np.int8))
    return "multiply-and-cast (1,16,224,224) int32 -> int8", ours, ref


def conv2d():
    n, c, h, w, o, k, pad = 1, 64, 56, 56, 64, 3, 1
    data = te.placeholder((n, c, h, w), "int8", "data")
    kernel = te.placeholder((o, c, k, k), "int8", "kernel")
    padded = te.compute(
        (n, c, h + 2, w + 2),
        lambda b, ci, y, x: te.if_then_else(
            te.all(y >= pad, y < h + pad, x >= pad, x < w + pad),
            data[b, ci, y - pad, x - pad],
            te.const(0, "int8"),
        ),
        "data_pad",
    )
    rc, ry, rx = (
        te.reduce_axis((0, c), "rc"),
        te.reduce_axis((0, k), "ry"),
        te.reduce_axis((0, k), "rx"),
    )
    out = te.compute(
        (n, o, h, w),
        lambda b, oc, y, x: te.sum(
            padded[b, rc, y + ry, x + rx].astype("int32") * kernel[oc, rc, ry, rx].astype("int32"),
            axis=[rc, ry, rx],
        ),
        "conv",
    )
    f = accel.build(te.create_schedule(out.op), [data, kernel, out])
    rng = np.random.default_rng(0)
    d = rng.integers(-128, 128, data.shape, dtype=np.int8)
    kk = rng.integers(-128, 128, kernel.shape, dtype=np.int8)
    res = np.empty(out.shape, np.int32)

    def numpy_conv():
        # The same int32 arithmetic in numpy: im2col, then one integer matrix product.
        dp = np.pad(d, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.int32)
        cols = np.lib.stride_tricks.sliding_window_view(dp[0], (k, k), axis=(1, 2))  # c,h,w,k,k
        cols = cols.transpose(1, 2, 0, 3, 4).reshape(h * w, c * k * k)
        return (cols @ kk.reshape(o, -1).astype(np.int32).T).T.reshape(out.shape)

    ours = median_time(lambda: f(d, kk, res), 3)
    ref = median_time(numpy_conv, 3)
    assert np.array_equal(res, numpy_conv())
    return "conv2d default schedule (1,64,56,56) -> 64, 3x3 int8/int32", ours, ref


def lower_tiled_matmul() -> float:
    def lower_once():
        A = te.placeholder((1024, 1024), "int8", "A")
        B = te.placeholder((1024, 1024), "int8", "B")
        r = te.reduce_axis((0, 1024), "r")
        C = te.compute(
            (1024, 1024),
            lambda i, j: te.sum(A[i, r].astype("int32") * B[j, r].astype("int32"), axis=r),
            "C",
        )
        s = te.create_schedule(C.op)
        AA = s.cache_read(A, "local", [C])
        io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
        ro, ri = s[C].split(r, factor=16)
        s[C].reorder(io, jo, ro, ii, ji, ri)
        s[AA].compute_at(s[C], ro)
        return str(accel.lower(s, [A, B, C]))

    return median_time(lower_once)


def main() -> None:
    print(f"{'case':58s} {'accel':>10s} {'numpy':>10s} {'ratio':>7s}")
    for name, ours, ref in (elementwise(), conv2d()):
        print(f"{name:58s} {ours * 1e3:8.2f}ms {ref * 1e3:8.2f}ms {ours / ref:6.2f}x")
    print(
        f"{'lower + print tiled 1024x1024 matmul (cache_read, compute_at)':58s} "
        f"{lower_tiled_matmul() * 1e3:8.2f}ms"
    )


if __name__ == "__main__":
    main()
