"""Pieces shared by the operators: tile sizes, the zero-padded input copy and the requantizing
epilogue."""

from __future__ import annotations

from collections.abc import Callable

from accel.env import Environment
from accel.errors import ScheduleError
from accel.te import Tensor, compute, const, if_then_else
from accel.te import all as te_all
from accel.te import max as te_max
from accel.te import min as te_min


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, ascending: the tile sizes that split an axis of ``n`` exactly."""
    return [d for d in range(1, n + 1) if n % d == 0]


def zero_padded(
    shape: tuple[int, ...],
    env: Environment,
    before: int,
    h: int,
    w: int,
    read: Callable,
    name: str = "data_buf",
) -> Tensor:
    """The on-chip copy of packed activations, ``before`` zero rows and columns ahead of the
    ``h x w`` image (and zeros after it up to ``shape``), for the padded loads to fill.

    ``shape`` ends in ``(H, W, BATCH, BLOCK_IN)``; ``read(lead, i, j, x, y)`` reads the image at
    the leading indices ``lead`` and image row ``i``, column ``j``.
    """

    def element(*index):
        *lead, i, j, x, y = index
        inside = te_all(i >= before, i < h + before, j >= before, j < w + before)
        value = read(tuple(lead), i - before, j - before, x, y)
        return if_then_else(inside, value, const(0, env.inp_dtype))

    return compute(shape, element, name=name)


def requantize(
    acc: Tensor,
    env: Environment,
    shift: int | None,
    clip: tuple[int, int] | None,
    bias: Tensor | None = None,
    bias_index: Callable | None = None,
) -> tuple[list[Tensor], Tensor | None, Tensor]:
    """The ALU epilogue ``cast_int8(clip((acc + bias) >> shift))`` on ``acc``'s shape.

    ``bias_index(*output_index)`` gives the index into the packed bias ``(O/BLOCK_OUT, BATCH,
    BLOCK_OUT)`` of an output element; a shift of None or 0 and a clip of None leave their
    stages out. Returns the ALU stages, the bias copy and the int8 result.
    """
    shape = acc.shape
    stages, last, bias_buf = [], acc, None
    if bias is not None:
        bias_buf = compute(bias.shape, lambda *i: bias(*i), name="bias_buf")
        last = compute(shape, lambda *i: acc(*i) + bias_buf(*bias_index(*i)), name="add_bias")
        stages.append(last)
    steps = [("shr", lambda v: v >> shift)] if shift else []
    if clip is not None:
        steps += [
            ("clip_lo", lambda v: te_max(v, clip[0])),
            ("clip_hi", lambda v: te_min(v, clip[1])),
        ]
    for name, fn in steps:
        prev = last
        last = compute(shape, lambda *i, prev=prev, fn=fn: fn(prev(*i)), name=name)
        stages.append(last)
    res = compute(shape, lambda *i: last(*i).astype(env.out_dtype), name="res")
    return stages, bias_buf, res


def check_bias(what: str, bias: Tensor, out_blocks: int, env: Environment) -> None:
    """Refuse a bias that is not packed ``(out_blocks, BATCH, BLOCK_OUT)`` int32."""
    expected = (out_blocks, env.BATCH, env.BLOCK_OUT)
    if tuple(bias.shape) != expected or bias.dtype != env.acc_dtype:
        raise ScheduleError(
            f"{what}: bias {bias.dtype}{bias.shape} is not the packed per-channel bias "
            f"{env.acc_dtype}{expected}"
        )
