"""``accel.graph.build`` and :class:`Program`: a packed graph whose accelerator steps are built
modules, run on the simulated accelerator with the host doing the rest.

Every accelerator step is built once. The program allocates, once, a device array for every
tensor an accelerator step reads or writes and for every packed constant; consecutive
accelerator steps hand over their tensors in device memory, and a tensor is packed into device
memory (an *upload*) or read back (a *download*) only where a host step meets an accelerator
step. Which transfers happen is fixed when the program is made, so every run does the same
work in the same order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from accel.build import build as build_module
from accel.env import Environment, using_env
from accel.errors import GraphError
from accel.graph.graph import Graph
from accel.graph.operators import declare, ident
from accel.graph.ops import KERNELS
from accel.graph.packing import ACCEL, PackedGraph, Step, not_quantized, pack
from accel.graph.profile import Profile, StepProfile
from accel.graph.program_file import read_program, save_program
from accel.graph.qdq import QDQ_OPS
from accel.graph.quantization import quantize
from accel.graph.quantized import QuantizedGraph
from accel.lower.passes.sram import sram_layout
from accel.runtime.module import Module
from accel.runtime.ndarray import Device, NDArray, array, empty
from accel.sim import get_device
from accel.sim.stats import INSN_COUNTERS, TRAFFIC_COUNTERS

EXT_DEV = Device("ext_dev", 0)
# the simulator counters one inference adds up
COUNTERS = ("cycles", "gemm_useful_cycles", *TRAFFIC_COUNTERS, *INSN_COUNTERS)


def build(
    graph: Graph | PackedGraph,
    env: Environment | None = None,
    tiles: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Program:
    """Build every accelerator step of ``graph`` into a module and return the :class:`Program`.

    ``graph`` is a quantized graph (``accel.graph.quantize``), a packed one (``pack``), or a
    QDQ model's float graph, which is quantized here with its own scales; a plain float graph
    raises GraphError (quantize it first: its scales need calibration data). ``tiles`` maps a
    step's name, or any node it computes, to tiles of its ``topi`` operator (``Conv2dTiles``,
    ``DenseTiles``, ``VectorTiles``) replacing the default ones, which ``topi`` picks when the
    module is built (tuned tiles inside ``accel.tune.apply_history_best``).
    ``progress(i, n, name)`` is called before each of the ``n`` steps is built.

    Raises GraphError for an unknown name in ``tiles``; ScheduleError / AllocationError for
    tiles that do not fit their operator.
    """
    if isinstance(graph, PackedGraph):
        if env is not None and env != graph.env:
            raise GraphError("the packed graph was packed for another configuration than env")
        packed = graph
    else:
        packed = pack(quantized(graph), env)
    overrides = _tiles(packed, tiles or {})
    chosen, modules = {}, {}
    built: dict[str, Module] = {}  # by module_key: steps that differ only in data share one
    steps = packed.accel_steps
    with using_env(packed.env):
        for i, step in enumerate(steps):
            if progress is not None:
                progress(i, len(steps), step.name)
            declared = declare(step.kind, step.args, dict(step.params), packed.env)
            # default tiles asked now, so that tuned ones (accel.tune.apply_history_best) apply
            chosen[step.name] = overrides.get(step.name) or declared.default_tiles(packed.env)
            key = module_key(step, chosen[step.name])
            if key not in built:
                schedule = declared.schedule(packed.env, chosen[step.name])
                name = ident(step.name, i)
                built[key] = build_module(schedule, declared.op.args, name=name)
            modules[step.name] = built[key]
    return Program(packed, modules, chosen)


def module_key(step: Step, tiles) -> str:
    """What a step's module depends on: its kind, argument shapes, fusion parameters (the ALU
    program with its immediates) and tiles; not the tensors' names or values."""
    args = tuple((a.kind, a.shape, a.dtype) for a in step.args)
    params = sorted((k, v) for k, v in step.params.items() if k != "bias_offset")
    return repr((step.kind, args, params, tiles))


def quantized(graph: Graph) -> QuantizedGraph:
    """``graph`` itself when quantized; a QDQ model quantized with its own scales; else a
    GraphError saying to quantize."""
    if isinstance(graph, QuantizedGraph):
        return graph
    if not isinstance(graph, Graph):
        raise GraphError(f"build takes a quantized graph, got {type(graph).__name__}")
    if any(n.op in QDQ_OPS for n in graph.nodes_in_order()):
        return quantize(graph)
    raise GraphError(not_quantized(graph))


def _tiles(packed: PackedGraph, tiles: Mapping[str, Any]) -> dict[str, Any]:
    """``tiles`` by step name (given by step or node name); GraphError for another name."""
    chosen = {}
    for key, value in tiles.items():
        step = next((s for s in packed.accel_steps if key == s.name or key in s.nodes), None)
        if step is None:
            names = ", ".join(s.name for s in packed.accel_steps) or "none"
            raise GraphError(
                f"tiles given for {key!r}, which is no accelerator step or node of one "
                f"(accelerator steps: {names})"
            )
        chosen[step.name] = value
    return chosen


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a run does: ``kind`` "upload" / "download" a ``tensor``, or run a ``step``."""

    kind: str
    tensor: str = ""
    step: Step | None = None


def plan_actions(packed: PackedGraph) -> list[Action]:
    """The steps in order with the transfers they need: a tensor is uploaded before the first
    accelerator step that reads it while only the host has it, downloaded before the first host
    step (or graph output) that needs it while only the device has it."""
    graph = packed.graph
    on_host = set(graph.inputs) | set(graph.constants)
    on_device: set[str] = set()
    actions = []
    for step in packed.steps:
        if step.target == ACCEL:
            for t in step.inputs:
                if t not in on_device:
                    actions.append(Action("upload", t))
                    on_device.add(t)
            on_device.add(step.output)
            on_host.discard(step.output)
        else:
            for t in step.inputs:
                if t not in on_host:
                    actions.append(Action("download", t))
                    on_host.add(t)
            on_host.add(step.output)
            on_device.discard(step.output)
        actions.append(Action("step", step=step))
    for t in graph.outputs:
        if t not in on_host:
            actions.append(Action("download", t))
            on_host.add(t)
    return actions


class Program:
    """A quantized graph ready to run on the simulated accelerator (made by
    :func:`build` or :func:`accel.graph.load_program`).

    ``run(x)`` / ``run(name=x, ...)`` gives what the graph's integer reference executor
    (``QuantizedGraph.run``) gives, bit for bit, with the same output convention (one output as
    an array, several as a tuple). Also: ``input_shapes``, ``output_shapes``, ``metrics``,
    ``profile()``, ``cycle_count()``, ``compute_duration_us()``, ``save(path)``.
    """

    def __init__(self, packed: PackedGraph, modules: Mapping[str, Module], tiles: Mapping):
        self.packed = packed
        self.graph = packed.graph
        self.env = packed.env
        self.modules = dict(modules)
        self.tiles = dict(tiles)
        self.actions = plan_actions(packed)
        self._profile: Profile | None = None
        self._counters: dict[str, int] | None = None
        self._metrics: dict | None = None
        with using_env(self.env):
            self._device = {
                t: empty(lay.packed, "int8", EXT_DEV) for t, lay in packed.layouts.items()
            }
            self._device.update({k: array(v, EXT_DEV) for k, v in packed.constants.items()})
        self._bound = {s.name: [self._arg(a) for a in s.args] for s in packed.accel_steps}

    def _arg(self, arg) -> NDArray:
        base = self._device[arg.name]
        return base if tuple(base.shape) == arg.shape else _DeviceView(base, arg.shape)

    # -- shapes ---------------------------------------------------------------------------
    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every input's shape, by name (inputs are float32 unless the graph says otherwise)."""
        return {t: self.graph.tensors[t].shape for t in self.graph.inputs}

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        return {t: self.graph.tensors[t].shape for t in self.graph.outputs}

    # -- running --------------------------------------------------------------------------
    def run(self, *args: np.ndarray, **named: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run one inference on the inputs, given in order or by name; the host computes the
        host steps, the simulator the accelerator steps. Raises ArgumentError (naming the
        input) for a missing, unknown or mistyped input, as ``Graph.run`` does."""
        values: dict[str, np.ndarray] = dict(self.graph.constants)
        values.update(self.graph._bind(args, named))
        simulator = get_device(self.env).simulator
        records, counters = [], dict.fromkeys(COUNTERS, 0)
        for action in self.actions:
            start = time.perf_counter()
            if action.kind == "upload":
                layout = self.packed.layouts[action.tensor]
                self._device[action.tensor].copyfrom(layout.pack(values[action.tensor]))
                record = _transfer(action, start)
            elif action.kind == "download":
                layout = self.packed.layouts[action.tensor]
                values[action.tensor] = layout.unpack(self._device[action.tensor].numpy())
                record = _transfer(action, start)
            elif action.step.target == ACCEL:
                before = dict(simulator.stats)
                self.modules[action.step.name](*self._bound[action.step.name])
                after = simulator.stats
                delta = {k: after[k] - before[k] for k in COUNTERS}
                for k in COUNTERS:
                    counters[k] += delta[k]
                record = StepProfile(
                    action.step.name,
                    "accelerator",
                    action.step.kind,
                    action.step.nodes,
                    1000 * (time.perf_counter() - start),
                    delta["cycles"],
                    delta["gemm_useful_cycles"],
                )
            else:
                values[action.step.output] = self._host(action.step, values)
                record = StepProfile(
                    action.step.name,
                    "host",
                    self.graph.node(action.step.nodes[0]).op,
                    action.step.nodes,
                    1000 * (time.perf_counter() - start),
                )
            records.append(record)
        self._profile = Profile(records, self.env.CLOCK_MHZ)
        self._counters = counters
        results = tuple(np.array(values[t], copy=True) for t in self.graph.outputs)
        return results[0] if len(results) == 1 else results

    def _host(self, step: Step, values: dict[str, np.ndarray]) -> np.ndarray:
        node = self.graph.node(step.nodes[0])
        result = KERNELS[node.op](node.attrs, *(values[t] for t in node.inputs))
        return np.asarray(result, dtype=self.graph.tensors[step.output].dtype)

    def _ensure_run(self) -> None:
        """Figures need one inference; the work does not depend on the data, so zeros do."""
        if self._profile is None:
            zeros = {
                t: np.zeros(self.graph.tensors[t].shape, self.graph.tensors[t].dtype)
                for t in self.graph.inputs
            }
            self.run(**zeros)

    # -- figures --------------------------------------------------------------------------
    def profile(self) -> Profile:
        """The last inference per step (one on zeros if nothing ran yet): where each step ran,
        host milliseconds, cycles, GEMM utilization; ``print(prog.profile())`` shows a table."""
        self._ensure_run()
        return self._profile

    def cycle_count(self) -> int:
        """Simulated cycles of one inference (the same for every input)."""
        self._ensure_run()
        return self._counters["cycles"]

    def compute_duration_us(self, clock_mhz: float | None = None) -> float:
        """The accelerator's time for one inference in microseconds at ``clock_mhz`` (default:
        the configuration's clock); host steps not included."""
        return self.cycle_count() / (clock_mhz or self.env.CLOCK_MHZ)

    @property
    def metrics(self) -> dict:
        """Figures of one inference:

        - ``weight_bytes``: packed weights, biases and multipliers in device memory;
          ``host_weight_bytes``: constants the host steps read;
        - ``sram_peak``: per on-chip buffer, the most tiles (and bytes) any step uses, and its
          capacity;
        - ``instructions``: per kind (load, store, gemm, alu, finish) and the total;
        - ``dram_bytes``: bytes the accelerator loads (inp, wgt, acc, uop) and stores (out);
          ``transfer_bytes``: bytes packed into and read back from device memory by the host;
        - ``cycles``, ``gemm_utilization``;
        - ``nodes`` and ``steps``: how many run on the accelerator and on the host.
        """
        self._ensure_run()
        if self._metrics is None:
            self._metrics = self._compute_metrics()
        return self._metrics

    def _compute_metrics(self) -> dict:
        c = self._counters
        packed = self.packed
        sram: dict[str, dict] = {}
        for module in self.modules.values():
            layout = sram_layout(module.lowered.body, self.env)
            for scope, use in layout["scopes"].items():
                entry = sram.setdefault(scope, {"tiles": 0, "capacity": use["capacity"]})
                entry["tiles"] = max(entry["tiles"], use["used"])
        host_consts = {
            t for s in packed.host_steps for t in self.graph.node(s.nodes[0]).inputs
        } & set(self.graph.constants)
        transfers = {"upload": 0, "download": 0}
        for a in self.actions:
            if a.kind in transfers:
                transfers[a.kind] += packed.layouts[a.tensor].nbytes
        return {
            "weight_bytes": int(sum(v.nbytes for v in packed.constants.values())),
            "host_weight_bytes": int(sum(self.graph.constants[t].nbytes for t in host_consts)),
            "sram_peak": sram,
            "instructions": {
                "load": c["load_insns"],
                "store": c["store_insns"],
                "gemm": c["gemm_insns"],
                "alu": c["alu_insns"],
                "finish": c["finish_insns"],
                "total": sum(c[k] for k in COUNTERS if k.endswith("_insns")),
            },
            "dram_bytes": {
                "inp": c["inp_load_nbytes"],
                "wgt": c["wgt_load_nbytes"],
                "acc": c["acc_load_nbytes"],
                "uop": c["uop_load_nbytes"],
                "out": c["out_store_nbytes"],
            },
            "transfer_bytes": transfers,
            "cycles": c["cycles"],
            "gemm_utilization": c["gemm_useful_cycles"] / c["cycles"] if c["cycles"] else 0.0,
            "nodes": {
                "accelerator": sum(len(s.nodes) for s in packed.accel_steps),
                "host": sum(len(s.nodes) for s in packed.host_steps),
            },
            "steps": {"accelerator": len(packed.accel_steps), "host": len(packed.host_steps)},
        }

    def save(self, path) -> None:
        """Write the program to ``path``: a zip of JSON and ``.npy`` files, no code and no
        pickles (``accel/graph/program_file.py``). Raises SaveError."""
        save_program(self, path)

    def __repr__(self) -> str:
        return (
            f"<accel.graph.Program {self.graph.name}: {len(self.packed.accel_steps)} accelerator "
            f"steps, {len(self.packed.host_steps)} host steps>"
        )


def load_program(path) -> Program:
    """A program saved with ``Program.save``, checked completely (see
    ``accel/graph/program_file.py``). Raises LoadError naming what is missing, malformed or
    inconsistent."""
    return Program(*read_program(path))


def _transfer(action: Action, start: float) -> StepProfile:
    return StepProfile(
        action.tensor, action.kind, "transfer", (), 1000 * (time.perf_counter() - start)
    )


class _DeviceView(NDArray):
    """Another shape of a device array's memory (a flattened activation read as dense data):
    the same address, a reshaped view of the same data; it owns nothing and keeps the base
    array alive. (Modules find device arrays by ``memory`` and ``addr``.)"""

    def __init__(self, base: NDArray, shape: tuple[int, ...]):
        super().__init__(base._data.reshape(shape), base.device)
        self.base = base
        self.memory = base.memory
        self.addr = base.addr
