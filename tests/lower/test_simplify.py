from accel import te
from accel.arith.simplify import const_bounds, prove, simplify


def test_divmod_with_ranges():
    i, j = te.var("i"), te.var("j")
    r = {i: (0, 3), j: (0, 15)}
    assert simplify((i * 16 + j) // 16, r) == i
    assert simplify((i * 16 + j) % 16, r) == j
    assert simplify((i * 16 + j + 32) // 16, r) == i + 2


def test_affine_canonical_form_collects_terms():
    i, j = te.var("i"), te.var("j")
    assert simplify((i + j) * 2 - j - i) == i + j
    assert simplify(i * 0 + 3 + 4) == te.const(7)


def test_constant_folding_wraps_in_the_dtype():
    c = te.const(100, "int8") + te.const(100, "int8")
    assert simplify(c).value == -56
    assert simplify(te.const(300).astype("int8")).value == 44
    assert simplify(te.const(-7) // te.const(2)).value == -4
    assert simplify(te.const(-7) % te.const(2)).value == 1


def test_comparisons_decided_by_ranges():
    i = te.var("i")
    assert prove(i < 4, {i: (0, 3)}) is True
    assert prove(i < 3, {i: (0, 3)}) is None
    assert prove(i >= 0, {i: (0, 3)}) is True


def test_min_max_with_constant_difference():
    i = te.var("i")
    assert simplify(te.min(i + 1, i + 3), {i: (0, 9)}) == i + 1
    assert simplify(te.max(i + 1, i + 3), {i: (0, 9)}) == i + 3


def test_const_bounds():
    i, j = te.var("i"), te.var("j")
    assert const_bounds(i * 4 - j, {i: (0, 2), j: (1, 3)}) == (-3, 7)
    assert const_bounds((i * 4) // 3, {i: (0, 2)}) == (0, 2)
