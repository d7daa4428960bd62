"""What the ONNX converters work with: the node being converted (:class:`OnnxNode`) and the
graph under construction (:class:`ImportContext`), which infers types and folds constants as
nodes are emitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import onnx

from accel.errors import GraphError, UnsupportedOperatorError
from accel.frontend.onnx_load import SUPPORTED_DTYPES, to_array
from accel.graph import Graph, Node, TensorInfo
from accel.graph.ops import KERNELS
from accel.graph.shapes import infer

# Folding these would turn a quantized model's integer weights into float constants and erase
# the quantization that later passes read.
NEVER_FOLD = frozenset({"quantize_linear", "dequantize_linear", "qlinear_conv", "qlinear_matmul"})


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node: names, attributes as plain Python values, and the model's opset."""

    name: str
    op_type: str
    inputs: tuple[str, ...]  # "" marks an absent optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    opset: int

    @classmethod
    def from_proto(cls, proto: onnx.NodeProto, name: str, opset: int) -> OnnxNode:
        attrs = {a.name: _attribute(a, name, proto.op_type) for a in proto.attribute}
        return cls(name, proto.op_type, tuple(proto.input), tuple(proto.output), attrs, opset)

    def input(self, index: int) -> str | None:
        """The name of input ``index``, or None when it is absent."""
        return self.inputs[index] if index < len(self.inputs) and self.inputs[index] else None

    def unsupported(self, what: str, supported: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            f"node {self.name!r} ({self.op_type}): {what} is not supported; {supported}"
        )

    def error(self, message: str) -> GraphError:
        return GraphError(f"node {self.name!r} ({self.op_type}): {message}")


def _attribute(attr: onnx.AttributeProto, node: str, op_type: str) -> Any:
    kind = attr.type
    if kind == onnx.AttributeProto.FLOAT:
        return float(attr.f)
    if kind == onnx.AttributeProto.INT:
        return int(attr.i)
    if kind == onnx.AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == onnx.AttributeProto.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if kind == onnx.AttributeProto.INTS:
        return tuple(int(v) for v in attr.ints)
    if kind == onnx.AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", errors="replace") for s in attr.strings)
    if kind == onnx.AttributeProto.TENSOR:
        return to_array(attr.t, f"attribute {attr.name!r} of node {node!r} ({op_type})")
    # Graphs, sparse tensors, type protos: no supported operator takes them.
    return attr


class ImportContext:
    """The graph being built: nodes, tensor types, constants, and aliases left by dropped
    Identity / Dropout nodes."""

    def __init__(self, taken_names: set[str]) -> None:
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.aliases: dict[str, str] = {}
        # Initializers of unsupported data types, refused by the first node that reads them.
        self.refused: dict[str, str] = {}
        self._taken = set(taken_names)

    def fresh(self, base: str) -> str:
        """A tensor or node name not used anywhere in the model."""
        name, i = base, 1
        while name in self._taken:
            name, i = f"{base}.{i}", i + 1
        self._taken.add(name)
        return name

    def resolve(self, tensor: str) -> str:
        return self.aliases.get(tensor, tensor)

    def info(self, node: OnnxNode, tensor: str) -> TensorInfo:
        if tensor in self.refused:
            raise node.unsupported(
                f"input {tensor!r} of data type {self.refused[tensor]}",
                f"supported data types: {SUPPORTED_DTYPES}",
            )
        info = self.tensors.get(self.resolve(tensor))
        if info is None:
            raise node.error(
                f"input {tensor!r} is not a graph input, an initializer or an earlier node's output"
            )
        return info

    def constant(self, tensor: str | None) -> np.ndarray | None:
        return None if tensor is None else self.constants.get(self.resolve(tensor))

    def require_constant(self, node: OnnxNode, tensor: str, role: str) -> np.ndarray:
        self.info(node, tensor)
        value = self.constant(tensor)
        if value is None:
            raise node.unsupported(
                f"a computed {role} ({tensor!r})", f"the {role} must be a constant or initializer"
            )
        return value

    def add_constant(self, name: str, value: np.ndarray) -> str:
        self.constants[name] = value
        self.tensors[name] = TensorInfo(value.shape, value.dtype)
        return name

    def alias(self, node: OnnxNode, output: str, source: str) -> None:
        self.info(node, source)
        self.aliases[output] = self.resolve(source)

    def emit(
        self,
        node: OnnxNode,
        op: str,
        inputs: tuple[str, ...],
        output: str,
        attrs: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        """Add ``output = op(inputs)``, typed by inference; evaluated at import instead when all
        inputs are constants (shape arithmetic and the like). Returns the output name."""
        resolved = tuple(self.resolve(t) for t in inputs)
        infos = [self.info(node, t) for t in inputs]
        canonical = Node(name or node.name, op, resolved, (output,), attrs or {})
        (out_info,) = infer(canonical, infos)
        if op not in NEVER_FOLD and all(t in self.constants for t in resolved):
            try:
                value = KERNELS[op](canonical.attrs, *(self.constants[t] for t in resolved))
            except (IndexError, ValueError) as e:
                raise node.error(f"cannot evaluate on its constant inputs: {e}") from None
            self.add_constant(output, np.asarray(value, dtype=out_info.dtype))
        else:
            self.nodes.append(canonical)
            self.tensors[output] = out_info
        return output

    def graph(self, inputs: tuple[str, ...], outputs: tuple[str, ...], name: str) -> Graph:
        return Graph(self.nodes, self.tensors, self.constants, inputs, outputs, name)
