"""ONNX operator converters (float operators, layout, constants and shape arithmetic):
``CONVERTERS[op_type](ctx, node)`` emits canonical nodes.

Each converter reads the ONNX attributes of every opset from 11 on (an attribute that later
became an input is read from wherever the node's opset keeps it), resolves what can be resolved
statically (auto_pad, Reshape's 0 and -1, negative axes), and refuses what it cannot honour.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from accel.frontend.context import ImportContext, OnnxNode
from accel.frontend.onnx_load import DTYPES, SUPPORTED_DTYPES, dtype_name
from accel.graph import window

Converter = Callable[[ImportContext, OnnxNode], None]


def axis_index(node: OnnxNode, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` (possibly negative) as an index into ``rank`` axes; GraphError if out of range."""
    if not -rank <= axis < rank:
        raise node.error(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def float_input(ctx: ImportContext, node: OnnxNode, index: int = 0) -> None:
    """Refuse a float-only operator on another data type."""
    info = ctx.info(node, node.inputs[index])
    if info.dtype != np.float32:
        raise node.unsupported(f"input of data type {info.dtype.name}", "it takes float32")


def _simple(op: str, attrs: Callable[[OnnxNode], dict] | None = None) -> Converter:
    def convert(ctx: ImportContext, node: OnnxNode) -> None:
        inputs = tuple(t for t in node.inputs if t)
        ctx.emit(node, op, inputs, node.outputs[0], attrs(node) if attrs else {})

    return convert


# --- convolution and pooling -------------------------------------------------------------


def _window_attrs(
    ctx: ImportContext, node: OnnxNode, spatial: tuple[int, ...], kernel: tuple[int, ...]
) -> dict:
    """strides, dilations and explicit pads, auto_pad resolved against the input's size."""
    k = len(kernel)
    strides = tuple(node.attrs.get("strides", (1,) * k))
    dilations = tuple(node.attrs.get("dilations", (1,) * k))
    if len(strides) != k or len(dilations) != k:
        raise node.error(f"strides {strides} / dilations {dilations} need {k} values")
    if min(strides + dilations) < 1:
        raise node.error(f"strides {strides} and dilations {dilations} must be positive")
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = tuple(node.attrs.get("pads", (0,) * 2 * k))
        if len(pads) != 2 * k or min(pads) < 0:
            raise node.error(f"pads {pads} need {2 * k} non-negative values")
    elif auto_pad == "VALID":
        pads = (0,) * 2 * k
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [
            window.same_pads(
                spatial[i], kernel[i], strides[i], dilations[i], auto_pad[5:] == "UPPER"
            )
            for i in range(k)
        ]
        pads = tuple(p[0] for p in pairs) + tuple(p[1] for p in pairs)
    else:
        raise node.unsupported(
            f"attribute auto_pad={auto_pad!r}", "use NOTSET, VALID, SAME_UPPER or SAME_LOWER"
        )
    return {"strides": strides, "dilations": dilations, "pads": pads}


def _kernel_of(node: OnnxNode, weight_shape: tuple[int, ...]) -> tuple[int, ...]:
    kernel = tuple(weight_shape[2:])
    if not kernel:
        raise node.error(f"weight of shape {weight_shape} has no spatial axes")
    declared = node.attrs.get("kernel_shape")
    if declared is not None and tuple(declared) != kernel:
        raise node.error(f"kernel_shape {declared} differs from the weight's {kernel}")
    return kernel


def conv_attrs(ctx: ImportContext, node: OnnxNode, x: str, w: str) -> dict:
    """The canonical strides, dilations, explicit pads and group of a (QLinear)Conv node."""
    x_shape, w_shape = ctx.info(node, x).shape, ctx.info(node, w).shape
    kernel = _kernel_of(node, w_shape)
    group = node.attrs.get("group", 1)
    if group < 1:
        raise node.error(f"group {group} must be positive")
    return {**_window_attrs(ctx, node, x_shape[2:], kernel), "group": group}


def _conv(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    attrs = conv_attrs(ctx, node, node.inputs[0], node.inputs[1])
    inputs = tuple(t for t in node.inputs if t)
    ctx.emit(node, "conv", inputs, node.outputs[0], attrs)


def _conv_transpose(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    if "output_shape" in node.attrs:
        raise node.unsupported("attribute output_shape", "give pads and output_padding instead")
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise node.unsupported(
            f"attribute auto_pad={node.attrs['auto_pad']!r}", "use NOTSET (explicit pads) or VALID"
        )
    attrs = conv_attrs(ctx, node, node.inputs[0], node.inputs[1])
    k = len(attrs["strides"])
    output_padding = tuple(node.attrs.get("output_padding", (0,) * k))
    if len(output_padding) != k or min(output_padding) < 0:
        raise node.error(f"output_padding {output_padding} needs {k} non-negative values")
    inputs = tuple(t for t in node.inputs if t)
    ctx.emit(
        node, "conv_transpose", inputs, node.outputs[0], {**attrs, "output_padding": output_padding}
    )


def _pool(op: str) -> Converter:
    def convert(ctx: ImportContext, node: OnnxNode) -> None:
        float_input(ctx, node)
        if len([t for t in node.outputs if t]) > 1:
            raise node.unsupported("the Indices output", "only the pooled values are")
        if "kernel_shape" not in node.attrs:
            raise node.error("attribute kernel_shape is missing")
        kernel = tuple(node.attrs["kernel_shape"])
        shape = ctx.info(node, node.inputs[0]).shape
        if len(shape) != len(kernel) + 2:
            raise node.error(f"input {shape} needs rank {len(kernel) + 2} for kernel {kernel}")
        attrs = _window_attrs(ctx, node, shape[2:], kernel)
        attrs.update(kernel=kernel, ceil_mode=bool(node.attrs.get("ceil_mode", 0)))
        if op == "avg_pool":
            attrs["count_include_pad"] = bool(node.attrs.get("count_include_pad", 0))
        ctx.emit(node, op, (node.inputs[0],), node.outputs[0], attrs)

    return convert


# --- elementwise ----------------------------------------------------------------------------


def _clip(ctx: ImportContext, node: OnnxNode) -> None:
    dtype = ctx.info(node, node.inputs[0]).dtype
    if dtype.kind == "f":
        low, high = -np.inf, np.inf
    elif dtype.kind in "iu":
        low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    else:
        raise node.unsupported(f"input of data type {dtype.name}", "it takes numbers")
    bounds = [low, high]
    for i, role in ((1, "min"), (2, "max")):
        tensor = node.input(i)
        if tensor is not None:
            value = ctx.require_constant(node, tensor, role)
            if value.size != 1:
                raise node.error(f"{role} must be a scalar, got shape {value.shape}")
            bounds[i - 1] = value.reshape(()).item()
    ctx.emit(node, "clip", (node.inputs[0],), node.outputs[0], {"min": bounds[0], "max": bounds[1]})


def _softmax(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    shape = ctx.info(node, node.inputs[0]).shape
    axis = axis_index(node, node.attrs.get("axis", -1 if node.opset >= 13 else 1), len(shape))
    if node.opset >= 13 or axis == len(shape) - 1:
        ctx.emit(node, "softmax", (node.inputs[0],), node.outputs[0], {"axis": axis})
        return
    # Before opset 13, Softmax flattened the input to 2-D at `axis` and normalized each row.
    rows = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    flat = ctx.emit(
        node, "reshape", (node.inputs[0],), ctx.fresh(f"{node.name}/rows"), {"shape": rows},
        name=ctx.fresh(f"{node.name}/flatten"),
    )  # fmt: skip
    soft = ctx.emit(
        node, "softmax", (flat,), ctx.fresh(f"{node.name}/softmax"), {"axis": 1},
        name=ctx.fresh(f"{node.name}/softmax"),
    )  # fmt: skip
    ctx.emit(node, "reshape", (soft,), node.outputs[0], {"shape": shape})


# --- layout ---------------------------------------------------------------------------------


def _reshape_to(ctx: ImportContext, node: OnnxNode, shape: tuple[int, ...]) -> None:
    ctx.emit(node, "reshape", (node.inputs[0],), node.outputs[0], {"shape": shape})


def _reshape(ctx: ImportContext, node: OnnxNode) -> None:
    src = ctx.info(node, node.inputs[0]).shape
    target = [int(v) for v in ctx.require_constant(node, node.inputs[1], "shape").reshape(-1)]
    if not node.attrs.get("allowzero", 0):
        for i, v in enumerate(target):
            if v == 0:
                if i >= len(src):
                    raise node.error(f"shape {target} copies axis {i} the input {src} lacks")
                target[i] = src[i]
    if target.count(-1) > 1 or min(target, default=0) < -1:
        raise node.error(f"shape {target} may hold one -1 and otherwise sizes")
    if -1 in target:
        known = int(np.prod([v for v in target if v != -1]))
        total = int(np.prod(src))
        if known == 0 or total % known:
            raise node.error(f"cannot reshape {src} to {target}")
        target[target.index(-1)] = total // known
    _reshape_to(ctx, node, tuple(target))


def _flatten(ctx: ImportContext, node: OnnxNode) -> None:
    shape = ctx.info(node, node.inputs[0]).shape
    axis = node.attrs.get("axis", 1)
    axis = axis if axis == len(shape) else axis_index(node, axis, len(shape))
    _reshape_to(ctx, node, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))


def _axes(ctx: ImportContext, node: OnnxNode) -> tuple[int, ...] | None:
    """Squeeze / Unsqueeze axes: an attribute before opset 13, an input from 13 on."""
    if node.opset < 13:
        axes = node.attrs.get("axes")
        return None if axes is None else tuple(axes)
    tensor = node.input(1)
    if tensor is None:
        return None
    return tuple(int(v) for v in ctx.require_constant(node, tensor, "axes").reshape(-1))


def _squeeze(ctx: ImportContext, node: OnnxNode) -> None:
    shape = ctx.info(node, node.inputs[0]).shape
    axes = _axes(ctx, node)
    if axes is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    axes = {axis_index(node, a, len(shape)) for a in axes}
    for a in axes:
        if shape[a] != 1:
            raise node.error(f"cannot squeeze axis {a} of size {shape[a]} in {shape}")
    _reshape_to(ctx, node, tuple(d for i, d in enumerate(shape) if i not in axes))


def _unsqueeze(ctx: ImportContext, node: OnnxNode) -> None:
    shape = ctx.info(node, node.inputs[0]).shape
    axes = _axes(ctx, node)
    if axes is None:
        raise node.error("axes are missing")
    rank = len(shape) + len(axes)
    normalized = {axis_index(node, a, rank) for a in axes}
    if len(normalized) != len(axes):
        raise node.error(f"axes {axes} repeat an axis")
    rest = iter(shape)
    _reshape_to(ctx, node, tuple(1 if i in normalized else next(rest) for i in range(rank)))


def _transpose(ctx: ImportContext, node: OnnxNode) -> None:
    rank = len(ctx.info(node, node.inputs[0]).shape)
    perm = tuple(node.attrs.get("perm", range(rank - 1, -1, -1)))
    ctx.emit(node, "transpose", (node.inputs[0],), node.outputs[0], {"perm": perm})


def _concat(ctx: ImportContext, node: OnnxNode) -> None:
    rank = len(ctx.info(node, node.inputs[0]).shape)
    if "axis" not in node.attrs:
        raise node.error("attribute axis is missing")
    axis = axis_index(node, node.attrs["axis"], rank)
    inputs = tuple(t for t in node.inputs if t)
    ctx.emit(node, "concat", inputs, node.outputs[0], {"axis": axis})


def _pad(ctx: ImportContext, node: OnnxNode) -> None:
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        raise node.unsupported(f"attribute mode={mode!r}", "only mode 'constant' is")
    info = ctx.info(node, node.inputs[0])
    rank = len(info.shape)
    given = [int(v) for v in ctx.require_constant(node, node.inputs[1], "pads").reshape(-1)]
    axes = list(range(rank))
    if node.input(3) is not None:
        raw = ctx.require_constant(node, node.input(3), "axes").reshape(-1)
        axes = [axis_index(node, int(a), rank) for a in raw]
    if len(given) != 2 * len(axes):
        raise node.error(f"pads {given} need {2 * len(axes)} values")
    pads = [0] * 2 * rank
    for i, a in enumerate(axes):
        pads[a], pads[a + rank] = given[i], given[i + len(axes)]
    value = 0
    if node.input(2) is not None:
        value = ctx.require_constant(node, node.input(2), "constant_value").reshape(-1)
        if value.size != 1:
            raise node.error(f"constant_value must be a scalar, got {value.size} values")
        value = value[0].item()
    ctx.emit(node, "pad", (node.inputs[0],), node.outputs[0], {"pads": pads, "value": value})


# --- normalization, identity ---------------------------------------------------------------


def _batch_norm(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    if node.attrs.get("training_mode", 0) or len([t for t in node.outputs if t]) > 1:
        raise node.unsupported("training mode", "only the inference form (one output) is")
    if len(node.inputs) != 5:
        raise node.error(f"takes 5 inputs (X, scale, B, mean, var), got {len(node.inputs)}")
    attrs = {"epsilon": node.attrs.get("epsilon", 1e-5)}
    ctx.emit(node, "batch_norm", node.inputs, node.outputs[0], attrs)


def _identity(ctx: ImportContext, node: OnnxNode) -> None:
    ctx.alias(node, node.outputs[0], node.inputs[0])


def _dropout(ctx: ImportContext, node: OnnxNode) -> None:
    if len([t for t in node.outputs if t]) > 1:
        raise node.unsupported("the mask output", "only inference (no mask) is")
    training = node.input(2)
    if training is not None and ctx.require_constant(node, training, "training_mode").any():
        raise node.unsupported("training_mode=True", "only inference is")
    _identity(ctx, node)


# --- constants and shape arithmetic --------------------------------------------------------


def _constant(ctx: ImportContext, node: OnnxNode) -> None:
    scalars = {
        "value_float": np.float32,
        "value_floats": np.float32,
        "value_int": np.int64,
        "value_ints": np.int64,
    }
    if "value" in node.attrs and isinstance(node.attrs["value"], np.ndarray):
        value = node.attrs["value"]
    elif node.attrs.keys() & scalars.keys():
        key = next(iter(node.attrs.keys() & scalars.keys()))
        value = np.array(node.attrs[key], dtype=scalars[key])
    else:
        keys = ", ".join(sorted(node.attrs)) or "none"
        raise node.unsupported(f"attribute {keys}", "use value, value_float(s) or value_int(s)")
    ctx.add_constant(node.outputs[0], value)


def _shape(ctx: ImportContext, node: OnnxNode) -> None:
    shape = ctx.info(node, node.inputs[0]).shape
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(shape))
    ctx.add_constant(node.outputs[0], np.array(shape[start:end], dtype=np.int64))


def _gather(ctx: ImportContext, node: OnnxNode) -> None:
    rank = len(ctx.info(node, node.inputs[0]).shape)
    axis = axis_index(node, node.attrs.get("axis", 0), rank)
    ctx.emit(node, "gather", node.inputs[:2], node.outputs[0], {"axis": axis})


def _ints(ctx: ImportContext, node: OnnxNode, index: int, role: str) -> list[int] | None:
    tensor = node.input(index)
    if tensor is None:
        return None
    return [int(v) for v in ctx.require_constant(node, tensor, role).reshape(-1)]


def _slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice clamping: negative indices count from the end; with a negative step the end
    may be -1, meaning "through index 0"."""
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


def _emit_slice(ctx, node, output, shape, ranges: dict[int, tuple[int, int, int]], name=None):
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    for axis, (start, end, step) in ranges.items():
        starts[axis], ends[axis] = _slice_bounds(shape[axis], start, end, step)
        steps[axis] = step
    attrs = {"starts": starts, "ends": ends, "steps": steps}
    ctx.emit(node, "slice", (node.inputs[0],), output, attrs, name=name)


def _slice(ctx: ImportContext, node: OnnxNode) -> None:
    shape = ctx.info(node, node.inputs[0]).shape
    starts = _ints(ctx, node, 1, "starts")
    ends = _ints(ctx, node, 2, "ends")
    axes = _ints(ctx, node, 3, "axes") or list(range(len(starts)))
    steps = _ints(ctx, node, 4, "steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error(
            f"starts {starts}, ends {ends}, axes {axes}, steps {steps} differ in length"
        )
    if 0 in steps:
        raise node.error(f"steps {steps} hold a 0")
    axes = [axis_index(node, a, len(shape)) for a in axes]
    if len(set(axes)) != len(axes):
        raise node.error(f"axes {axes} repeat an axis")
    ranges = {a: (s, e, st) for a, s, e, st in zip(axes, starts, ends, steps)}
    _emit_slice(ctx, node, node.outputs[0], shape, ranges)


def _split(ctx: ImportContext, node: OnnxNode) -> None:
    """Split becomes one slice per output."""
    shape = ctx.info(node, node.inputs[0]).shape
    axis = axis_index(node, node.attrs.get("axis", 0), len(shape))
    sizes = list(node.attrs["split"]) if node.opset < 13 and "split" in node.attrs else None
    if node.opset >= 13:
        sizes = _ints(ctx, node, 1, "split")
    count = len(node.outputs)
    if sizes is None:
        count = node.attrs.get("num_outputs", count)
        chunk = -(-shape[axis] // count)  # opset 18: the last chunk may be smaller
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(count)]
    if len(sizes) != len(node.outputs) or sum(sizes) != shape[axis] or min(sizes) < 0:
        raise node.error(f"split sizes {sizes} do not cut axis {axis} of {shape} in {count}")
    begin = 0
    for output, size in zip(node.outputs, sizes):
        name = ctx.fresh(f"{node.name}/{output}")
        _emit_slice(ctx, node, output, shape, {axis: (begin, begin + size, 1)}, name=name)
        begin += size


def _reduce_mean(ctx: ImportContext, node: OnnxNode) -> None:
    float_input(ctx, node)
    shape = ctx.info(node, node.inputs[0]).shape
    axes = node.attrs.get("axes") if node.opset < 18 else _ints(ctx, node, 1, "axes")
    if not axes:
        if node.opset >= 18 and node.attrs.get("noop_with_empty_axes", 0):
            ctx.alias(node, node.outputs[0], node.inputs[0])
            return
        axes = range(len(shape))
    axes = tuple(sorted({axis_index(node, a, len(shape)) for a in axes}))
    attrs = {"axes": axes, "keepdims": bool(node.attrs.get("keepdims", 1))}
    ctx.emit(node, "reduce_mean", (node.inputs[0],), node.outputs[0], attrs)


def onnx_dtype(node: OnnxNode, elem_type: int, what: str) -> np.dtype:
    """The numpy dtype of an ONNX element type, refused when unsupported."""
    if elem_type not in DTYPES:
        raise node.unsupported(
            f"{what} {dtype_name(elem_type)}", f"supported data types: {SUPPORTED_DTYPES}"
        )
    return DTYPES[elem_type]


def _cast(ctx: ImportContext, node: OnnxNode) -> None:
    dtype = onnx_dtype(node, node.attrs.get("to", 0), "attribute to=")
    ctx.emit(node, "cast", (node.inputs[0],), node.outputs[0], {"dtype": dtype.name})


def _gemm_attrs(node: OnnxNode) -> dict:
    return {
        "alpha": node.attrs.get("alpha", 1.0),
        "beta": node.attrs.get("beta", 1.0),
        "trans_a": bool(node.attrs.get("transA", 0)),
        "trans_b": bool(node.attrs.get("transB", 0)),
    }


CONVERTERS: Mapping[str, Converter] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _simple("gemm", _gemm_attrs),
    "MatMul": _simple("matmul"),
    "Add": _simple("add"),
    "Sub": _simple("sub"),
    "Mul": _simple("mul"),
    "Div": _simple("div"),
    "Relu": _simple("relu"),
    "LeakyRelu": _simple("leaky_relu", lambda n: {"alpha": n.attrs.get("alpha", 0.01)}),
    "Clip": _clip,
    "Sigmoid": _simple("sigmoid"),
    "MaxPool": _pool("max_pool"),
    "AveragePool": _pool("avg_pool"),
    "GlobalAveragePool": _simple("global_avg_pool"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Pad": _pad,
    "BatchNormalization": _batch_norm,
    "Identity": _identity,
    "Dropout": _dropout,
    "Softmax": _softmax,
    "Constant": _constant,
    "Shape": _shape,
    "Gather": _gather,
    "Slice": _slice,
    "Split": _split,
    "ReduceMean": _reduce_mean,
    "Cast": _cast,
}
