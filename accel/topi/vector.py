"""Vector operators on packed activations, run by the accelerator's ALU, and their schedule.

Each operator reads packed int8 activations ``(N/BATCH, C/BLOCK_IN, H, W, BATCH, BLOCK_IN)``,
loads them into the accumulator (int8 sign-extended to int32, zero padding done by the load),
runs a chain of elementwise ALU stages and stores the int8 result:

- ``relu_packed``: ``max(x, 0)``;
- ``add_packed``: ``clip((a + b) >> shift)``, the residual add;
- ``max_pool2d_packed``: the window maximum, as separable chains of elementwise maxima (down
  the kernel height, then across its width), since a reduction would start from the int32
  minimum, which does not fit the ALU's immediate;
- ``map_packed``: any program of ALU steps with immediates (a clip, a ReLU, a requantization
  of int8 data to another scale);
- ``add_scaled_packed``: each operand through its own steps (a ``MUL`` by its multiplier),
  their sum through a program: the quantized residual add ``qadd``;
- ``sum_pool2d_packed``: window sums (separable chains of additions, padding counts 0) and a
  program: average pooling with its requantization.

``schedule_vector_packed`` tiles any of them by (channel blocks, whole output rows), optionally
with virtual threads along channel blocks; ``default_vector_tiles`` picks the largest tile that
fits the accumulator SRAM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accel.env import Environment
from accel.errors import AllocationError, ScheduleError
from accel.te import Tensor, compute, const, create_schedule, if_then_else, thread_axis
from accel.te import all as te_all
from accel.te import max as te_max
from accel.topi import checks
from accel.topi.common import AluStep, alu_epilogue, divisors, requantize
from accel.topi.tuning import tuned_tiles


@dataclass
class VectorOp:
    """The stages of one vector operator (``res`` is the output).

    ``loads`` copy the inputs into the accumulator, ``stages`` run on the ALU in order, ``res``
    narrows to int8 and stores. ``window`` is ``(kernel, stride, padding)`` for a pooling
    operator and None for an elementwise one.
    """

    inputs: list[Tensor]
    loads: list[Tensor]
    stages: list[Tensor]
    res: Tensor
    window: tuple[int, int, int] | None = None

    @property
    def args(self) -> list[Tensor]:
        return [*self.inputs, self.res]


@dataclass(frozen=True)
class VectorTiles:
    """Tile sizes: channel blocks and whole output rows per tile, and virtual threads along
    channel blocks."""

    c_blocks: int
    rows: int
    threads: int = 1


def relu_packed(x: Tensor, env: Environment) -> VectorOp:
    """Declare ``int8(max(x, 0))`` on packed activations ``x``.

    Raises ScheduleError when ``x`` is not packed for ``env``.
    """
    _check_packed("relu_packed", x, env)
    x_buf = _load(x, env, "x_buf")
    relu = compute(x.shape, lambda *i: te_max(x_buf(*i), 0), name="relu")
    return VectorOp([x], [x_buf], [relu], _store(relu, env))


def add_packed(
    a: Tensor,
    b: Tensor,
    env: Environment,
    shift: int = 0,
    clip: tuple[int, int] = (-128, 127),
) -> VectorOp:
    """Declare ``int8(clip((a + b) >> shift, *clip))`` on two packed activations of one shape.

    Raises ScheduleError when the shapes differ or are not packed for ``env``.
    """
    _check_packed("add_packed", a, env)
    _check_packed("add_packed", b, env)
    if tuple(a.shape) != tuple(b.shape):
        raise ScheduleError(f"add_packed: the operands' shapes differ, {a.shape} and {b.shape}")
    a_buf, b_buf = _load(a, env, "a_buf"), _load(b, env, "b_buf")
    total = compute(a.shape, lambda *i: a_buf(*i) + b_buf(*i), name="add")
    stages, _, res = requantize(total, env, shift, clip)
    return VectorOp([a, b], [a_buf, b_buf], [total, *stages], res)


def max_pool2d_packed(
    x: Tensor, env: Environment, kernel: int = 3, stride: int = 2, padding: int = 1
) -> VectorOp:
    """Declare the ``kernel`` x ``kernel`` window maximum of packed activations ``x``.

    The accelerator's loads pad with zeros only, so **padded positions count as 0**, not as
    minus infinity: the result is exact when ``padding`` is 0 or when ``x >= 0`` (after a ReLU,
    which is where ResNet pools); a window of negative values that overlaps the padding gives 0.
    The maximum is separable: a copy and ``kernel - 1`` ALU maxima down the height on every
    needed input column, then the same across the width on the output columns only. With a
    kernel larger than the stride, going down first is the cheaper order whenever a tile has
    fewer rows than the output has columns, which whole-row tiles that fit the SRAM do.

    Raises ScheduleError when ``x`` is not packed for ``env`` or the window does not fit.
    """
    x_buf, out_h, out_w = _window_input("max_pool2d_packed", x, env, kernel, stride, padding)
    nb, cb, _h, w, bb, bi = x.shape
    p = padding
    col_max = _max_chain(
        x_buf,
        (nb, cb, out_h, w + 2 * p, bb, bi),
        kernel,
        "col_max",
        lambda i, j, k: (i * stride + k, j),
    )
    row_max = _max_chain(
        col_max[-1],
        (nb, cb, out_h, out_w, bb, bi),
        kernel,
        "row_max",
        lambda i, j, k: (i, j * stride + k),
    )
    stages = col_max + row_max
    return VectorOp([x], [x_buf], stages, _store(stages[-1], env), (kernel, stride, padding))


def map_packed(x: Tensor, env: Environment, steps: Sequence[AluStep]) -> VectorOp:
    """Declare ``int8(program(x))`` on packed activations ``x``: the ALU ``steps`` (immediates
    only) on ``x`` widened to int32, in order, then the low eight bits (end the program with a
    clip to saturate).

    Raises ScheduleError when ``x`` is not packed for ``env`` or a step is not an immediate
    ALU operation.
    """
    _check_packed("map_packed", x, env)
    x_buf = _load(x, env, "x_buf")
    tail = alu_epilogue(x_buf, env, steps, what="map_packed")
    return VectorOp([x], [x_buf], tail.stages, tail.res)


def add_scaled_packed(
    a: Tensor,
    b: Tensor,
    env: Environment,
    steps_a: Sequence[AluStep],
    steps_b: Sequence[AluStep],
    steps: Sequence[AluStep],
) -> VectorOp:
    """Declare ``int8(program(program_a(a) + program_b(b)))`` on two packed activations of one
    shape: each operand widened to int32 through its own ALU steps, their sum through ``steps``
    (immediates only; int32 wrap-around throughout, the low eight bits stored).

    Raises ScheduleError when the shapes differ or are not packed for ``env``.
    """
    _check_packed("add_scaled_packed", a, env)
    _check_packed("add_scaled_packed", b, env)
    if tuple(a.shape) != tuple(b.shape):
        raise ScheduleError(
            f"add_scaled_packed: the operands' shapes differ, {a.shape} and {b.shape}"
        )
    a_buf, b_buf = _load(a, env, "a_buf"), _load(b, env, "b_buf")
    a_tail = alu_epilogue(a_buf, env, steps_a, what="add_scaled_packed")
    b_tail = alu_epilogue(b_buf, env, steps_b, what="add_scaled_packed")
    a_last = a_tail.stages[-1] if a_tail.stages else a_buf
    b_last = b_tail.stages[-1] if b_tail.stages else b_buf
    total = compute(a.shape, lambda *i: a_last(*i) + b_last(*i), name="add")
    tail = alu_epilogue(total, env, steps, what="add_scaled_packed")
    stages = [*a_tail.stages, *b_tail.stages, total, *tail.stages]
    return VectorOp([a, b], [a_buf, b_buf], stages, tail.res)


def sum_pool2d_packed(
    x: Tensor,
    env: Environment,
    kernel: int,
    stride: int,
    padding: int,
    steps: Sequence[AluStep] = (),
) -> VectorOp:
    """Declare the ``kernel`` x ``kernel`` window sums of packed activations ``x`` (padded
    positions count 0), then the ALU program ``steps`` on them: average pooling, with the
    division by the window folded into the program's requantization.

    The sums are separable, as in :func:`max_pool2d_packed`: down the kernel height on every
    needed input column, then across the width. They are exact: a window of int8 values sums
    to far less than 2^31. Raises ScheduleError when ``x`` is not packed for ``env`` or the
    window does not fit.
    """
    x_buf, out_h, out_w = _window_input("sum_pool2d_packed", x, env, kernel, stride, padding)
    nb, cb, _h, w, bb, bi = x.shape
    p = padding
    col_sum = _max_chain(
        x_buf,
        (nb, cb, out_h, w + 2 * p, bb, bi),
        kernel,
        "col_sum",
        lambda i, j, k: (i * stride + k, j),
        lambda a, b: a + b,
    )
    row_sum = _max_chain(
        col_sum[-1],
        (nb, cb, out_h, out_w, bb, bi),
        kernel,
        "row_sum",
        lambda i, j, k: (i, j * stride + k),
        lambda a, b: a + b,
    )
    tail = alu_epilogue(row_sum[-1], env, steps, what="sum_pool2d_packed")
    stages = col_sum + row_sum + tail.stages
    return VectorOp([x], [x_buf], stages, tail.res, (kernel, stride, padding))


def default_vector_tiles(op: VectorOp, env: Environment, threads: int = 2) -> VectorTiles:
    """The largest tile of whole output rows (then channel blocks) whose stages fit the
    accumulator SRAM with ``threads`` virtual threads, or with one thread when the channel
    blocks do not share out evenly or no tile fits a thread's share.

    Raises AllocationError when not even one output row of one channel block fits.
    """
    checks.whole("default_vector_tiles", "threads", threads, 1)
    if tuned := tuned_tiles(default_vector_tiles, op, env, threads=threads):
        return tuned  # tuned tiles (accel.tune) answer first; see accel/topi/tuning.py
    cb, out_h = op.res.shape[1], op.res.shape[2]
    for t in dict.fromkeys((threads, 1)):
        if cb % t:
            continue
        fits = [
            (c_blocks * rows, rows, c_blocks)
            for rows in divisors(out_h)
            for c_blocks in divisors(cb // t)
            if _acc_tiles(op, c_blocks, rows) <= env.ACC_BUFF_DEPTH // t
        ]
        if fits:
            _size, rows, c_blocks = max(fits)
            return VectorTiles(c_blocks, rows, t)
    raise AllocationError(
        f"{op.res.op.name} {op.res.shape}: one output row of one channel block needs "
        f"{_acc_tiles(op, 1, 1)} tiles of {env.acc_scope}, which holds {env.ACC_BUFF_DEPTH}"
    )


def schedule_vector_packed(op: VectorOp, env: Environment, tiles: VectorTiles | None = None):
    """The accelerator schedule of ``op`` with ``tiles`` (default: :func:`default_vector_tiles`).

    Raises ScheduleError when a tile does not divide the output or the threads do not share the
    channel tiles evenly; a tile too large for the accumulator fails at build time with
    AllocationError.
    """
    checks.tiles_of("schedule_vector_packed", tiles, VectorTiles)
    tiles = tiles or default_vector_tiles(op, env)
    res = op.res
    for name, total, tile in (
        ("channel blocks", res.shape[1], tiles.c_blocks),
        ("rows", res.shape[2], tiles.rows),
    ):
        if tile < 1 or total % tile:
            raise ScheduleError(f"{res.op.name}: a tile of {tile} {name} does not divide {total}")
    if tiles.threads < 1 or (res.shape[1] // tiles.c_blocks) % tiles.threads:
        raise ScheduleError(
            f"{res.op.name}: {res.shape[1] // tiles.c_blocks} channel tiles cannot be shared by "
            f"{tiles.threads} virtual threads"
        )
    s = create_schedule(res.op)
    n, c, i, j, u, v = s[res].op.axis
    c_out, c_inn = s[res].split(c, factor=tiles.c_blocks)
    i_out, i_inn = s[res].split(i, factor=tiles.rows)
    s[res].reorder(n, c_out, i_out, c_inn, i_inn, j, u, v)
    for t in op.loads:
        s[t].set_scope(env.acc_scope)
        s[t].compute_at(s[res], i_out)
        s[t].pragma(s[t].op.axis[0], env.dma_copy)
    for t in op.stages:
        s[t].set_scope(env.acc_scope)
        s[t].compute_at(s[res], i_out)
        s[t].pragma(s[t].op.axis[0], env.alu)
    s[res].pragma(c_inn, env.dma_copy)
    if tiles.threads > 1:
        _, tx = s[res].split(c_out, factor=tiles.threads)
        s[res].reorder(tx, n)
        s[res].bind(tx, thread_axis("cthread"))
    return s


def _acc_tiles(op: VectorOp, c_blocks: int, rows: int) -> int:
    """At most the accumulator tiles one thread's tile of ``op`` takes: the ALU pass runs a
    stage in place of its source when both have one shape, so only the loads and the changes
    of shape count (a 1x1 stride-1 pool changes none, so it needs less)."""
    width, out_w = op.inputs[0].shape[3], op.res.shape[3]
    if op.window is None:
        return len(op.loads) * c_blocks * rows * width
    kernel, stride, _padding = op.window
    in_rows, in_cols = (rows - 1) * stride + kernel, (out_w - 1) * stride + kernel
    return c_blocks * (in_rows * in_cols + rows * in_cols + rows * out_w)


def _max_chain(
    src: Tensor, shape: tuple, kernel: int, name: str, at, combine=te_max
) -> list[Tensor]:
    """Stages ``name0 = src[at(i, j, 0)]`` and ``name{k} = combine(name{k-1}, src[at(i, j,
    k)])`` for ``k`` in 1 .. kernel - 1: the window maximum (or, with ``combine`` an addition,
    the window sum) along one axis. Each step is one ALU operation; the first stage, a copy
    into a buffer of another shape, takes two (zero, add)."""

    def read(k):
        return lambda n, c, i, j, u, v: src[(n, c, *at(i, j, k), u, v)]

    def fold(prev, k):
        return lambda n, c, i, j, u, v: combine(prev(n, c, i, j, u, v), read(k)(n, c, i, j, u, v))

    chain = [compute(shape, read(0), name=f"{name}0")]
    for k in range(1, kernel):
        chain.append(compute(shape, fold(chain[-1], k), name=f"{name}{k}"))
    return chain


def _check_packed(what: str, x: Tensor, env: Environment) -> None:
    if len(x.shape) != 6 or tuple(x.shape[4:]) != (env.BATCH, env.BLOCK_IN):
        raise ScheduleError(
            f"{what}: {x.op.name} {x.shape} is not packed activations "
            f"(N/{env.BATCH}, C/{env.BLOCK_IN}, H, W, {env.BATCH}, {env.BLOCK_IN})"
        )
    if x.dtype != env.inp_dtype:
        raise ScheduleError(f"{what}: {x.op.name} is {x.dtype}, not {env.inp_dtype}")


def _load(x: Tensor, env: Environment, name: str) -> Tensor:
    return compute(x.shape, lambda *i: x(*i).astype(env.acc_dtype), name=name)


def _store(last: Tensor, env: Environment) -> Tensor:
    return compute(last.shape, lambda *i: last(*i).astype(env.out_dtype), name="res")


def _window_input(what: str, x: Tensor, env: Environment, kernel: int, stride: int, padding: int):
    """The zero-padded int32 copy of ``x`` a window operator reads, and its output size."""
    _check_packed(what, x, env)
    nb, cb, h, w, bb, bi = x.shape
    if kernel < 1 or stride < 1 or padding < 0 or padding >= kernel:
        raise ScheduleError(
            f"{what}: kernel {kernel}, stride {stride}, padding {padding} is not a "
            "window (kernel and stride at least 1, padding from 0 to kernel - 1)"
        )
    if min(h, w) + 2 * padding < kernel:
        raise ScheduleError(
            f"{what}: a {kernel}x{kernel} window does not fit the {h}x{w} input padded by {padding}"
        )
    out_h = (h + 2 * padding - kernel) // stride + 1
    out_w = (w + 2 * padding - kernel) // stride + 1
    p = padding
    x_buf = compute(
        (nb, cb, h + 2 * p, w + 2 * p, bb, bi),
        lambda n, c, i, j, u, v: if_then_else(
            te_all(i >= p, i < h + p, j >= p, j < w + p),
            x[n, c, i - p, j - p, u, v].astype(env.acc_dtype),
            const(0, env.acc_dtype),
        ),
        name="x_buf",
    )
    return x_buf, out_h, out_w
