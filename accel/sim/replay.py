"""Replay files: one run, saved whole, re-runnable without the compiler.

A replay holds the configuration, the instruction words and where they were, every DRAM range
the stream's LOADs read (micro-ops included), the SRAM contents and the token-queue counts
before the run. Capture it *before* running::

    replay = capture(sim, insn_addr, insn_count)
    replay.save("failing.npz")
    ...
    report = load_replay("failing.npz").run()

The file is a numpy ``.npz`` archive (no pickled objects).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from accel.env import Environment
from accel.errors import SimulatorError
from accel.hw.isa import MemInsn, Opcode
from accel.hw.memory import DEFAULT_SIZE, DeviceMemory
from accel.sim.simulator import INSN_BYTES, RunReport, Simulator

_SRAMS = ("uop", "inp", "wgt", "acc")


@dataclass(frozen=True)
class Replay:
    """Everything one run reads. Build with :func:`capture` or :func:`load_replay`."""

    config: dict
    insn_addr: int
    words: np.ndarray  # (n, 2) uint64
    segments: tuple[tuple[int, np.ndarray], ...]  # (byte address, uint8 contents)
    srams: dict[str, np.ndarray]
    tokens: dict[str, int]

    @property
    def env(self) -> Environment:
        return Environment.from_dict(self.config, "replay file")

    def save(self, path: str | os.PathLike) -> None:
        """Write the replay to ``path`` (an .npz archive)."""
        arrays = {f"sram_{name}": array for name, array in self.srams.items()}
        np.savez_compressed(
            path,
            meta=np.array(
                json.dumps(
                    {
                        "config": self.config,
                        "insn_addr": self.insn_addr,
                        "tokens": self.tokens,
                    }
                )
            ),
            words=self.words,
            seg_addr=np.array([a for a, _ in self.segments], dtype=np.int64),
            seg_len=np.array([d.size for _, d in self.segments], dtype=np.int64),
            seg_data=np.concatenate([d for _, d in self.segments] or [np.zeros(0, np.uint8)]),
            **arrays,
        )

    def run(self, trace: bool = True) -> tuple[RunReport, DeviceMemory]:
        """Run the saved stream on a fresh device; returns the report and the device DRAM."""
        env = self.env
        end = max([self.insn_addr + self.words.nbytes] + [a + d.size for a, d in self.segments])
        dram = DeviceMemory(env, size_bytes=max(DEFAULT_SIZE, end + INSN_BYTES))
        for addr, data in self.segments:
            dram.write(addr, data)
        dram.write(self.insn_addr, self.words)
        sim = Simulator(env, dram, trace=trace)
        for name, array in self.srams.items():
            getattr(sim.srams, name)[...] = array
        sim.queues.set_counts(self.tokens)
        return sim.run(self.insn_addr, len(self.words)), dram


def capture(sim: Simulator, insn_addr: int, insn_count: int) -> Replay:
    """Record what running ``insn_count`` instructions at ``insn_addr`` on ``sim`` will read."""
    insns = sim.fetch(insn_addr, insn_count)
    words = sim.dram.read(insn_addr, insn_count * INSN_BYTES).view("<u8").reshape(-1, 2)
    spans = []
    for insn in insns:
        if isinstance(insn, MemInsn) and insn.opcode == Opcode.LOAD and insn.x_size:
            size = sim.dram.elem_sizes[insn.memory_type]
            span = ((insn.y_size - 1) * insn.x_stride + insn.x_size) * size
            spans.append((insn.dram_base * size, insn.dram_base * size + span))
    segments = tuple((lo, sim.dram.read(lo, hi - lo)) for lo, hi in _merge(spans))
    return Replay(
        config=sim.env.to_dict(),
        insn_addr=insn_addr,
        words=words.copy(),
        segments=segments,
        srams={name: getattr(sim.srams, name).copy() for name in _SRAMS},
        tokens=sim.queues.counts(),
    )


def load_replay(path: str | os.PathLike) -> Replay:
    """Read a replay file written by :meth:`Replay.save`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            offsets = np.concatenate([[0], np.cumsum(data["seg_len"])])
            seg_data = data["seg_data"]
            segments = tuple(
                (int(addr), seg_data[lo:hi].copy())
                for addr, lo, hi in zip(data["seg_addr"], offsets[:-1], offsets[1:], strict=True)
            )
            return Replay(
                config=meta["config"],
                insn_addr=int(meta["insn_addr"]),
                words=data["words"].astype(np.uint64).reshape(-1, 2),
                segments=segments,
                srams={name: data[f"sram_{name}"] for name in _SRAMS},
                tokens=meta["tokens"],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise SimulatorError(f"{path} is not a readable replay file: {exc}") from None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open byte ranges, sorted."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]
