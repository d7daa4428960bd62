"""The ``accel`` command line: one subcommand per job, each registered by its own package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accel.env import PRESETS, config_path, get_env, preset, using_env
from accel.errors import AccelError
from accel.lower.pipeline import lower, pass_names
from accel.sim import commands as sim_commands
from accel.tune import commands as tune_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accel",
        description="Tensor-expression compiler and simulator for a VTA-style accelerator.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env_cmd = sub.add_parser("env", help="print the active hardware configuration")
    env_cmd.add_argument(
        "--presets", action="store_true", help="list the configuration presets instead"
    )
    env_cmd.add_argument("--save", metavar="FILE", help="write the configuration to FILE")
    env_cmd.add_argument("--preset", help="the preset to print or save instead of the active one")
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
    tune_commands.register(sub)
    _register_run(sub)
    return parser


def _cmd_env(args: argparse.Namespace) -> int:
    if args.presets:
        for name, (about, changes) in PRESETS.items():
            keys = " ".join(f"{k}={v}" for k, v in changes.items())
            print(f"{name:<14}{about}" + (f"\n{'':<14}{keys}" if keys else ""))
        return 0
    env = preset(args.preset) if args.preset else get_env()
    if args.save:
        env.save(args.save)
        print(f"wrote {env.name} to {args.save}")
        return 0
    source = f"preset {args.preset}" if args.preset else config_path()
    print(f"configuration: {env.name}  (from {source})")
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


# -- accel run ------------------------------------------------------------------------------------


def _register_run(sub) -> None:
    run = sub.add_parser(
        "run",
        help="import, quantize, build and run an ONNX model on the simulated accelerator",
        description="Run MODEL.onnx on the inputs in x.npy on the simulated accelerator and print "
        "its outputs (the top classes of a classifier), cycles, GEMM utilization and where the "
        "time went. x.npy holds one input of the model's shape, or several stacked along a new "
        "leading axis (one inference each); along a symbolic batch dimension, each item is "
        "one inference. A float model is quantized to int8 with the "
        "calibration inputs of --calibrate (without it: on the inputs themselves); a model "
        "quantized by onnxruntime (QDQ) keeps its own scales.",
    )
    run.add_argument("model", type=Path, metavar="MODEL.onnx")
    run.add_argument("--input", type=Path, required=True, metavar="x.npy", help="the input(s)")
    run.add_argument(
        "--calibrate",
        type=Path,
        metavar="samples.npy",
        help="calibration inputs, each of the model's input shape, stacked along a new axis",
    )
    run.add_argument("--config", type=Path, metavar="vta_config.json", help="hardware config")
    run.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to show (5)")
    run.add_argument("--profile", action="store_true", help="print the per-step profile")
    run.add_argument("--trace", type=Path, metavar="out.json", help="write a Chrome trace")
    run.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    """``accel run``: every failure is one line on stderr and exit code 2, never a traceback."""
    try:
        if args.config is not None:
            _need_file(args.config, "configuration")
            with using_env(args.config):
                return _run(args)
        return _run(args)
    except KeyboardInterrupt:
        print("accel run: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command's contract: one line, no traceback
        kind = "" if isinstance(exc, (AccelError, OSError)) else f"{type(exc).__name__}: "
        message = " ".join(f"{kind}{exc}".split())
        print(f"accel run: error: {message}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    import accel.graph
    from accel.frontend import from_onnx

    if args.top_k < 1:
        raise AccelError(f"--top-k must be at least 1, got {args.top_k}")
    _need_file(args.model, "model")
    name, declared = _model_input(args.model)
    x = _load_array(args.input, "input")
    rank = len(declared)
    if x.ndim not in (rank, rank + 1):
        raise AccelError(
            f"{args.input}: shape {x.shape} is not an input of {args.model.name} "
            f"({_show_dims(declared)}), nor several stacked along a new leading axis"
        )
    if x.ndim == rank + 1:
        inputs = list(x)
    elif declared and declared[0] is None:  # a symbolic batch: one inference per item
        inputs = [x[i : i + 1] for i in range(x.shape[0])]
    else:
        inputs = [x]
    if not inputs:
        raise AccelError(f"{args.input} holds no input")
    shape = inputs[0].shape
    if any(d is not None and d != s for d, s in zip(declared, shape)):
        raise AccelError(
            f"{args.input}: input {name!r} of {args.model.name} is {_show_dims(declared)}, "
            f"got {tuple(shape)}"
        )
    inputs = [np.ascontiguousarray(v, dtype=np.float32) for v in inputs]
    graph = from_onnx(args.model, shape={name: shape})
    if any(n.op in ("quantize_linear", "dequantize_linear") for n in graph.nodes_in_order()):
        if args.calibrate is not None:
            raise AccelError(
                f"{args.model.name} is already quantized (QDQ): it keeps its own scales; "
                "leave out --calibrate"
            )
        qg = accel.graph.quantize(graph)
    else:
        samples = inputs
        if args.calibrate is not None:
            samples = _calibration(_load_array(args.calibrate, "calibration"), shape, args)
        else:
            print("note: no --calibrate given: calibrating on the input itself")
        qg = accel.graph.quantize(graph, calibration=_bar(samples, "calibrate"))
    bar = _bar(None, "build", total=len(accel.graph.pack(qg).accel_steps))
    prog = accel.graph.build(qg, progress=lambda i, n, step: bar.update(1) if bar else None)
    if bar:
        bar.close()
    outputs = [prog.run(v) for v in _bar(inputs, "run")]
    _print_outputs(prog, outputs, len(inputs) > 1, args.top_k)
    _print_time(prog, len(inputs))
    if args.profile:
        print(prog.profile().table())
    if args.trace is not None:
        args.trace.write_text(json.dumps(prog.profile().to_chrome_trace()))
        print(f"trace of the last inference written to {args.trace}")
    return 0


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise AccelError(f"no {what} file {path}")


def _load_array(path: Path, what: str):
    import numpy as np

    _need_file(path, what)
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise AccelError(f"{path} is not a .npy array: {exc}") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise AccelError(f"{path}: expected a numeric .npy array")
    return value


def _model_input(path: Path) -> tuple[str, tuple[int | None, ...]]:
    """The model's one input: its name and declared dimensions (None where symbolic)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds
        raise AccelError(f"{path} is not an ONNX model: {exc}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise AccelError(f"{path.name} takes {len(inputs)} inputs ({names}); accel run feeds one")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _show_dims(dims) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"


def _calibration(samples, shape, args) -> list:
    """Calibration inputs of ``shape`` from the stacked ``samples``."""
    if tuple(samples.shape[1:]) == tuple(shape):
        rows = list(samples)
    elif shape[0] == 1 and tuple(samples.shape[1:]) == tuple(shape[1:]):
        rows = [samples[i : i + 1] for i in range(samples.shape[0])]  # a batch of single inputs
    else:
        raise AccelError(
            f"{args.calibrate}: shape {samples.shape} is not inputs of shape {tuple(shape)} "
            "stacked along a new leading axis"
        )
    if not rows:
        raise AccelError(f"{args.calibrate} holds no calibration input")
    return [r.astype("float32") for r in rows]


def _bar(iterable, what: str, total: int | None = None):
    """A progress bar from tqdm when it is installed (shown on a terminal only); the iterable
    itself, or None for a bar updated by hand, without it."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=what, disable=None, leave=False, file=sys.stderr)


def _print_outputs(prog, outputs: list, several: bool, top_k: int) -> None:
    import numpy as np

    names = list(prog.output_shapes)
    for run, result in enumerate(outputs):
        results = result if isinstance(result, tuple) else (result,)
        for name, value in zip(names, results):
            prefix = f"input {run}: " if several else ""
            if value.ndim == 2 and value.shape[1] > 1:
                for row, scores in enumerate(value):
                    order = np.argsort(-scores, kind="stable")[:top_k]
                    tops = ", ".join(f"{k} ({scores[k]:.4g})" for k in order)
                    item = f"[{row}] " if value.shape[0] > 1 else ""
                    print(f"{prefix}{name}{item}: class {order[0]}  top-{len(order)}: {tops}")
            else:
                text = np.array2string(value, precision=4, threshold=20)
                print(f"{prefix}{name} {value.dtype}{list(value.shape)}: {' '.join(text.split())}")


def _print_time(prog, runs: int) -> None:
    profile = prog.profile()
    metrics = prog.metrics
    cycles = prog.cycle_count()
    us = prog.compute_duration_us()
    steps, nodes = metrics["steps"], metrics["nodes"]
    print(
        f"accelerator: {cycles:,} cycles per inference ({us:,.1f} us at "
        f"{prog.env.CLOCK_MHZ} MHz), GEMM utilization {100 * profile.utilization:.1f} %"
        + (f"; {runs} inferences: {runs * cycles:,} cycles" if runs > 1 else "")
    )
    host_ops = [r.name for r in profile.records if r.where == "host"]
    print(
        f"where: {steps['accelerator']} accelerator steps ({nodes['accelerator']} nodes), "
        f"{steps['host']} host steps ({nodes['host']} nodes: {', '.join(host_ops) or 'none'})"
    )
    print(
        f"host time of the last inference: {profile.host_ms():.1f} ms (simulating the "
        f"accelerator {profile.host_ms('accelerator'):.1f} ms, host operators "
        f"{profile.host_ms('host'):.1f} ms, transfers "
        f"{profile.host_ms('upload') + profile.host_ms('download'):.1f} ms)"
    )


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
