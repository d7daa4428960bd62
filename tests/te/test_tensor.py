import pytest

from accel import te
from accel.errors import ExprError


def test_placeholder_and_compute_metadata():
    A = te.placeholder((2, 3), "int8", "A")
    B = te.compute((2, 3), lambda i, j: A[i, j].astype("int32") * 2, "B")
    assert B.shape == (2, 3) and B.dtype == "int32" and B.name == "B"
    assert [iv.name for iv in B.op.axis] == ["i", "j"]
    assert B.op.reduce_axis == ()
    assert B.op.input_tensors == [A]


def test_star_args_and_call_indexing():
    A = te.placeholder((1, 4, 1, 16), "int32", "A")
    B = te.compute(A.shape, lambda *i: A(*i), "B")
    assert [iv.name for iv in B.op.axis] == ["i0", "i1", "i2", "i3"]
    assert B.op.body.tensor is A


def test_reduction_axes_are_recorded():
    A = te.placeholder((4, 8), "int8", "A")
    k = te.reduce_axis((0, 8), "k")
    C = te.compute((4,), lambda i: te.sum(A[i, k].astype("int32"), axis=k), "C")
    assert C.op.reduce_axis == (k,)
    assert C.dtype == "int32"


def test_errors_name_the_tensor():
    A = te.placeholder((4, 8), "int8", "A")
    with pytest.raises(ExprError, match="A has 2 dimensions"):
        A[1]
    with pytest.raises(ExprError, match="takes 1 arguments but the shape has 2"):
        te.compute((4, 8), lambda i: A[i, 0], "B")
    with pytest.raises(ExprError, match="must be positive"):
        te.placeholder((0, 3), "int8", "Z")
    k = te.reduce_axis((0, 8), "k")
    with pytest.raises(ExprError, match="whole body"):
        te.compute((4,), lambda i: te.sum(A[i, k], axis=k) + 1, "D")


def test_thread_axis():
    t = te.thread_axis("cthread")
    assert t.kind == "thread" and t.thread_tag == "cthread"
    with pytest.raises(ExprError):
        te.thread_axis()


def test_parameters_with_defaults_after_the_axes_bind_closure_values():
    A = te.placeholder((4, 8), "int32", "A")
    stages = [te.compute((4, 8), lambda i, j, c=c: A[i, j] + c, f"B{c}") for c in (1, 2)]
    assert [s.op.axis[1].var.name for s in stages] == ["j", "j"]
    assert [s.op.body.b.value for s in stages] == [1, 2]  # each stage kept its own constant
    with pytest.raises(ExprError, match="takes 3 arguments but the shape has 2"):
        te.compute((4, 8), lambda i, j, k: A[i, j], "C")  # no default: still an error
