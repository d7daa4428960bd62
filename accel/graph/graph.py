"""The graph IR: typed nodes on a networkx DiGraph, every tensor's type known, and a numpy
reference executor."""

from __future__ import annotations

from typing import Iterable, Mapping

import networkx as nx
import numpy as np

from accel.errors import ArgumentError, GraphError
from accel.graph.ir import Node, TensorInfo
from accel.graph.ops import KERNELS
from accel.graph.shapes import infer


class Graph:
    """A model as a graph of canonical operators.

    ``graph.nx`` is a :class:`networkx.DiGraph` whose vertices are node names, each with the
    :class:`Node` under the ``"node"`` key, and whose edges ``producer -> consumer`` carry the
    names of the tensors they pass under ``"tensors"``. ``tensors`` maps every tensor name
    (inputs, constants, node outputs) to its :class:`TensorInfo`; ``constants`` maps constant
    names to numpy arrays; ``inputs`` and ``outputs`` are tensor names in order.

    A graph is checked when built (every input defined, one producer per tensor, no cycle,
    recorded types equal to the inferred ones) and is not changed afterwards: rewrites build a
    new one. Raises :class:`GraphError` naming the node when a check fails.
    """

    def __init__(
        self,
        nodes: Iterable[Node],
        tensors: Mapping[str, TensorInfo],
        constants: Mapping[str, np.ndarray],
        inputs: Iterable[str],
        outputs: Iterable[str],
        name: str = "graph",
    ) -> None:
        self.name = name
        self.tensors = dict(tensors)
        self.constants = dict(constants)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.nx = nx.DiGraph()
        self._order: dict[str, int] = {}
        self._producer: dict[str, str] = {}
        self._consumers: dict[str, list[str]] = {}
        for index, node in enumerate(nodes):
            if node.name in self._order:
                raise GraphError(f"two nodes are named {node.name!r}")
            self._order[node.name] = index
            self.nx.add_node(node.name, node=node)
            for tensor in node.outputs:
                if tensor in self._producer or tensor in self.constants or tensor in self.inputs:
                    raise GraphError(f"node {node.name!r}: tensor {tensor!r} is defined twice")
                self._producer[tensor] = node.name
        self._link()
        self.verify()

    def _link(self) -> None:
        for name in self.nx.nodes:
            node = self.node(name)
            for tensor in node.inputs:
                self._consumers.setdefault(tensor, []).append(name)
                source = self._producer.get(tensor)
                if source is None:
                    if tensor not in self.constants and tensor not in self.inputs:
                        raise GraphError(
                            f"node {name!r} ({node.op}): input {tensor!r} is not a graph input, "
                            "a constant or any node's output"
                        )
                    continue
                edge = self.nx.get_edge_data(source, name)
                if edge is None:
                    self.nx.add_edge(source, name, tensors=(tensor,))
                elif tensor not in edge["tensors"]:
                    edge["tensors"] += (tensor,)
        if not nx.is_directed_acyclic_graph(self.nx):
            cycle = " -> ".join(a for a, _ in nx.find_cycle(self.nx))
            raise GraphError(f"the graph has a cycle through nodes {cycle}")

    def verify(self) -> None:
        """Check every tensor has a type, constants agree with theirs and each node's output
        types are the ones inferred from its inputs; raise :class:`GraphError` otherwise."""
        for name, value in self.constants.items():
            info = self.tensors.get(name)
            if info != TensorInfo(value.shape, value.dtype):
                raise GraphError(f"constant {name!r} is {value.dtype}{value.shape}, typed {info}")
        for tensor in (*self.inputs, *self.outputs):
            if tensor not in self.tensors:
                raise GraphError(f"graph input or output {tensor!r} has no type")
        for tensor in self.outputs:
            if not (tensor in self._producer or tensor in self.constants or tensor in self.inputs):
                raise GraphError(f"graph output {tensor!r} is not defined")
        for node in self.nodes_in_order():
            inferred = infer(node, [self.tensors[t] for t in node.inputs])
            recorded = [self.tensors.get(t) for t in node.outputs]
            if inferred != recorded:
                got = ", ".join(map(str, recorded))
                want = ", ".join(map(str, inferred))
                raise GraphError(f"node {node.name!r} ({node.op}): outputs typed {got}, not {want}")

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        return self.nx.nodes[name]["node"]

    def producer(self, tensor: str) -> Node | None:
        """The node computing ``tensor``, or None for inputs and constants."""
        source = self._producer.get(tensor)
        return None if source is None else self.node(source)

    def consumers(self, tensor: str) -> list[Node]:
        """The nodes reading ``tensor``, in the order they were added."""
        return [self.node(name) for name in dict.fromkeys(self._consumers.get(tensor, ()))]

    def nodes_in_order(self) -> list[Node]:
        """The nodes in a topological order; among ready nodes, the one added first comes first."""
        order = nx.lexicographical_topological_sort(self.nx, key=self._order.__getitem__)
        return [self.node(name) for name in order]

    def run(self, *args: np.ndarray, **named: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Execute the graph in numpy on inputs given in order or by name.

        Returns the one output as an array, or a tuple of arrays. Raises :class:`ArgumentError`
        naming the input when an input is missing, unknown, or of the wrong shape or dtype.
        """
        values = self.evaluate(*args, **named)
        results = tuple(np.array(values[t], copy=True) for t in self.outputs)
        return results[0] if len(results) == 1 else results

    def evaluate(self, *args: np.ndarray, **named: np.ndarray) -> dict[str, np.ndarray]:
        """Like :meth:`run`, but return every tensor's value (inputs, constants and each node's
        output) by name; the arrays must not be modified."""
        values = dict(self.constants)
        values.update(self._bind(args, named))
        for node in self.nodes_in_order():
            result = KERNELS[node.op](node.attrs, *(values[t] for t in node.inputs))
            values[node.outputs[0]] = np.asarray(result, dtype=self.tensors[node.outputs[0]].dtype)
        return values

    def _bind(self, args, named) -> dict[str, np.ndarray]:
        if args and named:
            raise ArgumentError("pass the graph's inputs either in order or by name, not both")
        if args:
            if len(args) != len(self.inputs):
                raise ArgumentError(
                    f"graph {self.name!r} takes {len(self.inputs)} inputs "
                    f"({', '.join(self.inputs)}), got {len(args)}"
                )
            named = dict(zip(self.inputs, args))
        unknown = sorted(set(named) - set(self.inputs))
        missing = [n for n in self.inputs if n not in named]
        if unknown or missing:
            raise ArgumentError(
                f"graph {self.name!r} takes inputs {', '.join(self.inputs)}; "
                f"unknown: {', '.join(unknown) or 'none'}, missing: {', '.join(missing) or 'none'}"
            )
        bound = {}
        for name in self.inputs:
            value, want = np.asarray(named[name]), self.tensors[name]
            got = TensorInfo(value.shape, value.dtype)
            if got != want:
                raise ArgumentError(f"input {name!r}: expected {want}, got {got}")
            bound[name] = value
        return bound

    def __str__(self) -> str:
        def typed(names: Iterable[str]) -> str:
            return ", ".join(f"{t}: {self.tensors[t]}" for t in names)

        lines = [f"graph {self.name}({typed(self.inputs)}) -> ({typed(self.outputs)})"]
        for name in sorted(self.constants):
            lines.append(f"  const {name}: {self.tensors[name]}")
        for node in self.nodes_in_order():
            lines.append(f"  {node.name}: {typed(node.outputs)} = {node.call()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.nx)} nodes, {len(self.inputs)} inputs>"
