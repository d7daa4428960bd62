"""The ``accel`` command line: one subcommand per job, each registered by its own package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accel.env import config_path, get_env
from accel.errors import AccelError
from accel.lower.pipeline import lower, pass_names
from accel.sim import commands as sim_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accel",
        description="Tensor-expression compiler and simulator for a VTA-style accelerator.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env_cmd = sub.add_parser("env", help="print the active hardware configuration")
    env_cmd.set_defaults(func=_cmd_env)
    lower_cmd = sub.add_parser(
        "lower",
        help="print the loop program of a schedule",
        description="Lower the schedule returned by FUNC() in a Python file; FUNC returns "
        "(schedule, [tensors]).",
    )
    lower_cmd.add_argument("target", metavar="FILE:FUNC", help="e.g. my_schedules.py:vadd")
    lower_cmd.add_argument(
        "--dump-after", metavar="PASS", help="stop after this pass (see `accel passes`)"
    )
    lower_cmd.add_argument("--simple", action="store_true", help="print the body only")
    lower_cmd.add_argument(
        "--verify", action="store_true", help="check the program's invariants after every pass"
    )
    lower_cmd.set_defaults(func=_cmd_lower)
    passes_cmd = sub.add_parser("passes", help="list the lowering passes in order")
    passes_cmd.set_defaults(func=_cmd_passes)
    sim_commands.register(sub)
    return parser


def _cmd_env(args: argparse.Namespace) -> int:
    env = get_env()
    print(f"configuration: {env.name}  (from {config_path()})")
    print(f"GEMM core: BATCH={env.BATCH} BLOCK_IN={env.BLOCK_IN} BLOCK_OUT={env.BLOCK_OUT}")
    print(
        f"dtypes: inp={env.inp_dtype} wgt={env.wgt_dtype} acc={env.acc_dtype} out={env.out_dtype}"
    )
    for buf in ("UOP", "INP", "WGT", "ACC"):
        size = getattr(env, f"{buf}_BUFF_SIZE")
        depth = getattr(env, f"{buf}_BUFF_DEPTH")
        print(f"{buf.lower()} SRAM: {size} bytes = {depth} elements")
    return 0


def _cmd_lower(args: argparse.Namespace) -> int:
    import runpy

    path, _, func = args.target.rpartition(":")
    if not path or not func:
        raise AccelError(f"give FILE:FUNC, e.g. schedules.py:vadd, not {args.target!r}")
    if not Path(path).is_file():
        raise AccelError(f"{path} is not a file")
    namespace = runpy.run_path(path)  # the user's own schedule script, run as they asked
    if not callable(namespace.get(func)):
        raise AccelError(f"{path} defines no function {func!r}")
    result = namespace[func]()
    if not (isinstance(result, tuple) and len(result) == 2):
        raise AccelError(
            f"{path}:{func} returned {type(result).__name__}; it must return (schedule, [tensors])"
        )
    sch, tensors = result
    print(
        lower(
            sch,
            tensors,
            name=func,
            simple_mode=args.simple,
            dump_after=args.dump_after,
            verify=args.verify,
        )
    )
    return 0


def _cmd_passes(args: argparse.Namespace) -> int:
    for i, name in enumerate(pass_names()):
        print(f"{i:2d}  {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Every error a user can cause -- any AccelError, and OS errors such as
    a missing file or an unwritable output -- is one line on stderr and exit code 2, never a
    traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelError as exc:
        print(f"accel {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"accel {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
    return 2


def _one_line(message: str) -> str:
    """The first line of a message; a multi-line report (a deadlock's) is summarised."""
    lines = message.splitlines() or [""]
    return lines[0] if len(lines) == 1 else f"{lines[0]} (+{len(lines) - 1} more lines)"


if __name__ == "__main__":
    sys.exit(main())
