"""The programs pinned by golden files: every tutorial schedule and each ``topi`` operator at one
small shape. Each case is a function returning ``(schedule, tensors)``, made fresh per call since
lowering must not depend on an earlier lowering of the same schedule."""

from __future__ import annotations

import pathlib
import sys

import accel
from accel import te, topi

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "lower"))
from pass_helpers import TUTORIAL_SCHEDULES  # noqa: E402

ENV = accel.get_env()
B = ENV.BLOCK_IN


def _activations(channels, hw, name="data"):
    return te.placeholder((1, channels // B, hw, hw, 1, B), name=name, dtype="int8")


def _bias(channels):
    return te.placeholder((channels // B, 1, B), name="bias", dtype="int32")


def conv2d():
    data = _activations(32, 8)
    kernel = te.placeholder((2, 2, 3, 3, B, B), name="kernel", dtype="int8")
    op = topi.conv2d_packed(data, kernel, ENV, 1, 1, bias=_bias(32))
    return topi.schedule_conv2d_packed(op, ENV), op.args


def group_conv2d():
    data = _activations(64, 6)
    kernel = te.placeholder((4, 2, 3, 3, B, B), name="kernel", dtype="int8")
    op = topi.group_conv2d_packed(data, kernel, ENV, 2, 1, 1, bias=_bias(64))
    return topi.schedule_conv2d_packed(op, ENV), op.args


def conv2d_transpose():
    data = _activations(32, 4)
    kernel = te.placeholder((2, 2, 2, 2, 2, 2, B, B), name="kernel", dtype="int8")
    op = topi.conv2d_transpose_packed(data, kernel, ENV, 2, 1, bias=_bias(32))
    return topi.schedule_conv2d_transpose_packed(op, ENV), op.args


def dense():
    data = te.placeholder((1, 4, ENV.BATCH, B), name="data", dtype="int8")
    weight = te.placeholder((2, 4, ENV.BLOCK_OUT, B), name="weight", dtype="int8")
    bias = te.placeholder((2, ENV.BATCH, ENV.BLOCK_OUT), name="bias", dtype="int32")
    op = topi.dense_packed(data, weight, ENV, bias=bias)
    return topi.schedule_dense_packed(op, ENV), op.args


def relu():
    op = topi.relu_packed(_activations(32, 5, "x"), ENV)
    return topi.schedule_vector_packed(op, ENV), op.args


def add():
    op = topi.add_packed(_activations(32, 5, "a"), _activations(32, 5, "b"), ENV, shift=1)
    return topi.schedule_vector_packed(op, ENV), op.args


def max_pool2d():
    op = topi.max_pool2d_packed(_activations(32, 8, "x"), ENV)
    return topi.schedule_vector_packed(op, ENV), op.args


def cpu_vadd_inlined():
    """``tutorials/cpu_get_started.py``'s second schedule, on the host."""
    shape = (1, 64, ENV.BATCH, ENV.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=ENV.acc_dtype)
    Bt = te.placeholder(shape, name="B", dtype=ENV.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: Bt(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype(ENV.inp_dtype), "C")
    s = te.create_schedule(C.op)
    for stage in (A_buf, B_buf, C_buf):
        s[stage].compute_inline()
    s[C].split(C.op.axis[1], factor=16)
    return s, [A, Bt, C]


def cpu_tiled_matmul():
    """The README's first example: a tiled host matmul with a cached input."""
    A = te.placeholder((64, 32), "int8", "A")
    Bt = te.placeholder((48, 32), "int8", "B")
    k = te.reduce_axis((0, 32), "k")
    C = te.compute(
        (64, 48),
        lambda i, j: te.sum(A[i, k].astype("int32") * Bt[j, k].astype("int32"), axis=k),
        "C",
    )
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
    ko, ki = s[C].split(k, factor=16)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    s[AA].compute_at(s[C], ko)
    return s, [A, Bt, C]


def cpu_masked_row_max():
    """A guarded host reduction: a split that does not divide the rows guards both the
    initialisation and the ``max`` reduction (host code generation merges the split back)."""
    A = te.placeholder((10, 12), "int8", "A")
    k = te.reduce_axis((0, 12), "k")
    C = te.compute((10,), lambda i: te.max(A[i, k], axis=k), "C")
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=4)
    return s, [A, C]


def cpu_row_sum_gathered():
    """A sum that is no tensor contraction: one factor is read at a non-affine index (a
    gather), so the reduction loop's variable is needed as an array and the row's is not."""
    A = te.placeholder((16, 24), "int8", "A")
    W = te.placeholder((4,), "int8", "W")
    k = te.reduce_axis((0, 24), "k")
    C = te.compute(
        (16,),
        lambda i: te.sum(A[i, k].astype("int32") * W[k % 4].astype("int32"), axis=k),
        "C",
    )
    return te.create_schedule(C.op), [A, W, C]


ACCEL_CASES = {
    **TUTORIAL_SCHEDULES,
    "topi_conv2d": conv2d,
    "topi_group_conv2d": group_conv2d,
    "topi_conv2d_transpose": conv2d_transpose,
    "topi_dense": dense,
    "topi_relu": relu,
    "topi_add": add,
    "topi_max_pool2d": max_pool2d,
}

HOST_CASES = {
    "cpu_vadd_inlined": cpu_vadd_inlined,
    "cpu_tiled_matmul": cpu_tiled_matmul,
    "cpu_masked_row_max": cpu_masked_row_max,
    "cpu_row_sum_gathered": cpu_row_sum_gathered,
}
