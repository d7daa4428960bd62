"""Command-line subcommands of the simulator: ``accel disasm`` and ``accel replay``."""

from __future__ import annotations

import argparse
from pathlib import Path

from accel.env import get_env
from accel.errors import AccelError
from accel.hw.disasm import disassemble
from accel.sim.replay import load_replay


def register(subparsers) -> None:
    """Add the simulator's subcommands to the ``accel`` parser."""
    disasm = subparsers.add_parser(
        "disasm",
        help="disassemble a replay file or a raw binary of instruction words",
        description="Print one instruction a line. FILE is a replay file (.npz) or raw "
        "little-endian 128-bit instruction words (decoded with the active configuration).",
    )
    disasm.add_argument("file", type=Path)
    disasm.set_defaults(func=_cmd_disasm)
    replay = subparsers.add_parser(
        "replay",
        help="re-run a replay file and print its statistics and cycle report",
    )
    replay.add_argument("file", type=Path)
    replay.add_argument("--trace", type=Path, help="write a Chrome trace-event JSON file")
    replay.set_defaults(func=_cmd_replay)


def _cmd_disasm(args: argparse.Namespace) -> int:
    data = _read_bytes(args.file)
    if data[:2] == b"PK":  # a zip archive, so a replay file (truncated ones included)
        replay = load_replay(args.file)
        print(disassemble(replay.words, replay.env))
        return 0
    if len(data) % 16:
        raise AccelError(
            f"{args.file} is neither a replay file (.npz) nor raw 128-bit instruction words "
            f"(its {len(data)} bytes are not a whole number of 16-byte instructions)"
        )
    print(disassemble(data, get_env()))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    replay = load_replay(args.file)
    report, _ = replay.run(trace=args.trace is not None)
    print(
        f"replay of {args.file}: {len(replay.words)} instructions, configuration {replay.env.name}"
    )
    print(report.summary())
    if args.trace is not None:
        report.trace.to_chrome_json(args.trace)
        print(f"trace written to {args.trace}")
    return 0


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AccelError(f"cannot read {path}: {exc.strerror}") from None
