"""Grouped 2-D convolution on packed tensors (MobileNet- or ResNeXt-style groups).

``group_conv2d_packed`` splits the channels into ``groups`` independent convolutions. The data
and the bias keep the ordinary packed layouts; the kernel is the packed form of the usual
grouped weight ``(O, I/groups, KH, KW)`` (``accel.topi.pack_kernel`` packs it as it is). Every
stage carries the group as its own axis, so the result has the layout
``(N/BATCH, groups, O/groups/BLOCK_OUT, H, W, BATCH, BLOCK_OUT)``: the same memory as the packed
``(N/BATCH, O/BLOCK_OUT, H, W, BATCH, BLOCK_OUT)``, so a reshape gives the packed tensor back.
``accel.topi.schedule_conv2d_packed`` and ``default_tiles`` schedule it (tiles are per group).

The channels of a group must fill whole blocks (16 for the default configuration): the
accelerator's matrix core reduces over a whole input block. Depthwise convolutions (one channel
per group) would run on the vector ALU instead, which is not implemented.
"""

from __future__ import annotations

from accel.env import Environment
from accel.errors import ScheduleError
from accel.te import Tensor, compute, reduce_axis
from accel.te import sum as te_sum
from accel.topi.common import check_bias, requantize, zero_padded
from accel.topi.conv2d import Conv2d


def group_conv2d_packed(
    data: Tensor,
    kernel: Tensor,
    env: Environment,
    groups: int,
    stride: int = 1,
    padding: int = 0,
    shift: int = 8,
    clip: tuple[int, int] = (0, 127),
    bias: Tensor | None = None,
) -> Conv2d:
    """Declare the grouped convolution of packed ``data`` by packed ``kernel`` (``O/BLOCK_OUT,
    I/groups/BLOCK_IN, KH, KW, BLOCK_OUT, BLOCK_IN``) and its requantizing epilogue."""
    nb, cb, h, w, bb, bi = data.shape
    ob, icb_g, kh, kw, bo, bi2 = kernel.shape
    if (bb, bi, bo, bi2) != (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT, env.BLOCK_IN):
        raise ScheduleError(
            f"group_conv2d_packed: data {data.shape} and kernel {kernel.shape} are not packed "
            f"for BATCH {env.BATCH}, BLOCK_IN {env.BLOCK_IN}, BLOCK_OUT {env.BLOCK_OUT}"
        )
    if groups < 1 or cb % groups or ob % groups:
        raise ScheduleError(
            f"group_conv2d_packed: {groups} groups do not split {cb} input-channel blocks and "
            f"{ob} output-channel blocks evenly; every group needs whole blocks of "
            f"{env.BLOCK_IN} channels (depthwise convolutions are not implemented)"
        )
    if cb // groups != icb_g:
        raise ScheduleError(
            f"group_conv2d_packed: kernel {kernel.shape} has {icb_g} input-channel blocks per "
            f"group; data {data.shape} in {groups} groups has {cb // groups}"
        )
    ocb_g = ob // groups
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    out_shape = (nb, groups, ocb_g, out_h, out_w, env.BATCH, env.BLOCK_OUT)
    data_buf = zero_padded(
        (nb, groups, icb_g, h + 2 * padding, w + 2 * padding, bb, bi),
        env,
        padding,
        h,
        w,
        lambda lead, i, j, x, y: data[lead[0], lead[1] * icb_g + lead[2], i, j, x, y],
    )
    kernel_buf = compute(
        (groups, ocb_g, icb_g, kh, kw, bo, bi),
        lambda g, o, *rest: kernel(g * ocb_g + o, *rest),
        name="kernel_buf",
    )
    ic = reduce_axis((0, icb_g), name="ic")
    ic_tns = reduce_axis((0, env.BLOCK_IN), name="ic_tns")
    dy = reduce_axis((0, kh), name="dy")
    dx = reduce_axis((0, kw), name="dx")
    conv = compute(
        out_shape,
        lambda n, g, o, i, j, x, y: te_sum(
            data_buf[n, g, ic, i * stride + dy, j * stride + dx, x, ic_tns].astype(env.acc_dtype)
            * kernel_buf[g, o, ic, dy, dx, y, ic_tns].astype(env.acc_dtype),
            axis=[ic, dy, dx, ic_tns],
        ),
        name="conv",
    )
    if bias is not None:
        check_bias("group_conv2d_packed", bias, ob, env)
    stages, bias_buf, res = requantize(
        conv, env, shift, clip, bias, lambda n, g, o, i, j, x, y: (g * ocb_g + o, x, y)
    )
    return Conv2d(
        data, kernel, bias, data_buf, kernel_buf, bias_buf, conv, stages, res, stride, groups
    )
