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
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from accel.env import Environment
from accel.errors import ConfigError, LoadError
from accel.hw.isa import MemInsn, Opcode
from accel.hw.memory import DEFAULT_SIZE, DeviceMemory
from accel.hw.modules import Queue
from accel.sim.simulator import INSN_BYTES, RunReport, Simulator
from accel.sim.state import Srams

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


# A replay larger than this is refused rather than read (it would be read into memory).
MAX_REPLAY_BYTES = 1 << 30
_MEMBERS = ("meta", "words", "seg_addr", "seg_len", "seg_data", *(f"sram_{n}" for n in _SRAMS))


def load_replay(path: str | os.PathLike) -> Replay:
    """Read and check a replay file written by :meth:`Replay.save`.

    The file is untrusted: it is read as a numpy archive without pickles, every member is
    checked for its type, shape and range (SRAM shapes against the configuration, addresses
    against device memory), and nothing in it runs. Raises LoadError saying what is wrong.
    """
    where = f"replay file {path}"
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise LoadError(f"cannot read {where}: {exc.strerror or exc}") from None
    if size > MAX_REPLAY_BYTES:
        raise LoadError(f"{where} is {size} bytes, more than the {MAX_REPLAY_BYTES} allowed")
    if not zipfile.is_zipfile(path):
        raise LoadError(
            f"{where} is not a readable replay archive (a .npz file written by Replay.save): "
            "it is not a zip archive"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise LoadError(f"{where} is a single .npy array, not a replay archive")
            missing = [m for m in _MEMBERS if m not in data.files]
            if missing:
                raise LoadError(f"{where} lacks the member(s) {', '.join(missing)}")
            members = {m: data[m] for m in _MEMBERS}
    except LoadError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise LoadError(
            f"{where} is not a readable replay archive (a .npz file written by Replay.save): {exc}"
        ) from None
    return _checked_replay(members, where)


def _checked_replay(m: dict, where: str) -> Replay:
    def fail(msg: str):
        raise LoadError(f"{where}: {msg}")

    meta_array = m["meta"]
    if meta_array.dtype.kind != "U" or meta_array.shape != ():
        fail("member meta must be one JSON string")
    try:
        meta = json.loads(str(meta_array))
    except (json.JSONDecodeError, RecursionError) as exc:
        fail(f"member meta is not valid JSON: {exc}")
    if not isinstance(meta, dict) or set(meta) != {"config", "insn_addr", "tokens"}:
        fail("member meta must hold exactly config, insn_addr and tokens")
    if not isinstance(meta["config"], dict):
        fail("config must be an object")
    try:
        env = Environment.from_dict(meta["config"], where)
    except ConfigError as exc:
        raise LoadError(str(exc)) from None
    insn_addr = meta["insn_addr"]
    if type(insn_addr) is not int or not 0 < insn_addr < DEFAULT_SIZE or insn_addr % INSN_BYTES:
        fail(f"insn_addr {insn_addr!r} must be a 16-byte aligned address below {DEFAULT_SIZE:#x}")
    tokens = meta["tokens"]
    labels = {q.label for q in Queue}
    if not isinstance(tokens, dict) or set(tokens) != labels:
        fail(f"tokens must give a count for each queue ({', '.join(sorted(labels))})")
    for label, count in tokens.items():
        if type(count) is not int or not 0 <= count <= 1 << 20:
            fail(f"token count {label}={count!r} must be an integer in [0, 2^20]")
    words = m["words"]
    if words.dtype != np.uint64 or words.ndim != 2 or words.shape[1] != 2 or not words.shape[0]:
        fail(f"words must be a non-empty (n, 2) uint64 array, got {words.dtype} {words.shape}")
    if insn_addr + words.nbytes > DEFAULT_SIZE:
        fail("the instructions run past the end of device memory")
    seg_addr, seg_len, seg_data = m["seg_addr"], m["seg_len"], m["seg_data"]
    for name, arr, dtype in (("seg_addr", seg_addr, np.int64), ("seg_len", seg_len, np.int64)):
        if arr.dtype != dtype or arr.ndim != 1:
            fail(f"{name} must be a 1-d {np.dtype(dtype)} array")
    if seg_addr.shape != seg_len.shape:
        fail("seg_addr and seg_len differ in length")
    if seg_data.dtype != np.uint8 or seg_data.ndim != 1 or seg_data.size != int(seg_len.sum()):
        fail("seg_data must be the uint8 contents of every segment, end to end")
    if (seg_len < 0).any() or (seg_addr < 0).any() or ((seg_addr + seg_len) > DEFAULT_SIZE).any():
        fail(f"a segment lies outside device memory [0, {DEFAULT_SIZE:#x})")
    offsets = np.concatenate([[0], np.cumsum(seg_len)])
    segments = tuple(
        (int(addr), seg_data[lo:hi].copy())
        for addr, lo, hi in zip(seg_addr, offsets[:-1], offsets[1:], strict=True)
    )
    reference = Srams(env)
    srams = {}
    for name in _SRAMS:
        array, want = m[f"sram_{name}"], getattr(reference, name)
        if array.shape != want.shape or array.dtype != want.dtype:
            fail(
                f"sram_{name} must be {want.dtype}{list(want.shape)} for this configuration, "
                f"got {array.dtype}{list(array.shape)}"
            )
        srams[name] = array
    return Replay(env.to_dict(), insn_addr, words, segments, srams, tokens)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open byte ranges, sorted."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]
