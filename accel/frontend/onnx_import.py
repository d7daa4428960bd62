"""``from_onnx``: an ONNX model to a :class:`accel.graph.Graph`.

The importer walks the ONNX nodes in file order (ONNX requires a topological order), converts
each through the op tables of :mod:`accel.frontend.onnx_ops` and
:mod:`accel.frontend.onnx_quant_ops`, typing every tensor and folding
constant computations on the way, then folds batch normalizations into the convolutions before
them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import onnx

from accel.errors import GraphError, UnsupportedOperatorError
from accel.frontend import onnx_ops, onnx_quant_ops
from accel.frontend.context import ImportContext, OnnxNode
from accel.frontend.onnx_load import (
    DTYPES,
    SUPPORTED_DTYPES,
    ModelSource,
    dtype_name,
    load_model,
    opset_version,
    to_array,
)
from accel.graph import Graph, TensorInfo
from accel.graph.passes import fold_batch_norm, prune_constants

CONVERTERS = {**onnx_ops.CONVERTERS, **onnx_quant_ops.CONVERTERS}


def from_onnx(
    model_or_path: ModelSource, shape: Mapping[str, Sequence[int]] | None = None
) -> Graph:
    """Import an ONNX model (a ``onnx.ModelProto``, a path, or serialized bytes) as a Graph.

    ``shape`` maps input names to shapes, replacing the declared ones; an input with a
    symbolic or unknown dimension needs one. Raises :class:`LoadError` for a file that is not a
    readable, self-contained ONNX model, :class:`UnsupportedOperatorError` for an operator,
    attribute or data type outside the supported set (see ``docs/graph.md``), and
    :class:`GraphError` for an inconsistent model (shapes, undefined tensors).
    """
    model = load_model(model_or_path)
    opset = opset_version(model)
    proto = model.graph
    ctx = ImportContext(_names(proto))
    for init in proto.initializer:
        if init.data_type in DTYPES:
            ctx.add_constant(init.name, to_array(init, f"initializer {init.name!r}"))
        else:
            ctx.refused[init.name] = dtype_name(init.data_type)
    inputs = _inputs(ctx, proto, dict(shape or {}))
    seen: set[str] = set()
    for index, node_proto in enumerate(proto.node):
        name = node_proto.name or f"{node_proto.op_type}_{index}"
        name = ctx.fresh(name) if name in seen else name
        seen.add(name)
        node = OnnxNode.from_proto(node_proto, name, opset)
        _converter(node_proto, name)(ctx, node)
    outputs = []
    for value in proto.output:
        if ctx.resolve(value.name) not in ctx.tensors:
            raise GraphError(f"graph output {value.name!r} is not computed by any node")
        outputs.append(ctx.resolve(value.name))
    graph = ctx.graph(tuple(inputs), tuple(outputs), proto.name or "graph")
    graph = prune_constants(fold_batch_norm(graph))
    _check_declared_outputs(graph, proto, outputs)
    return graph


def _names(proto: onnx.GraphProto) -> set[str]:
    names = {v.name for v in proto.input} | {t.name for t in proto.initializer}
    for node in proto.node:
        names.update(node.output)
        names.add(node.name)
    return names


def _converter(node: onnx.NodeProto, name: str):
    if node.domain in ("", "ai.onnx") and node.op_type in CONVERTERS:
        return CONVERTERS[node.op_type]
    op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
    raise UnsupportedOperatorError(
        f"node {name!r} ({op}): operator {op} is not supported; "
        f"supported: {', '.join(sorted(CONVERTERS))}"
    )


def _inputs(
    ctx: ImportContext, proto: onnx.GraphProto, overrides: dict[str, Sequence[int]]
) -> list[str]:
    """Type the graph inputs that are not initializers (models before IR 4 list initializers
    as inputs too; they are treated as constants)."""
    names = [v.name for v in proto.input if v.name not in ctx.constants]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise GraphError(
            f"shape= names {', '.join(unknown)}, which are not graph inputs "
            f"(inputs: {', '.join(names) or 'none'})"
        )
    for value in proto.input:
        if value.name in ctx.constants:
            continue
        ctx.tensors[value.name] = _input_info(value, overrides.get(value.name))
    return names


def _input_info(value: onnx.ValueInfoProto, override: Sequence[int] | None) -> TensorInfo:
    if not value.type.HasField("tensor_type"):
        raise UnsupportedOperatorError(f"graph input {value.name!r} is not a tensor")
    tensor = value.type.tensor_type
    if tensor.elem_type not in DTYPES:
        raise UnsupportedOperatorError(
            f"graph input {value.name!r} has data type {dtype_name(tensor.elem_type)}; "
            f"supported: {SUPPORTED_DTYPES}"
        )
    dims = list(tensor.shape.dim) if tensor.HasField("shape") else None
    if override is not None:
        override = tuple(int(d) for d in override)
        if dims is not None and len(dims) != len(override):
            raise GraphError(
                f"shape= gives input {value.name!r} rank {len(override)} but the model "
                f"declares rank {len(dims)}"
            )
        if min(override, default=1) < 1:
            raise GraphError(f"shape= gives input {value.name!r} a non-positive size {override}")
        return TensorInfo(override, DTYPES[tensor.elem_type])
    if dims is None:
        raise GraphError(f"input {value.name!r} has no declared shape; pass shape= for it")
    shape = []
    for axis, dim in enumerate(dims):
        if not dim.HasField("dim_value") or dim.dim_value < 1:
            label = dim.dim_param or "?"
            raise GraphError(
                f"input {value.name!r} has dynamic dimension {label!r} at axis {axis}; "
                f"pass shape={{{value.name!r}: (...)}} to from_onnx"
            )
        shape.append(dim.dim_value)
    return TensorInfo(tuple(shape), DTYPES[tensor.elem_type])


def _check_declared_outputs(graph: Graph, proto: onnx.GraphProto, outputs: list[str]) -> None:
    """Cross-check inferred output shapes against the static sizes the model declares."""
    for value, name in zip(proto.output, outputs):
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        inferred = graph.tensors[name].shape
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if len(declared) != len(inferred) or any(
            d is not None and d != i for d, i in zip(declared, inferred)
        ):
            raise GraphError(
                f"graph output {value.name!r} is inferred as {inferred} but the model declares "
                f"{tuple(d if d is not None else '?' for d in declared)}"
            )
