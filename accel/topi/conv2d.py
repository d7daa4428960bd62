"""2-D convolution on packed tensors, with the requantizing epilogue, and its default schedule.

``conv2d_packed`` declares ``res = cast_int8(clip((conv(data, kernel) + bias) >> shift))`` on the
packed layouts (see ``accel.topi.packing``): any kernel size, stride and zero padding (done by
the padded loads), dilation 1. ``schedule_conv2d_packed`` tiles the output by
(output-channel blocks, rows, columns), streams input-channel blocks through, optionally runs
virtual threads along output channels and rows, and puts the epilogue on the ALU. ``default_tiles``
picks tiles that fit the configuration's SRAMs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from accel.env import Environment
from accel.errors import AllocationError, ScheduleError
from accel.te import Tensor, compute, create_schedule, reduce_axis, thread_axis
from accel.te import sum as te_sum
from accel.topi import checks
from accel.topi.common import (
    AluStep,
    Operand,
    alu_epilogue,
    check_bias,
    divisors,
    requantize,
    zero_padded,
)
from accel.topi.tuning import tuned_tiles


@dataclass
class Conv2d:
    """The stages of one convolution (``res`` is the output)."""

    data: Tensor
    kernel: Tensor
    bias: Tensor | None
    data_buf: Tensor
    kernel_buf: Tensor
    bias_buf: Tensor | None
    conv: Tensor
    epilogue: list[Tensor]
    res: Tensor
    stride: int
    groups: int = 1  # > 1: every stage has a group axis after the batch axis
    operands: list[Tensor] = field(default_factory=list)  # the epilogue's tensor operands
    operand_bufs: list[Tensor] = field(default_factory=list)  # their accumulator copies

    @property
    def args(self) -> list[Tensor]:
        inputs = [self.data, self.kernel] + ([self.bias] if self.bias is not None else [])
        return [*inputs, *self.operands, self.res]


@dataclass(frozen=True)
class Conv2dTiles:
    """Tile sizes: output-channel blocks, rows and columns per tile, input-channel blocks per
    step, and virtual threads along output channels (``threads``) and along rows
    (``row_threads``); each thread holds its own tiles, so the SRAMs are shared by
    ``threads * row_threads`` of them."""

    oc_blocks: int
    rows: int
    cols: int
    ic_blocks: int = 1
    threads: int = 2
    row_threads: int = 1


def conv2d_packed(
    data: Tensor,
    kernel: Tensor,
    env: Environment,
    stride: int = 1,
    padding: int = 0,
    shift: int = 8,
    clip: tuple[int, int] = (0, 127),
    bias: Tensor | None = None,
    epilogue: Sequence[AluStep] | None = None,
    operands: Sequence[Operand] = (),
) -> Conv2d:
    """Declare the convolution of packed ``data`` by packed ``kernel`` and its epilogue.

    ``bias`` (optional) is a packed per-channel int32 tensor ``(O/BLOCK_OUT, BATCH, BLOCK_OUT)``.
    ``epilogue`` (optional) replaces the shift and clip by a general ALU program run after the
    bias (see :func:`accel.topi.common.alu_epilogue`), reading the tensor ``operands``: per
    output channel (a multiplier, packed like the bias) or of the result's shape (a residual
    activation); they follow the bias in :attr:`Conv2d.args`.
    """
    checks.whole("conv2d_packed", "stride", stride, 1)
    checks.whole("conv2d_packed", "padding", padding, 0)
    checks.shift("conv2d_packed", shift)
    nb, cb, h, w, bb, bi = data.shape
    ob, icb, kh, kw, bo, bi2 = kernel.shape
    if (cb, bi) != (icb, bi2) or (bb, bi, bo) != (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT):
        raise ScheduleError(
            f"conv2d_packed: data {data.shape} and kernel {kernel.shape} are not packed for "
            f"BATCH {env.BATCH}, BLOCK_IN {env.BLOCK_IN}, BLOCK_OUT {env.BLOCK_OUT}"
        )
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    out_shape = (nb, ob, out_h, out_w, env.BATCH, env.BLOCK_OUT)
    data_buf = zero_padded(
        (nb, cb, h + 2 * padding, w + 2 * padding, bb, bi),
        env,
        padding,
        h,
        w,
        lambda lead, i, j, x, y: data[(*lead, i, j, x, y)],
    )
    kernel_buf = compute(kernel.shape, lambda *i: kernel(*i), name="kernel_buf")
    ic = reduce_axis((0, cb), name="ic")
    ic_tns = reduce_axis((0, env.BLOCK_IN), name="ic_tns")
    dy = reduce_axis((0, kh), name="dy")
    dx = reduce_axis((0, kw), name="dx")
    conv = compute(
        out_shape,
        lambda n, o, i, j, x, y: te_sum(
            data_buf[n, ic, i * stride + dy, j * stride + dx, x, ic_tns].astype(env.acc_dtype)
            * kernel_buf[o, ic, dy, dx, y, ic_tns].astype(env.acc_dtype),
            axis=[ic, dy, dx, ic_tns],
        ),
        name="conv",
    )
    if bias is not None:
        check_bias("conv2d_packed", bias, ob, env)
    channel = lambda n, o, i, j, x, y: (o, x, y)  # noqa: E731
    if epilogue is None:
        if operands:
            raise ScheduleError("conv2d_packed: operands are read by an epilogue; give one")
        stages, bias_buf, res = requantize(conv, env, shift, clip, bias, channel)
        return Conv2d(data, kernel, bias, data_buf, kernel_buf, bias_buf, conv, stages, res, stride)
    stages, bias_buf, _ = requantize(conv, env, None, None, bias, channel)
    acc = stages[-1] if stages else conv
    tail = alu_epilogue(
        acc, env, epilogue, operands, ((ob, env.BATCH, env.BLOCK_OUT), channel), "conv2d_packed"
    )
    return Conv2d(
        data,
        kernel,
        bias,
        data_buf,
        kernel_buf,
        bias_buf,
        conv,
        stages + tail.stages,
        tail.res,
        stride,
        operands=[o.tensor for o in operands],
        operand_bufs=tail.loads,
    )


def default_tiles(
    op: Conv2d, env: Environment, threads: int = 2, row_threads: int = 1
) -> Conv2dTiles:
    """Tiles that fit the SRAMs with ``threads`` virtual threads along output channels and
    ``row_threads`` along rows (each thread holds its own tiles; channel threads that do not
    divide the output-channel blocks move to rows, row threads that do not divide the rows
    fall back to 1): whole output rows, one input block a step, and of the
    output-channel blocks (up to 8) and rows that fit, those that load the fewest bytes."""
    checks.whole("default_tiles", "threads", threads, 1)
    checks.whole("default_tiles", "row_threads", row_threads, 1)
    if tuned := tuned_tiles(default_tiles, op, env, threads=threads, row_threads=row_threads):
        return tuned  # tuned tiles (accel.tune) answer first; see accel/topi/tuning.py
    ob, out_h, out_w = op.res.shape[-5:-2]  # per group when grouped
    icb = op.kernel.shape[-5]
    kh, kw = op.kernel.shape[-4:-2]
    stride = op.stride
    if ob % threads:  # too few output-channel tiles: the threads go along rows instead
        threads, row_threads = 1, max(row_threads, threads)
    in_cols = (out_w - 1) * stride + kw
    # accumulator tiles besides the result's and the bias's: the epilogue's operands
    full = sum(len(b.shape) == len(op.res.shape) for b in op.operand_bufs)
    per_channel = len(op.operand_bufs) - full
    inp_bytes = env.BATCH * env.BLOCK_IN * env.INP_WIDTH // 8
    wgt_bytes = env.BLOCK_OUT * env.BLOCK_IN * env.WGT_WIDTH // 8

    def loaded_bytes(oc: int, rows: int) -> int:
        tiles = (ob // oc) * (out_h // rows) * icb  # output tiles x input steps
        return tiles * (
            (((rows - 1) * stride + kh) * in_cols) * inp_bytes + oc * kh * kw * wgt_bytes
        )

    for rt in (row_threads, 1):
        slots = threads * rt
        fitting = [
            (oc, rows)
            for oc in divisors(ob // threads)
            for rows in divisors(out_h)
            if oc <= 8
            and (out_h // rows) % rt == 0
            and oc * rows * out_w * (1 + full) + oc * (1 + per_channel)
            <= env.ACC_BUFF_DEPTH // slots  # + the bias tiles
            and ((rows - 1) * stride + kh) * in_cols <= env.INP_BUFF_DEPTH // slots
            and oc * kh * kw <= env.WGT_BUFF_DEPTH // slots
        ]
        if fitting:
            oc, rows = min(fitting, key=lambda t: (loaded_bytes(*t), -t[0] * t[1]))
            return Conv2dTiles(oc, rows, out_w, 1, threads, rt)
    raise AllocationError(
        f"conv2d {op.res.shape}: no tile of whole rows fits the SRAMs with {threads} virtual "
        "threads"
    )


def schedule_conv2d_packed(op: Conv2d, env: Environment, tiles: Conv2dTiles | None = None):
    """The accelerator schedule of ``op`` with ``tiles`` (default: :func:`default_tiles`)."""
    tiles = checks.tiles_of("schedule_conv2d_packed", tiles, Conv2dTiles) or default_tiles(op, env)
    res, conv = op.res, op.conv
    out_blocks, out_h, out_w = res.shape[-5:-2]  # per group when grouped
    in_blocks = op.data.shape[1] // op.groups
    check_tiles("conv2d", tiles, out_blocks, out_h, out_w, in_blocks)
    s = create_schedule(res.op)
    *lead, oc, y, x, b_tns, oc_tns = s[res].op.axis  # lead: batch, and group when grouped
    oc_out, oc_inn = s[res].split(oc, factor=tiles.oc_blocks)
    y_out, y_inn = s[res].split(y, factor=tiles.rows)
    x_out, x_inn = s[res].split(x, factor=tiles.cols)
    threads, oc_out, y_out = split_threads(s[res], tiles, oc_out, y_out)
    s[res].reorder(*threads, *lead, oc_out, y_out, x_out, oc_inn, y_inn, x_inn, b_tns, oc_tns)
    schedule_accumulator(s, op, env, x_out)
    s[res].pragma(x_inn, env.dma_copy)
    *lead_c, o, i, j, bt, ot = s[conv].op.axis
    ic, dy, dx, ic_tns = s[conv].op.reduce_axis
    ic_out, ic_inn = s[conv].split(ic, factor=tiles.ic_blocks)
    s[conv].reorder(ic_out, *lead_c, o, i, ic_inn, dy, dx, j, bt, ot, ic_tns)
    schedule_inputs(s, op, env, ic_out)
    s[conv].tensorize(bt, env.gemm)
    return s


def check_tiles(what: str, tiles: Conv2dTiles, out_blocks, rows, cols, in_blocks) -> None:
    """Refuse tiles that do not divide their axes or threads that cannot share the tiles."""
    for name, total, tile in (
        ("output-channel blocks", out_blocks, tiles.oc_blocks),
        ("rows", rows, tiles.rows),
        ("columns", cols, tiles.cols),
        ("input-channel blocks", in_blocks, tiles.ic_blocks),
    ):
        if tile < 1 or total % tile:
            raise ScheduleError(f"{what} tile of {tile} {name} does not divide {total}")
    for name, count, threads in (
        ("output-channel", out_blocks // tiles.oc_blocks, tiles.threads),
        ("row", rows // tiles.rows, tiles.row_threads),
    ):
        if threads < 1 or count % threads:
            raise ScheduleError(
                f"{what}: {count} {name} tiles cannot be shared by {threads} virtual threads"
            )


def split_threads(stage, tiles: Conv2dTiles, oc_out, y_out):
    """Split the thread axes off the output-channel and row tile loops and bind them to
    ``cthread``; returns them (to be ordered outermost, so that each thread's tokens enclose
    all its loops) and the remaining tile loops."""
    threads = []
    if tiles.threads > 1:
        oc_out, tx = stage.split(oc_out, factor=tiles.threads)
        threads.append(tx)
    if tiles.row_threads > 1:
        y_out, ty = stage.split(y_out, factor=tiles.row_threads)
        threads.append(ty)
    for axis in threads:
        stage.bind(axis, thread_axis("cthread"))
    return threads, oc_out, y_out


def schedule_accumulator(s, op, env: Environment, at) -> None:
    """The convolution, its bias copy and its epilogue in the accumulator, computed at the
    output tile loop ``at``; the epilogue on the ALU."""
    for t in (op.conv, *op.epilogue):
        s[t].set_scope(env.acc_scope)
        s[t].compute_at(s[op.res], at)
    for t in op.epilogue:
        s[t].pragma(s[t].op.axis[0], env.alu)
    copies = [op.bias_buf] if op.bias_buf is not None else []
    for buf in copies + op.operand_bufs:
        s[buf].set_scope(env.acc_scope)
        s[buf].compute_at(s[op.res], at)
        s[buf].pragma(s[buf].op.axis[0], env.dma_copy)


def schedule_inputs(s, op, env: Environment, at) -> None:
    """The input and weight tiles loaded at the convolution's input-channel step ``at``."""
    for buf, scope in ((op.data_buf, env.inp_scope), (op.kernel_buf, env.wgt_scope)):
        s[buf].set_scope(scope)
        s[buf].compute_at(s[op.conv], at)
        s[buf].pragma(s[buf].op.axis[0], env.dma_copy)
