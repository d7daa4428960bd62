"""The graph level: a model as typed canonical operators on a networkx graph, with a numpy
reference executor (see ``docs/graph.md``)."""

from accel.graph.graph import Graph
from accel.graph.ir import OPS, Node, TensorInfo

__all__ = ["OPS", "Graph", "Node", "TensorInfo"]
