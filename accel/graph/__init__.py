"""The graph level: a model as typed canonical operators on a networkx graph, with a numpy
reference executor (see ``docs/graph.md``), its int8 quantization with the integer reference
executor (``docs/quantization.md``), and its packing, partition, fusion and build into a
:class:`Program` that runs on the simulated accelerator."""

from accel.graph.graph import Graph
from accel.graph.ir import OPS, Node, TensorInfo
from accel.graph.packing import PackedGraph, Step, pack
from accel.graph.profile import Profile, StepProfile
from accel.graph.program import Program, build, load_program
from accel.graph.quantization import quantize
from accel.graph.quantized import QuantizedGraph, QuantRecord

__all__ = [
    "OPS",
    "Graph",
    "Node",
    "PackedGraph",
    "Profile",
    "Program",
    "QuantRecord",
    "QuantizedGraph",
    "Step",
    "StepProfile",
    "TensorInfo",
    "build",
    "load_program",
    "pack",
    "quantize",
]
