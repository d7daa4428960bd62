"""Arguments of built modules: either byte order, ndarray subclasses, read-only outputs, and
wrong arrays, on the host and on the accelerator."""

import pathlib
import sys

import numpy as np
import pytest

import accel
from accel import te
from accel.errors import ArgumentError

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "golden"))
from cases import ACCEL_CASES  # noqa: E402


def accel_vadd():
    s, args = ACCEL_CASES["vta_get_started"]()
    return accel.build(s, args, name="vadd")


def host_vadd():
    A = te.placeholder((4, 16), "int32", "A")
    B = te.placeholder((4, 16), "int32", "B")
    C = te.compute((4, 16), lambda i, j: (A[i, j] + B[i, j]).astype("int8"), "C")
    return accel.build(te.create_schedule(C.op), [A, B, C], name="hvadd")


@pytest.mark.parametrize("make", [accel_vadd, host_vadd], ids=["accel", "host"])
def test_big_endian_arguments_give_the_right_result(make):
    f = make()
    shape = tuple(f.params[0].shape)
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1000, shape).astype(np.int32)
    b = rng.integers(-1000, 1000, shape).astype(np.int32)
    c = np.zeros(shape, np.int8)
    f(a.astype(">i4"), b.astype(">i4"), c)
    np.testing.assert_array_equal(c, (a + b).astype(np.int8))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix on purpose
def test_matrix_arguments_are_used_as_plain_arrays():
    f = host_vadd()
    a = np.asmatrix(np.arange(64, dtype=np.int32).reshape(4, 16))
    c = np.zeros((4, 16), np.int8)
    f(a, a, c)
    np.testing.assert_array_equal(c, (2 * np.asarray(a)).astype(np.int8))


@pytest.mark.parametrize("make", [accel_vadd, host_vadd], ids=["accel", "host"])
def test_a_read_only_output_is_refused_before_anything_runs(make):
    f = make()
    shape = tuple(f.params[0].shape)
    a = np.zeros(shape, np.int32)
    c = np.zeros(shape, np.int8)
    c.flags.writeable = False
    with pytest.raises(ArgumentError, match=r"argument C is read-only"):
        f(a, a, c)
    c2 = np.ones(shape, np.int8)
    f(a, a, c2)  # the device is clean for the next call
    assert not c2.any()


def test_wrong_arguments_name_the_argument_and_the_fix():
    f = accel_vadd()
    shape = tuple(f.params[0].shape)
    a = np.zeros(shape, np.int32)
    with pytest.raises(
        ArgumentError, match=r"argument B has dtype int64, expected int32; .*astype"
    ):
        f(a, a.astype(np.int64), np.zeros(shape, np.int8))
    with pytest.raises(ArgumentError, match=r"argument A must be C-contiguous"):
        strided = np.zeros((*shape[:-1], 2 * shape[-1]), np.int32)[..., ::2]
        f(strided, a, np.zeros(shape, np.int8))
    with pytest.raises(ArgumentError, match=r"takes 3 arrays"):
        f(a, a)
