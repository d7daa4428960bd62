"""Device layouts of a graph's int8 tensors: which packed shape a tensor takes in the
accelerator's DRAM, and the conversions at the host boundary.

- **Activations** ``(N, C, H, W)`` pack to ``(N'/BATCH, C'/BLOCK, H, W, BATCH, BLOCK)``;
- **vectors** ``(N, C)`` (a dense layer's data and result) to ``(N'/BATCH, C'/BLOCK, BATCH,
  BLOCK)``,

where ``N'`` and ``C'`` are ``N`` and ``C`` rounded up to the next multiple of ``BATCH`` and
``BLOCK``. Packing fills the padding with zeros; unpacking drops it. On the device the padded
channels may hold anything (a requantized zero, a clip bound): every operator that reads them
either has zero weights there or writes only padded channels from them, so they never reach a
real value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accel.env import Environment
from accel.errors import GraphError


def round_up(n: int, block: int) -> int:
    """``n`` rounded up to a multiple of ``block``."""
    return -(-n // block) * block


@dataclass(frozen=True, slots=True)
class Layout:
    """A tensor's place on the device: its graph ``shape`` (``(N, C, H, W)`` or ``(N, C)``),
    ``batch`` and ``channels`` rounded up to the blocks, and the ``packed`` shape."""

    shape: tuple[int, ...]
    batch: int
    channels: int
    packed: tuple[int, ...]

    @property
    def kind(self) -> str:
        return "activation" if len(self.shape) == 4 else "vector"

    @property
    def padded_channels(self) -> int:
        return self.channels - self.shape[1]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.packed))

    def pack(self, x: np.ndarray) -> np.ndarray:
        """``x`` (the graph's shape, int8) in the packed layout, zeros in the padding."""
        pad = [(0, self.batch - self.shape[0]), (0, self.channels - self.shape[1])]
        pad += [(0, 0)] * (len(self.shape) - 2)
        x = np.pad(x, pad) if any(p for _, p in pad) else x
        nb, b, cb, c = self.packed[0], self.packed[-2], self.packed[1], self.packed[-1]
        spatial = self.shape[2:]
        x = x.reshape(nb, b, cb, c, *spatial)
        axes = (0, 2, *range(4, 4 + len(spatial)), 1, 3)
        return np.ascontiguousarray(x.transpose(axes))

    def unpack(self, y: np.ndarray) -> np.ndarray:
        """Packed ``y`` back in the graph's shape (the padding dropped)."""
        nb, cb, *spatial, b, c = y.shape
        k = len(spatial)
        axes = (0, 2 + k, 1, 3 + k, *range(2, 2 + k))
        full = y.transpose(axes).reshape(nb * b, cb * c, *spatial)
        return np.array(full[: self.shape[0], : self.shape[1]], order="C")  # always a copy


def layout_of(shape: tuple[int, ...], env: Environment) -> Layout:
    """The device layout of an int8 tensor of ``shape`` (rank 4 or 2) for ``env``.

    Raises GraphError for another rank (such tensors stay on the host).
    """
    if len(shape) not in (2, 4):
        raise GraphError(f"no device layout for a tensor of shape {shape}: rank 2 or 4 only")
    if env.BLOCK_IN != env.BLOCK_OUT:
        raise GraphError(
            f"configuration {env.name}: BLOCK_IN {env.BLOCK_IN} != BLOCK_OUT {env.BLOCK_OUT}, "
            "so one layer's result cannot be the next one's input on the device"
        )
    batch, channels = round_up(shape[0], env.BATCH), round_up(shape[1], env.BLOCK_IN)
    packed = (
        batch // env.BATCH,
        channels // env.BLOCK_IN,
        *shape[2:],
        env.BATCH,
        env.BLOCK_IN,
    )
    return Layout(tuple(shape), batch, channels, packed)
