"""A quantized graph as plain data, for program files: nodes, tensor types, the requantization
report, scales, ranges and notes as JSON-ready values, the constants as numpy arrays beside.

Reading checks every field's kind before anything is built, then builds the graph, whose own
checks (every input defined, no cycle, each node's attributes and output types those its shape
rule infers) do the rest; every failure is a :class:`LoadError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, NoReturn

import numpy as np

from accel.errors import AccelError, LoadError
from accel.graph.ir import OPS, Node, TensorInfo
from accel.graph.quantized import QuantizedGraph, QuantRecord

DTYPES = ("float32", "int8", "uint8", "int32", "int64", "bool")
RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(QuantRecord))


def graph_to_data(graph: QuantizedGraph) -> tuple[dict, dict[str, np.ndarray]]:
    """``(data, constants)``: the graph as JSON-ready data, and its constants by name."""
    data = {
        "name": graph.name,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "tensors": {
            t: {"shape": list(i.shape), "dtype": i.dtype.name} for t, i in graph.tensors.items()
        },
        "constants": sorted(graph.constants),
        "nodes": [
            {
                "name": n.name,
                "op": n.op,
                "inputs": list(n.inputs),
                "outputs": list(n.outputs),
                "attrs": {k: _plain(v) for k, v in n.attrs.items()},
            }
            for n in graph.nodes_in_order()
        ],
        "quant_report": [
            {f: _plain(getattr(r, f)) for f in RECORD_FIELDS} for r in graph.quant_report
        ],
        "scales": dict(graph.scales),
        "ranges": {t: list(r) for t, r in graph.ranges.items()},
        "notes": list(graph.notes),
    }
    return data, dict(graph.constants)


def graph_from_data(data: Any, constants: Mapping[str, np.ndarray]) -> QuantizedGraph:
    """Rebuild a graph written by :func:`graph_to_data`; raises LoadError naming what is wrong."""
    _keys(
        data,
        (
            "name",
            "inputs",
            "outputs",
            "tensors",
            "constants",
            "nodes",
            "quant_report",
            "scales",
            "ranges",
            "notes",
        ),
        "graph",
    )
    tensors = {}
    for name, info in _dict(data["tensors"], "graph.tensors").items():
        where = f"graph.tensors[{name!r}]"
        _keys(info, ("shape", "dtype"), where)
        shape = [_int(d, f"{where}.shape") for d in _list(info["shape"], f"{where}.shape")]
        if any(d < 0 for d in shape):
            _fail(f"{where}.shape", f"negative dimension in {shape}")
        if info["dtype"] not in DTYPES:
            _fail(f"{where}.dtype", f"expected one of {', '.join(DTYPES)}, got {info['dtype']!r}")
        tensors[name] = TensorInfo(tuple(shape), np.dtype(info["dtype"]))
    names = [_str(c, "graph.constants") for c in _list(data["constants"], "graph.constants")]
    if set(names) != set(constants):
        _fail("graph.constants", "the constant arrays do not match the names listed")
    nodes = []
    for i, entry in enumerate(_list(data["nodes"], "graph.nodes")):
        where = f"graph.nodes[{i}]"
        _keys(entry, ("name", "op", "inputs", "outputs", "attrs"), where)
        if entry["op"] not in OPS:
            _fail(f"{where}.op", f"unknown operator {entry['op']!r}")
        attrs = _dict(entry["attrs"], f"{where}.attrs")
        if set(attrs) != set(OPS[entry["op"]]):
            _fail(f"{where}.attrs", f"{entry['op']} takes {', '.join(OPS[entry['op']]) or 'none'}")
        for key, value in attrs.items():
            _check_value(value, f"{where}.attrs.{key}")
        nodes.append(
            Node(
                _str(entry["name"], f"{where}.name"),
                entry["op"],
                tuple(
                    _str(t, f"{where}.inputs") for t in _list(entry["inputs"], f"{where}.inputs")
                ),
                tuple(
                    _str(t, f"{where}.outputs") for t in _list(entry["outputs"], f"{where}.outputs")
                ),
                attrs,
            )
        )
    records = []
    for i, entry in enumerate(_list(data["quant_report"], "graph.quant_report")):
        where = f"graph.quant_report[{i}]"
        _keys(entry, RECORD_FIELDS, where)
        for key, value in entry.items():
            _check_value(value, f"{where}.{key}")
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
        records.append(QuantRecord(**fields))
    scales = {
        _str(t, "graph.scales"): _number(s, f"graph.scales[{t!r}]")
        for t, s in _dict(data["scales"], "graph.scales").items()
    }
    ranges = {}
    for t, r in _dict(data["ranges"], "graph.ranges").items():
        pair = _list(r, f"graph.ranges[{t!r}]")
        if len(pair) != 2:
            _fail(f"graph.ranges[{t!r}]", "expected [lo, hi]")
        ranges[t] = (_int(pair[0], f"graph.ranges[{t!r}]"), _int(pair[1], f"graph.ranges[{t!r}]"))
    notes = [_str(n, "graph.notes") for n in _list(data["notes"], "graph.notes")]
    try:
        return QuantizedGraph(
            nodes,
            tensors,
            constants,
            [_str(t, "graph.inputs") for t in _list(data["inputs"], "graph.inputs")],
            [_str(t, "graph.outputs") for t in _list(data["outputs"], "graph.outputs")],
            _str(data["name"], "graph.name"),
            quant_report=records,
            scales=scales,
            ranges=ranges,
            notes=notes,
        )
    except (AccelError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise LoadError(f"program file: the graph does not check: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    """An attribute value: a number, bool, string, None or a (nested) list of them."""
    if depth > 8:
        _fail(where, "nested too deeply")
    if isinstance(value, list):
        for v in value:
            _check_value(v, where, depth + 1)
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        _fail(where, f"unexpected {type(value).__name__}")


def _keys(data: Any, expected: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        _fail(where, f"expected an object, got {type(data).__name__}")
    if set(data) != set(expected):
        _fail(where, f"expected the keys {', '.join(expected)}, got {', '.join(sorted(data))}")


def _dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        _fail(where, f"expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(where, f"expected a name, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        _fail(where, f"expected an integer, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _fail(where: str, message: str) -> NoReturn:
    raise LoadError(f"program file: {where}: {message}")
