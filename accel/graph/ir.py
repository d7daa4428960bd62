"""The graph IR's values: :class:`TensorInfo` (a tensor's static type) and :class:`Node`.

A node is one canonical operator applied to named tensors. Attributes are plain Python values
(ints, floats, strings, tuples of them) so nodes compare and hash structurally and print the
same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

# The canonical operators, with the attributes each one carries. The frontend maps every
# imported operator onto one of these (Flatten, Squeeze and Unsqueeze become `reshape`, ...).
OPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "conv": ("strides", "dilations", "pads", "group"),
        "conv_transpose": ("strides", "dilations", "pads", "group", "output_padding"),
        "gemm": ("alpha", "beta", "trans_a", "trans_b"),
        "matmul": (),
        "add": (),
        "sub": (),
        "mul": (),
        "div": (),
        "relu": (),
        "leaky_relu": ("alpha",),
        "clip": ("min", "max"),
        "sigmoid": (),
        "max_pool": ("kernel", "strides", "dilations", "pads", "ceil_mode"),
        "avg_pool": ("kernel", "strides", "dilations", "pads", "ceil_mode", "count_include_pad"),
        "global_avg_pool": (),
        "reshape": ("shape",),
        "transpose": ("perm",),
        "concat": ("axis",),
        "pad": ("pads", "value"),
        "batch_norm": ("epsilon",),
        "softmax": ("axis",),
        "cast": ("dtype",),
        "gather": ("axis",),
        "slice": ("starts", "ends", "steps"),
        "reduce_mean": ("axes", "keepdims"),
        "quantize_linear": ("axis",),
        "dequantize_linear": ("axis",),
        "qlinear_conv": ("strides", "dilations", "pads", "group"),
        "qlinear_matmul": (),
        # The integer operators `accel.graph.quantize` writes (docs/quantization.md): int8
        # activations and weights, int32 accumulators, requantization as vector-ALU steps.
        "quantize": ("scale",),
        "dequantize": ("scale", "axis"),
        "qconv": ("strides", "dilations", "pads", "group"),
        "qdense": (),
        "qsum_pool": ("kernel", "strides", "dilations", "pads", "ceil_mode"),
        "requantize": ("multiplier", "pre_shift", "shift", "lo", "hi", "acc_bound"),
        "qadd": ("multiplier_a", "multiplier_b", "shift", "lo", "hi"),
    }
)


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A tensor's static shape (a tuple of ints) and numpy dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    def __str__(self) -> str:
        return f"{self.dtype.name}[{', '.join(map(str, self.shape))}]"


def _plain(value: Any) -> Any:
    """Lists become tuples and numpy scalars Python scalars, so attributes hash and compare."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return value.name
    return value


@dataclass(frozen=True, slots=True)
class Node:
    """One operator application.

    ``op`` is a canonical name from :data:`OPS`; ``inputs`` and ``outputs`` name tensors of the
    graph (absent optional inputs are left off the end); ``attrs`` maps attribute names to plain
    Python values (read-only).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown canonical op {self.op!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        plain = {k: _plain(v) for k, v in sorted(self.attrs.items())}
        object.__setattr__(self, "attrs", MappingProxyType(plain))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return (self.name, self.op, self.inputs, self.outputs, dict(self.attrs)) == (
            other.name,
            other.op,
            other.inputs,
            other.outputs,
            dict(other.attrs),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.op, self.inputs, self.outputs, tuple(self.attrs.items())))

    def call(self) -> str:
        """``op(inputs; attrs)``, as the printers show it."""
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"{self.op}({', '.join(self.inputs)}{'; ' + attrs if attrs else ''})"

    def __str__(self) -> str:
        return f"{self.name}: {', '.join(self.outputs)} = {self.call()}"
