"""Graph rewrites. Each takes a :class:`Graph` and returns a new one (the same object when
nothing matched)."""

from __future__ import annotations

import numpy as np

from accel.graph.graph import Graph
from accel.graph.ir import Node, TensorInfo


def fold_batch_norm(graph: Graph) -> Graph:
    """Fold ``batch_norm(conv(x, w, b))`` into ``conv(x, w', b')``.

    Matches a batch_norm whose input is a float conv with a constant weight (and constant bias,
    if any), whose scale, bias, mean and variance are constants, and whose conv output is read by
    nothing else (not even as a graph output). The folded conv keeps the conv's name and takes
    the batch_norm's output name: ``w' = w * s`` per output channel and ``b' = (b - mean) * s +
    beta`` with ``s = gamma / sqrt(var + eps)``, computed in float64 and stored as float32.
    Everything else is left alone (a standalone batch_norm stays executable).
    """
    constants = dict(graph.constants)
    tensors = dict(graph.tensors)
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    for bn in graph.nodes_in_order():
        conv = graph.producer(bn.inputs[0]) if bn.op == "batch_norm" else None
        if conv is None or not _foldable(graph, conv, bn):
            continue
        gamma, beta, mean, var = (graph.constants[t].astype(np.float64) for t in bn.inputs[1:])
        w = graph.constants[conv.inputs[1]]
        b = graph.constants[conv.inputs[2]] if len(conv.inputs) > 2 else np.zeros(w.shape[0])
        s = gamma / np.sqrt(var + bn.attrs["epsilon"])
        w_name = _fresh(f"{conv.name}.folded_weight", tensors)
        b_name = _fresh(f"{conv.name}.folded_bias", tensors)
        constants[w_name] = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        constants[b_name] = ((b - mean) * s + beta).astype(w.dtype)
        for name in (w_name, b_name):
            tensors[name] = TensorInfo(constants[name].shape, constants[name].dtype)
        replaced[conv.name] = Node(
            conv.name, "conv", (conv.inputs[0], w_name, b_name), bn.outputs, conv.attrs
        )
        dropped.add(bn.name)
        tensors.pop(conv.outputs[0])
    if not replaced:
        return graph
    nodes = [replaced.get(n.name, n) for n in graph.nodes_in_order() if n.name not in dropped]
    return prune_constants(
        Graph(nodes, tensors, constants, graph.inputs, graph.outputs, graph.name)
    )


def _foldable(graph: Graph, conv: Node, bn: Node) -> bool:
    weights = conv.inputs[1:] + bn.inputs[1:]
    return (
        conv.op == "conv"
        and graph.tensors[conv.outputs[0]].dtype == np.float32
        and all(t in graph.constants for t in weights)
        and conv.outputs[0] not in graph.outputs
        and len(graph.consumers(conv.outputs[0])) == 1
    )


def prune_constants(graph: Graph) -> Graph:
    """Drop constants no node reads and no output names."""
    used = {t for n in graph.nodes_in_order() for t in n.inputs} | set(graph.outputs)
    unused = set(graph.constants) - used
    if not unused:
        return graph
    constants = {k: v for k, v in graph.constants.items() if k not in unused}
    tensors = {k: v for k, v in graph.tensors.items() if k not in unused}
    return Graph(
        graph.nodes_in_order(), tensors, constants, graph.inputs, graph.outputs, graph.name
    )


def _fresh(name: str, taken) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}.{i}", i + 1
    return candidate
