"""Which module runs an instruction, which queues its flags touch, and static checks.

docs/isa.md §3: STORE goes to the store module, LOAD of INP or WGT to the load module, and
everything else to compute. Every instruction is checked here before the run starts, so a
malformed stream is refused before it changes any state.
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.env import Environment
from accel.errors import SimulatorError
from accel.hw.isa import AluInsn, GemmInsn, Insn, MemInsn, MemType, Opcode
from accel.hw.modules import (
    POP_FLAGS,
    POP_QUEUE,
    PUSH_FLAGS,
    PUSH_QUEUE,
    Module,
    Queue,
    insn_kind,
    module_of,
)

_LOADABLE = (MemType.UOP, MemType.WGT, MemType.INP, MemType.ACC, MemType.ACC_8BIT)


@dataclass(frozen=True, slots=True)
class Route:
    """The module that runs an instruction and the queues it pops and pushes."""

    module: Module
    pops: tuple[Queue, ...]
    pushes: tuple[Queue, ...]


def route(index: int, insn: Insn, env: Environment) -> Route:
    """Check ``insn`` (at stream position ``index``, for messages) and find its route.

    Raises SimulatorError for a dependency flag the module does not have, a LOAD of memory
    type OUT, a STORE from anything but OUT or with padding, or a micro-op range that runs
    backwards or past the micro-op SRAM.
    """
    module = module_of(insn)
    where = f"instruction {index} ({insn_kind(insn)})"
    pops, pushes = [], []
    for table, out, flags in (
        (POP_QUEUE, pops, POP_FLAGS),
        (PUSH_QUEUE, pushes, PUSH_FLAGS),
    ):
        for flag in flags:
            if getattr(insn, flag):
                if (module, flag) not in table:
                    raise SimulatorError(
                        f"{where}: the {module.label} module has no {flag} (the flag must be 0)"
                    )
                out.append(table[module, flag])
    if isinstance(insn, MemInsn):
        _check_mem(insn, where)
    elif isinstance(insn, (GemmInsn, AluInsn)):
        if insn.uop_end < insn.uop_bgn:
            raise SimulatorError(
                f"{where}: uop_end {insn.uop_end} is before uop_bgn {insn.uop_bgn}"
            )
        if insn.uop_end > env.UOP_BUFF_DEPTH:
            raise SimulatorError(
                f"{where}: micro-ops [{insn.uop_bgn}, {insn.uop_end}) run past the micro-op "
                f"SRAM (depth {env.UOP_BUFF_DEPTH})"
            )
    return Route(module, tuple(pops), tuple(pushes))


def _check_mem(insn: MemInsn, where: str) -> None:
    if insn.opcode == Opcode.LOAD and insn.memory_type not in _LOADABLE:
        raise SimulatorError(f"{where}: a LOAD cannot target memory type {insn.memory_type.name}")
    if insn.opcode == Opcode.STORE:
        if insn.memory_type != MemType.OUT:
            raise SimulatorError(
                f"{where}: a STORE writes memory type OUT only, not {insn.memory_type.name}"
            )
        pads = (insn.y_pad_0, insn.y_pad_1, insn.x_pad_0, insn.x_pad_1)
        if any(pads):
            raise SimulatorError(
                f"{where}: a STORE cannot pad (y_pad_0, y_pad_1, x_pad_0, x_pad_1 = {pads})"
            )
