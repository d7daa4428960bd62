"""Pieces shared by the operators: tile sizes, the zero-padded input copy and the requantizing
epilogues (the fixed ``>> shift`` and clip of :func:`requantize`, and the general ALU program of
:func:`alu_epilogue`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


# -- general epilogues: a program of ALU steps -----------------------------------------------------

IMM_MIN, IMM_MAX = -(2**15), 2**15 - 1  # the ALU immediate: a signed 16-bit field


@dataclass(frozen=True, slots=True)
class AluStep:
    """One vector-ALU operation of an epilogue on the int32 accumulator: ``acc = op(acc, imm)``
    with a 16-bit immediate, or ``acc = op(acc, operand)`` with the tensor operand named
    ``operand`` (see :class:`Operand`). ``op`` is one of ``add``, ``mul``, ``shr``, ``max``,
    ``min``; ``shr`` shifts arithmetically right (a negative amount shifts left)."""

    op: str
    imm: int | None = None
    operand: str | None = None

    def __str__(self) -> str:
        return f"{self.op.upper()} {self.operand if self.imm is None else self.imm}"


_ALU_OPS: dict[str, Callable] = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "shr": lambda a, b: a >> b,
    "max": te_max,
    "min": te_min,
}


@dataclass(frozen=True)
class Operand:
    """A tensor an epilogue reads, copied into the accumulator next to the result tile.

    ``tensor`` is either per output channel, packed like a bias ``(O/BLOCK_OUT, BATCH,
    BLOCK_OUT)`` int32 (a per-channel multiplier), or of the result's own shape (a residual
    activation, int8 or int32). ``steps`` (immediates only) run on the copy before the epilogue
    uses it, e.g. the ``MUL`` that rescales a residual operand.
    """

    name: str
    tensor: Tensor
    steps: tuple[AluStep, ...] = ()


@dataclass
class EpilogueStages:
    """What :func:`alu_epilogue` declares: ``loads`` copy the operands into the accumulator,
    ``stages`` are the ALU operations (the operands' own steps first), ``res`` narrows to int8."""

    loads: list[Tensor]
    stages: list[Tensor]
    res: Tensor


def alu_epilogue(
    acc: Tensor,
    env: Environment,
    steps: Sequence[AluStep],
    operands: Sequence[Operand] = (),
    channel: tuple[tuple[int, ...], Callable] | None = None,
    what: str = "epilogue",
) -> EpilogueStages:
    """Declare the ALU program ``steps`` on ``acc`` (one stage per step, in order) and the
    narrowing to int8, reading the tensor ``operands`` the steps name.

    ``channel`` is ``(shape, index)``: the packed shape of a per-channel operand and
    ``index(*output_index)``, its index for an output element (as ``bias_index`` of
    :func:`requantize`); None when the result has no channels. Every intermediate wraps
    around in int32, exactly as the accumulator does; the store keeps the low eight bits, so a
    program that wants the saturated value ends with ``max -128`` / ``min 127`` steps.

    Raises ScheduleError for an unknown operation, an immediate outside 16 bits, a step naming
    no operand, or an operand of another shape.
    """
    shape = tuple(acc.shape)
    loads, stages, sources = [], [], {}
    for operand in operands:
        index = _operand_index(operand, shape, channel, env, what)
        buf = compute(
            operand.tensor.shape,
            lambda *i, t=operand.tensor: t(*i).astype(env.acc_dtype),
            name=f"{operand.name}_buf",
        )
        loads.append(buf)
        last = buf
        for k, step in enumerate(operand.steps):
            fn = _alu_fn(step, {}, what)
            last = compute(
                buf.shape, lambda *i, prev=last, fn=fn: fn(prev, i), name=f"{operand.name}_{k}"
            )
            stages.append(last)
        sources[operand.name] = (last, index)
    last = acc
    for k, step in enumerate(steps):
        fn = _alu_fn(step, sources, what)
        last = compute(shape, lambda *i, prev=last, fn=fn: fn(prev, i), name=f"alu{k}_{step.op}")
        stages.append(last)
    res = compute(shape, lambda *i: last(*i).astype(env.out_dtype), name="res")
    return EpilogueStages(loads, stages, res)


def _alu_fn(step: AluStep, sources: dict, what: str) -> Callable:
    """``fn(prev, index)``: the value of ``step`` applied to tensor ``prev`` at ``index``."""
    op = _ALU_OPS.get(step.op)
    if op is None:
        raise ScheduleError(
            f"{what}: unknown ALU operation {step.op!r}; use one of {sorted(_ALU_OPS)}"
        )
    if step.imm is not None:
        if step.operand is not None or not IMM_MIN <= step.imm <= IMM_MAX:
            raise ScheduleError(
                f"{what}: step {step}: give an immediate in [{IMM_MIN}, {IMM_MAX}] or an operand"
            )
        imm = int(step.imm)
        return lambda prev, i: op(prev(*i), imm)
    if step.operand not in sources:
        raise ScheduleError(
            f"{what}: step {step} reads operand {step.operand!r}, which is not given "
            f"(operands: {', '.join(sources) or 'none'})"
        )
    src, index = sources[step.operand]
    return lambda prev, i: op(prev(*i), src(*index(*i)))


def _operand_index(operand: Operand, shape, channel, env: Environment, what: str):
    got = tuple(operand.tensor.shape)
    if got == shape:
        return lambda *i: i
    if channel is not None and got == tuple(channel[0]):
        if operand.tensor.dtype != env.acc_dtype:
            raise ScheduleError(
                f"{what}: per-channel operand {operand.name} is {operand.tensor.dtype}, not "
                f"{env.acc_dtype}"
            )
        return channel[1]
    per_channel = f"per channel {tuple(channel[0])} {env.acc_dtype} or " if channel else ""
    raise ScheduleError(
        f"{what}: operand {operand.name} {got} is neither {per_channel}of the result's shape "
        f"{shape}"
    )
