"""Each accelerator step of a packed graph as a scheduled ``accel.topi`` operator: the
declaration on placeholders of the step's argument shapes, the default tiles, the schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accel.env import Environment
from accel.errors import AllocationError, GraphError
from accel.graph.fusion import MULTIPLIER, RESIDUAL
from accel.te import placeholder
from accel.topi import conv2d, dense, vector
from accel.topi.common import Operand


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a step's module, in order: an activation tensor of the graph (``kind``
    "tensor", read or, for the last argument, written) or a packed constant ("const"), with
    the shape and dtype the module sees."""

    kind: str
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Declared:
    """A step's ``topi`` declaration (``op.args`` are the module's parameters, in the step's
    argument order) and how to schedule it."""

    kind: str
    op: Any

    def default_tiles(self, env: Environment):
        """topi's default tiles; convolutions with two virtual threads, or one when two
        threads' tiles do not fit. Raises AllocationError when nothing fits."""
        if self.kind == "conv2d":
            try:
                return conv2d.default_tiles(self.op, env)
            except AllocationError:
                return conv2d.default_tiles(self.op, env, threads=1)
        if self.kind == "dense":
            return dense.default_dense_tiles(self.op, env)
        return vector.default_vector_tiles(self.op, env)

    def schedule(self, env: Environment, tiles):
        if self.kind == "conv2d":
            return conv2d.schedule_conv2d_packed(self.op, env, tiles)
        if self.kind == "dense":
            return dense.schedule_dense_packed(self.op, env, tiles)
        return vector.schedule_vector_packed(self.op, env, tiles)


def declare(kind: str, args: tuple[Arg, ...], params: dict, env: Environment) -> Declared:
    """The ``topi`` operator of a step of ``kind`` with module arguments ``args`` (the output
    last) and the fusion's ``params``."""
    tensors = [
        placeholder(a.shape, name=ident(a.name, i), dtype=a.dtype) for i, a in enumerate(args[:-1])
    ]
    if kind in ("conv2d", "dense"):
        data, weight, rest = tensors[0], tensors[1], tensors[2:]
        bias = rest.pop(0) if params["bias"] else None
        operands = []
        if params["per_channel"]:
            operands.append(Operand(MULTIPLIER, rest.pop(0)))
        if params.get("residual_steps"):
            operands.append(Operand(RESIDUAL, rest.pop(0), params["residual_steps"]))
        common = {"bias": bias, "epilogue": params["steps"], "operands": operands}
        if kind == "conv2d":
            op = conv2d.conv2d_packed(
                data, weight, env, params["stride"], params["padding"], **common
            )
        else:
            op = dense.dense_packed(data, weight, env, **common)
    elif kind == "max_pool":
        op = vector.max_pool2d_packed(
            tensors[0], env, params["kernel"], params["stride"], params["padding"]
        )
    elif kind == "sum_pool":
        op = vector.sum_pool2d_packed(
            tensors[0], env, params["kernel"], params["stride"], params["padding"], params["steps"]
        )
    elif kind == "add":
        op = vector.add_scaled_packed(
            tensors[0], tensors[1], env, params["steps_a"], params["steps_b"], params["steps"]
        )
    elif kind == "alu":
        op = vector.map_packed(tensors[0], env, params["steps"])
    else:
        raise GraphError(f"no accelerator operator for a step of kind {kind!r}")
    got = tuple(tuple(int(d) for d in t.shape) for t in op.args)
    want = tuple(a.shape for a in args)
    if got != want:
        raise GraphError(f"{kind} step: the operator's arguments {got} are not the step's {want}")
    return Declared(kind, op)


def ident(name: str, index: int) -> str:
    """A tensor name for the placeholder (the graph's names may hold '/' and '.')."""
    clean = "".join(c if c.isalnum() else "_" for c in name).strip("_")[-24:]
    return f"a{index}_{clean}" if clean else f"a{index}"
