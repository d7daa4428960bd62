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
partial sum stays within 2^24 (int8 x int8 with K*BLOCK_IN <= 1024); longer reductions in
product mode run as float32 products over pieces of at most that length, each exact, summed as
int32 (``GemmPlan.k_chunk``); rows mode uses float64 within 2^53 and int64 beyond. The exact sum
is wrapped to the accumulator width once, at the end. A plan can also be built over arrays
other than the SRAMs (``plan_products`` / ``compute_products``): the stream plans of
``plan.py`` use it on their renamed, batched operands.
"""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.hw.isa import GemmInsn
from accel.sim.loops import PlanCache, as_slice, check_bound, expand, run_in_pieces, shifted_columns
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
        "blocks",
        "k_chunk",
        "updates",
    )

    def __init__(
        self,
        dst,
        reset,
        src_rows=None,
        wgt_rows=None,
        s_of_d=None,
        g_of_d=None,
        dtype=None,
        k_chunk=None,
    ):
        self.dst = as_slice(dst)
        self.reset = reset
        self.src_rows = src_rows
        self.wgt_rows = wgt_rows
        self.s_of_d = s_of_d  # None: rows mode, row d uses src_rows[d] and wgt_rows[d]
        self.g_of_d = g_of_d
        self.layout = None if s_of_d is None else _layout(s_of_d, g_of_d, src_rows, wgt_rows)
        self.dtype = dtype
        # Reduction elements (of K) per float32 product when a whole row would not be exact in
        # float32: the partial products are exact and are summed as int32 (None: one product).
        self.k_chunk = k_chunk
        self.updates = None  # (dst, src, wgt) the plan was made from, when a stream plan keeps them
        self.weights = (-1, None)  # (weight SRAM version, gathered weight matrix)
        # "blocks" layout: (source rows, weight rows, destination rows they produce in order)
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if self.layout == "gather":
            self.blocks = [
                (src_rows[s_list], wgt_rows[g_list], as_slice(rows))
                for s_list, g_list, rows in _blocks(self.s_of_d, self.g_of_d)
            ]
            if self.blocks:
                self.layout = "blocks"


def _blocks(s_of_d: np.ndarray, g_of_d: np.ndarray) -> list:
    """When the rows pair source patterns with weight patterns in a few dense blocks (sources
    sharing the same set of weight patterns), those blocks; else []. A product per block then
    computes each row once, where one product of every source with every weight would compute
    pairs no row needs (virtual threads interleave tiles of different channels and rows)."""
    n_s = int(s_of_d.max()) + 1
    n_g = int(g_of_d.max()) + 1
    if n_g > 64:
        return []
    masks = np.zeros(n_s, np.uint64)
    np.bitwise_or.at(masks, s_of_d, np.left_shift(np.uint64(1), g_of_d.astype(np.uint64)))
    kinds, kind_of_s = np.unique(masks, return_inverse=True)
    if kinds.size > 8:
        return []
    position = np.full((n_s, n_g), -1, np.int64)
    position[s_of_d, g_of_d] = np.arange(s_of_d.size)
    if np.count_nonzero(position >= 0) != s_of_d.size:
        return []  # two rows compute the same pair: the gather layout serves both
    blocks = []
    for k, mask in enumerate(kinds.tolist()):
        s_list = np.flatnonzero(kind_of_s == k)
        g_list = np.array([g for g in range(n_g) if mask >> g & 1], np.int64)
        rows = position[np.ix_(s_list, g_list)].ravel()  # (s, g) order
        if (rows < 0).any():
            return []
        blocks.append((s_list, g_list, rows))
    return blocks


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
        self._product_bound = product_bound(env)

    def execute(self, insn: GemmInsn) -> None:
        """Run one GEMM instruction; raises SimulatorError for an SRAM index past the end.
        A huge instruction runs in pieces (``loops.chunks``), which is exact since its
        products only add up."""
        words = self.srams.uop[insn.uop_bgn : insn.uop_end]
        run_in_pieces(insn, words, self._execute)

    def _execute(self, insn: GemmInsn, words: np.ndarray, start: tuple[int, int]) -> None:
        plan = self._plan(insn, words, start)
        acc = self.srams.acc
        if plan.reset:
            acc[plan.dst] = 0
            return
        result = self._products(plan)
        acc[plan.dst] = (acc[plan.dst].astype(np.int64) + result.astype(np.int64)).astype(acc.dtype)

    # -- planning --------------------------------------------------------------------------
    def _plan(self, insn: GemmInsn, words: np.ndarray, start: tuple[int, int]) -> GemmPlan:
        key = (
            start,
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
        return self.plans.get(key, lambda: self._build(insn, words, start))

    def _build(self, insn: GemmInsn, words: np.ndarray, start: tuple[int, int]) -> GemmPlan:
        env = self.env
        udst, usrc, uwgt = shifted_columns(words, env, insn, start)
        loops = (insn.iter_out, insn.iter_in)
        dst = expand(udst, *loops, insn.dst_factor_out, insn.dst_factor_in)
        check_bound(dst, env.ACC_BUFF_DEPTH, "acc")
        if insn.reset_reg:
            return GemmPlan(np.unique(dst), reset=True)
        src = expand(usrc, *loops, insn.src_factor_out, insn.src_factor_in)
        wgt = expand(uwgt, *loops, insn.wgt_factor_out, insn.wgt_factor_in)
        check_bound(src, env.INP_BUFF_DEPTH, "inp")
        check_bound(wgt, env.WGT_BUFF_DEPTH, "wgt")
        float32_ok = float32_holds(self.srams)
        return plan_products(
            dst, src, wgt, env.INP_BUFF_DEPTH, env.WGT_BUFF_DEPTH, self._product_bound, float32_ok
        )

    # -- execution -------------------------------------------------------------------------
    def _products(self, plan: GemmPlan) -> np.ndarray:
        """The exact sums ``(D, BATCH, BLOCK_OUT)`` of the plan's rows (not yet wrapped)."""
        return compute_products(plan, self.srams.inp, self.srams.wgt, self.srams.wgt_version)


def plan_products(
    dst: np.ndarray,
    src: np.ndarray,
    wgt: np.ndarray,
    src_pad: int,
    wgt_pad: int,
    product_bound: int,
    float32_ok: bool,
) -> GemmPlan:
    """The plan summing ``inp[src[n]] @ wgt[wgt[n]].T`` into row ``dst[n]`` for every n.

    ``src_pad`` / ``wgt_pad`` index an all-zero element of the input / weight array (used to
    pad rows with fewer products); ``product_bound`` bounds |one product summed over a block|,
    which picks the narrowest exact floating type (see the module docstring).
    """
    counts_all = np.bincount(dst)
    rows = np.flatnonzero(counts_all)
    counts = counts_all[rows]
    k = int(counts.max())
    order = np.argsort(dst, kind="stable")
    src_mat = _by_row(src[order], counts, k, pad=src_pad)
    wgt_mat = _by_row(wgt[order], counts, k, pad=wgt_pad)
    dtype = _exact_dtype(k * product_bound, float32_ok)
    if dst.size > _SMALL:
        src_u, s_of_d = unique_rows(src_mat)
        wgt_u, g_of_d = unique_rows(wgt_mat)
        if src_u.shape[0] * wgt_u.shape[0] <= _PRODUCT_WASTE * rows.size:
            # Long reductions stay in float32, in exact pieces summed as int32, rather than
            # in float64 (twice the memory traffic and half the BLAS speed).
            k_chunk = None
            fits = (1 << 24) // product_bound
            if dtype != np.float32 and float32_ok and fits >= 1 and k * product_bound < 1 << 31:
                dtype, k_chunk = np.dtype(np.float32), fits
            return GemmPlan(
                rows, False, src_u, wgt_u, s_of_d.ravel(), g_of_d.ravel(), dtype, k_chunk
            )
    return GemmPlan(rows, False, src_mat, wgt_mat, dtype=dtype)


def unique_rows(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, index of each row's distinct row), like ``np.unique(mat, axis=0,
    return_inverse=True)`` but through a 64-bit hash of each row, which sorts far faster than
    rows do; the grouping is verified, and a hash collision falls back to the exact sort.
    Distinct rows come in the order of their first appearance: products then produce their
    rows in the program's order, which keeps the stores of a plan regular (``strided.py``)."""
    mixed = (mat.astype(np.uint64) + np.uint64(1)) * _HASH_MULTIPLIERS[: mat.shape[1]]
    keys = np.bitwise_xor.reduce(mixed * np.uint64(0x9E3779B97F4A7C15), axis=1) + mixed.sum(1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first)
    rank = np.empty_like(by_appearance)
    rank[by_appearance] = np.arange(by_appearance.size)
    first, inverse = first[by_appearance], rank[inverse.ravel()]
    distinct = mat[first]
    if not np.array_equal(distinct[inverse], mat):
        distinct, inverse = np.unique(mat, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    return distinct, inverse


# Odd 64-bit multipliers, one per column, for unique_rows' hash (fixed: plans are deterministic).
_HASH_MULTIPLIERS = np.random.default_rng(0x5EED).integers(
    1, 1 << 63, size=4096, dtype=np.uint64
) | np.uint64(1)


def product_bound(env: Environment) -> int:
    """A bound on |one reduction element|: a BLOCK_IN-long dot product of an input and a weight
    row, each value at most 2^(width - 1) in magnitude."""
    return (1 << (env.INP_WIDTH - 1)) * (1 << (env.WGT_WIDTH - 1)) * env.BLOCK_IN


def float32_holds(srams: Srams) -> bool:
    """Whether the SRAMs' values are float32 (widths up to 16 bits, ``state.py``), so that a
    float32 product of them is exact while its sums stay below 2^24."""
    return srams.inp.dtype == np.float32


def _exact_dtype(bound: int, float32_ok: bool) -> np.dtype:
    if bound <= 1 << 24 and float32_ok:
        return np.dtype(np.float32)
    if bound <= 1 << 53:
        return np.dtype(np.float64)
    return np.dtype(np.int64)


def compute_products(
    plan: GemmPlan,
    inp: np.ndarray,
    wgt: np.ndarray,
    wgt_version: int | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The exact sums ``(D, BATCH, BLOCK_OUT)`` of the plan's rows (not yet wrapped), reading
    input elements ``(n, BATCH, BLOCK_IN)`` and weight elements ``(n, BLOCK_OUT, BLOCK_IN)``;
    written into ``out`` when given (cast to its type: the caller makes sure the sums fit).
    The gathered weight matrix is kept with the plan while ``wgt_version`` is unchanged (None:
    gather every time)."""
    if plan.layout == "blocks":
        return _block_products(plan, inp, wgt, wgt_version, out)
    sums = _products(plan, inp, wgt, wgt_version)
    if out is None:
        return sums
    out[...] = sums
    return out


def _products(plan: GemmPlan, inp: np.ndarray, wgt: np.ndarray, wgt_version) -> np.ndarray:
    _, batch, b_in = inp.shape
    b_out = wgt.shape[1]
    n_src, k = plan.src_rows.shape
    taken = np.take(inp, plan.src_rows, axis=0)  # (S, K, BATCH, BLOCK_IN)
    if plan.s_of_d is None:
        return _rows_products(plan, taken, wgt)
    a = taken.transpose(0, 2, 1, 3).reshape(n_src * batch, k * b_in)
    c = _product(plan, a, _weights(plan, wgt, wgt_version), b_in)
    c = c.reshape(n_src, batch, -1, b_out)
    if plan.layout == "sg":
        return c.transpose(0, 2, 1, 3).reshape(-1, batch, b_out)
    if plan.layout == "gs":
        return c.transpose(2, 0, 1, 3).reshape(-1, batch, b_out)
    return c[plan.s_of_d, :, plan.g_of_d]


def _product(plan: GemmPlan, lhs: np.ndarray, rhs: np.ndarray, b_in: int) -> np.ndarray:
    """``lhs @ rhs``, exact: in the plan's type, or in float32 pieces of ``k_chunk`` reduction
    elements summed as int32 (each piece stays below 2^24, the sum below 2^31)."""
    lhs = lhs.astype(plan.dtype, copy=False)
    rhs = rhs.astype(plan.dtype, copy=False)
    if plan.k_chunk is None or lhs.shape[1] <= plan.k_chunk * b_in:
        return lhs @ rhs
    step = plan.k_chunk * b_in
    total = np.zeros((lhs.shape[0], rhs.shape[1]), np.int32)
    for lo in range(0, lhs.shape[1], step):
        total += (lhs[:, lo : lo + step] @ rhs[lo : lo + step]).astype(np.int32)
    return total


def _block_products(plan: GemmPlan, inp: np.ndarray, wgt: np.ndarray, version, out=None):
    _, batch, b_in = inp.shape
    b_out = wgt.shape[1]
    if out is None:
        dtype = np.int32 if plan.k_chunk else plan.dtype
        out = np.empty((plan.s_of_d.size, batch, b_out), dtype)
    cached_version, matrices = plan.weights
    if version is None or cached_version != version:
        matrices = [_weight_matrix(plan, wgt, wgt_rows) for _, wgt_rows, _ in plan.blocks]
        if version is not None:
            plan.weights = (version, matrices)
    for (src_rows, _, rows), w in zip(plan.blocks, matrices, strict=True):
        k = src_rows.shape[1]
        lhs = np.take(inp, src_rows, axis=0)  # (S, K, BATCH, BLOCK_IN)
        lhs = lhs.transpose(0, 2, 1, 3).reshape(src_rows.shape[0] * batch, k * b_in)
        c = _product(plan, lhs, w, b_in)
        c = c.reshape(src_rows.shape[0], batch, -1, b_out)
        out[rows] = c.transpose(0, 2, 1, 3).reshape(-1, batch, b_out)
    return out


def _weight_matrix(plan: GemmPlan, wgt: np.ndarray, wgt_rows: np.ndarray) -> np.ndarray:
    """Weight elements ``wgt_rows`` (G, K) as one ``(K*BLOCK_IN, G*BLOCK_OUT)`` matrix of the
    plan's type."""
    w = np.take(wgt, wgt_rows, axis=0)  # (G, K, BLOCK_OUT, BLOCK_IN)
    g, k, b_out, b_in = w.shape
    return w.transpose(1, 3, 0, 2).astype(plan.dtype, order="C").reshape(k * b_in, g * b_out)


def _weights(plan: GemmPlan, wgt: np.ndarray, version: int | None) -> np.ndarray:
    """The plan's weights as one ``(K*BLOCK_IN, G*BLOCK_OUT)`` matrix, reused while the weight
    SRAM is unchanged."""
    cached_version, matrix = plan.weights
    if version is None or cached_version != version:
        matrix = _weight_matrix(plan, wgt, plan.wgt_rows)
        if version is not None:
            plan.weights = (version, matrix)
    return matrix


def _rows_products(plan: GemmPlan, inp: np.ndarray, wgt: np.ndarray) -> np.ndarray:
    n_rows, k, batch, b_in = inp.shape
    b_out = wgt.shape[1]
    a = inp.transpose(0, 2, 1, 3).reshape(n_rows, batch, k * b_in)
    a = a.astype(plan.dtype, copy=False)
    out = np.empty((n_rows, batch, b_out), dtype=plan.dtype)
    step = max(1, _ROWS_CHUNK_ELEMS // (k * b_in * b_out))
    for lo in range(0, n_rows, step):
        w = np.take(wgt, plan.wgt_rows[lo : lo + step], axis=0)
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
