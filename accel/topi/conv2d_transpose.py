"""Transposed 2-D convolution on packed tensors (the strided upsampling of DCGAN's generator).

With weights ``w`` in OIHW order (PyTorch's ``ConvTranspose2d`` weight ``(I, O, KH, KW)`` with its
first two axes swapped), stride ``s`` and padding ``p``::

    out[n, o, y, x] = sum over i, iy, ix, kh, kw with y = iy*s - p + kh, x = ix*s - p + kw
                      of data[n, i, iy, ix] * w[o, i, kh, kw]

and ``out`` is ``(H - 1)*s - 2p + KH`` high. Instead of convolving a zero-stuffed input (three in
four products wasted at stride 2), each output phase ``(y mod s, x mod s)`` is an ordinary
stride-1 convolution of the input with a ``KH/s x KW/s`` slice of the kernel. The phases are axes
of every stage, so the result has the layout ``(N/BATCH, O/BLOCK_OUT, OH/s, s, OW/s, s, BATCH,
BLOCK_OUT)``: the same memory as the packed ``(N/BATCH, O/BLOCK_OUT, OH, OW, BATCH, BLOCK_OUT)``,
which a reshape gives back. ``pack_kernel_transpose`` cuts and flips the kernel into the phase
slices on the host, once, like any weight packing.

Supported: square kernels whose size is a multiple of the stride, and strides and paddings for
which the input row a phase starts at is affine in the phase (stride 2 with any padding, or any
stride with padding a multiple of it). Other cases raise ``ScheduleError`` saying which.
"""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.errors import AllocationError, ScheduleError
from accel.te import Tensor, compute, create_schedule, reduce_axis
from accel.te import sum as te_sum
from accel.topi import checks
from accel.topi.common import check_bias, divisors, requantize, zero_padded
from accel.topi.conv2d import (
    Conv2d,
    Conv2dTiles,
    check_tiles,
    schedule_accumulator,
    schedule_inputs,
    split_threads,
)
from accel.topi.packing import pack_kernel
from accel.topi.tuning import tuned_tiles


def _phase_start(stride: int, padding: int) -> tuple[int, int]:
    """``(q0, q1)`` with ``(phase + padding) // stride == q0 + q1 * phase`` for every phase."""
    q = [(ph + padding) // stride for ph in range(stride)]
    q1 = q[1] - q[0] if stride > 1 else 0
    if any(v != q[0] + q1 * ph for ph, v in enumerate(q)):
        raise ScheduleError(
            f"conv2d_transpose_packed: with stride {stride} and padding {padding} the phases "
            f"start at input rows {q}, which is not affine in the phase; supported are stride 2 "
            "and paddings that are a multiple of the stride"
        )
    return q[0], q1


def _check(kernel_size: int, stride: int, padding: int) -> int:
    if kernel_size % stride:
        raise ScheduleError(
            f"conv2d_transpose_packed: kernel size {kernel_size} is not a multiple of stride "
            f"{stride}, so the phases would need kernels of different sizes"
        )
    if (2 * padding) % stride:
        raise ScheduleError(
            f"conv2d_transpose_packed: padding {padding} with stride {stride} gives an output "
            "size that is not a multiple of the stride"
        )
    _phase_start(stride, padding)
    return kernel_size // stride


def pack_kernel_transpose(w: np.ndarray, env: Environment, stride: int, padding: int) -> np.ndarray:
    """OIHW weights of a transposed convolution as the phase slices ``(O/BLOCK_OUT, I/BLOCK_IN,
    s, s, KH/s, KW/s, BLOCK_OUT, BLOCK_IN)`` that ``conv2d_transpose_packed`` reads."""
    _o, _i, kh, kw = w.shape
    if kh != kw:
        raise ScheduleError(f"conv2d_transpose_packed: kernel {kh}x{kw} is not square")
    taps = _check(kh, stride, padding)
    packed = pack_kernel(w, env)  # (ob, ib, kh, kw, bo, bi)
    # Phase ph uses kernel rows r(ph) + s*a for a = taps-1 .. 0 (reversed, so that the
    # input row index grows with the tap index, see conv2d_transpose_packed).
    rows = np.array(
        [
            [(ph + padding) % stride + stride * (taps - 1 - a) for a in range(taps)]
            for ph in range(stride)
        ]
    )  # rows[phase, tap]
    sliced = packed[:, :, rows[:, None, :, None], rows[None, :, None, :]]
    return np.ascontiguousarray(sliced)


def conv2d_transpose_packed(
    data: Tensor,
    kernel: Tensor,
    env: Environment,
    stride: int = 2,
    padding: int = 0,
    shift: int = 8,
    clip: tuple[int, int] = (0, 127),
    bias: Tensor | None = None,
) -> Conv2d:
    """Declare the transposed convolution of packed ``data`` by the phase-sliced ``kernel``
    (see :func:`pack_kernel_transpose`) and its requantizing epilogue."""
    checks.whole("conv2d_transpose_packed", "stride", stride, 1)
    checks.whole("conv2d_transpose_packed", "padding", padding, 0)
    checks.shift("conv2d_transpose_packed", shift)
    nb, cb, h, w, bb, bi = data.shape
    ob, icb, s1, s2, taps, taps2, bo, bi2 = kernel.shape
    if (cb, bi) != (icb, bi2) or (bb, bi, bo) != (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT):
        raise ScheduleError(
            f"conv2d_transpose_packed: data {data.shape} and kernel {kernel.shape} are not "
            f"packed for BATCH {env.BATCH}, BLOCK_IN {env.BLOCK_IN}, BLOCK_OUT {env.BLOCK_OUT}"
        )
    if (s1, s2) != (stride, stride) or taps != taps2:
        raise ScheduleError(
            f"conv2d_transpose_packed: kernel {kernel.shape} is not cut into {stride}x{stride} "
            "phases of square slices; pack it with pack_kernel_transpose"
        )
    _check(taps * stride, stride, padding)
    q0, q1 = _phase_start(stride, padding)
    out_h = (h - 1) * stride - 2 * padding + taps * stride
    out_w = (w - 1) * stride - 2 * padding + taps * stride
    if out_h <= 0 or out_w <= 0:
        raise ScheduleError(f"conv2d_transpose_packed: the output would be {out_h}x{out_w}")
    # Output row Y*s + ph reads input rows Y + q(ph) - (taps-1) + a, a = 0 .. taps-1; the padded
    # input is shifted by taps-1 rows so that every index is non-negative.
    lo = taps - 1
    hp = max(h + lo, out_h // stride + q0 + q1 * (stride - 1) + taps - 1)
    wp = max(w + lo, out_w // stride + q0 + q1 * (stride - 1) + taps - 1)
    data_buf = zero_padded(
        (nb, cb, hp, wp, bb, bi), env, lo, h, w, lambda lead, i, j, x, y: data[(*lead, i, j, x, y)]
    )
    kernel_buf = compute(kernel.shape, lambda *i: kernel(*i), name="kernel_buf")
    ic = reduce_axis((0, cb), name="ic")
    ic_tns = reduce_axis((0, env.BLOCK_IN), name="ic_tns")
    dy = reduce_axis((0, taps), name="dy")
    dx = reduce_axis((0, taps), name="dx")
    out_shape = (nb, ob, out_h // stride, stride, out_w // stride, stride, env.BATCH, bo)
    conv = compute(
        out_shape,
        lambda n, o, i, ph, j, pw, x, y: te_sum(
            data_buf[n, ic, i + q0 + q1 * ph + dy, j + q0 + q1 * pw + dx, x, ic_tns].astype(
                env.acc_dtype
            )
            * kernel_buf[o, ic, ph, pw, dy, dx, y, ic_tns].astype(env.acc_dtype),
            axis=[ic, dy, dx, ic_tns],
        ),
        name="conv",
    )
    if bias is not None:
        check_bias("conv2d_transpose_packed", bias, ob, env)
    stages, bias_buf, res = requantize(
        conv, env, shift, clip, bias, lambda n, o, i, ph, j, pw, x, y: (o, x, y)
    )
    return Conv2d(data, kernel, bias, data_buf, kernel_buf, bias_buf, conv, stages, res, stride)


def default_transpose_tiles(op: Conv2d, env: Environment, threads: int = 2) -> Conv2dTiles:
    """Whole output rows (rows count phase rows: a tile of ``rows`` holds ``rows * stride``
    output rows), as many as fit, up to eight output-channel blocks whose phase kernels fit the
    weight SRAM, one input block a step; ``threads`` virtual threads along output channels (1
    when they cannot share them)."""
    checks.whole("default_transpose_tiles", "threads", threads, 1)
    if tuned := tuned_tiles(default_transpose_tiles, op, env, threads=threads):
        return tuned  # tuned tiles (accel.tune) answer first; see accel/topi/tuning.py
    _nb, ob, rows_total, s, cols_total, _s, _b, _o = op.res.shape
    taps = op.kernel.shape[4]
    threads = threads if ob % threads == 0 else 1
    phase_kernels = s * s * taps * taps  # weight tiles per output-channel block and input step
    oc = max(
        (
            d
            for d in divisors(ob // threads)
            if d <= 8 and d * phase_kernels <= env.WGT_BUFF_DEPTH // threads
        ),
        default=0,
    )
    in_cols = cols_total + s + taps  # a bound: the phases start at most one input row apart
    for rows in sorted(divisors(rows_total), reverse=True):
        in_rows = rows + s + taps
        fits_acc = oc * rows * s * cols_total * s + oc <= env.ACC_BUFF_DEPTH // threads
        if oc and fits_acc and in_rows * in_cols <= env.INP_BUFF_DEPTH // threads:
            return Conv2dTiles(oc, rows, cols_total, 1, threads)
    raise AllocationError(
        f"conv2d_transpose {op.res.shape}: no tile of whole rows fits the SRAMs with {threads} "
        "virtual threads"
    )


def schedule_conv2d_transpose_packed(
    op: Conv2d, env: Environment, tiles: Conv2dTiles | None = None
):
    """The accelerator schedule of ``op``: tiles of output-channel blocks and phase rows and
    columns (each holding all ``s x s`` phases, so the stores write whole output rows),
    input-channel blocks streamed through, virtual threads along output channels and phase rows,
    the epilogue on the ALU."""
    tiles = checks.tiles_of("schedule_conv2d_transpose_packed", tiles, Conv2dTiles)
    tiles = tiles or default_transpose_tiles(op, env)
    res, conv = op.res, op.conv
    _nb, ob, rows_total, _s, cols_total, _s2, _b, _o = res.shape
    check_tiles("conv2d_transpose", tiles, ob, rows_total, cols_total, op.data.shape[1])
    s = create_schedule(res.op)
    b, oc, y, ph, x, pw, b_tns, oc_tns = s[res].op.axis
    oc_out, oc_inn = s[res].split(oc, factor=tiles.oc_blocks)
    y_out, y_inn = s[res].split(y, factor=tiles.rows)
    x_out, x_inn = s[res].split(x, factor=tiles.cols)
    threads, oc_out, y_out = split_threads(s[res], tiles, oc_out, y_out)
    s[res].reorder(*threads, b, oc_out, y_out, x_out, oc_inn, y_inn, ph, x_inn, pw, b_tns, oc_tns)
    schedule_accumulator(s, op, env, x_out)
    s[res].pragma(oc_inn, env.dma_copy)
    n, o, i, ph, j, pw, bt, ot = s[conv].op.axis
    ic, dy, dx, ic_tns = s[conv].op.reduce_axis
    ic_out, ic_inn = s[conv].split(ic, factor=tiles.ic_blocks)
    s[conv].reorder(ic_out, n, o, ph, pw, ic_inn, dy, dx, i, j, bt, ot, ic_tns)
    schedule_inputs(s, op, env, ic_out)
    s[conv].tensorize(bt, env.gemm)
    return s
