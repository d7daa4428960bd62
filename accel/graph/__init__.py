"""The graph level: a model as typed canonical operators on a networkx graph, with a numpy
reference executor (see ``docs/graph.md``), and its int8 quantization with the integer
reference executor (``docs/quantization.md``)."""

from accel.graph.graph import Graph
from accel.graph.ir import OPS, Node, TensorInfo
from accel.graph.quantization import quantize
from accel.graph.quantized import QuantizedGraph, QuantRecord

__all__ = ["OPS", "Graph", "Node", "QuantRecord", "QuantizedGraph", "TensorInfo", "quantize"]
