"""Index arrays that are strided views in disguise.

A plan gathers and scatters DRAM elements by index arrays (``plan.py``). Compiled programs
mostly touch DRAM in regular patterns -- whole tensors, every other row of a strided
convolution, one tile after another -- and numpy copies a strided view several times faster
than it gathers by an index array. So a plan looks once, when it is made, for the strides that
give its index array, and runs the gather or scatter on the view instead.

Both run on :func:`items`: every element (an input tile row, a 16-byte output vector) as one
opaque item, which numpy moves with one copy instead of a loop over its bytes (a strided copy
of 16-byte elements is eight times faster so, a scatter by an index array six times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# numpy arrays have at most 64 dimensions; element dimensions and headroom come on top.
_MAX_DIMS = 32


@dataclass(frozen=True)
class StridedIndex:
    """Element indices ``start + sum(i[k] * steps[k])`` for every ``i`` in ``shape``, in C
    order."""

    start: int
    shape: tuple[int, ...]
    steps: tuple[int, ...]

    @classmethod
    def find(cls, index: np.ndarray) -> StridedIndex | None:
        """The strided form of ``index`` (1-D), or None when it has none or names an element
        twice (a scatter through the view would then depend on numpy's iteration order).

        Greedy from the innermost dimension: the longest run of equal steps from the start is
        a dimension when every block of that length repeats it; the blocks' first elements are
        the next index array. Patterns that only a shorter innermost run would explain are
        missed (the caller keeps its index array), never misread."""
        if index.ndim != 1 or index.size == 0:
            return None
        index = index.astype(np.int64, copy=False)
        if np.unique(index).size != index.size:
            return None
        dims: list[tuple[int, int]] = []
        rest = index
        while rest.size > 1:
            if len(dims) == _MAX_DIMS:
                return None
            step = int(rest[1] - rest[0])
            breaks = np.flatnonzero(np.diff(rest) != step)
            run = int(breaks[0]) + 1 if breaks.size else rest.size
            if rest.size % run:
                return None
            blocks = rest.reshape(-1, run)
            if not np.array_equal(blocks, blocks[:, :1] + step * np.arange(run)):
                return None
            dims.append((run, step))
            rest = blocks[:, 0]
        if not dims:
            return cls(int(index[0]), (1,), (0,))
        dims.reverse()
        return cls(int(index[0]), tuple(n for n, _ in dims), tuple(s for _, s in dims))

    def view(self, elements: np.ndarray, shift: int = 0) -> np.ndarray:
        """``elements[index + shift]`` (a C-contiguous array of elements, or of items) as a
        view of shape ``shape + elements.shape[1:]``, writable when ``elements`` is. The caller
        guarantees every index is in range."""
        stride = elements.strides[0]
        return np.ndarray(  # numpy checks the view stays inside the array
            self.shape + elements.shape[1:],
            elements.dtype,
            buffer=elements,
            offset=(self.start + shift) * stride,
            strides=tuple(step * stride for step in self.steps) + elements.strides[1:],
        )


def items(elements: np.ndarray) -> np.ndarray:
    """A C-contiguous array of elements ``(n, ...)`` as a 1-D view of n opaque items."""
    n = elements.shape[0]
    per_item = math.prod(elements.shape[1:])  # not size // n: n may be 0
    size = elements.itemsize * per_item
    return elements.reshape(n, per_item).view(np.dtype((np.void, size))).reshape(n)
