"""Numpy references and random inputs for the tuned operators (independent of accel)."""

import pathlib
import sys

import numpy as np

from accel import topi

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "topi"))
from test_conv2d import reference as conv2d_reference  # noqa: E402  (the operator tests' own)


def dense_reference(x, w, bias, shift=8):
    acc = (x.astype(np.int64) @ w.astype(np.int64).T).astype(np.int32) + bias
    return np.clip(acc >> shift, 0, 127).astype(np.int8)


def check_conv2d(module, task, seed=0):
    """Run a built convolution of ``task`` on random data; assert it equals numpy."""
    env, op = task.env, task.op
    b = env.BLOCK_IN
    rng = np.random.default_rng(seed)
    nb, cb, h, w, _, _ = op.data.shape
    ob, _, k, _, _, _ = op.kernel.shape
    x = rng.integers(-128, 128, (nb, cb * b, h, w), dtype=np.int8)
    wt = rng.integers(-128, 128, (ob * b, cb * b, k, k), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (ob * b,), dtype=np.int32)
    out = np.zeros(op.res.shape, np.int8)
    module(topi.pack_nchw(x, env), topi.pack_kernel(wt, env), bias.reshape(ob, 1, b), out)
    pad = (op.data_buf.shape[2] - h) // 2
    expected = conv2d_reference(x, wt, bias, op.stride, pad, shift=8)  # the tasks shift by 8
    np.testing.assert_array_equal(topi.unpack_nchw(out), expected)


def check_dense(module, task, seed=0):
    env, op = task.env, task.op
    rng = np.random.default_rng(seed)
    n = op.data.shape[0] * env.BATCH
    i = op.data.shape[1] * env.BLOCK_IN
    o = op.weight.shape[0] * env.BLOCK_OUT
    x = rng.integers(-128, 128, (n, i), dtype=np.int8)
    w = rng.integers(-128, 128, (o, i), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (o,), dtype=np.int32)
    out = np.zeros(op.res.shape, np.int8)
    module(
        topi.pack_dense_data(x, env),
        topi.pack_dense_weight(w, env),
        topi.pack_dense_bias(bias, env),
        out,
    )
    np.testing.assert_array_equal(topi.unpack_dense(out), dense_reference(x, w, bias))


def check_relu(module, task, seed=0):
    env, op = task.env, task.op
    rng = np.random.default_rng(seed)
    nb, cb, h, w, _, _ = op.inputs[0].shape
    x = rng.integers(-128, 128, (nb * env.BATCH, cb * env.BLOCK_IN, h, w), dtype=np.int8)
    out = np.zeros(op.res.shape, np.int8)
    module(topi.pack_nchw(x, env), out)
    np.testing.assert_array_equal(topi.unpack_nchw(out), np.maximum(x, 0))
