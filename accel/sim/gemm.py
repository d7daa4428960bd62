"""GEMM: a whole instruction as a few batched matrix products.

``acc[dst] += inp[src] @ wgt[wgt].T`` summed over every (i, j, micro-op) iteration. GEMM reads
only the input and weight SRAMs and only adds into the accumulators, so the iterations commute:
the result is the same for any summation order, and the instruction can be computed at once.

A *plan*, cached per instruction shape and micro-op contents, groups the iterations by
destination: destination ``d`` receives ``K`` products (uneven counts are padded with the zero
element past the end of each SRAM), so its result is one dot product of length ``K * BLOCK_IN``
-- an im2col row. Rows are then grouped by their sequence of input indices (S patterns) and of
weight indices (G patterns). When the S x G combinations are not many more than the D rows, one
BLAS product ``(S, K*BLOCK_IN) @ (K*BLOCK_IN, G*BLOCK_OUT)`` computes everything ("product"
mode; a convolution tile or a dense layer is exactly this). Otherwise every row is a small
product of its own ("rows" mode, stacked matmul).

Exactness: the operands are integers held in floats. Products are summed in float32 when every
partial sum stays within 2^24 (int8 x int8 with K*BLOCK_IN <= 1024), in float64 within 2^53,
and in int64 otherwise; the exact sum is wrapped to the accumulator width once, at the end.
"""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.hw.isa import GemmInsn, uop_columns
from accel.sim.loops import PlanCache, as_slice, check_bound, expand
from accel.sim.state import Srams

# Below this many products a plan skips the pattern search: rows mode is as fast there.
_SMALL = 64
# Product mode may compute this many times more rows than needed before rows mode wins.
_PRODUCT_WASTE = 8
# Rows mode gathers one weight matrix per row; bound the elements gathered at once.
_ROWS_CHUNK_ELEMS = 1 << 22


class GemmPlan:
    """How to compute one GEMM instruction shape; see the module docstring."""

    __slots__ = (
        "dst",
        "reset",
        "src_rows",
        "wgt_rows",
        "s_of_d",
        "g_of_d",
        "layout",
        "dtype",
        "weights",
    )

    def __init__(
        self, dst, reset, src_rows=None, wgt_rows=None, s_of_d=None, g_of_d=None, dtype=None
    ):
        self.dst = as_slice(dst)
        self.reset = reset
        self.src_rows = src_rows
        self.wgt_rows = wgt_rows
        self.s_of_d = s_of_d  # None: rows mode, row d uses src_rows[d] and wgt_rows[d]
        self.g_of_d = g_of_d
        self.layout = None if s_of_d is None else _layout(s_of_d, g_of_d, src_rows, wgt_rows)
        self.dtype = dtype
        self.weights = (-1, None)  # (weight SRAM version, gathered weight matrix)


def _layout(s_of_d, g_of_d, src_rows, wgt_rows) -> str:
    """How product-mode results map to destination rows: "sg" when row d is (s, g) in
    row-major order, "gs" when it is (g, s), else "gather"."""
    n_s, n_g = src_rows.shape[0], wgt_rows.shape[0]
    d = np.arange(s_of_d.size)
    if s_of_d.size == n_s * n_g:
        if (s_of_d == d // n_g).all() and (g_of_d == d % n_g).all():
            return "sg"
        if (g_of_d == d // n_s).all() and (s_of_d == d % n_s).all():
            return "gs"
    return "gather"


class GemmUnit:
    """Executes GEMM instructions on ``srams``, caching plans and gathered weights."""

    def __init__(self, env: Environment, srams: Srams):
        self.env = env
        self.srams = srams
        self.plans = PlanCache()
        bound = (1 << (env.INP_WIDTH - 1)) * (1 << (env.WGT_WIDTH - 1))
        self._product_bound = bound * env.BLOCK_IN  # |sum| bound per reduction element

    def execute(self, insn: GemmInsn) -> None:
        """Run one GEMM instruction; raises SimulatorError for an SRAM index past the end."""
        plan = self._plan(insn)
        if plan is None:
            return
        acc = self.srams.acc
        if plan.reset:
            acc[plan.dst] = 0
            return
        result = self._products(plan)
        acc[plan.dst] = (acc[plan.dst].astype(np.int64) + result.astype(np.int64)).astype(acc.dtype)

    # -- planning --------------------------------------------------------------------------
    def _plan(self, insn: GemmInsn) -> GemmPlan | None:
        words = self.srams.uop[insn.uop_bgn : insn.uop_end]
        if not (words.size and insn.iter_out and insn.iter_in):
            return None
        key = (
            insn.reset_reg,
            insn.iter_out,
            insn.iter_in,
            insn.dst_factor_out,
            insn.dst_factor_in,
            insn.src_factor_out,
            insn.src_factor_in,
            insn.wgt_factor_out,
            insn.wgt_factor_in,
            words.tobytes(),
        )
        return self.plans.get(key, lambda: self._build(insn, words))

    def _build(self, insn: GemmInsn, words: np.ndarray) -> GemmPlan:
        env = self.env
        udst, usrc, uwgt = uop_columns(words, env)
        loops = (insn.iter_out, insn.iter_in)
        dst = expand(udst, *loops, insn.dst_factor_out, insn.dst_factor_in)
        check_bound(dst, env.ACC_BUFF_DEPTH, "acc")
        if insn.reset_reg:
            return GemmPlan(np.unique(dst), reset=True)
        src = expand(usrc, *loops, insn.src_factor_out, insn.src_factor_in)
        wgt = expand(uwgt, *loops, insn.wgt_factor_out, insn.wgt_factor_in)
        check_bound(src, env.INP_BUFF_DEPTH, "inp")
        check_bound(wgt, env.WGT_BUFF_DEPTH, "wgt")

        counts_all = np.bincount(dst)
        rows = np.flatnonzero(counts_all)
        counts = counts_all[rows]
        k = int(counts.max())
        order = np.argsort(dst, kind="stable")
        src_mat = _by_row(src[order], counts, k, pad=env.INP_BUFF_DEPTH)
        wgt_mat = _by_row(wgt[order], counts, k, pad=env.WGT_BUFF_DEPTH)
        dtype = self._dtype(k)
        if dst.size > _SMALL:
            src_u, s_of_d = np.unique(src_mat, axis=0, return_inverse=True)
            wgt_u, g_of_d = np.unique(wgt_mat, axis=0, return_inverse=True)
            if src_u.shape[0] * wgt_u.shape[0] <= _PRODUCT_WASTE * rows.size:
                return GemmPlan(rows, False, src_u, wgt_u, s_of_d.ravel(), g_of_d.ravel(), dtype)
        return GemmPlan(rows, False, src_mat, wgt_mat, dtype=dtype)

    def _dtype(self, k: int) -> np.dtype:
        bound = k * self._product_bound
        if bound <= 1 << 24 and self.srams.inp.dtype == np.float32:
            return np.dtype(np.float32)
        if bound <= 1 << 53:
            return np.dtype(np.float64)
        return np.dtype(np.int64)

    # -- execution -------------------------------------------------------------------------
    def _products(self, plan: GemmPlan) -> np.ndarray:
        """The exact sums ``(D, BATCH, BLOCK_OUT)`` of the plan's rows (not yet wrapped)."""
        env = self.env
        batch, b_in, b_out = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT
        inp = np.take(self.srams.inp, plan.src_rows, axis=0)  # (S, K, BATCH, BLOCK_IN)
        n_src, k = plan.src_rows.shape
        if plan.s_of_d is None:
            return self._rows_products(plan, inp)
        a = inp.transpose(0, 2, 1, 3).reshape(n_src * batch, k * b_in)
        c = a.astype(plan.dtype, copy=False) @ self._weights(plan)
        c = c.reshape(n_src, batch, -1, b_out)
        if plan.layout == "sg":
            return c.transpose(0, 2, 1, 3).reshape(-1, batch, b_out)
        if plan.layout == "gs":
            return c.transpose(2, 0, 1, 3).reshape(-1, batch, b_out)
        return c[plan.s_of_d, :, plan.g_of_d]

    def _weights(self, plan: GemmPlan) -> np.ndarray:
        """The plan's weights as one ``(K*BLOCK_IN, G*BLOCK_OUT)`` matrix, reused while the
        weight SRAM is unchanged."""
        version, matrix = plan.weights
        if version != self.srams.wgt_version:
            w = np.take(self.srams.wgt, plan.wgt_rows, axis=0)  # (G, K, BLOCK_OUT, BLOCK_IN)
            g, k, b_out, b_in = w.shape
            matrix = w.transpose(1, 3, 0, 2).reshape(k * b_in, g * b_out).astype(plan.dtype)
            plan.weights = (self.srams.wgt_version, matrix)
        return matrix

    def _rows_products(self, plan: GemmPlan, inp: np.ndarray) -> np.ndarray:
        n_rows, k, batch, b_in = inp.shape
        b_out = self.env.BLOCK_OUT
        a = inp.transpose(0, 2, 1, 3).reshape(n_rows, batch, k * b_in)
        a = a.astype(plan.dtype, copy=False)
        out = np.empty((n_rows, batch, b_out), dtype=plan.dtype)
        step = max(1, _ROWS_CHUNK_ELEMS // (k * b_in * b_out))
        for lo in range(0, n_rows, step):
            w = np.take(self.srams.wgt, plan.wgt_rows[lo : lo + step], axis=0)
            w = w.transpose(0, 1, 3, 2).reshape(-1, k * b_in, b_out)  # (n, K*BLOCK_IN, BLOCK_OUT)
            w = w.astype(plan.dtype, copy=False)
            np.matmul(a[lo : lo + step], w, out=out[lo : lo + step])
        return out


def _by_row(values: np.ndarray, counts: np.ndarray, k: int, pad: int) -> np.ndarray:
    """Values sorted by row, as a ``(rows, k)`` matrix; short rows are padded with ``pad``."""
    if (counts == k).all():
        return values.reshape(counts.size, k)
    out = np.full((counts.size, k), pad, dtype=values.dtype)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    out[np.repeat(np.arange(counts.size), counts), np.arange(values.size) - starts] = values
    return out
