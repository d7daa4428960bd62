"""Expression nodes: immutable, compared structurally, built with Python operators.

``==`` and ``!=`` compare expressions structurally (so expressions can be dict keys); build an
equality *test* with :meth:`Expr.equal` / :meth:`Expr.not_equal`. The ordering operators
``< <= > >=`` build comparison expressions. ``//`` and ``%`` are floor division and floor modulo,
as in Python; ``/`` is only defined for floats. Variables compare by identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from accel.errors import ExprError
from accel.te import dtype as dt

Number = Union[int, float, bool]


class Expr:
    """Base class of every expression; gives the Python operators."""

    __slots__ = ()
    dtype: str

    # arithmetic -----------------------------------------------------------------------------
    def __add__(self, other: Any) -> Expr:
        return binary("add", self, other)

    def __radd__(self, other: Any) -> Expr:
        return binary("add", other, self)

    def __sub__(self, other: Any) -> Expr:
        return binary("sub", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return binary("sub", other, self)

    def __mul__(self, other: Any) -> Expr:
        return binary("mul", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return binary("mul", other, self)

    def __floordiv__(self, other: Any) -> Expr:
        return binary("floordiv", self, other)

    def __rfloordiv__(self, other: Any) -> Expr:
        return binary("floordiv", other, self)

    def __mod__(self, other: Any) -> Expr:
        return binary("floormod", self, other)

    def __rmod__(self, other: Any) -> Expr:
        return binary("floormod", other, self)

    def __truediv__(self, other: Any) -> Expr:
        return binary("div", self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return binary("div", other, self)

    def __neg__(self) -> Expr:
        return binary("sub", Const(0, self.dtype), self)

    def __lshift__(self, other: Any) -> Expr:
        return binary("shl", self, other)

    def __rlshift__(self, other: Any) -> Expr:
        return binary("shl", other, self)

    def __rshift__(self, other: Any) -> Expr:
        return binary("shr", self, other)

    def __rrshift__(self, other: Any) -> Expr:
        return binary("shr", other, self)

    def __and__(self, other: Any) -> Expr:
        return binary("bitand", self, other)

    def __rand__(self, other: Any) -> Expr:
        return binary("bitand", other, self)

    def __or__(self, other: Any) -> Expr:
        return binary("bitor", self, other)

    def __ror__(self, other: Any) -> Expr:
        return binary("bitor", other, self)

    def __xor__(self, other: Any) -> Expr:
        return binary("bitxor", self, other)

    def __rxor__(self, other: Any) -> Expr:
        return binary("bitxor", other, self)

    # comparisons ----------------------------------------------------------------------------
    def __lt__(self, other: Any) -> Expr:
        return compare("lt", self, other)

    def __le__(self, other: Any) -> Expr:
        return compare("le", self, other)

    def __gt__(self, other: Any) -> Expr:
        return compare("gt", self, other)

    def __ge__(self, other: Any) -> Expr:
        return compare("ge", self, other)

    def equal(self, other: Any) -> Expr:
        """The expression ``self == other`` (``==`` itself compares structure)."""
        return compare("eq", self, other)

    def not_equal(self, other: Any) -> Expr:
        """The expression ``self != other``."""
        return compare("ne", self, other)

    def __bool__(self) -> bool:
        raise ExprError(
            f"the symbolic expression {self} has no Python truth value; use te.if_then_else, "
            "te.all or te.any to combine conditions"
        )

    def astype(self, dtype: str) -> Expr:
        """Convert to ``dtype`` (integers wrap, floats truncate toward zero)."""
        dtype = dt.check_dtype(dtype)
        return self if dtype == self.dtype else Cast(dtype, self)

    def __str__(self) -> str:
        return expr_str(self)


@dataclass(frozen=True, slots=True)
class Const(Expr):
    """A constant of a given dtype."""

    value: Number
    dtype: str = dt.INDEX_DTYPE

    def __repr__(self) -> str:
        return f"Const({self.value!r}, {self.dtype!r})"


@dataclass(frozen=True, slots=True, eq=False)
class Var(Expr):
    """A symbolic variable (loop variable, parameter); compares by identity."""

    name: str
    dtype: str = dt.INDEX_DTYPE

    def __repr__(self) -> str:
        return f"Var({self.name!r})"


@dataclass(frozen=True, slots=True)
class BinOp(Expr):
    """``a <op> b``; ``op`` is one of :data:`BINARY_OPS`."""

    op: str
    a: Expr
    b: Expr
    dtype: str


@dataclass(frozen=True, slots=True)
class Cmp(Expr):
    """A comparison ``a <op> b`` with ``op`` in lt, le, gt, ge, eq, ne; its dtype is bool."""

    op: str
    a: Expr
    b: Expr
    dtype: str = "bool"


@dataclass(frozen=True, slots=True)
class Logic(Expr):
    """Logical ``and`` / ``or`` of boolean expressions, or ``not`` (``b`` is then None)."""

    op: str
    a: Expr
    b: Expr | None = None
    dtype: str = "bool"


@dataclass(frozen=True, slots=True)
class Select(Expr):
    """``true_value if cond else false_value``."""

    cond: Expr
    true_value: Expr
    false_value: Expr
    dtype: str


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    """Conversion of ``value`` to ``dtype``."""

    dtype: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A call of a named intrinsic or runtime function; ``args`` may hold non-Expr values."""

    name: str
    args: tuple
    dtype: str = "int32"


BINARY_OPS = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "floordiv": "//",
    "floormod": "%",
    "div": "/",
    "min": "min",
    "max": "max",
    "shl": "<<",
    "shr": ">>",
    "bitand": "&",
    "bitor": "|",
    "bitxor": "^",
}
COMPARE_OPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
INT_ONLY_OPS = ("floordiv", "floormod", "shl", "shr", "bitand", "bitor", "bitxor")


def const(value: Number, dtype: str | None = None) -> Const:
    """A constant; the dtype defaults to int32 (int64 if needed), float32 or bool."""
    if isinstance(value, Const):
        return value if dtype is None else Const(value.value, dt.check_dtype(dtype))
    if dtype is None:
        if isinstance(value, bool):
            dtype = "bool"
        elif isinstance(value, int):
            dtype = "int32" if -(2**31) <= value < 2**31 else "int64"
        elif isinstance(value, float):
            dtype = "float32"
        else:
            raise ExprError(f"cannot make a constant of {value!r} ({type(value).__name__})")
    dtype = dt.check_dtype(dtype)
    return Const(_fit_constant(value, dtype), dtype)


def _fit_constant(value: Number, dtype: str) -> Number:
    if dt.is_bool(dtype):
        return bool(value)
    if dt.is_float(dtype):
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ExprError(f"the constant {value} is not an integer and cannot have dtype {dtype}")
    value = int(value)
    low, high = dt.value_range(dtype)
    if not low <= value <= high:
        raise ExprError(f"the constant {value} does not fit {dtype} [{low}, {high}]")
    return value


def as_expr(value: Any, like: str | None = None) -> Expr:
    """Convert a Python number to a constant; ``like`` is the dtype of the other operand."""
    if isinstance(value, Expr):
        return value
    to_expr = getattr(value, "to_expr", None)  # an iteration axis stands for its variable
    if to_expr is not None:
        return to_expr()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and like is not None:
        if isinstance(value, float) and dt.is_int(like):
            raise ExprError(
                f"cannot combine the float constant {value} with an {like} expression; "
                "cast the expression with astype first"
            )
        return Const(_fit_constant(value, like), like)
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return const(value.item(), str(value.dtype))
    return const(value)


def binary(op: str, a: Any, b: Any) -> Expr:
    """Build ``a <op> b`` with dtype checks and promotion."""
    a, b = _coerce(a, b)
    if op in INT_ONLY_OPS and not (dt.is_int(a.dtype) and dt.is_int(b.dtype)):
        raise ExprError(f"{BINARY_OPS[op]!r} needs integer operands, got {a.dtype} and {b.dtype}")
    if op == "div" and not dt.is_float(a.dtype):
        raise ExprError(f"'/' is only for floats; use '//' for {a.dtype} floor division")
    if op in ("shl", "shr"):
        if dt.is_bool(a.dtype):
            raise ExprError("cannot shift a bool")
        bits = dt.bits(a.dtype)
        if isinstance(b, Const) and not 0 <= b.value < bits:
            sign = "<<" if op == "shl" else ">>"
            raise ExprError(
                f"shift amount {b.value} of {a} {sign} {b.value} is outside [0, {bits - 1}] for "
                f"{a.dtype}; a negative amount does not reverse the shift, use the other operator"
            )
        return BinOp(op, a, b, a.dtype)
    if op in ("floordiv", "floormod") and isinstance(b, Const) and b.value == 0:
        raise ExprError(f"{a} {BINARY_OPS[op]} 0: division by zero")
    return BinOp(op, a, b, dt.promote(a.dtype, b.dtype, BINARY_OPS[op]))


def compare(op: str, a: Any, b: Any) -> Expr:
    a, b = _coerce(a, b)
    dt.promote(a.dtype, b.dtype, COMPARE_OPS[op])
    return Cmp(op, a, b)


def _coerce(a: Any, b: Any) -> tuple[Expr, Expr]:
    if isinstance(a, Expr) or not isinstance(b, Expr):
        a = as_expr(a)
        b = as_expr(b, a.dtype)
    else:
        b = as_expr(b)
        a = as_expr(a, b.dtype)
    return a, b


def _is_bool_expr(e: Expr) -> Expr:
    if e.dtype != "bool":
        raise ExprError(f"a condition must be a bool expression, got {e.dtype} ({e})")
    return e


def logical_and(*conds: Any) -> Expr:
    """``te.all``: the conjunction of boolean expressions."""
    exprs = [_is_bool_expr(as_expr(c)) for c in conds]
    if not exprs:
        return const(True)
    result = exprs[0]
    for e in exprs[1:]:
        result = Logic("and", result, e)
    return result


def logical_or(*conds: Any) -> Expr:
    """``te.any``: the disjunction of boolean expressions."""
    exprs = [_is_bool_expr(as_expr(c)) for c in conds]
    if not exprs:
        return const(False)
    result = exprs[0]
    for e in exprs[1:]:
        result = Logic("or", result, e)
    return result


def logical_not(cond: Any) -> Expr:
    return Logic("not", _is_bool_expr(as_expr(cond)))


def if_then_else(cond: Any, true_value: Any, false_value: Any) -> Expr:
    """``true_value`` where ``cond`` holds, else ``false_value``."""
    cond = _is_bool_expr(as_expr(cond))
    t, f = _coerce(true_value, false_value)
    return Select(cond, t, f, dt.promote(t.dtype, f.dtype, "if_then_else"))


def var(name: str = "v", dtype: str = dt.INDEX_DTYPE) -> Var:
    """A free symbolic variable."""
    return Var(name, dt.check_dtype(dtype))


# -- printing ------------------------------------------------------------------------------------
# Nodes of other modules and layers (a tensor read, a reduction, a buffer load, an on-chip
# address, a buffer passed to a call) print through their own ``print_expr(expr_str)`` method.

_INFIX = {
    "add",
    "sub",
    "mul",
    "floordiv",
    "floormod",
    "div",
    "shl",
    "shr",
    "bitand",
    "bitor",
    "bitxor",
}


def expr_str(e: Expr) -> str:
    """The expression as text: ``((i*16) + j)``, ``A[i, k]``, ``int32(A_buf[i])``."""
    if isinstance(e, Const):
        if e.dtype == "bool":
            return "True" if e.value else "False"
        if e.dtype == "int32":
            return str(e.value)
        if e.dtype.startswith("float"):
            return f"{e.value!r}f" if e.dtype == "float32" else repr(e.value)
        return f"{e.dtype}({e.value})"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, BinOp):
        if e.op in _INFIX:
            sep = "*" if e.op == "mul" else f" {BINARY_OPS[e.op]} "
            return f"({expr_str(e.a)}{sep}{expr_str(e.b)})"
        return f"{e.op}({expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Cmp):
        return f"({expr_str(e.a)} {COMPARE_OPS[e.op]} {expr_str(e.b)})"
    if isinstance(e, Logic):
        if e.op == "not":
            return f"!{expr_str(e.a)}"
        return f"({expr_str(e.a)} {'&&' if e.op == 'and' else '||'} {expr_str(e.b)})"
    if isinstance(e, Select):
        return f"select({expr_str(e.cond)}, {expr_str(e.true_value)}, {expr_str(e.false_value)})"
    if isinstance(e, Cast):
        return f"{e.dtype}({expr_str(e.value)})"
    if isinstance(e, Call):
        return f"{e.name}({', '.join(arg_str(a) for a in e.args)})"
    hook = getattr(e, "print_expr", None)
    return repr(e) if hook is None else hook(expr_str)


def arg_str(a) -> str:
    if isinstance(a, Expr):
        return expr_str(a)
    hook = getattr(a, "print_expr", None)
    if hook is not None:
        return hook(expr_str)
    if isinstance(a, str):
        return f'"{a}"'
    return str(a)
