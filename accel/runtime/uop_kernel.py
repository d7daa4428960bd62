"""Micro-op kernels: the micro-ops and loops of one GEMM or ALU call (docs/isa.md §5).

Generated host code describes a kernel with the calls of the original VTA runtime::

    recorder.loop_begin(extent, dst_factor, src_factor, wgt_factor)   # at most 2 levels
    recorder.push(mode, reset, dst, src, wgt, opcode, use_imm, imm)   # one per micro-op
    recorder.loop_end()

and :meth:`KernelRecorder.finish` turns them into an immutable :class:`UopKernel`: its encoded
micro-ops (what a LOAD of type UOP copies into micro-op SRAM) and the GEMM or ALU instruction
that runs them once they sit at ``uop_bgn``.

Loop levels map onto the instruction as in the original runtime: with two loops, level 1 is
``(iter_out, *_factor_out)`` and level 2 ``(iter_in, *_factor_in)``; a kernel with one loop puts
it in the outer level for GEMM (``iter_in = 1``) and in the inner level for ALU
(``iter_out = 1``); with none both extents are 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.errors import ISAError, LoweringError
from accel.hw.isa import (
    AluInsn,
    AluOp,
    GemmInsn,
    Uop,
    encode_int,
    encode_uops,
    uop_fields,
)

MAX_LOOP_LEVELS = 2
MODES = ("gemm", "alu")  # indexed by the ``mode`` argument of push: 0 = GEMM, 1 = ALU


@dataclass(frozen=True, slots=True)
class Loop:
    """One loop level of a kernel: its extent and the index step of each operand."""

    extent: int
    dst_factor: int
    src_factor: int
    wgt_factor: int


_NO_LOOP = Loop(extent=1, dst_factor=0, src_factor=0, wgt_factor=0)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every micro-op of one kernel must agree on."""

    reset: bool
    alu_opcode: int
    use_imm: bool
    imm: int


@dataclass(frozen=True, slots=True, eq=False)
class UopKernel:
    """A recorded micro-op kernel: mode, shared flags, loops and encoded micro-ops.

    ``uops`` is a read-only uint32 array. Build kernels with :class:`KernelRecorder`.
    """

    mode: str
    reset: bool
    alu_opcode: AluOp | None
    use_imm: bool
    imm: int
    loops: tuple[Loop, ...]
    uops: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        """The number of micro-ops (micro-op SRAM entries the kernel occupies)."""
        return int(self.uops.size)

    def instruction(self, uop_bgn: int, **deps: bool) -> GemmInsn | AluInsn:
        """The GEMM or ALU instruction running this kernel from micro-op SRAM entry ``uop_bgn``.

        ``deps`` may set the dependency flags (``pop_prev_dep=True``, ...).
        """
        outer, inner = _levels(self.loops, self.mode)
        common = dict(
            reset_reg=self.reset,
            uop_bgn=uop_bgn,
            uop_end=uop_bgn + self.size,
            iter_out=outer.extent,
            iter_in=inner.extent,
            dst_factor_out=outer.dst_factor,
            dst_factor_in=inner.dst_factor,
            src_factor_out=outer.src_factor,
            src_factor_in=inner.src_factor,
            **deps,
        )
        if self.mode == "gemm":
            return GemmInsn(
                wgt_factor_out=outer.wgt_factor, wgt_factor_in=inner.wgt_factor, **common
            )
        return AluInsn(alu_opcode=self.alu_opcode, use_imm=self.use_imm, imm=self.imm, **common)


def _levels(loops: tuple[Loop, ...], mode: str) -> tuple[Loop, Loop]:
    """(outer, inner) loop levels. A single loop is level 1 (outer) for GEMM and the inner level
    for ALU, as the original runtime encodes them (docs/isa.md §5)."""
    if len(loops) == 2:
        return loops[0], loops[1]
    if len(loops) == 1:
        return (loops[0], _NO_LOOP) if mode == "gemm" else (_NO_LOOP, loops[0])
    return _NO_LOOP, _NO_LOOP


class KernelRecorder:
    """Records one micro-op kernel from the original runtime's calls.

    Args:
        env: the configuration (micro-op index widths, instruction field widths).
        mode: ``"gemm"`` or ``"alu"``.

    Misuse of the loop calls or a micro-op that disagrees with the kernel's mode or shared
    flags raises LoweringError; an index wider than its micro-op field raises ISAError.
    """

    def __init__(self, env: Environment, mode: str):
        if mode not in MODES:
            raise LoweringError(f"micro-op kernel mode must be 'gemm' or 'alu', not {mode!r}")
        self.env = env
        self.mode = mode
        self._loops: list[Loop] = []
        self._open = 0  # loop levels begun and not yet ended
        self._ended = False
        self._uops: list[Uop] = []
        self._shared: _Shared | None = None

    def loop_begin(self, extent: int, dst_factor: int, src_factor: int, wgt_factor: int) -> None:
        """Open a loop level (``VTAUopLoopBegin``); loops come before every micro-op."""
        if self._uops:
            raise LoweringError(
                f"{self.mode} kernel: loop_begin after {len(self._uops)} micro-op push(es); "
                "every micro-op of a kernel shares its loops, so begin all loops first"
            )
        if self._ended:
            raise LoweringError(
                f"{self.mode} kernel: loop_begin after a loop_end; kernel loops must nest"
            )
        if len(self._loops) == MAX_LOOP_LEVELS:
            raise LoweringError(
                f"{self.mode} kernel: a third loop level (extent {extent}); micro-op kernels "
                f"have at most {MAX_LOOP_LEVELS}"
            )
        if extent < 1:
            raise LoweringError(f"{self.mode} kernel: loop extent {extent} must be at least 1")
        self._loops.append(Loop(extent, dst_factor, src_factor, wgt_factor))
        self._open += 1

    def loop_end(self) -> None:
        """Close the innermost open loop level (``VTAUopLoopEnd``)."""
        if self._open == 0:
            raise LoweringError(f"{self.mode} kernel: loop_end without a matching loop_begin")
        self._open -= 1
        self._ended = True

    def push(
        self,
        mode: int,
        reset: int,
        dst: int,
        src: int,
        wgt: int,
        opcode: int = 0,
        use_imm: int = 0,
        imm: int = 0,
    ) -> None:
        """Add one micro-op (``VTAUopPush``); ``mode`` is 0 for GEMM, 1 for ALU.

        ``opcode``, ``use_imm`` and ``imm`` only matter for ALU kernels, ``wgt`` only for GEMM.
        """
        if mode not in (0, 1) or MODES[mode] != self.mode:
            raise LoweringError(
                f"{self.mode} kernel: micro-op pushed with mode {mode} "
                f"({MODES[mode] if mode in (0, 1) else 'unknown'}); a kernel has one mode"
            )
        if self._ended:
            raise LoweringError(
                f"{self.mode} kernel: push after a loop_end; micro-ops go inside all loops"
            )
        self._check_shared(_Shared(bool(reset), int(opcode), bool(use_imm), int(imm)))
        uop = Uop(int(dst), int(src), int(wgt) if self.mode == "gemm" else 0)
        for f in uop_fields(self.env):
            value = getattr(uop, f.name)
            if not f.min <= value <= f.max:
                raise ISAError(
                    f"{self.mode} kernel: micro-op field {f.name} = {value} does not fit "
                    f"{f.width} bits (range [{f.min}, {f.max}])"
                )
        self._uops.append(uop)

    def finish(self) -> UopKernel:
        """The recorded kernel; raises LoweringError for open loops or no micro-ops, and
        ISAError when a loop extent or factor does not fit its instruction field."""
        if self._open:
            raise LoweringError(f"{self.mode} kernel: {self._open} loop level(s) never ended")
        if not self._uops:
            raise LoweringError(f"{self.mode} kernel has no micro-ops")
        shared = self._shared
        uops = encode_uops(self._uops, self.env)
        uops.setflags(write=False)
        kernel = UopKernel(
            mode=self.mode,
            reset=shared.reset,
            alu_opcode=AluOp(shared.alu_opcode) if self.mode == "alu" else None,
            use_imm=shared.use_imm and self.mode == "alu",
            imm=shared.imm if self.mode == "alu" else 0,
            loops=tuple(self._loops),
            uops=uops,
        )
        encode_int(kernel.instruction(0), self.env)  # loop fields are checked by the encoder
        return kernel

    def _check_shared(self, shared: _Shared) -> None:
        if self._shared is None:
            if self.mode == "alu" and shared.alu_opcode not in AluOp._value2member_map_:
                raise LoweringError(f"alu kernel: unknown ALU opcode {shared.alu_opcode}")
            self._shared = shared
        elif shared != self._shared:
            raise LoweringError(
                f"{self.mode} kernel: micro-op {len(self._uops)} has reset/opcode/use_imm/imm "
                f"{_describe(shared)} but the kernel's first micro-op has "
                f"{_describe(self._shared)}; every micro-op of a kernel must agree"
            )


def _describe(shared: _Shared) -> str:
    return f"({int(shared.reset)}, {shared.alu_opcode}, {int(shared.use_imm)}, {shared.imm})"
