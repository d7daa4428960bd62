"""Helpers the generated host code calls: strided views, gathers, exact casts and products."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

_ARANGE_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def axis_range(extent: int, axis: int, ndim: int) -> np.ndarray:
    """``arange(extent)`` shaped to broadcast along ``axis`` of an ``ndim``-d nest."""
    key = (extent, axis, ndim)
    arr = _ARANGE_CACHE.get(key)
    if arr is None:
        shape = [1] * ndim
        shape[axis] = extent
        arr = np.arange(extent, dtype=np.int64).reshape(shape)
        arr.flags.writeable = False
        _ARANGE_CACHE[key] = arr
    return arr


def _span(base: int, coefs: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, int]:
    lo = hi = base
    for c, e in zip(coefs, shape):
        if c < 0:
            lo += c * (e - 1)
        else:
            hi += c * (e - 1)
    return lo, hi


def strided(
    buf: np.ndarray, base: int, coefs: tuple[int, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """Elements ``buf[base + sum(coefs[m] * i_m)]`` as an array of ``shape``, without copying.

    Only safe when every element lies inside ``buf``; :func:`load` checks that first.
    """
    item = buf.itemsize
    return as_strided(buf[base:], shape, tuple(c * item for c in coefs))


def _index(base: int, coefs: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    index = np.full((1,) * len(shape), base, dtype=np.int64)
    for m, c in enumerate(coefs):
        if c:
            index = index + c * axis_range(shape[m], m, len(shape))
    return np.broadcast_to(index, shape)


def load(buf: np.ndarray, base: int, coefs: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Read an affine pattern of ``buf``; positions outside it (only ever read under a guard
    that discards them) are clamped to the nearest element."""
    lo, hi = _span(base, coefs, shape)
    if lo >= 0 and hi < buf.size:
        return strided(buf, base, coefs, shape)
    return gather(buf, _index(base, coefs, shape))


def gather(buf: np.ndarray, index) -> np.ndarray:
    """Read ``buf`` at an index array (clamped, as in :func:`load`)."""
    return buf.take(np.clip(index, 0, buf.size - 1))


def store(
    buf: np.ndarray, base: int, coefs: tuple[int, ...], shape: tuple[int, ...], value, mask=None
) -> None:
    """Write ``value`` to an affine, injective pattern of ``buf`` where ``mask`` holds.

    A pattern that reaches outside ``buf`` is allowed only where the mask is false (the guards of
    non-dividing splits); it is then written element by element through an index array.
    """
    lo, hi = _span(base, coefs, shape)
    if lo >= 0 and hi < buf.size:
        np.copyto(
            strided(buf, base, coefs, shape),
            value,
            casting="unsafe",
            where=True if mask is None else mask,
        )
        return
    index = _index(base, coefs, shape)
    keep = np.broadcast_to(True if mask is None else mask, shape)
    if ((index < 0) | (index >= buf.size))[keep].any():
        raise IndexError(f"store to elements {lo}..{hi} of a buffer of {buf.size}")
    buf[index[keep]] = np.broadcast_to(value, shape)[keep]


def reduce_into(
    ufunc: np.ufunc,
    buf: np.ndarray,
    base: int,
    coefs: tuple[int, ...],
    shape: tuple[int, ...],
    value,
) -> None:
    """``buf[pattern] = ufunc(buf[pattern], value)`` for an injective pattern; positions outside
    ``buf`` must hold the reduction's identity (they are guarded out) and are skipped."""
    lo, hi = _span(base, coefs, shape)
    if lo >= 0 and hi < buf.size:
        view = strided(buf, base, coefs, shape)
        ufunc(view, value, out=view, casting="unsafe")
        return
    index = _index(base, coefs, shape)
    keep = (index >= 0) & (index < buf.size)
    targets = index[keep]
    buf[targets] = ufunc(buf[targets], np.broadcast_to(value, shape)[keep], casting="unsafe")


def contract(a, b, groups: tuple[int, int, int, int], compute: str) -> np.ndarray:
    """The integer sums of products ``sum_k a[batch, row, k] * b[batch, k, col]``, in int64.

    ``a`` has axes (batch..., rows..., inner...) and ``b`` (batch..., inner..., cols...), with
    ``groups`` the number of batch, rows, inner and cols axes; the result has axes (batch...,
    rows..., cols...). The product runs as one matrix product (BLAS for floats) in ``compute``,
    which the code generator chose so that every partial sum is exact (integers below 2^24 in
    float32, 2^53 in float64; int64 otherwise, whose wrap-around the caller's narrower store
    agrees with).
    """
    nb, nr, ni, _ = groups
    batch, rows, cols = a.shape[:nb], a.shape[nb : nb + nr], b.shape[nb + ni :]
    inner = int(np.prod(a.shape[nb + nr :], dtype=np.int64))
    lead = (int(np.prod(batch, dtype=np.int64)),) if nb else ()
    x = a.astype(compute).reshape(*lead, -1, inner)
    y = b.astype(compute).reshape(*lead, inner, -1)
    out = np.matmul(x, y)
    return out.astype(np.int64, copy=False).reshape(batch + rows + cols)


def cast(value, dtype: str):
    """Convert with C semantics: integers wrap, floats truncate toward zero."""
    return np.asarray(value).astype(dtype, copy=False)
