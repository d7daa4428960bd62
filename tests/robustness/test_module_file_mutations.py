"""Random damage to a module file: loading refuses it with a LoadError, or the loaded module
runs -- a typed error or a right answer -- and the device stays clean for the next call."""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import accel
from accel.errors import AccelError, LoadError

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "golden"))
from cases import ACCEL_CASES  # noqa: E402

S, ARGS = ACCEL_CASES["vta_get_started"]()
MODULE = accel.build(S, ARGS, name="vadd")


def module_text(tmp_path) -> str:
    path = tmp_path / "m.json"
    MODULE.save(path)
    return path.read_text()


def paths(node, prefix=()):
    """Every path into the JSON tree (lists and objects), leaves included."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def inputs():
    rng = np.random.default_rng(0)
    shape = tuple(MODULE.params[0].shape)
    a = rng.integers(-1000, 1000, shape).astype(np.int32)
    b = rng.integers(-1000, 1000, shape).astype(np.int32)
    return a, b, (a + b).astype(np.int8)


@seed(20261201)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_module_files_are_refused_or_run_safely(tmp_path, data):
    doc = json.loads(module_text(tmp_path))
    all_paths = [p for p in paths(doc) if p]
    target = data.draw(st.sampled_from(all_paths))
    parent = doc
    for key in target[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = data.draw(JUNK)
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(doc))
    a, b, expected = inputs()
    try:
        f = accel.load_module(damaged)
    except LoadError:
        pass
    else:
        out = np.zeros_like(expected)
        try:
            f(a, b, out)
        except AccelError:
            pass
    # Whatever happened, an intact module still computes the right answer.
    out = np.zeros_like(expected)
    MODULE(a, b, out)
    np.testing.assert_array_equal(out, expected)
