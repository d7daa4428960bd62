"""The ``accel`` command line: one subcommand per job, each registered by its own package."""

from __future__ import annotations

import argparse
import sys

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
        raise SystemExit("accel lower: give FILE:FUNC, e.g. schedules.py:vadd")
    namespace = runpy.run_path(path)
    if func not in namespace:
        raise SystemExit(f"accel lower: {path} defines no function {func!r}")
    sch, tensors = namespace[func]()
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelError as exc:
        print(f"accel {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
