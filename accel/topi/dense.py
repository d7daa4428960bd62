"""Fully-connected layers on packed tensors, with the requantizing epilogue, and their schedule.

``dense_packed`` declares ``res = cast_int8(clip((data . weight^T + bias) >> shift))`` on the
packed layouts below; ``schedule_dense_packed`` tiles the output by (batch blocks, output-channel
blocks), streams input-channel blocks through, optionally runs virtual threads along output
channels, and puts the epilogue on the ALU. ``default_dense_tiles`` picks tiles that fit the
configuration's SRAMs.

Packed layouts (``pack_dense_data`` / ``pack_dense_weight`` / ``pack_dense_bias`` /
``unpack_dense``):

- data ``(N/BATCH, I/BLOCK_IN, BATCH, BLOCK_IN)`` int8,
- weight ``(O/BLOCK_OUT, I/BLOCK_IN, BLOCK_OUT, BLOCK_IN)`` int8,
- bias ``(O/BLOCK_OUT, BATCH, BLOCK_OUT)`` int32 (the same bias for every batch block),
- result ``(N/BATCH, O/BLOCK_OUT, BATCH, BLOCK_OUT)`` int8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.errors import AllocationError, ScheduleError
from accel.te import Tensor, compute, create_schedule, reduce_axis, thread_axis
from accel.te import sum as te_sum
from accel.topi import checks
from accel.topi.common import AluStep, Operand, alu_epilogue, check_bias, divisors, requantize
from accel.topi.packing import channel_blocks
from accel.topi.tuning import tuned_tiles


@dataclass
class Dense:
    """The stages of one fully-connected layer (``res`` is the output)."""

    data: Tensor
    weight: Tensor
    bias: Tensor | None
    data_buf: Tensor
    weight_buf: Tensor
    bias_buf: Tensor | None
    gemm: Tensor
    epilogue: list[Tensor]
    res: Tensor
    operands: list[Tensor] = field(default_factory=list)  # the epilogue's tensor operands
    operand_bufs: list[Tensor] = field(default_factory=list)  # their accumulator copies

    @property
    def args(self) -> list[Tensor]:
        inputs = [self.data, self.weight] + ([self.bias] if self.bias is not None else [])
        return [*inputs, *self.operands, self.res]


@dataclass(frozen=True)
class DenseTiles:
    """Tile sizes: batch blocks and output-channel blocks per output tile, input-channel blocks
    per step, and virtual threads along output channels."""

    batch_blocks: int
    oc_blocks: int
    ic_blocks: int
    threads: int = 2


def dense_packed(
    data: Tensor,
    weight: Tensor,
    env: Environment,
    shift: int | None = 8,
    clip: tuple[int, int] | None = (0, 127),
    bias: Tensor | None = None,
    epilogue: Sequence[AluStep] | None = None,
    operands: Sequence[Operand] = (),
) -> Dense:
    """Declare the product of packed ``data`` by packed ``weight`` (transposed) and its epilogue.

    ``bias`` (optional) is a packed per-channel int32 tensor ``(O/BLOCK_OUT, BATCH, BLOCK_OUT)``;
    ``shift=None`` leaves out the right shift and ``clip=None`` the clip, so the result is then
    the accumulator's low eight bits. ``epilogue`` (optional) replaces shift and clip by a
    general ALU program run after the bias, reading the tensor ``operands`` (per output channel
    or of the result's shape; see :func:`accel.topi.common.alu_epilogue`), which follow the bias
    in :attr:`Dense.args`. Raises ScheduleError when the shapes are not packed for ``env`` or
    do not agree.
    """
    checks.shift("dense_packed", shift)
    if len(data.shape) != 4 or len(weight.shape) != 4:
        raise ScheduleError(
            f"dense_packed: data {data.shape} and weight {weight.shape} must both be packed "
            "(four dimensions); see pack_dense_data and pack_dense_weight"
        )
    nb, ib, bb, bi = data.shape
    ob, ib2, bo, bi2 = weight.shape
    if (ib, bi) != (ib2, bi2) or (bb, bi, bo) != (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT):
        raise ScheduleError(
            f"dense_packed: data {data.shape} and weight {weight.shape} are not packed for "
            f"BATCH {env.BATCH}, BLOCK_IN {env.BLOCK_IN}, BLOCK_OUT {env.BLOCK_OUT} with the "
            "same input channels"
        )
    if bias is not None:
        check_bias("dense_packed", bias, ob, env)
    out_shape = (nb, ob, bb, bo)
    data_buf = compute(data.shape, lambda *i: data(*i), name="data_buf")
    weight_buf = compute(weight.shape, lambda *i: weight(*i), name="weight_buf")
    ic = reduce_axis((0, ib), name="ic")
    ic_tns = reduce_axis((0, bi), name="ic_tns")
    gemm = compute(
        out_shape,
        lambda n, o, x, y: te_sum(
            data_buf[n, ic, x, ic_tns].astype(env.acc_dtype)
            * weight_buf[o, ic, y, ic_tns].astype(env.acc_dtype),
            axis=[ic, ic_tns],
        ),
        name="gemm",
    )
    channel = lambda n, o, x, y: (o, x, y)  # noqa: E731
    if epilogue is None:
        if operands:
            raise ScheduleError("dense_packed: operands are read by an epilogue; give one")
        stages, bias_buf, res = requantize(gemm, env, shift, clip, bias, channel)
        return Dense(data, weight, bias, data_buf, weight_buf, bias_buf, gemm, stages, res)
    stages, bias_buf, _ = requantize(gemm, env, None, None, bias, channel)
    tail = alu_epilogue(
        stages[-1] if stages else gemm,
        env,
        epilogue,
        operands,
        ((ob, env.BATCH, env.BLOCK_OUT), channel),
        "dense_packed",
    )
    return Dense(
        data,
        weight,
        bias,
        data_buf,
        weight_buf,
        bias_buf,
        gemm,
        stages + tail.stages,
        tail.res,
        operands=[o.tensor for o in operands],
        operand_bufs=tail.loads,
    )


def default_dense_tiles(op: Dense, env: Environment, threads: int = 2) -> DenseTiles:
    """Tiles that fit the SRAMs with ``threads`` virtual threads (one thread when the
    output-channel blocks do not split evenly), each thread with its own share of every SRAM.

    Every weight is loaded once per batch tile and every datum once per output-channel tile, so
    the batch and output-channel tiles are the pair that loads the fewest bytes (the larger
    output-channel tile on a tie). One thread then takes the longest input-channel step that
    fits: it cannot overlap its loads with its GEMMs, so fewer, longer DMA bursts win. With more
    threads the step is at most 1/8 of the input channels, so that one thread's loads run while
    another's GEMMs do. Raises AllocationError when not even one block of each fits.
    """
    checks.whole("default_dense_tiles", "threads", threads, 1)
    if tuned := tuned_tiles(default_dense_tiles, op, env, threads=threads):
        return tuned  # tuned tiles (accel.tune) answer first; see accel/topi/tuning.py
    nb, ob, _b, _o = op.res.shape
    ib = op.data.shape[1]
    threads = threads if ob % threads == 0 else 1
    inp, wgt = env.INP_BUFF_DEPTH // threads, env.WGT_BUFF_DEPTH // threads
    acc = env.ACC_BUFF_DEPTH // threads

    full = sum(len(b.shape) == len(op.res.shape) for b in op.operand_bufs)
    per_channel = len(op.operand_bufs) - full + (op.bias is not None)

    def fits(bb: int, oc: int, icb: int) -> bool:
        extra = oc * per_channel + bb * oc * full  # the bias and the epilogue's operands
        return bb * icb <= inp and oc * icb <= wgt and bb * oc + extra <= acc

    def traffic(bb: int, oc: int) -> int:
        # bytes loaded: every weight once per batch tile, every datum once per channel tile
        return (nb // bb) * ob * ib * env.WGT_ELEM_BYTES + (ob // oc) * nb * ib * env.INP_ELEM_BYTES

    pairs = [(bb, oc) for bb in divisors(nb) for oc in divisors(ob // threads) if fits(bb, oc, 1)]
    if not pairs:
        raise AllocationError(
            f"dense {op.res.shape}: not even one batch, output- and input-channel block fits "
            f"the SRAMs with {threads} virtual threads; use fewer threads"
        )
    bb, oc = min(pairs, key=lambda p: (traffic(*p), -p[1]))
    # One thread cannot overlap its loads with its GEMMs, so it takes the longest steps; with
    # more, a tile of _STEPS steps lets one thread load while another computes, and keeps the
    # pipeline fill (one step) short.
    most = ib if threads == 1 else max(1, ib // _STEPS)
    icb = max(d for d in divisors(ib) if d <= most and fits(bb, oc, d))
    return DenseTiles(bb, oc, icb, threads)


def schedule_dense_packed(op: Dense, env: Environment, tiles: DenseTiles | None = None):
    """The accelerator schedule of ``op`` with ``tiles`` (default: :func:`default_dense_tiles`).

    Raises ScheduleError when a tile does not divide its axis or the output-channel tiles cannot
    be shared evenly by the virtual threads; a tile too large for its SRAM is refused with an
    AllocationError when the schedule is built.
    """
    checks.tiles_of("schedule_dense_packed", tiles, DenseTiles)
    tiles = tiles or default_dense_tiles(op, env)
    res, gemm = op.res, op.gemm
    for name, total, tile in (
        ("batch blocks", res.shape[0], tiles.batch_blocks),
        ("output-channel blocks", res.shape[1], tiles.oc_blocks),
        ("input-channel blocks", op.data.shape[1], tiles.ic_blocks),
    ):
        if tile < 1 or total % tile:
            raise ScheduleError(f"dense tile of {tile} {name} does not divide {total}")
    if tiles.threads < 1 or (res.shape[1] // tiles.oc_blocks) % tiles.threads:
        raise ScheduleError(
            f"dense: {res.shape[1] // tiles.oc_blocks} output-channel tiles cannot be shared "
            f"by {tiles.threads} virtual threads"
        )
    s = create_schedule(res.op)
    b, oc, b_tns, oc_tns = s[res].op.axis
    b_out, b_inn = s[res].split(b, factor=tiles.batch_blocks)
    oc_out, oc_inn = s[res].split(oc, factor=tiles.oc_blocks)
    if tiles.threads > 1:
        # split before anything is attached to oc_out: thread t takes tiles t, t + threads, ...
        oc_out, tx = s[res].split(oc_out, factor=tiles.threads)
        s[res].reorder(tx, b_out, oc_out, b_inn, oc_inn, b_tns, oc_tns)
        s[res].bind(tx, thread_axis("cthread"))
    else:
        s[res].reorder(b_out, oc_out, b_inn, oc_inn, b_tns, oc_tns)
    for t in (gemm, *op.epilogue):
        s[t].set_scope(env.acc_scope)
        s[t].compute_at(s[res], oc_out)
    for t in op.epilogue:
        s[t].pragma(s[t].op.axis[0], env.alu)
    copies = [op.bias_buf] if op.bias_buf is not None else []
    for buf in copies + op.operand_bufs:
        s[buf].set_scope(env.acc_scope)
        s[buf].compute_at(s[res], oc_out)
        s[buf].pragma(s[buf].op.axis[0], env.dma_copy)
    s[res].pragma(b_inn, env.dma_copy)
    n, o, bt, ot = s[gemm].op.axis
    ic, ic_tns = s[gemm].op.reduce_axis
    ic_out, ic_inn = s[gemm].split(ic, factor=tiles.ic_blocks)
    s[gemm].reorder(ic_out, n, o, ic_inn, bt, ot, ic_tns)
    for buf, scope in ((op.data_buf, env.inp_scope), (op.weight_buf, env.wgt_scope)):
        s[buf].set_scope(scope)
        s[buf].compute_at(s[gemm], ic_out)
        s[buf].pragma(s[buf].op.axis[0], env.dma_copy)
    s[gemm].tensorize(bt, env.gemm)
    return s


def pack_dense_data(x: np.ndarray, env: Environment) -> np.ndarray:
    """(N, I) activations in the packed data layout; raises ArgumentError unless N and I are
    multiples of BATCH and BLOCK_IN."""
    n, i = x.shape
    nb, ib = (
        channel_blocks(n, env.BATCH, "batch"),
        channel_blocks(i, env.BLOCK_IN, "input channels"),
    )
    return np.ascontiguousarray(x.reshape(nb, env.BATCH, ib, env.BLOCK_IN).transpose(0, 2, 1, 3))


def pack_dense_weight(w: np.ndarray, env: Environment) -> np.ndarray:
    """(O, I) weights in the packed weight layout; raises ArgumentError unless O and I are
    multiples of BLOCK_OUT and BLOCK_IN."""
    o, i = w.shape
    ob = channel_blocks(o, env.BLOCK_OUT, "output channels")
    ib = channel_blocks(i, env.BLOCK_IN, "input channels")
    return np.ascontiguousarray(
        w.reshape(ob, env.BLOCK_OUT, ib, env.BLOCK_IN).transpose(0, 2, 1, 3)
    )


def pack_dense_bias(b: np.ndarray, env: Environment) -> np.ndarray:
    """A per-channel (O,) int32 bias in the packed bias layout, the same for every batch lane;
    raises ArgumentError unless O is a multiple of BLOCK_OUT."""
    ob = channel_blocks(b.shape[0], env.BLOCK_OUT, "output channels")
    lanes = np.broadcast_to(b.reshape(ob, 1, env.BLOCK_OUT), (ob, env.BATCH, env.BLOCK_OUT))
    return np.ascontiguousarray(lanes)


def unpack_dense(y: np.ndarray) -> np.ndarray:
    """A packed dense result back to (N, O)."""
    nb, ob, b, o = y.shape
    return np.ascontiguousarray(y.transpose(0, 2, 1, 3).reshape(nb * b, ob * o))


_STEPS = 8  # input-channel steps per output tile when virtual threads overlap load and GEMM
