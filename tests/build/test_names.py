"""Names of tensors and programs that are Python keywords or builtins still build and run."""

import numpy as np
import pytest

import accel
from accel import te


@pytest.mark.parametrize("name", ["in", "lambda", "range", "np", "rt", "print", "match", "1st"])
def test_tensor_and_program_names_that_python_reserves(name):
    A = te.placeholder((4, 8), "int32", name)
    B = te.placeholder((4, 8), "int32", "range")
    C = te.compute((4, 8), lambda i, j: A[i, j] + B[i, j], "lambda")
    f = accel.build(te.create_schedule(C.op), [A, B, C], name=name)
    a = np.arange(32, dtype=np.int32).reshape(4, 8)
    c = np.zeros((4, 8), np.int32)
    f(a, a * 3, c)
    np.testing.assert_array_equal(c, a * 4)
