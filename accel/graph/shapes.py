"""Shape and dtype inference, one rule per canonical operator.

``infer(node, inputs)`` returns the :class:`TensorInfo` of each output, or raises
:class:`GraphError` naming the node when the inputs do not fit together.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from accel.errors import GraphError
from accel.graph import requant, window
from accel.graph.ir import Node, TensorInfo

Rule = Callable[[Node, Sequence[TensorInfo]], TensorInfo]


def _fail(node: Node, message: str) -> GraphError:
    return GraphError(f"node {node.name!r} ({node.op}): {message}")


def broadcast(node: Node, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise _fail(node, f"shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def _same_dtype(node: Node, infos: Sequence[TensorInfo]) -> np.dtype:
    dtypes = {i.dtype for i in infos}
    if len(dtypes) != 1:
        names = ", ".join(sorted(d.name for d in dtypes))
        raise _fail(node, f"inputs mix dtypes {names}")
    return infos[0].dtype


def _elementwise(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    return TensorInfo(broadcast(node, *(i.shape for i in infos)), _same_dtype(node, infos))


def _unary(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    return infos[0]


def _conv_check(node: Node, x: TensorInfo, w_shape: tuple[int, ...], channels: int) -> None:
    k = len(node.attrs["strides"])
    if len(x.shape) != k + 2 or len(w_shape) != k + 2:
        raise _fail(node, f"input {x.shape} and weight {w_shape} need rank {k + 2}")
    group = node.attrs["group"]
    if x.shape[1] != channels * group:
        raise _fail(
            node,
            f"input has {x.shape[1]} channels but the weight expects {channels} x group {group}",
        )


def _conv_out(node: Node, x: TensorInfo, w_shape: tuple[int, ...], dtype) -> TensorInfo:
    a = node.attrs
    k = len(a["strides"])
    _conv_check(node, x, w_shape, w_shape[1])
    if w_shape[0] % a["group"]:
        raise _fail(node, f"{w_shape[0]} output channels do not split into {a['group']} groups")
    out = tuple(
        window.conv_out_size(
            x.shape[2 + i], w_shape[2 + i], a["strides"][i], a["dilations"][i],
            a["pads"][i], a["pads"][i + k],
        )
        for i in range(k)
    )  # fmt: skip
    if min(out) < 1:
        raise _fail(node, f"kernel {w_shape[2:]} does not fit the padded input {x.shape[2:]}")
    return TensorInfo((x.shape[0], w_shape[0]) + out, dtype)


def _bias_check(node: Node, bias: TensorInfo, channels: int) -> None:
    if bias.shape != (channels,):
        raise _fail(node, f"bias has shape {bias.shape}, expected ({channels},)")


def _conv(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    out = _conv_out(node, infos[0], infos[1].shape, _same_dtype(node, infos))
    if len(infos) > 2:
        _bias_check(node, infos[2], out.shape[1])
    return out


def _conv_transpose(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a = node.attrs
    x, w = infos[0], infos[1]
    k = len(a["strides"])
    _conv_check(node, x, w.shape, w.shape[0] // a["group"])
    out = tuple(
        (x.shape[2 + i] - 1) * a["strides"][i]
        + window.window_extent(w.shape[2 + i], a["dilations"][i])
        + a["output_padding"][i] - a["pads"][i] - a["pads"][i + k]
        for i in range(k)
    )  # fmt: skip
    if min(out) < 1:
        raise _fail(node, f"pads {a['pads']} leave an empty output")
    result = TensorInfo((x.shape[0], w.shape[1] * a["group"]) + out, _same_dtype(node, infos))
    if len(infos) > 2:
        _bias_check(node, infos[2], result.shape[1])
    return result


def _gemm(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a, b = infos[0].shape, infos[1].shape
    if len(a) != 2 or len(b) != 2:
        raise _fail(node, f"operands must be matrices, got {a} and {b}")
    m, k = a[::-1] if node.attrs["trans_a"] else a
    k2, n = b[::-1] if node.attrs["trans_b"] else b
    if k != k2:
        raise _fail(node, f"inner dimensions differ: {k} and {k2}")
    if len(infos) > 2 and broadcast(node, infos[2].shape, (m, n)) != (m, n):
        raise _fail(node, f"C of shape {infos[2].shape} does not broadcast to {(m, n)}")
    return TensorInfo((m, n), _same_dtype(node, infos))


def matmul_shape(node: Node, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if not a or not b:
        raise _fail(node, "operands must have rank 1 or more")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise _fail(node, f"inner dimensions differ: {a} and {b}")
    out = broadcast(node, a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _matmul(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    return TensorInfo(matmul_shape(node, infos[0].shape, infos[1].shape), _same_dtype(node, infos))


def _pool(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a = node.attrs
    x = infos[0]
    k = len(a["kernel"])
    if len(x.shape) != k + 2:
        raise _fail(node, f"input {x.shape} needs rank {k + 2} for a {k}-d kernel")
    out = tuple(
        window.pool_out_size(
            x.shape[2 + i], a["kernel"][i], a["strides"][i], a["dilations"][i],
            a["pads"][i], a["pads"][i + k], a["ceil_mode"],
        )
        for i in range(k)
    )  # fmt: skip
    if min(out) < 1:
        raise _fail(node, f"kernel {a['kernel']} does not fit the padded input {x.shape[2:]}")
    return TensorInfo(x.shape[:2] + out, x.dtype)


def _global_pool(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x = infos[0]
    if len(x.shape) < 3:
        raise _fail(node, f"input {x.shape} has no spatial axes")
    return TensorInfo(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)


def _reshape(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    shape = node.attrs["shape"]
    if int(np.prod(shape)) != int(np.prod(infos[0].shape)):
        raise _fail(node, f"cannot reshape {infos[0].shape} to {shape}")
    return TensorInfo(shape, infos[0].dtype)


def _transpose(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    perm, shape = node.attrs["perm"], infos[0].shape
    if sorted(perm) != list(range(len(shape))):
        raise _fail(node, f"perm {perm} is not a permutation of the {len(shape)} axes")
    return TensorInfo(tuple(shape[p] for p in perm), infos[0].dtype)


def _concat(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    axis, first = node.attrs["axis"], infos[0].shape
    for info in infos[1:]:
        rest = info.shape[:axis] + info.shape[axis + 1 :]
        if len(info.shape) != len(first) or rest != first[:axis] + first[axis + 1 :]:
            raise _fail(node, f"inputs {first} and {info.shape} differ off axis {axis}")
    size = sum(i.shape[axis] for i in infos)
    return TensorInfo(first[:axis] + (size,) + first[axis + 1 :], _same_dtype(node, infos))


def _pad(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    shape, pads = infos[0].shape, node.attrs["pads"]
    k = len(shape)
    out = tuple(shape[i] + pads[i] + pads[i + k] for i in range(k))
    if min(out, default=1) < 0:
        raise _fail(node, f"pads {pads} crop more than the input {shape}")
    return TensorInfo(out, infos[0].dtype)


def _batch_norm(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x = infos[0]
    if len(x.shape) < 2:
        raise _fail(node, f"input {x.shape} has no channel axis")
    for role, info in zip(("scale", "bias", "mean", "var"), infos[1:]):
        if info.shape != (x.shape[1],):
            raise _fail(node, f"{role} has shape {info.shape}, expected ({x.shape[1]},)")
    return TensorInfo(x.shape, _same_dtype(node, infos))


def _gather(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, i, axis = infos[0].shape, infos[1].shape, node.attrs["axis"]
    if infos[1].dtype.kind not in "iu":
        raise _fail(node, f"indices must be integers, got {infos[1].dtype.name}")
    return TensorInfo(x[:axis] + i + x[axis + 1 :], infos[0].dtype)


def _slice(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a, shape = node.attrs, infos[0].shape
    if not len(a["starts"]) == len(a["ends"]) == len(a["steps"]) == len(shape):
        raise _fail(node, f"starts, ends and steps need one value per axis of {shape}")
    out = tuple(
        max(0, -(-(end - start) // step))
        for start, end, step in zip(a["starts"], a["ends"], a["steps"])
    )
    return TensorInfo(out, infos[0].dtype)


def _reduce_mean(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    axes, shape = node.attrs["axes"], infos[0].shape
    if node.attrs["keepdims"]:
        out = tuple(1 if i in axes else d for i, d in enumerate(shape))
    else:
        out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return TensorInfo(out, infos[0].dtype)


def _quantize(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, scale, zp = infos
    _per_axis_check(node, x.shape, scale.shape, zp.shape, node.attrs["axis"])
    return TensorInfo(x.shape, zp.dtype)


def _dequantize(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, scale, zp = infos
    _per_axis_check(node, x.shape, scale.shape, zp.shape, node.attrs["axis"])
    if zp.dtype != x.dtype:
        raise _fail(node, f"zero point is {zp.dtype.name} but the input is {x.dtype.name}")
    return TensorInfo(x.shape, scale.dtype)


def _per_axis_check(node: Node, x, scale, zp, axis: int | None) -> None:
    if axis is None and scale in ((), (1,)) and zp in ((), (1,)):
        return  # per tensor (onnxruntime may write a (1,) scale with a () zero point)
    if scale != zp:
        raise _fail(node, f"scale {scale} and zero point {zp} differ in shape")
    if axis is None or len(scale) != 1 or scale[0] != x[axis]:
        raise _fail(node, f"per-axis scale {scale} does not match axis {axis} of {x}")


def _qlinear_conv(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp = infos[:8]
    _scalar_check(node, {"x_scale": x_scale, "x_zero_point": x_zp, "y_scale": y_scale})
    _scalar_check(node, {"y_zero_point": y_zp})
    if w_scale.shape not in ((), (1,), (w.shape[0],)):
        raise _fail(node, f"w_scale {w_scale.shape} must be a scalar or ({w.shape[0]},)")
    out = _conv_out(node, x, w.shape, y_zp.dtype)
    if len(infos) > 8:
        _bias_check(node, infos[8], out.shape[1])
    return out


def _qlinear_matmul(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = infos
    _scalar_check(node, {"a_scale": a_scale, "a_zero_point": a_zp, "y_scale": y_scale})
    _scalar_check(node, {"y_zero_point": y_zp})
    if b_scale.shape not in ((), (1,), (b.shape[-1],)):
        raise _fail(node, f"b_scale {b_scale.shape} must be a scalar or ({b.shape[-1]},)")
    return TensorInfo(matmul_shape(node, a.shape, b.shape), y_zp.dtype)


def _scalar_check(node: Node, infos: Mapping[str, TensorInfo]) -> None:
    for role, info in infos.items():
        if info.shape not in ((), (1,)):
            raise _fail(node, f"{role} must be a scalar, got shape {info.shape}")


def _dtype(node: Node, info: TensorInfo, allowed: tuple[str, ...], role: str) -> None:
    if info.dtype.name not in allowed:
        raise _fail(node, f"{role} must be {' or '.join(allowed)}, got {info.dtype.name}")


def _scale_check(node: Node, scale) -> None:
    values = scale if isinstance(scale, tuple) else (scale,)
    if not all(isinstance(v, (int, float)) and 0 < v < np.inf for v in values):
        raise _fail(node, f"scale {scale} must be positive and finite")


def _quantize_op(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    _dtype(node, infos[0], ("float32",), "input")
    _scale_check(node, node.attrs["scale"])
    return TensorInfo(infos[0].shape, np.int8)


def _dequantize_op(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x = infos[0]
    _dtype(node, x, ("int8", "int32"), "input")
    scale, axis = node.attrs["scale"], node.attrs.get("axis")
    _scale_check(node, scale)
    if isinstance(scale, tuple) and (axis is None or len(scale) != x.shape[axis]):
        raise _fail(node, f"{len(scale)} scales do not match axis {axis} of {x.shape}")
    return TensorInfo(x.shape, np.float32)


def _qconv(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    _dtype(node, infos[0], ("int8",), "data")
    _dtype(node, infos[1], ("int8",), "weight")
    out = _conv_out(node, infos[0], infos[1].shape, np.int32)
    if len(infos) > 2:
        _dtype(node, infos[2], ("int32",), "bias")
        _bias_check(node, infos[2], out.shape[1])
    return out


def _qdense(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, w = infos[0], infos[1]
    _dtype(node, x, ("int8",), "data")
    _dtype(node, w, ("int8",), "weight")
    if len(x.shape) != 2 or len(w.shape) != 2 or x.shape[1] != w.shape[1]:
        raise _fail(node, f"needs data (N, K) and weight (O, K), got {x.shape} and {w.shape}")
    if len(infos) > 2:
        _dtype(node, infos[2], ("int32",), "bias")
        _bias_check(node, infos[2], w.shape[0])
    return TensorInfo((x.shape[0], w.shape[0]), np.int32)


def _qsum_pool(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    _dtype(node, infos[0], ("int8",), "input")
    return TensorInfo(_pool(node, infos).shape, np.int32)


def _int_range(node: Node, names: tuple[str, ...], lo: int, hi: int) -> None:
    for name in names:
        value = node.attrs[name]
        values = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(v, int) and lo <= v <= hi for v in values):
            raise _fail(node, f"{name} {value} must be integers in [{lo}, {hi}]")


def _clip_range(node: Node) -> None:
    _int_range(node, ("lo", "hi"), -128, 127)
    if node.attrs["lo"] > node.attrs["hi"]:
        raise _fail(node, f"lo {node.attrs['lo']} is above hi {node.attrs['hi']}")


def _requantize(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    x, a = infos[0], node.attrs
    _dtype(node, x, ("int8", "int32"), "input")
    _int_range(node, ("multiplier",), requant.IMM_MIN, requant.IMM_MAX)
    _int_range(node, ("pre_shift",), 0, requant.MAX_PRE_SHIFT)
    _int_range(node, ("shift",), 0, requant.MAX_SHIFT)
    _int_range(node, ("acc_bound",), 0, requant.INT32_MAX)
    _clip_range(node)
    multipliers, bounds = a["multiplier"], a["acc_bound"]
    if isinstance(multipliers, tuple) or isinstance(bounds, tuple):
        channels = x.shape[1] if len(x.shape) > 1 else None
        if not (
            isinstance(multipliers, tuple)
            and isinstance(bounds, tuple)
            and len(multipliers) == len(bounds) == channels
        ):
            raise _fail(
                node,
                f"per-channel multiplier and acc_bound need one value per channel of {x.shape}",
            )
    else:
        multipliers, bounds = (multipliers,), (bounds,)
    for m, bound in zip(multipliers, bounds):
        if not requant.overflow_free(bound, m, a["pre_shift"], a["shift"]):
            raise _fail(
                node,
                f"multiplier {m} with pre_shift {a['pre_shift']} and shift {a['shift']} can "
                f"overflow int32 for |acc| <= {bound}; raise pre_shift",
            )
    return TensorInfo(x.shape, np.int8)


def _qadd(node: Node, infos: Sequence[TensorInfo]) -> TensorInfo:
    a = node.attrs
    for role, info in zip(("first input", "second input"), infos):
        _dtype(node, info, ("int8",), role)
    _int_range(node, ("multiplier_a", "multiplier_b"), requant.IMM_MIN, requant.IMM_MAX)
    _int_range(node, ("shift",), 0, requant.MAX_SHIFT)
    _clip_range(node)
    if not requant.pair_overflow_free(128, a["multiplier_a"], a["multiplier_b"], a["shift"]):
        raise _fail(node, "multipliers and shift can overflow int32 for int8 inputs")
    return TensorInfo(broadcast(node, infos[0].shape, infos[1].shape), np.int8)


RULES: Mapping[str, Rule] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "gemm": _gemm,
    "matmul": _matmul,
    "add": _elementwise,
    "sub": _elementwise,
    "mul": _elementwise,
    "div": _elementwise,
    "relu": _unary,
    "leaky_relu": _unary,
    "clip": _unary,
    "sigmoid": _unary,
    "max_pool": _pool,
    "avg_pool": _pool,
    "global_avg_pool": _global_pool,
    "reshape": _reshape,
    "transpose": _transpose,
    "concat": _concat,
    "pad": _pad,
    "batch_norm": _batch_norm,
    "softmax": _unary,
    "cast": lambda node, infos: TensorInfo(infos[0].shape, node.attrs["dtype"]),
    "gather": _gather,
    "slice": _slice,
    "reduce_mean": _reduce_mean,
    "quantize_linear": _quantize,
    "dequantize_linear": _dequantize,
    "qlinear_conv": _qlinear_conv,
    "qlinear_matmul": _qlinear_matmul,
    "quantize": _quantize_op,
    "dequantize": _dequantize_op,
    "qconv": _qconv,
    "qdense": _qdense,
    "qsum_pool": _qsum_pool,
    "requantize": _requantize,
    "qadd": _qadd,
}


def infer(node: Node, inputs: Sequence[TensorInfo]) -> list[TensorInfo]:
    """The output types of ``node`` given its input types (every canonical op has one output)."""
    return [RULES[node.op](node, inputs)]
