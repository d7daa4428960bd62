"""The ``accel tune`` and ``accel sweep`` commands (registered by ``accel.cli``)."""

from __future__ import annotations

import argparse
import json

from accel.env import PRESETS, Environment, get_env, preset
from accel.errors import ConfigError
from accel.tune.dispatch import export_table
from accel.tune.energy import EnergyModel
from accel.tune.sweep import grid, pareto_points, sweep
from accel.tune.tasks import conv2d_task, dense_task, resnet18_tasks
from accel.tune.tuner import tune


def register(sub) -> None:
    """Add ``tune`` and ``sweep`` to the ``accel`` command's subparsers."""
    tune_cmd = sub.add_parser(
        "tune",
        help="find the best tiles of operators (cycles, energy, SRAM) and log them",
        description="Tune operators on the simulated accelerator; results go to a JSON-lines "
        "log that `with accel.tune.apply_history_best(LOG)` applies at build time.",
    )
    _workload_args(tune_cmd)
    tune_cmd.add_argument(
        "--objective",
        default="cycles",
        help="cycles, energy or sram, or several separated by commas (Pareto front)",
    )
    tune_cmd.add_argument("--trials", type=int, default=64, help="candidates per operator")
    tune_cmd.add_argument("--log", default="tune.jsonl", help="JSON-lines log (resumed)")
    tune_cmd.add_argument(
        "--strategy", default="auto", choices=("auto", "exhaustive", "guided", "evolutionary")
    )
    tune_cmd.add_argument("--export", metavar="TABLE", help="write the best tiles as a table")
    _executor_args(tune_cmd)
    tune_cmd.set_defaults(func=_cmd_tune)

    sweep_cmd = sub.add_parser(
        "sweep",
        help="sweep accelerator configurations: cycles, energy and area per point",
        description="Evaluate configurations (presets and/or a grid of configuration keys) on "
        "operators or ResNet-18, reporting cycles, time, energy and area per point and the "
        "Pareto front.",
    )
    _workload_args(sweep_cmd)
    sweep_cmd.add_argument(
        "--presets", nargs="*", metavar="NAME", help=f"presets to include ({', '.join(PRESETS)})"
    )
    sweep_cmd.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid axis over the base configuration, e.g. --set DRAM_BUS_BYTES=8,16",
    )
    sweep_cmd.add_argument(
        "--trials", type=int, default=8, help="candidates per operator (0: the rule's tiles)"
    )
    sweep_cmd.add_argument("--log", default=None, help="JSON-lines log of every measurement")
    sweep_cmd.add_argument("--node", type=float, default=45.0, help="technology node, nm")
    sweep_cmd.add_argument("--json", metavar="FILE", help="write every point as JSON")
    sweep_cmd.add_argument("--plot", metavar="PNG", help="plot the Pareto front (matplotlib)")
    _executor_args(sweep_cmd)
    sweep_cmd.set_defaults(func=_cmd_sweep)


def _workload_args(cmd) -> None:
    cmd.add_argument(
        "--resnet18", action="store_true", help="ResNet-18's convolutions (the default)"
    )
    cmd.add_argument(
        "--conv",
        action="append",
        default=[],
        metavar="HW,CI,CO,K,S",
        help="a square convolution with bias and requantization (repeatable)",
    )
    cmd.add_argument("--dense", action="append", default=[], metavar="N,I,O", help="a dense layer")
    cmd.add_argument("--preset", help="configuration preset (default: the active configuration)")
    cmd.add_argument("--config", help="configuration file (vta_config.json format)")


def _executor_args(cmd) -> None:
    cmd.add_argument("--workers", type=int, default=None, help="worker processes")
    cmd.add_argument("--serial", action="store_true", help="measure in this process")
    cmd.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, tcp://host:8786")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")


def _env(args) -> Environment:
    if args.preset and args.config:
        raise ConfigError("give --preset or --config, not both")
    if args.preset:
        return preset(args.preset)
    if args.config:
        return Environment.from_file(args.config)
    return get_env()


def _ints(text: str, count: int, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise ConfigError(f"{what} {text!r}: expected {count} integers separated by commas")
    return values


def _tasks(args, env: Environment) -> list:
    tasks = [conv2d_task(*_ints(c, 5, "--conv"), env=env) for c in args.conv]
    tasks += [dense_task(*_ints(d, 3, "--dense"), env=env) for d in args.dense]
    if args.resnet18 or not tasks:
        tasks += resnet18_tasks(env)
    return tasks


def _executor(args):
    if args.scheduler:
        return args.scheduler
    return "serial" if args.serial else None


def _cmd_tune(args: argparse.Namespace) -> int:
    env = _env(args)
    objectives = tuple(o.strip() for o in args.objective.split(","))
    results = tune(
        _tasks(args, env),
        objective=objectives if len(objectives) > 1 else objectives[0],
        trials=args.trials,
        log=args.log,
        executor=_executor(args),
        workers=args.workers,
        strategy=args.strategy,
        progress=not args.no_progress,
    )
    for result in results:
        print(result.summary())
    if args.export:
        count = export_table(args.log, args.export, objectives)
        print(f"wrote {count} entries to {args.export}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    base = _env(args)
    axes = {}
    for item in args.set:
        key, _, values = item.partition("=")
        axes[key.strip()] = _ints(values, len(values.split(",")), f"--set {key}")
    if axes:
        configs, refused = grid(base, **axes)
    else:  # presets alone compare themselves; nothing given: the active configuration
        configs, refused = ({} if args.presets else {"base": base}), {}
    for name in args.presets or []:
        configs[f"preset:{name}"] = preset(name)
    for name, reason in refused.items():
        print(f"skipped {name}: {reason}")
    model = EnergyModel(node_nm=args.node)
    points = sweep(
        configs,
        lambda env: _tasks(args, env),
        trials=args.trials,
        executor=_executor(args),
        workers=args.workers,
        log=args.log,
        energy_model=model,
        progress=not args.no_progress,
    )
    front = {p.name for p in pareto_points(points)}
    print(
        f"{'configuration':<40}{'cycles':>14}{'time us':>11}{'GEMM':>7}{'energy uJ':>11}"
        f"{'area mm2':>10}  front"
    )
    for p in points:
        o = p.objectives()
        print(
            f"{p.name:<40}{p.cycles:>14,}{o['time_us']:>11,.1f}{p.utilization:>7.1%}"
            f"{o['energy_uj']:>11,.1f}{o['area_mm2']:>10.2f}  {'*' if p.name in front else ''}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [
                    {
                        "name": p.name,
                        "config": p.env.to_dict(),
                        **p.objectives(),
                        "utilization": p.utilization,
                        "energy_pj": p.energy_pj,
                        "area_mm2_by_component": p.area_mm2,
                    }
                    for p in points
                ],
                f,
                indent=1,
            )
    if args.plot:
        from accel.tune.plots import plot_pareto  # noqa: PLC0415 - matplotlib is optional

        plot_pareto(points, args.plot)
    return 0
