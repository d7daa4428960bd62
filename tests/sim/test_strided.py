"""Index arrays recognised as strided views (accel/sim/strided.py): a view found must name
exactly the elements of the index array, in its order; anything else must be refused."""

import numpy as np
import pytest

from accel.sim.strided import StridedIndex, items


def random_strided(rng) -> np.ndarray:
    dims = int(rng.integers(1, 5))
    shape = rng.integers(1, 6, dims)
    steps = rng.integers(-40, 41, dims)
    start = 500
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (start + sum(g * s for g, s in zip(grids, steps))).ravel()


@pytest.mark.parametrize("seed", range(40))
def test_a_found_view_reads_exactly_the_indexed_elements(seed):
    rng = np.random.default_rng(seed)
    index = random_strided(rng)
    data = rng.integers(0, 1 << 30, (1200, 2, 3), dtype=np.int64)
    found = StridedIndex.find(index)
    if np.unique(index).size != index.size:
        assert found is None  # a scatter through it would depend on iteration order
        return
    assert found is not None
    view = found.view(items(data))
    np.testing.assert_array_equal(view.reshape(-1), items(data)[index])
    shifted = found.view(items(data), 7)
    np.testing.assert_array_equal(shifted.reshape(-1), items(data)[index + 7])


def test_writing_through_a_found_view_writes_the_indexed_elements():
    rng = np.random.default_rng(3)
    index = (10 + np.arange(6)[:, None] * 50 + np.arange(4) * -3).ravel()  # a negative step
    found = StridedIndex.find(index)
    assert found is not None and found.shape == (6, 4) and found.steps == (50, -3)
    data = np.zeros((400, 16), np.int8)
    values = rng.integers(-128, 128, (index.size, 16), dtype=np.int8)
    found.view(items(data))[...] = items(values).reshape(found.shape)
    expected = np.zeros_like(data)
    expected[index] = values
    np.testing.assert_array_equal(data, expected)


@pytest.mark.parametrize(
    "index",
    [
        np.array([0, 1, 2, 4]),  # an irregular gap
        np.array([0, 1, 2, 10, 11]),  # blocks of unequal length
        np.array([0, 1, 10, 12]),  # blocks with different steps
        np.array([0, 2, 2, 4]),  # an element twice
        np.array([5, 3, 9, 0]),
    ],
)
def test_irregular_or_repeating_indices_are_refused(index):
    assert StridedIndex.find(index) is None


def test_single_elements_and_contiguous_runs():
    assert StridedIndex.find(np.array([42])) == StridedIndex(42, (1,), (0,))
    assert StridedIndex.find(np.arange(7, 19)) == StridedIndex(7, (12,), (1,))
    assert StridedIndex.find(np.zeros(0, np.int64)) is None


def test_items_are_whole_elements():
    data = np.arange(24, dtype=np.int32).reshape(4, 2, 3)
    assert items(data).shape == (4,)
    assert items(data).itemsize == 2 * 3 * 4
    picked = np.empty_like(data[:2])
    items(picked)[...] = items(data)[[3, 1]]
    np.testing.assert_array_equal(picked, data[[3, 1]])
