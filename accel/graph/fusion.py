"""Partition and fusion: which nodes of a quantized graph run on the accelerator, grouped into
which operators, and why the others stay on the host.

The nodes are visited in order; each unvisited node either starts an accelerator *step* (a
pattern below, taking the nodes it fuses) or becomes a host step of its own. A step's interior
results have exactly one consumer, inside the step, so only its last result leaves it.

- ``conv2d``: ``qconv`` → ``requantize`` → clamps → [``qadd`` → clamps]: the GEMM, then the
  bias, requantization, clip and residual add on the ALU (a *clamp* is an int8 ``relu`` or
  ``clip``);
- ``dense``: [``reshape`` (a flatten)] → ``qdense`` → ``requantize`` → ... as above;
- ``sum_pool``: ``qsum_pool`` → ``requantize`` → clamps (average pooling);
- ``max_pool``: ``max_pool``;
- ``add``: ``qadd`` → clamps;
- ``alu``: a clamp, or a ``requantize`` of int8 data, → clamps.

A ReLU or Clip after a requantization folds into its clip bounds; a ``qadd`` after one becomes
``MUL`` by its multiplier, the other operand loaded into the accumulator and multiplied by its
own, a tensor ``ADD``, the rounding shift and the clip — the integer reference executor's steps
(``accel.graph.requant``), in the same order, so results are equal bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from accel.env import Environment
from accel.graph.ir import Node
from accel.graph.layout import round_up
from accel.graph.quantized import QuantizedGraph
from accel.graph.requant import AluStep as RequantStep
from accel.graph.requant import clip_steps, requantize_program, rounding_shift
from accel.topi.common import AluStep

MULTIPLIER, RESIDUAL = "multiplier", "residual"


@dataclass(frozen=True)
class Match:
    """An accelerator step found by a pattern: its nodes (in graph order), activation inputs,
    output tensor, parameters and the reason it runs there."""

    kind: str
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    params: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class Refusal:
    """Why a node stays on the host."""

    reason: str


def topi_steps(steps: tuple[RequantStep, ...], operand: str = MULTIPLIER) -> tuple[AluStep, ...]:
    """The integer reference's ALU steps as ``topi`` epilogue steps (a step without immediate
    reads the tensor ``operand``)."""
    return tuple(
        AluStep(s.op.name.lower(), s.imm, None if s.imm is not None else operand) for s in steps
    )


def fold_clamp(lo: int, hi: int, node: Node) -> tuple[int, int]:
    """The clip bounds of ``clip(x, lo, hi)`` followed by ``node`` (an int8 ``relu`` or
    ``clip``): clamps compose into one clamp."""
    a, b = (0, 127) if node.op == "relu" else (int(node.attrs["min"]), int(node.attrs["max"]))
    return min(max(lo, a), b), max(min(hi, b), a)


@dataclass
class Matcher:
    """The patterns, over one quantized graph."""

    graph: QuantizedGraph
    env: Environment
    taken: set[str] = field(default_factory=set)

    # -- graph queries --------------------------------------------------------------------
    def only_consumer(self, tensor: str) -> Node | None:
        """The one node reading ``tensor`` when it is not also a graph output, else None."""
        consumers = self.graph.consumers(tensor)
        if len(consumers) != 1 or tensor in self.graph.outputs:
            return None
        return consumers[0] if consumers[0].name not in self.taken else None

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.graph.tensors[tensor].shape

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.graph.constants

    def int8_activation(self, tensor: str) -> bool:
        info = self.graph.tensors[tensor]
        return info.dtype.name == "int8" and len(info.shape) == 4 and not self.is_constant(tensor)

    # -- the patterns ---------------------------------------------------------------------
    def match(self, node: Node) -> Match | Refusal | None:
        """The step ``node`` starts, a refusal, or None for a node another step will take."""
        rule = PATTERNS.get(node.op)
        if rule is None:
            return Refusal(host_reason(node))
        return rule(self, node)

    def _qconv(self, node: Node) -> Match | Refusal:
        a = node.attrs
        why = conv_refusal(self, node)
        if why:
            return Refusal(why)
        kh, kw = self.shape(node.inputs[1])[2:]
        params = {"stride": a["strides"][0], "padding": a["pads"][0], "bias": len(node.inputs) > 2}
        notes = [f"{kh}x{kw} stride {a['strides'][0]}"]
        cin = self.shape(node.inputs[0])[1]
        return self._layer("conv2d", node, [node.inputs[0]], params, notes, cin)

    def _qdense(self, node: Node) -> Match | Refusal:
        why = dense_refusal(self, node)
        if why:
            return Refusal(why)
        data = node.inputs[0]
        nodes, flatten = [], None
        flat = self.graph.producer(data)
        if flat is not None and flatten_fusable(self, flat):
            nodes, flatten, data = [flat.name], self.shape(flat.inputs[0]), flat.inputs[0]
        params = {"bias": len(node.inputs) > 2, "flatten": flatten}
        notes = ["flatten folded into the weight order"] if flatten else []
        cin = self.shape(data)[1]
        return self._layer("dense", node, [data], params, notes, cin, nodes)

    def _layer(self, kind, node, inputs, params, notes, cin, before=()) -> Match:
        """The requantize after a qconv / qdense and what fuses after it."""
        req = self.only_consumer(node.outputs[0])
        nodes = [*before, node.name, req.name]
        per_channel = isinstance(req.attrs["multiplier"], tuple)
        tail = self._tail(req, nodes)
        steps = tail["steps"]
        if params["bias"] and steps[0].op == "add" and steps[0].imm is not None:
            # the pre-shift's rounding constant joins the bias: (acc + b) + c = acc + (b + c)
            # modulo 2^32, one ALU operation less per output tile
            params = {**params, "bias_offset": steps[0].imm}
            steps = steps[1:]
        cout = self.shape(node.outputs[0])[1]
        what = ["bias"] if params["bias"] else []
        what.append("per-channel requantization" if per_channel else "requantization")
        what += tail["what"]
        notes = notes + [", ".join(what) + " on the ALU"]
        notes += padding_notes(cin, cout, self.env)
        return Match(
            kind,
            tuple(nodes),
            tuple(inputs) + tail["residual"],
            tail["output"],
            {**params, "steps": steps, "per_channel": per_channel, **tail["params"]},
            f"{' + '.join(self.graph.node(n).op for n in nodes)}: " + "; ".join(notes),
        )

    def _tail(self, req: Node, nodes: list[str]) -> dict:
        """The requantization's steps with the clamps and the residual add that follow it."""
        a = req.attrs
        multiplier = None if isinstance(a["multiplier"], tuple) else a["multiplier"]
        lo, hi, out = a["lo"], a["hi"], req.outputs[0]
        lo, hi, out, clamps = self._clamps(lo, hi, out, nodes)
        steps = topi_steps(requantize_program(multiplier, a["pre_shift"], a["shift"], lo, hi))
        what = ["ReLU/clip"] if clamps else []
        add = self.only_consumer(out)
        if add is None or add.op != "qadd" or not self._fusable_add(add, out):
            return {"steps": steps, "output": out, "residual": (), "params": {}, "what": what}
        mine = 0 if add.inputs[0] == out else 1
        other = add.inputs[1 - mine]
        m_self = add.attrs["multiplier_a" if mine == 0 else "multiplier_b"]
        m_other = add.attrs["multiplier_b" if mine == 0 else "multiplier_a"]
        nodes.append(add.name)
        lo, hi, out, more = self._clamps(add.attrs["lo"], add.attrs["hi"], add.outputs[0], nodes)
        steps += (AluStep("mul", m_self), AluStep("add", operand=RESIDUAL))
        steps += topi_steps(rounding_shift(add.attrs["shift"]) + clip_steps(lo, hi))
        params = {"residual_steps": (AluStep("mul", m_other),)}
        what.append("residual qadd" + (" + ReLU/clip" if more else ""))
        return {"steps": steps, "output": out, "residual": (other,), "params": params, "what": what}

    def _clamps(self, lo: int, hi: int, out: str, nodes: list[str]):
        """Fold the int8 ReLU / Clip nodes that follow ``out`` into ``[lo, hi]``."""
        folded = False
        while True:
            nxt = self.only_consumer(out)
            if nxt is None or nxt.op not in ("relu", "clip"):
                return lo, hi, out, folded
            lo, hi = fold_clamp(lo, hi, nxt)
            nodes.append(nxt.name)
            out, folded = nxt.outputs[0], True

    def _fusable_add(self, add: Node, out: str) -> bool:
        """A qadd of ``out`` and another computed int8 tensor of the same shape (no
        broadcasting): the other is loaded into the accumulator beside the result tile."""
        a, b = add.inputs
        return (
            a != b
            and not (self.is_constant(a) or self.is_constant(b))
            and self.shape(a) == self.shape(b) == self.shape(add.outputs[0]) == self.shape(out)
        )

    def _qsum_pool(self, node: Node) -> Match | Refusal:
        why = window_refusal(self, node, "qsum_pool")
        if why:
            return Refusal(why)
        req = self.only_consumer(node.outputs[0])
        if req is None or req.op != "requantize" or isinstance(req.attrs["multiplier"], tuple):
            return Refusal(
                "qsum_pool: its int32 sums are read by something other than one per-tensor "
                "requantize, and the accelerator stores only int8: host"
            )
        nodes = [node.name, req.name]
        a = req.attrs
        lo, hi, out, _ = self._clamps(a["lo"], a["hi"], req.outputs[0], nodes)
        steps = topi_steps(requantize_program(a["multiplier"], a["pre_shift"], a["shift"], lo, hi))
        k = node.attrs["kernel"][0]
        return Match(
            "sum_pool",
            tuple(nodes),
            (node.inputs[0],),
            out,
            {**window_params(node), "steps": steps},
            f"average pooling {k}x{k}: window sums and requantization on the ALU",
        )

    def _max_pool(self, node: Node) -> Match | Refusal:
        why = window_refusal(self, node, "max_pool")
        if why:
            return Refusal(why)
        params = window_params(node)
        reason = "max pooling on the ALU"
        if params["padding"]:
            lo = self.graph.ranges.get(node.inputs[0], (-128, 127))[0]
            if lo < 0:
                return Refusal(
                    "max_pool with padding on possibly negative input (range "
                    f"[{lo}, ...]): host, the accelerator pads with 0"
                )
            reason += f"; padded, and the input is >= 0 (range [{lo}, ...]): zero padding is exact"
        return Match("max_pool", (node.name,), (node.inputs[0],), node.outputs[0], params, reason)

    def _qadd(self, node: Node) -> Match | Refusal:
        a, b = node.inputs
        if not (self.int8_activation(a) and self.int8_activation(b)):
            return Refusal("qadd of a constant or of data that is not 4-d: host")
        if not self.shape(a) == self.shape(b) == self.shape(node.outputs[0]):
            return Refusal("qadd with broadcasting: host (the ALU adds tiles of one shape)")
        nodes = [node.name]
        at = node.attrs
        lo, hi, out, _ = self._clamps(at["lo"], at["hi"], node.outputs[0], nodes)
        steps = topi_steps(rounding_shift(at["shift"]) + clip_steps(lo, hi))
        params = {
            "steps_a": (AluStep("mul", at["multiplier_a"]),),
            "steps_b": (AluStep("mul", at["multiplier_b"]),),
            "steps": steps,
        }
        reason = "residual qadd on the ALU (its inputs are not one fused layer's result)"
        return Match("add", tuple(nodes), (a, b), out, params, reason)

    def _elementwise(self, node: Node, steps: tuple[AluStep, ...], what: str):
        x = node.inputs[0]
        if not self.int8_activation(x):
            return Refusal(f"{node.op} on data that is not a 4-d int8 activation: host")
        nodes = [node.name]
        return Match("alu", tuple(nodes), (x,), node.outputs[0], {"steps": steps}, what)

    def _relu(self, node: Node) -> Match | Refusal:
        return self._int8_clamp(node, 0, 127, "relu")

    def _clip(self, node: Node) -> Match | Refusal:
        return self._int8_clamp(node, int(node.attrs["min"]), int(node.attrs["max"]), "clip")

    def _int8_clamp(self, node: Node, lo: int, hi: int, what: str) -> Match | Refusal:
        if self.graph.tensors[node.inputs[0]].dtype.name != "int8":
            return Refusal(host_reason(node))
        nodes = [node.name]
        lo, hi, out, _ = self._clamps(lo, hi, node.outputs[0], nodes)
        match = self._elementwise(node, topi_steps(clip_steps(lo, hi)), f"{what} on the ALU")
        if isinstance(match, Refusal):
            return match
        return Match("alu", tuple(nodes), match.inputs, out, match.params, match.reason)

    def _requantize(self, node: Node) -> Match | Refusal:
        a = node.attrs
        if self.graph.tensors[node.inputs[0]].dtype.name != "int8":
            return Refusal(
                "requantize of an int32 result computed on the host: host (the accelerator "
                "loads int8 activations)"
            )
        if isinstance(a["multiplier"], tuple):
            return Refusal("per-channel requantize of int8 data: host")
        nodes = [node.name]
        lo, hi, out, _ = self._clamps(a["lo"], a["hi"], node.outputs[0], nodes)
        steps = topi_steps(requantize_program(a["multiplier"], a["pre_shift"], a["shift"], lo, hi))
        match = self._elementwise(node, steps, "requantize of int8 data on the ALU")
        if isinstance(match, Refusal):
            return match
        return Match("alu", tuple(nodes), match.inputs, out, match.params, match.reason)

    def _reshape(self, node: Node) -> Match | Refusal | None:
        consumer = self.only_consumer(node.outputs[0])
        if consumer is not None and consumer.op == "qdense" and flatten_fusable(self, node):
            return None  # the dense layer takes it
        return Refusal(host_reason(node))


# the operator a pattern starts from -> the pattern
PATTERNS: Mapping[str, Callable[[Matcher, Node], Match | Refusal | None]] = {
    "qconv": Matcher._qconv,
    "qdense": Matcher._qdense,
    "qsum_pool": Matcher._qsum_pool,
    "max_pool": Matcher._max_pool,
    "qadd": Matcher._qadd,
    "relu": Matcher._relu,
    "clip": Matcher._clip,
    "requantize": Matcher._requantize,
    "reshape": Matcher._reshape,
}


def conv_refusal(m: Matcher, node: Node) -> str | None:
    """Why a ``qconv`` cannot be an accelerator step (None when it can)."""
    a = node.attrs
    if len(m.shape(node.inputs[0])) != 4:
        return f"qconv over {len(m.shape(node.inputs[0])) - 2}-d data: host (2-d only)"
    if m.is_constant(node.inputs[0]):
        return "qconv of constant data: host"
    if not all(m.is_constant(t) for t in node.inputs[1:]):
        return "qconv with computed weights or bias: host"
    if a["group"] != 1:
        return f"grouped qconv (group {a['group']}): host"
    if tuple(a["dilations"]) != (1, 1):
        return f"dilated qconv (dilations {a['dilations']}): host"
    if len(set(a["strides"])) != 1:
        return f"qconv with unequal strides {a['strides']}: host"
    if len(set(a["pads"])) != 1:
        return f"qconv with uneven padding {a['pads']}: host (the loads pad all sides alike)"
    kh = m.shape(node.inputs[1])[2]
    if a["pads"][0] >= kh and a["pads"][0]:
        return f"qconv padded by {a['pads'][0]} with a {kh}-row kernel: host"
    return requantize_refusal(m, node)


def dense_refusal(m: Matcher, node: Node) -> str | None:
    if not all(m.is_constant(t) for t in node.inputs[1:]):
        return "qdense with computed weights or bias: host"
    if m.is_constant(node.inputs[0]):
        return "qdense of a constant: host"
    return requantize_refusal(m, node)


def requantize_refusal(m: Matcher, node: Node) -> str | None:
    req = m.only_consumer(node.outputs[0])
    if req is None or req.op != "requantize":
        return (
            f"{node.op}: its int32 accumulator is read by something other than one requantize "
            "(the accelerator stores only int8): host"
        )
    return None


def flatten_fusable(m: Matcher, node: Node) -> bool:
    """A reshape of an int8 (N, C, H, W) activation to (N, C*H*W) read only by a qdense that
    the accelerator takes: the dense layer reads the packed activation as it is."""
    if node.op != "reshape" or not m.int8_activation(node.inputs[0]):
        return False
    n, c, h, w = m.shape(node.inputs[0])
    consumer = m.only_consumer(node.outputs[0])
    return (
        m.shape(node.outputs[0]) == (n, c * h * w)
        and consumer is not None
        and consumer.op == "qdense"
        and consumer.inputs[0] == node.outputs[0]
        and dense_refusal(m, consumer) is None
    )


def window_refusal(m: Matcher, node: Node, what: str) -> str | None:
    a = node.attrs
    if not m.int8_activation(node.inputs[0]):
        return f"{what} over data that is not a 4-d int8 activation: host"
    kernel, strides, pads = a["kernel"], a["strides"], a["pads"]
    if len(set(kernel)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1:
        return f"{what} with a non-square window ({kernel}, strides {strides}, pads {pads}): host"
    if tuple(a["dilations"]) != (1, 1):
        return f"{what} with dilations {a['dilations']}: host"
    h, w = m.shape(node.inputs[0])[2:]
    out = m.shape(node.outputs[0])[2:]
    k, s, p = kernel[0], strides[0], pads[0]
    if p >= k or out != ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1):
        return f"{what} with ceil_mode windows past the end or padding >= kernel: host"
    return None


def window_params(node: Node) -> dict:
    a = node.attrs
    return {"kernel": a["kernel"][0], "stride": a["strides"][0], "padding": a["pads"][0]}


def padding_notes(cin: int, cout: int, env: Environment) -> list[str]:
    """Say which channel counts are padded to whole blocks (with zero weights)."""
    notes = []
    if cin % env.BLOCK_IN:
        plural = "s" if cin != 1 else ""
        notes.append(f"{cin} input channel{plural} padded to {round_up(cin, env.BLOCK_IN)}")
    if cout % env.BLOCK_OUT:
        notes.append(f"{cout} output channels padded to {round_up(cout, env.BLOCK_OUT)}")
    return notes


HOST_REASONS = {
    "quantize": "quantize: float input, the host quantizes it (the accelerator has no float unit)",
    "dequantize": "dequantize: float output, the host dequantizes it",
    "softmax": "softmax: no integer form, host",
    "transpose": "transpose: data movement in the unpacked layout, host",
    "slice": "slice: data movement in the unpacked layout, host",
    "pad": "pad: data movement in the unpacked layout, host",
    "reshape": "reshape: data movement in the unpacked layout, host",
    "concat": "concat: data movement in the unpacked layout, host",
}


def host_reason(node: Node) -> str:
    """Why a node with no accelerator pattern runs on the host."""
    if node.op in HOST_REASONS:
        return HOST_REASONS[node.op]
    return f"{node.op}: a float operator with no integer form, host"
