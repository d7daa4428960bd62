"""Tuning tasks: one operator declaration on one configuration, and the usual ones to tune.

A :class:`Task` holds a topi declaration (``Conv2d``, ``Dense``, ``VectorOp``; they pickle, so a
task travels to worker processes and Dask workers as it is), the configuration it is built
for, and a name. Its *workload* (``accel.topi.tuning.workload``) and the configuration's id
key it in tuning logs and in the tables ``default_*tiles`` consult. Tasks come from the helpers
below (``conv2d_task``, ``dense_task``, ..., ``resnet18_tasks``) or from any build through
:func:`extract_tasks`, which records every operator whose default tiles the build asks for (a
graph build, once the graph level builds programs, or any function using topi defaults).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accel import te, topi
from accel.env import Environment, get_env
from accel.topi import tuning
from accel.tune.measure import WhatIf
from accel.tune.templates import Template, template_of

# ResNet-18's convolutions on the accelerator (accel.topi.RESNET18_CONV2D) and how many times
# each runs in one inference: two basic blocks per stage, the first of stages 2-4 strided with
# a 1x1 strided shortcut. The 7x7 stem (3 input channels) is not on the accelerator.
RESNET18_REPEATS = (4, 1, 1, 3, 1, 1, 3, 1, 1, 3)


@dataclass
class Task:
    """One operator to tune: ``op`` (a topi declaration) on ``env``, called ``name``."""

    op: Any
    env: Environment
    name: str = ""
    repeats: int = 1  # how many times a network runs it (for network totals)
    what_if: WhatIf | None = None  # hardware changes priced by the timing-only run
    _workload: dict | None = field(default=None, repr=False, compare=False)

    @property
    def template(self) -> Template:
        return template_of(self.op)

    @property
    def workload(self) -> dict:
        if self._workload is None:
            self._workload = tuning.workload(self.op)
        return self._workload

    @property
    def key(self) -> str:
        return tuning.workload_key(self.workload)

    @property
    def config(self) -> str:
        """The configuration id (with the what-if changes, so their records never answer a
        lookup for the real configuration)."""
        config = tuning.config_id(self.env)
        return f"{config}+{self.what_if}" if self.what_if and str(self.what_if) else config

    def rule_tiles(self) -> Any:
        """The tiles the hand-written default rule picks (no tuned table consulted)."""
        with tuning.dispatch(lambda *_: tuning.RULE):
            return _RULES[self.template.kind](self.op, self.env)

    def __str__(self) -> str:
        return self.name or self.key


_RULES: dict[str, Callable] = {
    "conv2d": topi.default_tiles,
    "conv2d_transpose": topi.default_transpose_tiles,
    "dense": topi.default_dense_tiles,
    "vector": topi.default_vector_tiles,
}


def _env(env: Environment | None) -> Environment:
    return env if env is not None else get_env()


def conv2d_task(
    hw: int,
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int = 1,
    padding: int | None = None,
    bias: bool = True,
    batch: int | None = None,
    env: Environment | None = None,
    name: str = "",
    repeats: int = 1,
) -> Task:
    """A ``conv2d_packed`` of a square ``hw x hw`` input with the requantizing epilogue
    (``>> 8``, clip to [0, 127], the bias when ``bias``); padding defaults to ``kernel // 2``,
    the batch to the configuration's ``BATCH``."""
    env = _env(env)
    batch = batch or env.BATCH
    b, bi, bo = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT
    data = te.placeholder((batch // b, in_channels // bi, hw, hw, b, bi), env.inp_dtype, "data")
    weight = te.placeholder(
        (out_channels // bo, in_channels // bi, kernel, kernel, bo, bi), env.wgt_dtype, "kernel"
    )
    bias_t = te.placeholder((out_channels // bo, b, bo), env.acc_dtype, "bias") if bias else None
    pad = kernel // 2 if padding is None else padding
    op = topi.conv2d_packed(data, weight, env, stride, pad, bias=bias_t)
    name = name or f"conv2d_{hw}x{hw}_{in_channels}-{out_channels}_k{kernel}s{stride}"
    return Task(op, env, name, repeats)


def dense_task(
    batch: int,
    in_features: int,
    out_features: int,
    bias: bool = True,
    env: Environment | None = None,
    name: str = "",
) -> Task:
    """A ``dense_packed`` layer with the requantizing epilogue."""
    env = _env(env)
    b, bi, bo = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT
    data = te.placeholder((batch // b, in_features // bi, b, bi), env.inp_dtype, "data")
    shape = (out_features // bo, in_features // bi, bo, bi)
    weight = te.placeholder(shape, env.wgt_dtype, "weight")
    bias_t = te.placeholder((out_features // bo, b, bo), env.acc_dtype, "bias") if bias else None
    op = topi.dense_packed(data, weight, env, bias=bias_t)
    return Task(op, env, name or f"dense_{batch}x{in_features}-{out_features}")


def activations(channels: int, hw: int, env: Environment, name: str = "x", batch: int = 0):
    """A packed int8 activation placeholder ``(batch, channels, hw, hw)`` (batch: ``BATCH``)."""
    b, bi = env.BATCH, env.BLOCK_IN
    batch = batch or b
    return te.placeholder((batch // b, channels // bi, hw, hw, b, bi), env.inp_dtype, name)


def vector_task(kind: str, channels: int, hw: int, env: Environment | None = None, **kw) -> Task:
    """A vector operator on ``channels x hw x hw`` activations: ``relu``, ``add`` (``shift``
    keyword) or ``max_pool2d`` (``kernel``, ``stride``, ``padding`` keywords)."""
    env = _env(env)
    x = activations(channels, hw, env)
    if kind == "relu":
        op = topi.relu_packed(x, env)
    elif kind == "add":
        op = topi.add_packed(x, activations(channels, hw, env, "y"), env, **kw)
    elif kind == "max_pool2d":
        op = topi.max_pool2d_packed(x, env, **kw)
    else:
        raise ValueError(f"vector_task: unknown kind {kind!r} (relu, add, max_pool2d)")
    return Task(op, env, f"{kind}_{hw}x{hw}_{channels}")


def resnet18_tasks(env: Environment | None = None) -> list[Task]:
    """ResNet-18's convolutions (``accel.topi.RESNET18_CONV2D``) with bias and requantizing
    epilogue, each with its number of runs per inference in ``repeats``."""
    env = _env(env)
    return [
        conv2d_task(hw, ci, co, k, s, env=env, repeats=r, name=f"resnet18.{i}")
        for i, ((hw, ci, co, k, s), r) in enumerate(zip(topi.RESNET18_CONV2D, RESNET18_REPEATS))
    ]


def extract_tasks(build: Callable[[], Any]) -> list[Task]:
    """Run ``build()`` (e.g. ``lambda: accel.graph.build(qg)``) and return one task per distinct
    operator whose default tiles it asked for, with its configuration, in order of first use."""
    found: dict[tuple[str, str], Task] = {}

    def record(described: dict, env: Environment, op: Any) -> None:
        key = (tuning.config_id(env), tuning.workload_key(described))
        if key in found:
            found[key].repeats += 1
        else:
            name = f"{described['op'].lower()}.{len(found)}"
            found[key] = Task(op, env, name, 1, _workload=described)

    with tuning.dispatch(record):
        build()
    return list(found.values())
