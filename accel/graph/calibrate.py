"""Calibration: the largest magnitude every float tensor of a graph takes on sample inputs, from
which `accel.graph.quantize` sets symmetric int8 scales (``scale = max|x| / 127``)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from accel.errors import ArgumentError
from accel.graph.graph import Graph

# Without calibration data every activation gets this scale: int8 covers [-8, 7.9375] in steps
# of 1/16, a guess that suits normalized inputs and batch-normalized layers.
DEFAULT_ACTIVATION_SCALE = 1 / 16


def max_abs(graph: Graph, batches: Sequence[np.ndarray | Mapping[str, np.ndarray]]) -> dict:
    """``{tensor: max |x|}`` over every float32 tensor (inputs, constants, node outputs) and
    every batch; a batch is an array (one-input graphs), a tuple of arrays in input order, or a
    dict by input name. Raises :class:`ArgumentError` for an empty list or a batch that does not
    match the graph's inputs."""
    if isinstance(batches, (np.ndarray, Mapping)) or not len(batches):
        raise ArgumentError(
            "calibration must be a non-empty list of input arrays (or of dicts by input name)"
        )
    peaks: dict[str, float] = {}
    for batch in batches:
        if isinstance(batch, Mapping):
            values = graph.evaluate(**batch)
        elif isinstance(batch, tuple):
            values = graph.evaluate(*batch)
        else:
            values = graph.evaluate(batch)
        for name, value in values.items():
            if value.dtype == np.float32 and value.size:
                peak = float(np.max(np.abs(value)))
                peaks[name] = max(peaks.get(name, 0.0), peak)
    return peaks


def activation_scale(peak: float | None) -> float:
    """The symmetric int8 scale for a tensor whose magnitude reaches ``peak`` (the default
    scale when there is no data, or the tensor is always 0)."""
    if peak is None or not 0 < peak < np.inf:
        return DEFAULT_ACTIVATION_SCALE
    return peak / 127
