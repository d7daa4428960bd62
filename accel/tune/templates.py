"""Tuning templates: each ``topi`` operator's tunable space, its SRAM footprint, its schedule.

A :class:`Template` knows, for one kind of declaration (``Conv2d`` plain or grouped, transposed
``Conv2d``, ``Dense``, ``VectorOp``):

- ``space(op, env)``: the knobs, one per field of the operator's tiles dataclass
  (:class:`~accel.topi.Conv2dTiles`, :class:`~accel.topi.DenseTiles`,
  :class:`~accel.topi.VectorTiles`): tile sizes are every divisor of their axis, virtual
  threads take 1, 2 or 4;
- ``check(op, env, tiles)``: why the candidate cannot run, or None -- threads that do not share
  the tiles evenly, and tiles that cannot fit an SRAM (see *Footprints*); checked before
  anything is built;
- ``footprint(op, env, tiles)``: the SRAM tiles it takes per scope;
- ``schedule(op, env, tiles)``: the topi schedule.

Footprints. For convolutions and dense layers the footprint is what the compiler allocates
(``accel.lower.passes.sram``), in closed form: every on-chip buffer is the bounding box of what
one tile reads, once per virtual thread, and the epilogue runs in place. That box is the
allocation whatever the access pattern, so an exact count of the points read (islpy's
``card``) would be a *different* number, smaller for strided 1x1 convolutions, and not the one
that decides whether a tile fits; the closed form is exact and costs nothing.
``tests/tune/test_templates.py`` checks it against the compiler for random candidates. For
transposed convolutions and pooling the closed form is a lower bound (their input boxes depend
on padding and phase offsets the declaration does not keep): candidates it rejects cannot fit,
and the build's AllocationError rejects the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from accel.env import Environment
from accel.errors import ConfigError
from accel.hw.memory import elem_bytes
from accel.lower.coproc import onchip_scopes, sram_depth
from accel.topi import (
    Conv2dTiles,
    DenseTiles,
    VectorTiles,
    schedule_conv2d_packed,
    schedule_conv2d_transpose_packed,
    schedule_dense_packed,
    schedule_vector_packed,
)
from accel.tune.space import Space, choice, split

THREADS = (1, 2, 4)


@dataclass(frozen=True)
class Template:
    """How to tune one kind of topi declaration (see the module docstring)."""

    kind: str
    tiles_class: type
    space: Callable[[Any, Environment], Space]
    extents: Callable[[Any], dict[str, int]]
    footprint: Callable[[Any, Environment, Any], dict[str, int]]
    schedule: Callable[[Any, Environment, Any], Any]
    exact_footprint: bool = True
    thread_axes: tuple[tuple[str, str], ...] = (("threads", "oc_blocks"), ("row_threads", "rows"))

    def tiles(self, point: dict) -> Any:
        """The tiles dataclass of a space point."""
        return self.tiles_class(**point)

    def point(self, tiles: Any) -> dict:
        return asdict(tiles)

    def check(self, op: Any, env: Environment, tiles: Any) -> str | None:
        """Why ``tiles`` cannot run ``op`` on ``env`` (threads that do not share the tiles, a
        tile that cannot fit its SRAM), or None."""
        extents = self.extents(op)
        point = asdict(tiles)
        for name, size in point.items():
            if name in extents and extents[name] % size:
                return f"{name}={size} does not divide {extents[name]}"
        for threads, axis in self.thread_axes:
            if threads in point:
                count = extents[axis] // point[axis]
                if count % point[threads]:
                    return (
                        f"{count} tiles of {axis} cannot be shared by {point[threads]} virtual "
                        f"threads ({threads})"
                    )
        need = self.footprint(op, env, tiles)
        for scope, tiles_needed in need.items():
            mem_type = onchip_scopes(env)[scope]
            capacity = sram_depth(env, mem_type)
            if tiles_needed > capacity:
                what = "needs" if self.exact_footprint else "needs at least"
                nbytes = tiles_needed * elem_bytes(env, mem_type)
                return f"{scope} {what} {tiles_needed} tiles ({nbytes} bytes) but holds {capacity}"
        return None


def _operand_tiles(op: Any) -> tuple[int, int]:
    """(operands of the result's shape, per-channel operands) of an epilogue: each takes an
    accumulator tile the size of the output tile, or of the output-channel blocks."""
    bufs = getattr(op, "operand_bufs", [])
    full = sum(len(b.shape) == len(op.res.shape) for b in bufs)
    return full, len(bufs) - full


# -- convolution (plain and grouped) ---------------------------------------------------------
def _conv_extents(op) -> dict[str, int]:
    ob, out_h, out_w = op.res.shape[-5:-2]  # per group when grouped
    return {"oc_blocks": ob, "rows": out_h, "cols": out_w, "ic_blocks": op.kernel.shape[-5]}


def _conv_space(op, env: Environment) -> Space:
    return _tile_space(_conv_extents(op), "output rows per tile", "output columns per tile")


def _tile_space(e: dict[str, int], rows: str, cols: str) -> Space:
    """The Conv2dTiles knobs over extents ``e``; ``rows`` and ``cols`` say what a row and a
    column of the tile are."""
    return Space(
        (
            split("oc_blocks", e["oc_blocks"], "output-channel blocks per tile"),
            split("rows", e["rows"], rows),
            split("cols", e["cols"], cols),
            split("ic_blocks", e["ic_blocks"], "input-channel blocks per load step"),
            choice("threads", THREADS, "virtual threads along output-channel tiles"),
            choice("row_threads", THREADS, "virtual threads along row tiles"),
        )
    )


def _conv_footprint(op, env: Environment, t: Conv2dTiles) -> dict[str, int]:
    kh, kw = op.kernel.shape[-4:-2]
    s = op.stride
    slots = t.threads * t.row_threads
    full, per_channel = _operand_tiles(op)
    bias = 1 if op.bias is not None else 0
    in_rows, in_cols = (t.rows - 1) * s + kh, (t.cols - 1) * s + kw
    return {
        env.acc_scope: slots
        * (t.oc_blocks * t.rows * t.cols * (1 + full) + t.oc_blocks * (bias + per_channel)),
        env.inp_scope: slots * t.ic_blocks * in_rows * in_cols,
        env.wgt_scope: slots * t.oc_blocks * t.ic_blocks * kh * kw,
    }


# -- transposed convolution: rows and columns count phase rows and columns ---------------------
def _transpose_extents(op) -> dict[str, int]:
    _nb, ob, rows, _s, cols, _s2, _b, _o = op.res.shape
    return {"oc_blocks": ob, "rows": rows, "cols": cols, "ic_blocks": op.kernel.shape[1]}


def _transpose_space(op, env: Environment) -> Space:
    return _tile_space(
        _transpose_extents(op),
        "phase rows per tile (each holds stride output rows)",
        "phase columns per tile",
    )


def _transpose_footprint(op, env: Environment, t: Conv2dTiles) -> dict[str, int]:
    s, taps = op.kernel.shape[2], op.kernel.shape[4]
    slots = t.threads * t.row_threads
    full, per_channel = _operand_tiles(op)
    bias = 1 if op.bias is not None else 0
    return {  # the input box is at least (rows - 1 + taps) x (cols - 1 + taps)
        env.acc_scope: slots
        * (t.oc_blocks * t.rows * s * t.cols * s * (1 + full) + t.oc_blocks * (bias + per_channel)),
        env.inp_scope: slots * t.ic_blocks * (t.rows - 1 + taps) * (t.cols - 1 + taps),
        env.wgt_scope: slots * t.oc_blocks * t.ic_blocks * s * s * taps * taps,
    }


# -- dense -----------------------------------------------------------------------------------
def _dense_extents(op) -> dict[str, int]:
    nb, ob, _b, _o = op.res.shape
    return {"batch_blocks": nb, "oc_blocks": ob, "ic_blocks": op.data.shape[1]}


def _dense_space(op, env: Environment) -> Space:
    e = _dense_extents(op)
    return Space(
        (
            split("batch_blocks", e["batch_blocks"], "batch blocks per tile"),
            split("oc_blocks", e["oc_blocks"], "output-channel blocks per tile"),
            split("ic_blocks", e["ic_blocks"], "input-channel blocks per load step"),
            choice("threads", THREADS, "virtual threads along output-channel tiles"),
        )
    )


def _dense_footprint(op, env: Environment, t: DenseTiles) -> dict[str, int]:
    full, per_channel = _operand_tiles(op)
    bias = 1 if op.bias is not None else 0
    acc = t.batch_blocks * t.oc_blocks * (1 + full) + t.oc_blocks * (bias + per_channel)
    return {
        env.acc_scope: t.threads * acc,
        env.inp_scope: t.threads * t.batch_blocks * t.ic_blocks,
        env.wgt_scope: t.threads * t.oc_blocks * t.ic_blocks,
    }


# -- vector operators --------------------------------------------------------------------------
def _vector_extents(op) -> dict[str, int]:
    return {"c_blocks": op.res.shape[1], "rows": op.res.shape[2]}


def _vector_space(op, env: Environment) -> Space:
    e = _vector_extents(op)
    return Space(
        (
            split("c_blocks", e["c_blocks"], "channel blocks per tile"),
            split("rows", e["rows"], "output rows per tile"),
            choice("threads", THREADS, "virtual threads along channel tiles"),
        )
    )


def _vector_footprint(op, env: Environment, t: VectorTiles) -> dict[str, int]:
    # at least one accumulator tile per loaded input element of the tile's output rows
    width = op.inputs[0].shape[3] if op.window is None else op.res.shape[3]
    return {env.acc_scope: t.threads * len(op.loads) * t.c_blocks * t.rows * width}


TEMPLATES = {
    "conv2d": Template(
        "conv2d", Conv2dTiles, _conv_space, _conv_extents, _conv_footprint, schedule_conv2d_packed
    ),
    "conv2d_transpose": Template(
        "conv2d_transpose",
        Conv2dTiles,
        _transpose_space,
        _transpose_extents,
        _transpose_footprint,
        schedule_conv2d_transpose_packed,
        exact_footprint=False,
    ),
    "dense": Template(
        "dense", DenseTiles, _dense_space, _dense_extents, _dense_footprint, schedule_dense_packed
    ),
    "vector": Template(
        "vector",
        VectorTiles,
        _vector_space,
        _vector_extents,
        _vector_footprint,
        schedule_vector_packed,
        exact_footprint=False,
        thread_axes=(("threads", "c_blocks"),),
    ),
}


def template_of(op: Any) -> Template:
    """The template of a topi declaration; raises ConfigError for anything else."""
    kind = type(op).__name__
    if kind == "Conv2d":
        return TEMPLATES["conv2d_transpose" if len(op.kernel.shape) == 8 else "conv2d"]
    if kind == "Dense":
        return TEMPLATES["dense"]
    if kind == "VectorOp":
        return TEMPLATES["vector"]
    raise ConfigError(f"no tuning template for a {kind}; tunable are Conv2d, Dense and VectorOp")
