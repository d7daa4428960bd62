"""Between plain NCHW / OIHW arrays and the packed layouts the accelerator reads.

Activations pack to ``(N/BATCH, C/BLOCK_IN, H, W, BATCH, BLOCK_IN)`` and weights to
``(O/BLOCK_OUT, I/BLOCK_IN, KH, KW, BLOCK_OUT, BLOCK_IN)``. Channel counts that are not a multiple
of the block are refused (pad the channels before packing), so no packed element is invented.
"""

from __future__ import annotations

import numpy as np

from accel.env import Environment
from accel.errors import ArgumentError


def channel_blocks(n: int, block: int, what: str) -> int:
    """How many blocks of ``block`` make ``n`` (named ``what`` in the error if they do not)."""
    if n % block:
        raise ArgumentError(f"{what} = {n} is not a multiple of {block}; pad it before packing")
    return n // block


def pack_nchw(x: np.ndarray, env: Environment) -> np.ndarray:
    """NCHW activations in the packed activation layout."""
    n, c, h, w = x.shape
    nb, cb = channel_blocks(n, env.BATCH, "batch"), channel_blocks(c, env.BLOCK_IN, "channels")
    return np.ascontiguousarray(
        x.reshape(nb, env.BATCH, cb, env.BLOCK_IN, h, w).transpose(0, 2, 4, 5, 1, 3)
    )


def unpack_nchw(x: np.ndarray) -> np.ndarray:
    """Packed activations back to NCHW."""
    nb, cb, h, w, b, c = x.shape
    return np.ascontiguousarray(x.transpose(0, 4, 1, 5, 2, 3).reshape(nb * b, cb * c, h, w))


def pack_kernel(w: np.ndarray, env: Environment) -> np.ndarray:
    """OIHW weights in the packed weight layout."""
    o, i, kh, kw = w.shape
    ob, ib = (
        channel_blocks(o, env.BLOCK_OUT, "output channels"),
        channel_blocks(i, env.BLOCK_IN, "input channels"),
    )
    return np.ascontiguousarray(
        w.reshape(ob, env.BLOCK_OUT, ib, env.BLOCK_IN, kh, kw).transpose(0, 2, 4, 5, 1, 3)
    )
