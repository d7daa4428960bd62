"""Data types of expressions and the rules for mixing them.

A dtype is a string such as ``"int8"``, ``"uint16"``, ``"float32"`` or ``"bool"``.
Promotion is deliberately narrow: two integers of the same signedness widen to the wider one,
two floats widen likewise; mixing signed with unsigned integers, integers with floats, or
booleans with numbers is refused, so that every conversion in a program is an explicit
``astype`` a reader can see.
"""

from __future__ import annotations

import numpy as np

from accel.errors import ExprError

INT_DTYPES = ("int8", "int16", "int32", "int64")
UINT_DTYPES = ("uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")
ALL_DTYPES = INT_DTYPES + UINT_DTYPES + FLOAT_DTYPES + ("bool",)

# Index arithmetic (loop variables, shapes) uses this dtype.
INDEX_DTYPE = "int32"


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` as a canonical string, or raise ``ExprError`` if it is unknown."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        dtype = np.dtype(dtype).name
    if dtype not in ALL_DTYPES:
        raise ExprError(f"unknown dtype {dtype!r}; expected one of {', '.join(ALL_DTYPES)}")
    return dtype


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES or dtype in UINT_DTYPES


def is_signed_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_bool(dtype: str) -> bool:
    return dtype == "bool"


def bits(dtype: str) -> int:
    return 1 if dtype == "bool" else np.dtype(dtype).itemsize * 8


def numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(dtype)


def value_range(dtype: str) -> tuple[float, float]:
    """Smallest and largest value of ``dtype``."""
    if is_bool(dtype):
        return (0, 1)
    if is_int(dtype):
        info = np.iinfo(dtype)
        return (int(info.min), int(info.max))
    info = np.finfo(dtype)
    return (float(info.min), float(info.max))


def promote(a: str, b: str, op: str) -> str:
    """The dtype of ``a <op> b``; raises ``ExprError`` for mixes that need an explicit cast."""
    if a == b:
        return a
    if is_bool(a) or is_bool(b):
        raise ExprError(f"cannot apply {op!r} to {a} and {b}: cast the bool operand with astype")
    if is_float(a) and is_float(b):
        return a if bits(a) >= bits(b) else b
    if is_int(a) and is_int(b):
        if is_signed_int(a) != is_signed_int(b):
            raise ExprError(
                f"cannot apply {op!r} to {a} and {b}: mixing signed and unsigned integers is "
                "ambiguous; cast one side with astype"
            )
        return a if bits(a) >= bits(b) else b
    raise ExprError(
        f"cannot apply {op!r} to {a} and {b}: mixing integers and floats needs an explicit astype"
    )
