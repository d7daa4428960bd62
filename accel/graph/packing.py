"""``accel.graph.pack``: a quantized graph as a sequence of steps, each a fused accelerator
operator on packed layouts or one host node, with the packed constants the accelerator reads
and the reason behind every placement (see ``docs/graph.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from accel.env import Environment, get_env
from accel.errors import AccelError, GraphError
from accel.graph.fusion import Match, Matcher, host_reason
from accel.graph.graph import Graph
from accel.graph.layout import Layout, layout_of, round_up
from accel.graph.operators import Arg, declare
from accel.graph.quantized import QuantizedGraph
from accel.topi.dense import pack_dense_bias, pack_dense_weight
from accel.topi.packing import pack_kernel

ACCEL, HOST = "accel", "host"


@dataclass(frozen=True)
class Step:
    """One operation of a packed graph, run where ``target`` says (``"accel"`` or ``"host"``).

    ``nodes`` are the graph nodes it computes (several when fused), ``inputs`` the computed
    tensors it reads, ``output`` the tensor it writes; ``reason`` says why it runs there. An
    accelerator step also has its ``kind`` of operator, fusion ``params``, module ``args`` (the
    output last) and default ``tiles``; a host step's kind is ``"host"``.
    """

    name: str
    kind: str
    target: str
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[Arg, ...] = ()
    tiles: Any = None


class PackedGraph:
    """A quantized graph partitioned into steps (``accel.graph.pack``).

    ``steps`` run in order; ``layouts`` gives the device layout of every tensor an accelerator
    step reads or writes; ``constants`` holds the packed weights, biases and multipliers the
    accelerator steps take (by the names in their ``args``).
    """

    def __init__(
        self,
        graph: QuantizedGraph,
        env: Environment,
        steps: list[Step],
        layouts: dict[str, Layout],
        constants: dict[str, np.ndarray],
    ) -> None:
        self.graph = graph
        self.env = env
        self.steps = steps
        self.layouts = layouts
        self.constants = constants

    @property
    def accel_steps(self) -> list[Step]:
        return [s for s in self.steps if s.target == ACCEL]

    @property
    def host_steps(self) -> list[Step]:
        return [s for s in self.steps if s.target == HOST]

    def placement(self) -> dict[str, tuple[str, str]]:
        """Every node's ``(target, reason)``."""
        return {n: (s.target, s.reason) for s in self.steps for n in s.nodes}

    def step(self, name: str) -> Step:
        """The step called ``name`` or computing the node ``name``."""
        for s in self.steps:
            if s.name == name or name in s.nodes:
                return s
        raise GraphError(f"graph {self.graph.name!r} has no step or node {name!r}")

    def report(self) -> str:
        """One line per step: where it runs, its nodes and why."""
        lines = []
        for i, s in enumerate(self.steps):
            where = "accelerator" if s.target == ACCEL else "host"
            kind = f" {s.kind}" if s.target == ACCEL else ""
            lines.append(f"{i:3d}  {where}{kind}  {s.name}")
            if len(s.nodes) > 1:
                lines.append(f"       nodes: {', '.join(s.nodes)}")
            lines.append(f"       {s.reason}")
        accel_nodes = sum(len(s.nodes) for s in self.accel_steps)
        host_nodes = sum(len(s.nodes) for s in self.host_steps)
        lines.append(
            f"{len(self.accel_steps)} accelerator steps ({accel_nodes} nodes), "
            f"{len(self.host_steps)} host steps ({host_nodes} nodes)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<PackedGraph {self.graph.name}: {len(self.accel_steps)} accelerator steps, "
            f"{len(self.host_steps)} host steps>"
        )


def pack(graph: QuantizedGraph, env: Environment | None = None) -> PackedGraph:
    """Partition a quantized graph between the accelerator and the host, fuse each layer with
    its epilogue, and pack layouts and constants for ``env`` (default: ``accel.get_env()``).

    Raises GraphError for a graph that is not quantized (``accel.graph.quantize`` first).
    """
    env = env if env is not None else get_env()
    if not isinstance(graph, QuantizedGraph):
        raise GraphError(not_quantized(graph))
    order = {n.name: i for i, n in enumerate(graph.nodes_in_order())}
    matcher = Matcher(graph, env)
    steps: list[Step] = []
    layouts: dict[str, Layout] = {}
    constants: dict[str, np.ndarray] = {}
    deferred = []
    for node in graph.nodes_in_order():
        if node.name in matcher.taken:
            continue
        found = matcher.match(node)
        if found is None:
            deferred.append(node)
            continue
        if isinstance(found, Match):
            made = _accel_step(graph, env, node.name, found, layouts, constants)
            new = [made] if isinstance(made, Step) else _host_steps(graph, found.nodes, made)
        else:
            new = _host_steps(graph, (node.name,), found.reason)
        for step in new:
            matcher.taken.update(step.nodes)
        steps += new
    for node in deferred:
        if node.name not in matcher.taken:
            steps += _host_steps(graph, (node.name,), host_reason(node))
    steps.sort(key=lambda s: max(order[n] for n in s.nodes))
    return PackedGraph(graph, env, steps, layouts, constants)


def not_quantized(graph: Graph) -> str:
    return (
        f"graph {graph.name!r} is a float graph: quantize it first, e.g. "
        "accel.graph.quantize(graph, calibration=[x0, x1, ...]) (a QDQ model: "
        "accel.graph.quantize(graph), which keeps its scales)"
    )


def _host_steps(graph: QuantizedGraph, nodes: tuple[str, ...], reason: str) -> list[Step]:
    steps = []
    for name in nodes:
        node = graph.node(name)
        inputs = tuple(t for t in node.inputs if t not in graph.constants)
        steps.append(Step(name, "host", HOST, (name,), inputs, node.outputs[0], reason))
    return steps


def _accel_step(graph, env, name, match: Match, layouts, constants) -> Step | str:
    """The accelerator step of ``match`` (its constants and layouts recorded), or the reason
    it must run on the host after all (no tile fits)."""
    step_layouts = {
        t: layout_of(graph.tensors[t].shape, env) for t in (*match.inputs, match.output)
    }
    consts = _constants(graph, env, name, match, step_layouts)
    args = _args(match, step_layouts, consts, env)
    try:
        declared = declare(match.kind, args, dict(match.params), env)
        tiles = declared.default_tiles(env)
    except AccelError as exc:
        return f"{match.reason}; but {exc}: host"
    layouts.update(step_layouts)
    constants.update(consts)
    return Step(
        name,
        match.kind,
        ACCEL,
        match.nodes,
        match.inputs,
        match.output,
        match.reason,
        match.params,
        args,
        tiles,
    )


def _args(match: Match, layouts, consts, env: Environment) -> tuple[Arg, ...]:
    """The module's arguments: activations, then constants, then the residual, the output."""
    data = match.inputs[0]
    if match.kind in ("conv2d", "dense"):
        shape = layouts[data].packed
        if match.kind == "dense" and len(shape) == 6:  # a flattened activation, read as it is
            nb, cb, h, w, b, c = shape
            shape = (nb, cb * h * w, b, c)
        args = [Arg("tensor", data, shape, "int8")]
        args += [Arg("const", k, v.shape, v.dtype.name) for k, v in consts.items()]
        args += [Arg("tensor", t, layouts[t].packed, "int8") for t in match.inputs[1:]]
    else:
        args = [Arg("tensor", t, layouts[t].packed, "int8") for t in match.inputs]
    args.append(Arg("tensor", match.output, layouts[match.output].packed, "int8"))
    return tuple(args)


def _constants(graph, env, name, match: Match, layouts) -> dict[str, np.ndarray]:
    """Packed weight, bias and per-channel multipliers of a conv2d or dense step, in argument
    order; zeros in padded channels."""
    if match.kind not in ("conv2d", "dense"):
        return {}
    layer = graph.node(match.nodes[1] if match.params.get("flatten") else match.nodes[0])
    weight = graph.constants[layer.inputs[1]]
    out = layouts[match.output]
    cin = layouts[match.inputs[0]].channels
    consts = {}
    if match.kind == "conv2d":
        o, i = weight.shape[:2]
        padded = np.zeros((out.channels, cin, *weight.shape[2:]), np.int8)
        padded[:o, :i] = weight
        consts[f"{name}:weight"] = pack_kernel(padded, env)
    else:
        consts[f"{name}:weight"] = pack_dense_weight(
            _dense_weight(weight, match.params.get("flatten"), out.channels, cin, env), env
        )
    per_channel = []
    if match.params["bias"]:
        bias = graph.constants[layer.inputs[2]].astype(np.int64)
        wrapped = (bias + match.params.get("bias_offset", 0)).astype(np.int32)  # mod 2^32
        per_channel.append(("bias", wrapped))
    if match.params["per_channel"]:
        req = graph.node(match.nodes[2] if match.params.get("flatten") else match.nodes[1])
        per_channel.append(("multiplier", np.asarray(req.attrs["multiplier"], np.int32)))
    for key, values in per_channel:
        padded = np.zeros(out.channels, np.int32)
        padded[: values.shape[0]] = values
        consts[f"{name}:{key}"] = pack_dense_bias(padded, env)
    return consts


def _dense_weight(weight, flatten, out_channels: int, cin: int, env: Environment) -> np.ndarray:
    """A dense weight ``(O, K)`` padded to ``(O', K')``; when the data is a flattened packed
    activation ``(N, C, H, W)``, its columns reordered to the packed order: column
    ``((cb * H + h) * W + w) * BLOCK + ci`` reads channel ``cb * BLOCK + ci`` at ``(h, w)``."""
    o = weight.shape[0]
    if flatten is None:
        padded = np.zeros((out_channels, cin), np.int8)
        padded[:o, : weight.shape[1]] = weight
        return padded
    _n, c, h, w = flatten
    block = env.BLOCK_IN
    full = np.zeros((out_channels, round_up(c, block), h, w), np.int8)
    full[:o, :c] = weight.reshape(o, c, h, w)
    cb = full.shape[1] // block
    ordered = full.reshape(out_channels, cb, block, h, w).transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(ordered.reshape(out_channels, cb * h * w * block))
