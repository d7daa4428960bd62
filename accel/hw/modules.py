"""The accelerator's three modules, its four token queues, and which instruction runs where.

One table, :data:`TOKEN_LINKS`, says for every queue which module pushes into it with which
instruction flag and which module pops from it with which flag (docs/isa.md §3). The simulator
(which queue an instruction's flags touch), the runtime (which flag carries a token from one
module to another) and the compiler (which stages may exchange tokens) all read it.

Modules have one definition with two spellings of their number: the enum value (0-2) indexes
the simulator's per-module arrays; :attr:`Module.stage` (1-3) is the number the original runtime
API uses (``VTADepPush(1, 2)``) and that printed programs and module files carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from accel.hw.isa import Insn, MemInsn, MemType, Opcode


class Module(IntEnum):
    LOAD = 0
    COMPUTE = 1
    STORE = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def stage(self) -> int:
        """The runtime API's number of this module: 1 load, 2 compute, 3 store."""
        return self.value + 1

    @classmethod
    def from_stage(cls, stage: int) -> Module | None:
        """The module the runtime API numbers ``stage``, or None for a number it does not use."""
        return _BY_STAGE.get(stage)


_BY_STAGE = {m.stage: m for m in Module}


class Queue(IntEnum):
    """The four token queues, named by the direction tokens travel."""

    LOAD_TO_COMPUTE = 0
    COMPUTE_TO_LOAD = 1
    COMPUTE_TO_STORE = 2
    STORE_TO_COMPUTE = 3

    @property
    def label(self) -> str:
        src, dst = self.name.lower().split("_to_")
        return f"{src}->{dst}"


@dataclass(frozen=True, slots=True)
class TokenLink:
    """A token queue: the module that pushes with ``push_flag`` and the one that pops with
    ``pop_flag``."""

    queue: Queue
    sender: Module
    receiver: Module
    push_flag: str
    pop_flag: str


TOKEN_LINKS: tuple[TokenLink, ...] = (
    TokenLink(Queue.LOAD_TO_COMPUTE, Module.LOAD, Module.COMPUTE, "push_next_dep", "pop_prev_dep"),
    TokenLink(Queue.COMPUTE_TO_LOAD, Module.COMPUTE, Module.LOAD, "push_prev_dep", "pop_next_dep"),
    TokenLink(
        Queue.COMPUTE_TO_STORE, Module.COMPUTE, Module.STORE, "push_next_dep", "pop_prev_dep"
    ),
    TokenLink(
        Queue.STORE_TO_COMPUTE, Module.STORE, Module.COMPUTE, "push_prev_dep", "pop_next_dep"
    ),
)

# Lookups derived from the table.
LINK_BETWEEN: dict[tuple[Module, Module], TokenLink] = {
    (link.sender, link.receiver): link for link in TOKEN_LINKS
}
PUSH_QUEUE: dict[tuple[Module, str], Queue] = {
    (link.sender, link.push_flag): link.queue for link in TOKEN_LINKS
}
POP_QUEUE: dict[tuple[Module, str], Queue] = {
    (link.receiver, link.pop_flag): link.queue for link in TOKEN_LINKS
}
PUSH_FLAGS = ("push_prev_dep", "push_next_dep")
POP_FLAGS = ("pop_prev_dep", "pop_next_dep")


def module_of(insn: Insn) -> Module:
    """The module that executes ``insn``: STORE on store, LOAD of INP or WGT on load, everything
    else (micro-op and accumulator loads, GEMM, ALU, FINISH) on compute."""
    if insn.opcode == Opcode.STORE:
        return Module.STORE
    if insn.opcode == Opcode.LOAD and insn.memory_type in (MemType.INP, MemType.WGT):
        return Module.LOAD
    return Module.COMPUTE


def insn_kind(insn: Insn) -> str:
    """A short name such as ``LOAD INP`` or ``GEMM``."""
    if isinstance(insn, MemInsn):
        return f"{insn.opcode.name} {insn.memory_type.name}"
    return insn.opcode.name
