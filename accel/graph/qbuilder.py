"""The quantized graph under construction, and the versions of each float tensor it knows.

`accel.graph.quantize` walks the float graph in order. Every tensor ``t`` of the float graph may
get, lazily, up to three versions in the new graph:

- its *raw* value (``t`` itself, float32 or whatever its type is): made by a float node, or by
  ``dequantize`` of an int8 version (then named ``t``, so graph outputs keep their names);
- an :class:`Int8` version: an int8 tensor with a real scale and a guaranteed integer range;
- a :class:`Pending` integer result (an int32 accumulator, or a ``qadd`` not yet written) that
  still needs its output scale: it becomes int8 when a consumer asks for one, at the scale
  calibration gave ``t`` (or a QDQ model's QuantizeLinear gives), with any ReLU or Clip that
  followed folded into its clip bounds.

A version is materialized only when a consumer needs it, so no conversion node is ever written
that nothing reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from accel.errors import GraphError
from accel.graph import intops
from accel.graph.calibrate import activation_scale
from accel.graph.graph import Graph
from accel.graph.ir import Node, TensorInfo
from accel.graph.qops import dequantize_linear
from accel.graph.quantized import QuantizedGraph, QuantRecord
from accel.graph.requant import FixedPoint, fixed_point, fixed_point_pair
from accel.graph.shapes import infer

F32 = np.dtype(np.float32)
NO_CLAMP = (-math.inf, math.inf)


@dataclass(frozen=True, slots=True)
class Int8:
    """An int8 tensor ``name`` of the new graph: real value = ``scale`` x integer, and every
    integer lies in ``[lo, hi]``."""

    name: str
    scale: float
    lo: int
    hi: int

    @property
    def magnitude(self) -> int:
        return max(-self.lo, self.hi)


@dataclass(frozen=True, slots=True)
class QConst:
    """A QDQ model's DequantizeLinear of a constant: integers, scales and the scale's axis."""

    values: np.ndarray
    scale: np.ndarray
    axis: int | None


def clamp_range(clamp: tuple[float, float], scale: float) -> tuple[int, int]:
    """The int8 clip bounds of real bounds ``clamp`` at ``scale``: rounding is monotone, so
    clipping then quantizing equals quantizing then clipping at the rounded bounds."""
    lo = -128 if clamp[0] == -math.inf else int(np.clip(np.rint(clamp[0] / scale), -128, 127))
    hi = 127 if clamp[1] == math.inf else int(np.clip(np.rint(clamp[1] / scale), -128, 127))
    return lo, hi


@dataclass(frozen=True, slots=True)
class Pending:
    """An integer result waiting for its output scale; ``layer`` is the float node it computes
    and ``clamp`` the real interval a following ReLU / Clip limits it to."""

    layer: str
    clamp: tuple[float, float]

    def clamped(self, lo: float, hi: float) -> Pending:
        return replace(self, clamp=(max(self.clamp[0], lo), min(self.clamp[1], hi)))


@dataclass(frozen=True, slots=True)
class Accumulator(Pending):
    """An int32 (or int8) tensor ``name`` of real scale ``scale`` (one per channel along axis 1,
    or one), with ``|value| <= bound`` per channel."""

    name: str
    scale: tuple[float, ...]
    bound: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Sum(Pending):
    """``a + sign * b`` of two int8 versions (tensors ``a_tensor`` and ``b_tensor``)."""

    a: Int8
    b: Int8
    sign: int
    a_tensor: str
    b_tensor: str


class Builder:
    """Nodes, tensors and constants of the quantized graph, and the versions of the float graph's
    tensors (see the module docstring).

    ``peaks`` maps float tensors to their calibrated ``max |x|`` (calibration mode: every float
    tensor can be quantized); None means a QDQ model, where only the model's own scales exist.
    """

    def __init__(self, graph: Graph, peaks: Mapping[str, float] | None, per_channel: bool):
        self.graph = graph
        self.peaks = peaks
        self.calibrated = peaks is not None
        self.per_channel = per_channel
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {t: graph.tensors[t] for t in graph.inputs}
        self.constants: dict[str, np.ndarray] = {}
        self.raw: dict[str, str] = {t: t for t in graph.inputs}
        self.int8: dict[str, Int8] = {}
        self.pending: dict[str, Pending] = {}
        self.qconst: dict[str, QConst] = {}
        self.records: list[QuantRecord] = []
        self.notes: list[str] = []
        self.made: dict[str, Int8] = {}  # every int8 tensor written, by name
        self._tensor_names = set(graph.tensors)
        self._node_names: set[str] = set()

    # -- names, nodes, constants ------------------------------------------------------------

    def fresh(self, base: str) -> str:
        """A tensor name based on ``base`` used by neither graph."""
        return _fresh(base, self._tensor_names)

    def emit(
        self, name: str, op: str, inputs: tuple[str, ...], output: str, attrs: Mapping[str, Any]
    ) -> str:
        """Append ``output = op(inputs)`` as node ``name`` (suffixed if the new graph already has
        a node of that name); returns the node's name."""
        node = Node(_fresh(name, self._node_names), op, inputs, (output,), attrs)
        (self.tensors[output],) = infer(node, [self.tensors[t] for t in inputs])
        self.nodes.append(node)
        return node.name

    def track(self, version: Int8) -> Int8:
        """Register a newly written int8 tensor (for the graph's scales and ranges)."""
        self.made[version.name] = version
        return version

    def constant(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.constants[name] = value
        self.tensors[name] = TensorInfo(value.shape, value.dtype)
        return name

    def float_constant(self, t: str) -> np.ndarray | None:
        """The value of ``t`` if it is a constant of the float graph."""
        return self.graph.constants.get(t)

    def dtype(self, t: str) -> np.dtype:
        return self.graph.tensors[t].dtype

    # -- versions ---------------------------------------------------------------------------

    def scale_for(self, t: str) -> float | None:
        """The activation scale calibration gives ``t`` (None for a QDQ model)."""
        return activation_scale(self.peaks.get(t)) if self.calibrated else None

    def has_int8(self, t: str, quantize_float: bool = False) -> bool:
        """Whether :meth:`int8_of` would give ``t`` an int8 version (nothing is written)."""
        if t in self.int8:
            return True
        q = self.qconst.get(t)
        if q is not None and q.axis is None and q.values.dtype == np.int8:
            return self.dtype(t) == F32
        if not self.calibrated or self.dtype(t) != F32:
            return False
        return t in self.pending or quantize_float

    def int8_of(self, t: str, quantize_float: bool = False) -> Int8 | None:
        """The int8 version of ``t``: existing, or made from a pending result at the calibrated
        scale, or (``quantize_float``, calibration mode) by quantizing the float value. None when
        there is none to be had (a QDQ model gives scales only where it quantizes)."""
        if t in self.int8:
            return self.int8[t]
        if t in self.qconst and self.qconst[t].axis is None and self.dtype(t) == F32:
            q = self.qconst[t]
            if q.values.dtype == np.int8:
                name = self.constant(f"{t}.q", q.values)
                scale = float(q.scale.reshape(-1)[0])
                self.int8[t] = self.track(Int8(name, scale, *_extent(q.values)))
                return self.int8[t]
        scale = self.scale_for(t)
        if scale is None or self.dtype(t) != F32:
            return None
        if t in self.pending:
            self.int8[t] = self.requantize(self.pending[t], scale, self.fresh(f"{t}.q"))
        elif quantize_float:
            self.int8[t] = self.quantize(t, scale, self.fresh(f"{t}.q"))
        return self.int8.get(t)

    def int8_at(self, t: str, scale: float, output: str) -> Int8:
        """``t`` as int8 at exactly ``scale`` (a QDQ model's QuantizeLinear): the pending result
        requantized, an int8 version reused or rescaled, or the float value quantized."""
        if t in self.pending and t not in self.int8:
            return self.requantize(self.pending[t], scale, output)
        current = self.int8_of(t)
        if current is None:
            return self.quantize(t, scale, output)
        return self.rescale(current, scale, t, output)

    def quantize(self, t: str, scale: float, output: str) -> Int8:
        """The float ``t`` quantized at ``scale`` (folded when ``t`` is a constant)."""
        value = self.float_constant(t)
        if value is not None:
            q = intops.quantize({"scale": scale}, value)
            self.constants[output] = q
            self.tensors[output] = TensorInfo(q.shape, q.dtype)
            return self.track(Int8(output, scale, *_extent(q)))
        self.emit(f"{t}.quantize", "quantize", (self.raw_of(t),), output, {"scale": scale})
        return self.track(Int8(output, scale, -128, 127))

    def rescale(self, x: Int8, scale: float, layer: str, output: str | None = None) -> Int8:
        """``x`` at another scale (``requantize`` of int8 data), or ``x`` itself at its own."""
        if x.scale == scale:
            return x
        source = Accumulator(layer, NO_CLAMP, x.name, (x.scale,), (x.magnitude,))
        return self.requantize(source, scale, output or self.fresh(f"{x.name}.rescaled"))

    def requantize(self, pending: Pending, scale: float, output: str) -> Int8:
        """Write the int8 result of ``pending`` at ``scale`` into ``output``, with its clamp
        folded into the clip bounds, and record the approximation."""
        lo, hi = clamp_range(pending.clamp, scale)
        if isinstance(pending, Sum):
            return self._qadd(pending, scale, output, lo, hi)
        assert isinstance(pending, Accumulator)
        real = np.asarray(pending.scale, np.float64) / scale
        per_channel = len(set(real.tolist())) > 1
        bounds = pending.bound if per_channel else (max(pending.bound),)
        fp = fixed_point(real if per_channel else real[:1], bounds)
        if fp is None:
            raise GraphError(
                f"node {pending.layer!r}: cannot requantize to scale {scale:g}: the real scale "
                f"{real.max():g} times the accumulator bound {max(bounds)} does not fit int32 "
                "(the output scale is too small for this layer)"
            )
        attrs = {
            "multiplier": fp.multiplier if per_channel else fp.multiplier[0],
            "pre_shift": fp.pre_shift,
            "shift": fp.shift,
            "lo": lo,
            "hi": hi,
            "acc_bound": bounds if per_channel else bounds[0],
        }
        base = f"{pending.layer}.requantize"
        name = self.emit(base, "requantize", (pending.name,), output, attrs)
        self._record(name, pending.layer, "requantize", tuple(real.tolist()), fp, max(bounds))
        return self.track(Int8(output, scale, lo, hi))

    def _qadd(self, pending: Sum, scale: float, output: str, lo: int, hi: int) -> Int8:
        real = (pending.a.scale / scale, pending.sign * pending.b.scale / scale)
        fp = fixed_point_pair(*real, bound=128)
        if fp is None:
            raise GraphError(
                f"node {pending.layer!r}: cannot rescale its operands to scale {scale:g} "
                f"(real scales {real[0]:g} and {real[1]:g})"
            )
        attrs = {
            "multiplier_a": fp.multiplier[0],
            "multiplier_b": fp.multiplier[1],
            "shift": fp.shift,
            "lo": lo,
            "hi": hi,
        }
        name = self.emit(pending.layer, "qadd", (pending.a.name, pending.b.name), output, attrs)
        a, b = pending.a.magnitude, pending.b.magnitude
        total = a * abs(fp.multiplier[0]) + b * abs(fp.multiplier[1])
        self._record(name, pending.layer, "qadd", real, fp, total)
        return self.track(Int8(output, scale, lo, hi))

    def _record(self, node: str, layer: str, op: str, real, fp: FixedPoint, bound: int) -> None:
        self.records.append(
            QuantRecord(
                node=node,
                layer=layer,
                op=op,
                scale=tuple(real),
                multiplier=fp.multiplier,
                pre_shift=fp.pre_shift,
                shift=fp.shift,
                acc_bound=int(bound),
                rel_error=fp.rel_error,
            )
        )

    def raw_of(self, t: str) -> str:
        """The value of ``t`` in its own type, materialized if needed (float32 tensors by
        dequantizing an int8 version or a pending result; constants copied)."""
        if t in self.raw:
            return self.raw[t]
        value = self.float_constant(t)
        if value is not None:
            self.constants[t] = value
            self.tensors[t] = self.graph.tensors[t]
        elif t in self.qconst:
            q = self.qconst[t]
            attrs = {"axis": q.axis}
            zero = np.zeros(q.scale.shape, q.values.dtype)
            self.constants[t] = dequantize_linear(attrs, q.values, q.scale, zero)
            self.tensors[t] = self.graph.tensors[t]
        elif t in self.int8 or (t in self.pending and self.int8_of(t) is not None):
            x = self.int8[t]
            attrs = {"scale": x.scale, "axis": None}
            self.emit(f"{t}.dequantize", "dequantize", (x.name,), t, attrs)
        elif t in self.pending:
            self._pending_to_float(t, self.pending[t])
        else:
            raise GraphError(f"tensor {t!r} has no value in the quantized graph")
        self.raw[t] = t
        return t

    def _pending_to_float(self, t: str, pending: Pending) -> None:
        """Float from a pending result without an int8 scale (QDQ model, no QuantizeLinear
        after it): the accumulator dequantized, or the operands' sum in float."""
        out = t if pending.clamp == NO_CLAMP else self.fresh(f"{t}.unclipped")
        if isinstance(pending, Accumulator):
            scale = pending.scale if len(pending.scale) > 1 else pending.scale[0]
            attrs = {"scale": scale, "axis": 1 if len(pending.scale) > 1 else None}
            self.emit(f"{t}.dequantize", "dequantize", (pending.name,), out, attrs)
        else:
            assert isinstance(pending, Sum)
            a, b = self.raw_of(pending.a_tensor), self.raw_of(pending.b_tensor)
            self.emit(pending.layer, "add" if pending.sign > 0 else "sub", (a, b), out, {})
        if out != t:
            lo, hi = pending.clamp
            self.emit(f"{t}.clip", "clip", (out,), t, {"min": lo, "max": hi})

    # -- the result -------------------------------------------------------------------------

    def finish(self) -> QuantizedGraph:
        outputs = []
        for t in self.graph.outputs:
            source = self.raw_of(t)
            if source != t:  # an int8 output aliasing another tensor: copy it under its name
                shape = self.tensors[source].shape
                self.emit(f"{t}.copy", "reshape", (source,), t, {"shape": shape})
            outputs.append(t)
        scales = {name: v.scale for name, v in self.made.items()}
        ranges = {name: (v.lo, v.hi) for name, v in self.made.items()}
        return QuantizedGraph(
            self.nodes,
            self.tensors,
            self.constants,
            self.graph.inputs,
            outputs,
            self.graph.name,
            quant_report=self.records,
            scales=scales,
            ranges=ranges,
            notes=self.notes,
        )


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}.{i}", i + 1
    taken.add(name)
    return name


def _extent(values: np.ndarray) -> tuple[int, int]:
    if not values.size:
        return 0, 0
    return int(values.min()), int(values.max())
