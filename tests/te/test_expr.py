import pytest

from accel import te
from accel.errors import ExprError
from accel.te.expr import BinOp, Cast, Cmp, Select


def test_python_operators_build_typed_nodes():
    x = te.var("x")
    e = (x + 1) * 2 // 3 % 4
    assert isinstance(e, BinOp) and e.op == "floormod" and e.dtype == "int32"
    assert isinstance(x < 3, Cmp) and (x < 3).dtype == "bool"
    assert (x >> 2).op == "shr" and (x << 2).op == "shl" and (x & 1).op == "bitand"


def test_structural_equality_and_identity_of_variables():
    x, y = te.var("x"), te.var("x")
    assert x + 1 == x + 1
    assert x + 1 != y + 1  # same name, different variable
    assert {x + 1: "a"}[x + 1] == "a"


def test_promotion_widens_same_signedness():
    a = te.placeholder((4,), "int8", "a")
    b = te.placeholder((4,), "int32", "b")
    assert (a[0] + b[0]).dtype == "int32"
    f = te.placeholder((4,), "float32", "f")
    g = te.placeholder((4,), "float64", "g")
    assert (f[0] * g[0]).dtype == "float64"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda a, u, f: a[0] + u[0], "signed and unsigned"),
        (lambda a, u, f: a[0] + f[0], "explicit astype"),
        (lambda a, u, f: f[0] // f[0], "integer operands"),
        (lambda a, u, f: a[0] / a[0], "only for floats"),
        (lambda a, u, f: a[0] + 1.5, "float constant"),
        (lambda a, u, f: a[0] + 300, "does not fit int8"),
    ],
)
def test_mixing_that_makes_no_sense_is_refused(build, message):
    a = te.placeholder((4,), "int8", "a")
    u = te.placeholder((4,), "uint8", "u")
    f = te.placeholder((4,), "float32", "f")
    with pytest.raises(ExprError, match=message):
        build(a, u, f)


def test_constants_and_casts():
    assert te.const(3).dtype == "int32" and te.const(2**40).dtype == "int64"
    assert te.const(1.0).dtype == "float32"
    x = te.var("x")
    assert isinstance(x.astype("int8"), Cast) and x.astype("int32") is x
    with pytest.raises(ExprError, match="unknown dtype"):
        x.astype("int7")


def test_symbolic_expression_has_no_truth_value():
    x = te.var("x")
    with pytest.raises(ExprError, match="no Python truth value"):
        bool(x < 3)


def test_if_then_else_and_logic():
    x = te.var("x")
    e = te.if_then_else(te.all(x >= 0, x < 4), x, 0)
    assert isinstance(e, Select) and e.dtype == "int32"
    with pytest.raises(ExprError, match="bool"):
        te.if_then_else(x, 1, 0)


def test_min_max_are_elementwise_or_reductions():
    x, y = te.var("x"), te.var("y")
    assert te.max(x, y).op == "max" and te.min(x, 1).op == "min"
    k = te.reduce_axis((0, 8), "k")
    a = te.placeholder((8,), "int32", "a")
    r = te.max(a[k], axis=k)
    assert r.combiner == "max" and r.axes == (k,)
    with pytest.raises(ExprError, match="not a reduction axis"):
        te.sum(a[0], axis=te.thread_axis("cthread"))


@pytest.mark.parametrize("amount", [-1, 32, 40])
def test_constant_shifts_outside_the_width_are_refused(amount):
    from accel.errors import ExprError

    x = te.var("x", "int32")
    with pytest.raises(ExprError, match=rf"shift amount {amount} .* outside \[0, 31\] for int32"):
        x >> amount
    with pytest.raises(ExprError, match="outside"):
        x << amount
    x >> 31  # the widest legal shift


def test_constant_division_by_zero_is_refused():
    from accel.errors import ExprError

    x = te.var("x", "int32")
    with pytest.raises(ExprError, match="division by zero"):
        x // 0
    with pytest.raises(ExprError, match="division by zero"):
        x % 0
