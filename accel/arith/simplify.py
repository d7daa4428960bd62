"""Integer arithmetic on expressions: affine forms, constant bounds and simplification.

Index arithmetic is kept in an affine canonical form ``sum(coef * atom) + const`` where an atom
is a variable or a non-affine sub-expression (a floor division, a load, ...). On top of it:

- :func:`const_bounds` gives the constant interval of an expression, given variable ranges;
- :func:`simplify` folds constants, canonicalises sums, and rewrites floor division and modulo
  when the ranges prove it: ``(i*16 + j) // 16 -> i`` and ``(i*16 + j) % 16 -> j`` for
  ``0 <= j < 16``; comparisons and selects decided by the ranges are folded away.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from accel.te import dtype as dt
from accel.te.expr import BinOp, Cast, Cmp, Const, Expr, Logic, Select, Var, const
from accel.te.visit import rewrite

# Variable ranges: inclusive constant bounds (lo, hi).
Ranges = Mapping[Var, tuple[int, int]]

_LINEAR_DTYPES = ("int32", "int64")


class Affine:
    """``sum(coef * atom) + const``: an affine form over atoms (variables or opaque terms)."""

    __slots__ = ("const", "terms")

    def __init__(self, terms: dict[Expr, int] | None = None, const: int = 0):
        self.terms = {a: c for a, c in (terms or {}).items() if c != 0}
        self.const = const

    def __add__(self, other: Affine) -> Affine:
        terms = dict(self.terms)
        for atom, coef in other.terms.items():
            terms[atom] = terms.get(atom, 0) + coef
        return Affine(terms, self.const + other.const)

    def scale(self, k: int) -> Affine:
        return Affine({a: c * k for a, c in self.terms.items()}, self.const * k)

    @property
    def is_const(self) -> bool:
        return not self.terms

    def coef(self, atom: Expr) -> int:
        return self.terms.get(atom, 0)


def affine(e: Expr) -> Affine:
    """The affine form of an integer expression (non-affine parts become atoms)."""
    if isinstance(e, Const) and dt.is_int(e.dtype):
        return Affine({}, int(e.value))
    if isinstance(e, BinOp) and e.dtype in _LINEAR_DTYPES:
        if e.op == "add":
            return affine(e.a) + affine(e.b)
        if e.op == "sub":
            return affine(e.a) + affine(e.b).scale(-1)
        if e.op == "mul":
            a, b = affine(e.a), affine(e.b)
            if b.is_const:
                return a.scale(b.const)
            if a.is_const:
                return b.scale(a.const)
    return Affine({e: 1})


def from_affine(form: Affine, dtype: str = dt.INDEX_DTYPE) -> Expr:
    """Rebuild an expression: larger coefficients first, the constant last."""
    terms = sorted(form.terms.items(), key=lambda item: -abs(item[1]))
    result: Expr | None = None
    for atom, coef in terms:
        magnitude = abs(coef)
        term = atom if magnitude == 1 else BinOp("mul", atom, Const(magnitude, dtype), dtype)
        if result is None:
            result = term if coef > 0 else BinOp("sub", Const(0, dtype), term, dtype)
        else:
            result = BinOp("add" if coef > 0 else "sub", result, term, dtype)
    if result is None:
        return Const(form.const, dtype)
    if form.const > 0:
        result = BinOp("add", result, Const(form.const, dtype), dtype)
    elif form.const < 0:
        result = BinOp("sub", result, Const(-form.const, dtype), dtype)
    return result


# -- constant bounds ---------------------------------------------------------------------------

INF = float("inf")


def const_bounds(e: Expr, ranges: Ranges) -> tuple[float, float]:
    """Inclusive constant bounds of ``e``; +-inf where nothing is known."""
    if isinstance(e, Const):
        v = e.value
        return (v, v)
    if isinstance(e, Var):
        return ranges.get(e, (-INF, INF))
    if isinstance(e, Cast):
        lo, hi = const_bounds(e.value, ranges)
        if dt.is_int(e.dtype):
            tlo, thi = dt.value_range(e.dtype)
            if lo < tlo or hi > thi:
                return (tlo, thi)
        return (lo, hi)
    if isinstance(e, Select):
        a, b = const_bounds(e.true_value, ranges), const_bounds(e.false_value, ranges)
        return (min(a[0], b[0]), max(a[1], b[1]))
    if isinstance(e, BinOp):
        a = const_bounds(e.a, ranges)
        b = const_bounds(e.b, ranges)
        op = e.op
        if op == "add":
            return (a[0] + b[0], a[1] + b[1])
        if op == "sub":
            return _sub_bounds(e, a, b, ranges)
        if op == "mul":
            products = [_mul(x, y) for x in a for y in b]
            return (min(products), max(products))
        if op == "min":
            return (min(a[0], b[0]), min(a[1], b[1]))
        if op == "max":
            return (max(a[0], b[0]), max(a[1], b[1]))
        if op in ("floordiv", "floormod") and b[0] == b[1] and b[0] > 0:
            c = int(b[0])
            if op == "floordiv":
                return (_floordiv(a[0], c), _floordiv(a[1], c))
            if a[0] > -INF and a[1] < INF and _floordiv(a[0], c) == _floordiv(a[1], c):
                return (a[0] % c, a[1] % c)
            return (0, c - 1)
        if op == "shr" and b[0] == b[1] and b[0] >= 0:
            c = int(b[0])
            return (_floordiv(a[0], 2**c), _floordiv(a[1], 2**c))
    if dt.is_bool(e.dtype):
        return (0, 1)
    if dt.is_int(e.dtype):
        return dt.value_range(e.dtype)
    return (-INF, INF)


def _sub_bounds(e: BinOp, a, b, ranges: Ranges) -> tuple[float, float]:
    lo, hi = a[0] - b[1], a[1] - b[0]
    x, y = e.a, e.b
    if (
        isinstance(x, BinOp)
        and isinstance(y, BinOp)
        and x.op == y.op == "floordiv"
        and isinstance(x.b, Const)
        and x.b == y.b
        and x.b.value > 0
    ):
        # x//c - y//c lies within [ceil((d_lo - c + 1) / c), floor((d_hi + c - 1) / c)] for
        # d = x - y: tighter than bounding the two quotients independently.
        c = int(x.b.value)
        dlo, dhi = const_bounds(from_affine(affine(x.a) + affine(y.a).scale(-1), x.dtype), ranges)
        if dlo > -INF:
            lo = max(lo, -((c - 1 - dlo) // c))
        if dhi < INF:
            hi = min(hi, (dhi + c - 1) // c)
    return (lo, hi)


def _mul(x: float, y: float) -> float:
    if x == 0 or y == 0:
        return 0
    return x * y


def _floordiv(x: float, c: int) -> float:
    return x if x in (INF, -INF) else x // c


def prove(cond: Expr, ranges: Ranges) -> bool | None:
    """True or False when the ranges decide ``cond``, else None."""
    folded = simplify(cond, ranges)
    if isinstance(folded, Const):
        return bool(folded.value)
    return None


# -- simplification ----------------------------------------------------------------------------


def simplify(e: Expr, ranges: Ranges | None = None) -> Expr:
    """Fold constants and canonicalise ``e`` (see the module docstring)."""
    ranges = ranges or {}
    return rewrite(e, lambda node: _simplify_node(node, ranges))


def _simplify_node(e: Expr, ranges: Ranges) -> Expr | None:
    if isinstance(e, BinOp):
        return _simplify_binop(e, ranges)
    if isinstance(e, Cast):
        if isinstance(e.value, Const):
            return const(_cast_value(e.value.value, e.dtype), e.dtype)
        if e.value.dtype == e.dtype:
            return e.value
        if (
            dt.is_int(e.dtype)
            and dt.is_int(e.value.dtype)
            and dt.bits(e.dtype) >= dt.bits(e.value.dtype)
            and isinstance(e.value, Cast)
            and dt.is_int(e.value.value.dtype)
            and dt.bits(e.value.dtype) >= dt.bits(e.value.value.dtype)
            and dt.is_signed_int(e.value.dtype) == dt.is_signed_int(e.value.value.dtype)
        ):
            return Cast(e.dtype, e.value.value)  # widening twice is widening once
        return None
    if isinstance(e, Cmp):
        return _simplify_cmp(e, ranges)
    if isinstance(e, Logic):
        return _simplify_logic(e)
    if isinstance(e, Select):
        if isinstance(e.cond, Const):
            return e.true_value if e.cond.value else e.false_value
        if e.true_value == e.false_value:
            return e.true_value
    return None


def _cast_value(value, dtype: str):
    if dt.is_bool(dtype):
        return bool(value)
    if dt.is_float(dtype):
        return float(np.array(value).astype(dtype))
    if isinstance(value, float):
        value = int(value)  # C truncation toward zero
    return int(np.array(int(value) & ((1 << dt.bits(dtype)) - 1), dtype="uint64").astype(dtype))


def _fold(op: str, a, b, dtype: str):
    """Evaluate ``a <op> b`` on constants with the dtype's semantics (integers wrap)."""
    if op in ("floordiv", "floormod", "div") and b == 0:
        return None  # leave division by zero to fail visibly at run time
    if dt.is_float(dtype):
        a, b = float(a), float(b)
        value = {
            "add": lambda: a + b,
            "sub": lambda: a - b,
            "mul": lambda: a * b,
            "div": lambda: a / b,
            "min": lambda: min(a, b),
            "max": lambda: max(a, b),
        }[op]()
        return _cast_value(value, dtype)
    a, b = int(a), int(b)
    if op == "shl":
        value = a << b if b >= 0 else a >> -b
    elif op == "shr":
        value = a >> b if b >= 0 else a << -b
    else:
        value = {
            "add": a + b,
            "sub": a - b,
            "mul": a * b,
            "min": min(a, b),
            "max": max(a, b),
            "bitand": a & b,
            "bitor": a | b,
            "bitxor": a ^ b,
            "floordiv": a // b if b else 0,
            "floormod": a % b if b else 0,
        }[op]
    return _cast_value(value, dtype)


def _simplify_binop(e: BinOp, ranges: Ranges) -> Expr | None:
    a, b, op = e.a, e.b, e.op
    if isinstance(a, Const) and isinstance(b, Const):
        value = _fold(op, a.value, b.value, e.dtype)
        if value is not None:
            return Const(value, e.dtype)
    if e.dtype in _LINEAR_DTYPES:
        if op in ("add", "sub", "mul"):
            canonical = from_affine(affine(e), e.dtype)
            return canonical if canonical != e else None
        if op in ("floordiv", "floormod") and isinstance(b, Const) and b.value > 0:
            return _simplify_divmod(e, int(b.value), ranges)
        if op in ("min", "max"):
            (alo, ahi), (blo, bhi) = const_bounds(a, ranges), const_bounds(b, ranges)
            if op == "min":
                if ahi <= blo:
                    return a
                if bhi <= alo:
                    return b
            else:
                if alo >= bhi:
                    return a
                if blo >= ahi:
                    return b
            if a == b:
                return a
            dlo, dhi = const_bounds(from_affine(affine(a) + affine(b).scale(-1), e.dtype), ranges)
            if dhi <= 0:
                return a if op == "min" else b
            if dlo >= 0:
                return b if op == "min" else a
    elif (
        op in ("add", "sub")
        and isinstance(b, Const)
        and b.value == 0
        or op == "mul"
        and isinstance(b, Const)
        and b.value == 1
    ):
        return a
    if op in ("shl", "shr") and isinstance(b, Const) and b.value == 0:
        return a
    return None


def _simplify_divmod(e: BinOp, c: int, ranges: Ranges) -> Expr | None:
    form = affine(e.a)
    if c == 1:
        return e.a if e.op == "floordiv" else Const(0, e.dtype)
    # Split into a part divisible by c and a remainder whose range may fit one period.
    quotient = Affine({a: k // c for a, k in form.terms.items() if k % c == 0}, form.const // c)
    remainder = Affine({a: k for a, k in form.terms.items() if k % c != 0}, form.const % c)
    rem_expr = from_affine(remainder, e.dtype)
    lo, hi = const_bounds(rem_expr, ranges)
    if lo > -INF and hi < INF and lo // c == hi // c:
        shift = int(lo // c)
        if e.op == "floordiv":
            return from_affine(quotient + Affine({}, shift), e.dtype)
        return from_affine(remainder + Affine({}, -shift * c), e.dtype)
    if e.op == "floormod" and quotient.terms:
        new = BinOp("floormod", rem_expr, e.b, e.dtype)
        return new if new != e else None
    if e.op == "floordiv" and quotient.terms:
        # (c*q + r) // c == q + r // c holds for floor division whatever r is.
        new = from_affine(quotient, e.dtype) + BinOp("floordiv", rem_expr, e.b, e.dtype)
        return simplify(new, ranges) if new != e else None
    return None


_CMP = {
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
}


def _simplify_cmp(e: Cmp, ranges: Ranges) -> Expr | None:
    a, b = e.a, e.b
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(_CMP[e.op](a.value, b.value), "bool")
    if dt.is_int(a.dtype):
        diff = simplify(BinOp("sub", a, b, "int64" if a.dtype == "int64" else "int32"), ranges)
        lo, hi = const_bounds(diff, ranges)
        decided = _decide(e.op, lo, hi)
        if decided is not None:
            return Const(decided, "bool")
        if e.dtype == "bool" and a.dtype in _LINEAR_DTYPES:
            # Move constants to the right: (x + 3 < 10) -> (x < 7).
            form = affine(diff)
            if form.const and form.terms:
                left = from_affine(Affine(form.terms), a.dtype)
                new = Cmp(e.op, left, Const(-form.const, a.dtype))
                return new if new != e else None
    return None


def _decide(op: str, lo: float, hi: float) -> bool | None:
    """Decide ``d <op> 0`` for d in [lo, hi]."""
    if op == "lt":
        return True if hi < 0 else False if lo >= 0 else None
    if op == "le":
        return True if hi <= 0 else False if lo > 0 else None
    if op == "gt":
        return True if lo > 0 else False if hi <= 0 else None
    if op == "ge":
        return True if lo >= 0 else False if hi < 0 else None
    if op == "eq":
        return True if lo == hi == 0 else False if lo > 0 or hi < 0 else None
    if op == "ne":
        return False if lo == hi == 0 else True if lo > 0 or hi < 0 else None
    return None


def _simplify_logic(e: Logic) -> Expr | None:
    if e.op == "not":
        if isinstance(e.a, Const):
            return Const(not e.a.value, "bool")
        return None
    a, b = e.a, e.b
    for x, y in ((a, b), (b, a)):
        if isinstance(x, Const):
            if e.op == "and":
                return y if x.value else Const(False, "bool")
            return Const(True, "bool") if x.value else y
    return None


def with_ranges(ranges: Ranges, var: Var, extent: int, minimum: int = 0) -> dict:
    """A copy of ``ranges`` where ``var`` runs over ``[minimum, minimum + extent)``."""
    new = dict(ranges)
    new[var] = (minimum, minimum + extent - 1)
    return new


__all__ = [
    "Affine",
    "affine",
    "const_bounds",
    "from_affine",
    "prove",
    "simplify",
    "with_ranges",
]
