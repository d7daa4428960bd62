"""An analytic cycle predictor, to rank candidates before measuring them.

It charges each module what the cycle model charges its instructions (docs/cycle_model.md),
counted per tile from the tile sizes, and overlaps the modules as virtual threads allow:

- ``L``: the load module's input and weight loads, per input-channel step;
- ``C``: the compute module's reset, GEMM and ALU instructions and its bias and micro-op
  loads, per output tile;
- ``S``: the store module's stores, per output tile;
- one thread serialises them (each step's load waits for the GEMM that read the buffer
  before, each tile's reset waits for the store that read the accumulators);
  ``k = threads x row_threads`` threads overlap them: ``max(L, C, S, (L + C + S) / k)`` plus the
  first load and the last store, which nothing hides.

It ignores padding, the splitting of loads at image borders, micro-op reloads and token waits
between individual instructions, so it ranks rather than predicts: every reported best is
measured (``accel/tune/measure.py``). ``benchmarks/bench_tune.py`` prints how often the
measured best lies among its top candidates.
"""

from __future__ import annotations

from typing import Any

from accel.env import Environment


def _dma(env: Environment, nbytes: int) -> int:
    beats = -(-nbytes // env.DRAM_BUS_BYTES)
    return env.INSTRUCTION_OVERHEAD_CYCLES + env.DRAM_LATENCY_CYCLES + beats


def _gemm(env: Environment, steps: int) -> int:
    return env.INSTRUCTION_OVERHEAD_CYCLES + env.GEMM_PIPELINE_DEPTH + steps


def _alu(env: Environment, vectors: int) -> int:
    return (
        env.INSTRUCTION_OVERHEAD_CYCLES
        + env.ALU_PIPELINE_DEPTH
        + vectors * env.ALU_CYCLES_PER_VECTOR
    )


def _overlap(env, tiles, steps, load_step, compute_tile, store_tile, threads) -> float:
    loads, compute, stores = tiles * steps * load_step, tiles * compute_tile, tiles * store_tile
    if threads == 1:
        return loads + compute + stores
    busiest = max(loads, compute, stores, (loads + compute + stores) / threads)
    return busiest + load_step + store_tile


def _alu_stages(op: Any) -> int:
    stages = op.epilogue if hasattr(op, "epilogue") else op.stages
    return len(stages)


def conv2d(op: Any, env: Environment, t: Any) -> float:
    """Predicted cycles of a (plain or grouped) convolution with tiles ``t``."""
    groups = op.groups
    ob, out_h, out_w = op.res.shape[-5:-2]
    icb = op.kernel.shape[-5]
    kh, kw = op.kernel.shape[-4:-2]
    s = op.stride
    in_rows, in_cols = (t.rows - 1) * s + kh, (t.cols - 1) * s + kw
    tiles = groups * (ob // t.oc_blocks) * (out_h // t.rows) * (out_w // t.cols)
    steps = icb // t.ic_blocks
    out_vectors = t.oc_blocks * t.rows * t.cols
    load_step = t.ic_blocks * _dma(env, in_rows * in_cols * env.INP_ELEM_BYTES) + _dma(
        env, t.oc_blocks * t.ic_blocks * kh * kw * env.WGT_ELEM_BYTES
    )
    compute_tile = (
        _gemm(env, out_vectors)
        + steps * _gemm(env, out_vectors * t.ic_blocks * kh * kw)
        + _alu_stages(op) * _alu(env, out_vectors)
        + (_dma(env, t.oc_blocks * env.ACC_ELEM_BYTES) if op.bias is not None else 0)
    )
    store_tile = t.oc_blocks * t.rows * _dma(env, t.cols * env.OUT_ELEM_BYTES)
    return _overlap(
        env, tiles, steps, load_step, compute_tile, store_tile, t.threads * t.row_threads
    )


def conv2d_transpose(op: Any, env: Environment, t: Any) -> float:
    """Predicted cycles of a transposed convolution (tiles count phase rows and columns)."""
    _nb, ob, rows, s, cols, _s, _b, _o = op.res.shape
    icb, taps = op.kernel.shape[1], op.kernel.shape[4]
    tiles = (ob // t.oc_blocks) * (rows // t.rows) * (cols // t.cols)
    steps = icb // t.ic_blocks
    out_vectors = t.oc_blocks * t.rows * s * t.cols * s
    in_box = (t.rows + taps) * (t.cols + taps)
    load_step = t.ic_blocks * _dma(env, in_box * env.INP_ELEM_BYTES) + _dma(
        env, t.oc_blocks * t.ic_blocks * s * s * taps * taps * env.WGT_ELEM_BYTES
    )
    compute_tile = (
        _gemm(env, out_vectors)
        + steps * s * s * _gemm(env, t.oc_blocks * t.rows * t.cols * t.ic_blocks * taps * taps)
        + _alu_stages(op) * _alu(env, out_vectors)
    )
    store_tile = t.oc_blocks * t.rows * s * _dma(env, t.cols * s * env.OUT_ELEM_BYTES)
    return _overlap(
        env, tiles, steps, load_step, compute_tile, store_tile, t.threads * t.row_threads
    )


def dense(op: Any, env: Environment, t: Any) -> float:
    """Predicted cycles of a dense layer."""
    nb, ob, _b, _o = op.res.shape
    ib = op.data.shape[1]
    tiles = (nb // t.batch_blocks) * (ob // t.oc_blocks)
    steps = ib // t.ic_blocks
    load_step = _dma(env, t.batch_blocks * t.ic_blocks * env.INP_ELEM_BYTES) + _dma(
        env, t.oc_blocks * t.ic_blocks * env.WGT_ELEM_BYTES
    )
    out_vectors = t.batch_blocks * t.oc_blocks
    compute_tile = (
        _gemm(env, out_vectors)
        + steps * _gemm(env, out_vectors * t.ic_blocks)
        + _alu_stages(op) * _alu(env, out_vectors)
    )
    store_tile = t.batch_blocks * _dma(env, t.oc_blocks * env.OUT_ELEM_BYTES)
    return _overlap(env, tiles, steps, load_step, compute_tile, store_tile, t.threads)


def vector(op: Any, env: Environment, t: Any) -> float:
    """Predicted cycles of a vector operator: its 8-bit loads into the accumulator and its ALU
    stages both run on the compute module."""
    _nb, cb, out_h, out_w, _b, _o = op.res.shape
    in_w = op.inputs[0].shape[3]
    tiles = (cb // t.c_blocks) * (out_h // t.rows)
    in_rows = t.rows if op.window is None else (t.rows - 1) * op.window[1] + op.window[0]
    load = len(op.loads) * t.c_blocks * _dma(env, in_rows * in_w * env.INP_ELEM_BYTES)
    compute_tile = load + len(op.stages) * _alu(env, t.c_blocks * t.rows * out_w)
    store_tile = t.c_blocks * t.rows * _dma(env, out_w * env.OUT_ELEM_BYTES)
    return _overlap(env, tiles, 1, 0, compute_tile, store_tile, t.threads)


def traffic(kind: str, op: Any, env: Environment, t: Any) -> int:
    """Predicted DRAM bytes of ``op`` with tiles ``t``: every tile's input and weight loads,
    bias loads and the result's stores (micro-ops and instructions left out). What the energy
    objective ranks by, since DRAM dominates the energy of a run (docs/tuning.md)."""
    if kind == "conv2d":
        ob, out_h, out_w = op.res.shape[-5:-2]
        kh, kw = op.kernel.shape[-4:-2]
        s = op.stride
        tiles = op.groups * (ob // t.oc_blocks) * (out_h // t.rows) * (out_w // t.cols)
        steps = op.kernel.shape[-5] // t.ic_blocks
        box = ((t.rows - 1) * s + kh) * ((t.cols - 1) * s + kw)
        per_step = t.ic_blocks * (
            box * env.INP_ELEM_BYTES + t.oc_blocks * kh * kw * env.WGT_ELEM_BYTES
        )
        bias = t.oc_blocks * env.ACC_ELEM_BYTES if op.bias is not None else 0
        outputs = op.groups * ob * out_h * out_w * env.OUT_ELEM_BYTES
        return tiles * (steps * per_step + bias) + outputs
    if kind == "dense":
        nb, ob, _b, _o = op.res.shape
        ib = op.data.shape[1]
        loads = (nb // t.batch_blocks) * ob * ib * env.WGT_ELEM_BYTES
        loads += (ob // t.oc_blocks) * nb * ib * env.INP_ELEM_BYTES
        return loads + nb * ob * env.OUT_ELEM_BYTES
    if kind == "vector":
        _nb, cb, out_h, out_w, _b, _o = op.res.shape
        in_w = op.inputs[0].shape[3]
        rows = t.rows if op.window is None else (t.rows - 1) * op.window[1] + op.window[0]
        tiles = (cb // t.c_blocks) * (out_h // t.rows)
        loads = tiles * len(op.loads) * t.c_blocks * rows * in_w * env.INP_ELEM_BYTES
        return loads + cb * out_h * out_w * env.OUT_ELEM_BYTES
    _nb, ob, rows, s, cols, _s, _b, _o = op.res.shape  # conv2d_transpose
    taps = op.kernel.shape[4]
    tiles = (ob // t.oc_blocks) * (rows // t.rows) * (cols // t.cols)
    steps = op.kernel.shape[1] // t.ic_blocks
    box = (t.rows + taps) * (t.cols + taps)
    per_step = t.ic_blocks * (
        box * env.INP_ELEM_BYTES + t.oc_blocks * s * s * taps * taps * env.WGT_ELEM_BYTES
    )
    return tiles * steps * per_step + ob * rows * s * cols * s * env.OUT_ELEM_BYTES


PREDICTORS = {
    "conv2d": conv2d,
    "conv2d_transpose": conv2d_transpose,
    "dense": dense,
    "vector": vector,
}


def predict(kind: str, op: Any, env: Environment, tiles: Any) -> float:
    """Predicted cycles of ``op`` with ``tiles`` (template ``kind``)."""
    return PREDICTORS[kind](op, env, tiles)
