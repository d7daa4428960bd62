"""The float reference's products do not depend on the BLAS kernel the CPU picks.

Calibrated scales come from the float executor; if its float32 sums followed the summation
order of the machine's BLAS, the same model would quantize differently from machine to machine.
Its convolutions, Gemm and MatMul sum in float64 and round once, so each result must equal the
exactly-rounded float32 of a straightforward float64 sum made here without BLAS.
"""

from __future__ import annotations

import numpy as np
import pytest

from accel.graph.ops import KERNELS


def exact_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of float32 matrices, summed in float64 term by term (no BLAS), rounded once."""
    total = np.zeros((a.shape[0], b.shape[1]), np.float64)
    for k in range(a.shape[1]):
        total += np.multiply.outer(a[:, k].astype(np.float64), b[k].astype(np.float64))
    return total.astype(np.float32)


@pytest.mark.parametrize("shape", [(7, 300, 5), (33, 1024, 17)])
def test_matmul_and_gemm_round_a_float64_sum_once(shape):
    m, k, n = shape
    rng = np.random.default_rng(k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = exact_sums(a, b)
    np.testing.assert_array_equal(KERNELS["matmul"]({}, a, b), want)
    gemm = KERNELS["gemm"]({"trans_a": 0, "trans_b": 0, "alpha": 1.0, "beta": 1.0}, a, b)
    np.testing.assert_array_equal(gemm, want)


def test_conv_rounds_a_float64_sum_once():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 24, 6, 6)).astype(np.float32)
    w = rng.standard_normal((10, 24, 3, 3)).astype(np.float32)
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1), "group": 1}
    got = KERNELS["conv"](attrs, x, w)
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    # im2col by hand: (pixels, C*3*3) against (C*3*3, M)
    cols = np.stack(
        [padded[:, i : i + 3, j : j + 3].reshape(-1) for i in range(6) for j in range(6)]
    )
    want = exact_sums(cols, w.reshape(10, -1).T).T.reshape(1, 10, 6, 6)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32
