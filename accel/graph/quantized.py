"""The result of `accel.graph.quantize`: a :class:`QuantizedGraph` (a :class:`Graph` whose
``run`` is the integer reference executor) with its per-layer requantization report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from accel.graph.graph import Graph
from accel.graph.ir import Node, TensorInfo


@dataclass(frozen=True, slots=True)
class QuantRecord:
    """How one integer rescaling approximates its real scale.

    ``node`` is the ``requantize`` or ``qadd`` node (``op``), ``layer`` the node of the float
    graph it implements; ``scale`` holds the real scales ``S`` (one per channel, or the two
    operands' of ``qadd``), ``multiplier`` the 16-bit integers ``M`` standing for them, so that
    ``S ~ M / 2^(pre_shift + shift)``; ``acc_bound`` bounds the int32 value rescaled (``|acc|``),
    and ``rel_error`` is the worst ``|M / 2^(pre_shift + shift) - S| / S``.
    """

    node: str
    layer: str
    op: str
    scale: tuple[float, ...]
    multiplier: tuple[int, ...]
    pre_shift: int
    shift: int
    acc_bound: int
    rel_error: float

    def row(self) -> tuple[str, ...]:
        return (
            self.layer,
            self.node,
            self.op,
            _span(self.scale, "{:.6g}"),
            _span(self.multiplier, "{}"),
            str(self.pre_shift),
            str(self.shift),
            str(self.acc_bound),
            f"{self.rel_error:.2e}",
        )


def _span(values: tuple, fmt: str) -> str:
    if len(set(values)) == 1:
        return fmt.format(values[0])
    if len(values) == 2:
        return ", ".join(fmt.format(v) for v in values)
    return f"{fmt.format(min(values))}..{fmt.format(max(values))} ({len(values)} ch)"


HEADER = ("layer", "node", "op", "S", "M", "pre", "shift", "|acc| <=", "rel. error")


class QuantizedGraph(Graph):
    """A graph of int8 / int32 operators (and float ones on the host) made by
    `accel.graph.quantize`; ``run`` is the integer reference executor.

    Besides a :class:`Graph`'s fields: ``quant_report`` (one :class:`QuantRecord` per
    ``requantize`` and ``qadd`` node, in graph order), ``scales`` (every int8 tensor's real scale:
    real value = scale x integer), ``ranges`` (every int8 tensor's guaranteed integer range
    ``(lo, hi)``) and ``notes`` (facts a later mapping must respect, one sentence each).
    """

    def __init__(
        self,
        nodes: Iterable[Node],
        tensors: Mapping[str, TensorInfo],
        constants: Mapping[str, np.ndarray],
        inputs: Iterable[str],
        outputs: Iterable[str],
        name: str = "graph",
        *,
        quant_report: Iterable[QuantRecord] = (),
        scales: Mapping[str, float] | None = None,
        ranges: Mapping[str, tuple[int, int]] | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__(nodes, tensors, constants, inputs, outputs, name)
        order = {node.name: i for i, node in enumerate(self.nodes_in_order())}
        self.quant_report = sorted(quant_report, key=lambda r: order.get(r.node, len(order)))
        self.scales = dict(scales or {})
        self.ranges = dict(ranges or {})
        self.notes = tuple(notes)

    @property
    def worst_rel_error(self) -> float:
        """The largest relative scale error over :attr:`quant_report` (0 when it is empty)."""
        return max((r.rel_error for r in self.quant_report), default=0.0)

    def report(self) -> str:
        """The requantization report as an aligned text table, then the notes."""
        rows = [HEADER] + [r.row() for r in self.quant_report]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.append(f"worst relative scale error: {self.worst_rel_error:.2e}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<QuantizedGraph {self.name}: {len(self.nx)} nodes, {len(self.inputs)} inputs>"
