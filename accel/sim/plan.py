"""A whole-stream execution plan: a stream translated once, then run as a few array operations.

A compiled program sends the same stream on every call, except for the DRAM addresses of its
arguments. The first run of a stream decodes and schedules it instruction by instruction (see
``simulator.py``); this module then translates the scheduled stream into a *plan* that the
simulator caches under the stream's words with the data addresses masked out (and the micro-ops
the stream loads), so a later run of the same program -- with the same or with new arrays --
skips decoding, scheduling and per-instruction dispatch:

- **Loads into the input and weight SRAMs are renamed**, the way an out-of-order core renames
  registers: every element a LOAD brings in gets its own slot in a *virtual* SRAM, and each GEMM
  reads the slot its physical index held at that point of the schedule. Two loads of the same
  DRAM element share a slot (virtual threads load their own copies of shared tiles; halos of
  neighbouring tiles overlap), so products are computed once. All those loads are then one
  gather from DRAM per run, and GEMMs no longer wait for the loads between them.
- **GEMM updates are batched.** Updates only add products of (renamed, immutable) inputs and
  weights into the accumulators, so they commute with each other and with every accumulator
  operation on other rows. Walking the schedule, updates gather into one batch until an
  instruction touches one of the batch's rows (a reset, an ALU operation, an accumulator load or
  a store); the batch then runs as one product plan (``gemm.plan_products``), typically one BLAS
  product per output tile.
- **Stores and accumulator loads** of a row of consecutive ones run as one gather / scatter.
- ALU instructions run one by one (``AluUnit``), with the micro-ops the schedule gave them.

Exactness. Results, final SRAM contents, DRAM contents, counters and cycles equal the
instruction-by-instruction run. The plan is only valid for the stream it was made from (the key
holds every word except the relocatable data addresses, and the micro-op words loaded) and the
token counts it started with; it is not used when a store of the run writes DRAM that a load of
the same run reads (then load order would matter), or when two loads that shared a slot no
longer read the same element (their DRAM allocations moved apart), both checked per run from the
addresses.
Timing, counters and the trace depend only on the stream and are computed once, when scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.errors import DeviceMemoryError, SimulatorError
from accel.hw.isa import AluInsn, GemmInsn, MemInsn, MemType, Opcode, uop_columns
from accel.hw.memory import DeviceMemory
from accel.hw.modules import insn_kind
from accel.sim.gemm import compute_products, float32_holds, plan_products, product_bound
from accel.sim.loops import CHUNK_ITERATIONS, check_bound, expand
from accel.sim.state import Srams

# Memory types whose DRAM address comes from the program's arguments (relocatable); micro-op
# loads read the runtime's own kernel blocks and stay part of the key.
DATA_TYPES = (MemType.WGT, MemType.INP, MemType.ACC, MemType.ACC_8BIT, MemType.OUT)


@dataclass
class _Access:
    """The DRAM elements one LOAD or STORE touches: element index = dram_base + ``rel``."""

    insn: int  # position in the stream
    mem_type: MemType
    rel: np.ndarray  # element offsets from dram_base, one per SRAM element (-1: padding)
    sram: np.ndarray  # SRAM indices, parallel to rel


class _Accesses:
    """Several accesses of one memory type, concatenated so that one run is one gather or one
    scatter: element k is DRAM element ``dram_base[owner[k]] + rel[k]`` (padding: ``rel < 0``)."""

    def __init__(self, accesses: list[_Access]):
        self.mem_type = accesses[0].mem_type if accesses else MemType.INP
        self.rel = _cat([a.rel for a in accesses])
        self.sram = _cat([a.sram for a in accesses])
        self.owner = _cat([np.full(a.rel.size, a.insn, np.int64) for a in accesses])
        self.pad = self.rel < 0
        self.any_pad = bool(self.pad.any())
        self.insns = np.array([a.insn for a in accesses], np.int64)

    @classmethod
    def of(cls, mem_type: MemType, rel, sram, owner) -> _Accesses:
        """Accesses given element by element (``rel`` >= 0: no padding)."""
        made = cls([])
        made.mem_type, made.rel, made.sram, made.owner = mem_type, rel, sram, owner
        made.pad = np.zeros(rel.size, bool)
        made.any_pad = False
        return made

    def index(self, dram_base: np.ndarray) -> np.ndarray:
        """Absolute element indices (padding: 0)."""
        index = dram_base[self.owner] + self.rel
        return np.where(self.pad, 0, index) if self.any_pad else index


class _Spans:
    """Byte intervals of accesses, per access: ``[(base + lo) * size, (base + hi) * size)``."""

    def __init__(self, accesses: list[_Access], elem_sizes: dict):
        kept = [a for a in accesses if (a.rel >= 0).any()]
        self.insn = np.array([a.insn for a in kept], np.int64)
        self.lo = np.array([int(a.rel[a.rel >= 0].min()) for a in kept], np.int64)
        self.hi = np.array([int(a.rel.max()) + 1 for a in kept], np.int64)
        self.size = np.array([elem_sizes[a.mem_type] for a in kept], np.int64)

    def bytes(self, dram_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = dram_base[self.insn]
        return (base + self.lo) * self.size, (base + self.hi) * self.size


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass
class _Step:
    """One action of the plan on the accumulators or DRAM, in schedule order."""

    kind: str  # "reset", "gemm", "alu", "acc_load", "store"
    rows: np.ndarray | None = None
    gemm: object = None  # GemmPlan over the virtual input / weight arrays
    alu: AluInsn | None = None
    alu_words: np.ndarray | None = None
    accesses: list = field(default_factory=list)  # _Access while translating, then _Accesses


class StreamProgram:
    """The translated stream; :meth:`run` executes it for one set of data addresses."""

    def __init__(self, env: Environment, srams: Srams, dram: DeviceMemory, alu_unit):
        self.env = env
        self.srams = srams
        self.dram = dram
        self.alu_unit = alu_unit
        self.steps: list[_Step] = []
        self.inp_loads = _Accesses([])  # the distinct elements loaded, one per virtual slot
        self.wgt_loads = _Accesses([])
        # Loads that share slots must keep their addresses' differences: instruction, the
        # first instruction of its DRAM allocation, and the difference of their dram_base.
        self.same_group: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 3
        self.store_spans: _Spans | None = None
        self.read_spans: _Spans | None = None
        self.all_spans: _Spans | None = None
        self.inp_initial = np.zeros(0, np.int64)  # physical indices read before any load
        self.wgt_initial = np.zeros(0, np.int64)
        self.inp_final: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
        self.wgt_final: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
        self.uop_final: tuple[np.ndarray, np.ndarray] | None = None
        # Micro-ops the stream reads before loading them (left by an earlier stream): their
        # indices and the values the plan was made with; the plan holds only while they stay.
        self.uop_inherited: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
        self.wgt_loaded = False

    # -- running ---------------------------------------------------------------------------
    def run(self, dram_base: np.ndarray) -> bool:
        """Run with ``dram_base`` (the base element index of every instruction of the stream).
        Returns False, having changed nothing, when the plan does not hold for this run: a
        store of the run writes DRAM a load of it reads, loads that shared a slot no longer read
        the same elements, or micro-ops the stream inherited have changed. Raises
        DeviceMemoryError, before changing anything, for an access outside device memory."""
        if self.store_spans.insn.size and self.read_spans.insn.size:
            if _overlap(self.store_spans.bytes(dram_base), self.read_spans.bytes(dram_base)):
                return False
        insns, leaders, diffs = self.same_group
        if insns.size and (dram_base[insns] - dram_base[leaders] != diffs).any():
            return False
        index, values = self.uop_inherited
        if index.size and not np.array_equal(self.srams.uop[index], values):
            return False
        self._check_dram(dram_base)
        srams = self.srams
        inp = self._virtual(srams.inp, self.inp_initial, self.inp_loads, dram_base, srams.inp_dtype)
        wgt = self._virtual(srams.wgt, self.wgt_initial, self.wgt_loads, dram_base, srams.wgt_dtype)
        acc = srams.acc
        for step in self.steps:
            if step.kind == "gemm":
                sums = compute_products(step.gemm, inp, wgt, None)
                rows = step.gemm.dst
                if (step.gemm.dtype == np.float32 or sums.dtype == np.int32) and (
                    acc.dtype == np.int32
                ):
                    acc[rows] += sums.astype(np.int32)  # exact below 2^31; int32 addition wraps
                else:
                    wide = acc[rows].astype(np.int64) + sums.astype(np.int64)
                    acc[rows] = wide.astype(acc.dtype)
            elif step.kind == "reset":
                acc[step.rows] = 0
            elif step.kind == "alu":
                self.alu_unit.execute(step.alu, step.alu_words)
            elif step.kind == "acc_load":
                self._acc_load(step.accesses, dram_base)
            else:
                self._store(step.accesses, dram_base)
        phys, virt = self.inp_final
        srams.inp[phys] = inp[virt]
        phys, virt = self.wgt_final
        srams.wgt[phys] = wgt[virt]
        if self.wgt_loaded:
            srams.wgt_version += 1
        if self.uop_final is not None:
            srams.uop[self.uop_final[0]] = self.uop_final[1]
        return True

    def _virtual(self, sram, initial, loads: _Accesses, dram_base, dtype) -> np.ndarray:
        """The virtual SRAM: slot 0 zero, then the physical elements read before being loaded,
        then every loaded element in load order."""
        out = np.empty((1 + initial.size + loads.rel.size, *sram.shape[1:]), sram.dtype)
        out[0] = 0
        out[1 : 1 + initial.size] = sram[initial]
        if loads.rel.size:
            loaded = out[1 + initial.size :]
            loaded[...] = self._elements(loads.mem_type, dtype, sram.shape[1:])[
                loads.index(dram_base)
            ]
            if loads.any_pad:
                loaded[loads.pad] = 0
        return out

    def _elements(self, mem_type: MemType, dtype, elem_shape) -> np.ndarray:
        """DRAM as an array of ``mem_type`` elements."""
        size = self.dram.elem_sizes[mem_type]
        count = self.dram.size // size
        return self.dram.data[: count * size].view(dtype).reshape(count, *elem_shape)

    def _acc_load(self, loads: _Accesses, dram_base) -> None:
        acc = self.srams.acc
        dtype = np.int8 if loads.mem_type == MemType.ACC_8BIT else self.srams.acc_dtype
        values = self._elements(loads.mem_type, dtype, acc.shape[1:])[loads.index(dram_base)]
        if loads.any_pad:
            values[loads.pad] = 0
        acc[loads.sram] = values

    def _store(self, stores: _Accesses, dram_base) -> None:
        acc = self.srams.acc
        out = self._elements(MemType.OUT, self.srams.out_dtype, acc.shape[1:])
        out[stores.index(dram_base)] = acc[stores.sram].astype(out.dtype)  # keeps the low bits

    def _check_dram(self, dram_base) -> None:
        lo, hi = self.all_spans.bytes(dram_base)
        if not lo.size:
            return
        first, last = int(lo.min()), int(hi.max())
        try:
            self.dram.check_range(first, last - first)
        except DeviceMemoryError:
            for k in range(lo.size):  # name the first instruction out of range
                try:
                    self.dram.check_range(int(lo[k]), int(hi[k] - lo[k]))
                except DeviceMemoryError as exc:
                    insn = int(self.all_spans.insn[k])
                    raise DeviceMemoryError(f"instruction {insn}: {exc}") from None
            raise


def _overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether some interval of ``a`` intersects some interval of ``b``."""
    a_lo, a_hi = a
    b_lo, b_hi = b
    order = np.argsort(b_lo, kind="stable")
    b_lo, b_hi = b_lo[order], np.maximum.accumulate(b_hi[order])
    last = np.searchsorted(b_lo, a_hi, side="left") - 1  # the b intervals starting before a_hi
    return bool(((last >= 0) & (b_hi[np.maximum(last, 0)] > a_lo)).any())


# -- translation ---------------------------------------------------------------------------------


def translate(
    insns: list,
    order: list[int],
    dram_base: np.ndarray,
    env: Environment,
    srams: Srams,
    dram: DeviceMemory,
    alu_unit,
) -> StreamProgram:
    """The plan of ``insns`` (decoded, checked instructions) run in schedule ``order``, with
    ``dram_base`` the DRAM address of every instruction in this first run."""
    prog = StreamProgram(env, srams, dram, alu_unit)
    t = _Translator(prog, env, srams, dram, dram_base)
    for index in order:
        t.insn(index, insns[index])
    t.finish()
    return prog


class _Translator:
    """Walks the schedule, renaming SRAM loads and grouping accumulator work into steps."""

    def __init__(
        self,
        prog: StreamProgram,
        env: Environment,
        srams: Srams,
        dram: DeviceMemory,
        dram_base: np.ndarray,
    ):
        self.prog, self.env, self.dram, self.dram_base = prog, env, dram, dram_base
        self.groups: dict[int, int] = {}  # allocation start -> group number
        self.leaders: dict[int, int] = {}  # group number -> its first instruction
        self.group_checks: list[tuple[int, int, int]] = []
        self.inp_keys: list[np.ndarray] = []  # per loaded element: (group, DRAM element)
        self.wgt_keys: list[np.ndarray] = []
        # Physical index -> virtual slot; -1: still the value from before the run.
        self.inp_map = np.full(env.INP_BUFF_DEPTH + 1, -1, np.int64)
        self.wgt_map = np.full(env.WGT_BUFF_DEPTH + 1, -1, np.int64)
        self.inp_map[-1] = self.wgt_map[-1] = 0  # the zero element past the end: slot 0
        self.inp_count = self.wgt_count = 0  # loaded virtual slots so far
        self.inp_initial: list[int] = []  # physical indices read before being loaded
        self.wgt_initial: list[int] = []
        self.uop = srams.uop.copy()  # micro-op SRAM contents along the schedule
        self.uop_written = np.zeros(self.uop.size, bool)
        self.uop_inherited: dict[int, int] = {}  # index -> value read before any load
        self.batch: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.batch_rows = np.zeros(env.ACC_BUFF_DEPTH, bool)
        self.inp_loads: list[_Access] = []
        self.wgt_loads: list[_Access] = []
        self.stores: list[_Access] = []
        self.reads: list[_Access] = []  # every load that reads DRAM, micro-ops included
        self.product_bound = product_bound(env)
        self.float32_ok = float32_holds(srams)

    # -- per instruction ---------------------------------------------------------------------
    def insn(self, index: int, insn) -> None:
        if isinstance(insn, MemInsn):
            if insn.x_size == 0:
                return
            if insn.opcode == Opcode.STORE:
                self._store(index, insn)
            elif insn.memory_type == MemType.UOP:
                self._uop_load(index, insn)
            elif insn.memory_type in (MemType.INP, MemType.WGT):
                self._sram_load(index, insn)
            else:
                self._acc_load(index, insn)
        elif isinstance(insn, (GemmInsn, AluInsn)):
            try:
                (self._gemm if isinstance(insn, GemmInsn) else self._alu)(insn)
            except SimulatorError as exc:
                raise SimulatorError(f"instruction {index} ({insn_kind(insn)}): {exc}") from None

    def _access(self, index: int, insn: MemInsn) -> _Access:
        """Element offsets and SRAM indices of one 2-D LOAD or STORE, padding included."""
        rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
        cols = insn.x_pad_0 + insn.x_size + insn.x_pad_1
        y = np.arange(rows).reshape(-1, 1) - insn.y_pad_0
        x = np.arange(cols).reshape(1, -1) - insn.x_pad_0
        inside = (y >= 0) & (y < insn.y_size) & (x >= 0) & (x < insn.x_size)
        rel = np.where(inside, y * insn.x_stride + x, -1).ravel().astype(np.int64)
        sram = insn.sram_base + np.arange(rows * cols, dtype=np.int64)
        return _Access(index, MemType(insn.memory_type), rel, sram)

    def _sram_load(self, index: int, insn: MemInsn) -> None:
        a = self._access(index, insn)
        inp = insn.memory_type == MemType.INP
        (self.inp_loads if inp else self.wgt_loads).append(a)
        self.reads.append(a)
        count = self.inp_count if inp else self.wgt_count
        slots = count + np.arange(a.rel.size, dtype=np.int64)
        mapping = self.inp_map if inp else self.wgt_map
        mapping[a.sram] = np.where(a.rel >= 0, _LOADED + slots, 0)  # padding reads slot 0
        (self.inp_keys if inp else self.wgt_keys).append(self._keys(index, insn, a))
        if inp:
            self.inp_count += a.rel.size
        else:
            self.wgt_count += a.rel.size
            self.prog.wgt_loaded = True

    def _keys(self, index: int, insn: MemInsn, a: _Access) -> np.ndarray:
        """Identity of each element loaded: its DRAM allocation's group and element index, so
        two loads of the same element share a slot (-1: padding)."""
        base = int(self.dram_base[index])
        size = self.dram.elem_sizes[MemType(insn.memory_type)]
        start = self.dram.allocation_of(base * size)
        if start is None:  # not in an allocation: a group of its own
            start = -1 - index
        group = self.groups.setdefault(start, len(self.groups))
        leader = self.leaders.setdefault(group, index)
        self.group_checks.append((index, leader, base - int(self.dram_base[leader])))
        return np.where(a.rel >= 0, (group << 40) + base + a.rel, -1)

    def _uop_load(self, index: int, insn: MemInsn) -> None:
        """Micro-ops are part of the plan (its key holds them): load them now, at translation,
        and only remember the micro-op SRAM's final contents."""
        a = self._access(index, insn)
        self.reads.append(a)
        words = self.dram.data.view("<u4")  # the range was checked when the stream was decoded
        self.uop[a.sram] = np.where(a.rel >= 0, words[np.maximum(insn.dram_base + a.rel, 0)], 0)
        self.uop_written[a.sram] = True

    def _acc_load(self, index: int, insn: MemInsn) -> None:
        a = self._access(index, insn)
        self._flush_if(a.sram)
        self.reads.append(a)
        self._append_step("acc_load", a)

    def _store(self, index: int, insn: MemInsn) -> None:
        a = self._access(index, insn)  # a STORE has no padding: every element is real
        self._flush_if(a.sram)
        self.stores.append(a)
        self._append_step("store", a)

    def _append_step(self, kind: str, a: _Access) -> None:
        """Add the access to the last step when it is of the same kind and memory type (stores
        and loads of a row run as one scatter or gather)."""
        steps = self.prog.steps
        if steps and steps[-1].kind == kind and steps[-1].accesses[-1].mem_type == a.mem_type:
            steps[-1].accesses.append(a)
        else:
            steps.append(_Step(kind, accesses=[a]))

    def _micro_ops(self, insn) -> np.ndarray:
        """The micro-ops ``insn`` runs; those not loaded by this stream are remembered, since
        the plan is only valid while the SRAM still holds them."""
        words = self.uop[insn.uop_bgn : insn.uop_end]
        inherited = ~self.uop_written[insn.uop_bgn : insn.uop_end]
        if inherited.any():
            index = insn.uop_bgn + np.flatnonzero(inherited)
            for i in index.tolist():
                self.uop_inherited.setdefault(i, int(self.uop[i]))
        return words

    def _gemm(self, insn: GemmInsn) -> None:
        words = self._micro_ops(insn)
        if not (words.size and insn.iter_out and insn.iter_in):
            return
        _check_size(insn, words.size)
        udst, usrc, uwgt = uop_columns(words, self.env)
        dst = _expand(insn, udst, "dst", self.env.ACC_BUFF_DEPTH, "acc")
        if insn.reset_reg:
            rows = np.unique(dst)
            self._flush_if(rows)
            self.prog.steps.append(_Step("reset", rows=rows))
            return
        src = _expand(insn, usrc, "src", self.env.INP_BUFF_DEPTH, "inp")
        wgt = _expand(insn, uwgt, "wgt", self.env.WGT_BUFF_DEPTH, "wgt")
        vsrc = self._resolve(src, self.inp_map, self.inp_initial)
        vwgt = self._resolve(wgt, self.wgt_map, self.wgt_initial)
        self.batch.append((dst, vsrc, vwgt))
        self.batch_rows[dst] = True

    def _resolve(self, phys: np.ndarray, mapping: np.ndarray, initial: list[int]) -> np.ndarray:
        """Virtual slots (as encoded slot ids) of physical SRAM indices at this point."""
        slots = mapping[phys]
        fresh = np.unique(phys[slots == -1])
        for p in fresh.tolist():  # read before any load of this run: the initial value
            initial.append(p)
            mapping[p] = -2 - (len(initial) - 1)  # encoded: initial number k -> -2 - k
        return mapping[phys]

    def _alu(self, insn: AluInsn) -> None:
        words = self._micro_ops(insn).copy()
        if not (words.size and insn.iter_out and insn.iter_in):
            return
        _check_size(insn, words.size)
        udst, usrc, _ = uop_columns(words, self.env)
        rows = _expand(insn, udst, "dst", self.env.ACC_BUFF_DEPTH, "acc")
        if not insn.use_imm:  # an ALU source is an accumulator index
            rows = np.concatenate(
                [rows, _expand(insn, usrc, "src", self.env.ACC_BUFF_DEPTH, "acc")]
            )
        self._flush_if(rows)
        self.prog.steps.append(_Step("alu", alu=insn, alu_words=words))

    def _flush_if(self, rows: np.ndarray) -> None:
        """Run the pending GEMM batch first when ``rows`` touches one of its accumulators."""
        if self.batch and self.batch_rows[rows].any():
            self._flush()

    def _flush(self) -> None:
        dst = np.concatenate([b[0] for b in self.batch])
        src = np.concatenate([b[1] for b in self.batch])
        wgt = np.concatenate([b[2] for b in self.batch])
        self.batch.clear()
        self.batch_rows[:] = False
        self.prog.steps.append(_Step("gemm", gemm=(dst, src, wgt)))

    def finish(self) -> None:
        if self.batch:
            self._flush()
        prog = self.prog
        sizes = self.dram.elem_sizes
        inp_slot = _dedupe(prog, "inp_loads", self.inp_loads, self.inp_keys)
        wgt_slot = _dedupe(prog, "wgt_loads", self.wgt_loads, self.wgt_keys)
        checks = np.array(self.group_checks, np.int64).reshape(-1, 3)
        prog.same_group = (checks[:, 0], checks[:, 1], checks[:, 2])
        prog.store_spans = _Spans(self.stores, sizes)
        prog.read_spans = _Spans(self.reads, sizes)
        prog.all_spans = _Spans(self.stores + self.reads, sizes)
        for step in prog.steps:
            if step.kind in ("acc_load", "store"):
                step.accesses = _Accesses(step.accesses)
        n_inp_init, n_wgt_init = len(self.inp_initial), len(self.wgt_initial)
        prog.inp_initial = np.array(self.inp_initial, np.int64)
        prog.wgt_initial = np.array(self.wgt_initial, np.int64)
        for step in prog.steps:  # slot ids -> positions in the virtual arrays
            if step.kind == "gemm":
                dst, src, wgt = step.gemm
                src = _position(src, n_inp_init, inp_slot)
                wgt = _position(wgt, n_wgt_init, wgt_slot)
                step.gemm = plan_products(dst, src, wgt, 0, 0, self.product_bound, self.float32_ok)
        for mapping, n_init, slot, name in (
            (self.inp_map, n_inp_init, inp_slot, "inp_final"),
            (self.wgt_map, n_wgt_init, wgt_slot, "wgt_final"),
        ):
            phys = np.flatnonzero((mapping[:-1] >= _LOADED) | (mapping[:-1] == 0))
            setattr(prog, name, (phys, _position(mapping[phys], n_init, slot)))
        written = np.flatnonzero(self.uop_written)
        if written.size:
            prog.uop_final = (written, self.uop[written])
        if self.uop_inherited:
            index = np.array(sorted(self.uop_inherited), np.int64)
            values = np.array([self.uop_inherited[i] for i in index.tolist()], np.uint32)
            prog.uop_inherited = (index, values)


def _expand(insn, column: np.ndarray, role: str, depth: int, sram: str) -> np.ndarray:
    """The ``role`` ("dst", "src" or "wgt") index of every iteration of ``insn``, checked to
    lie inside the ``sram`` of ``depth`` elements."""
    factors = getattr(insn, f"{role}_factor_out"), getattr(insn, f"{role}_factor_in")
    indices = expand(column, insn.iter_out, insn.iter_in, *factors)
    check_bound(indices, depth, sram)
    return indices


class TooLarge(Exception):
    """A stream with an instruction too large to translate; it runs instruction by instruction,
    where huge instructions run in pieces of bounded memory."""


def _check_size(insn, n_uops: int) -> None:
    if insn.iter_out * insn.iter_in * n_uops > CHUNK_ITERATIONS:
        raise TooLarge


# Slot ids: a loaded element k is _LOADED + k; the initial value number k is -2 - k.
_LOADED = 1 << 40


def _position(slots: np.ndarray, n_initial: int, slot_of_load: np.ndarray) -> np.ndarray:
    """Positions in the virtual array ``[zero, initial values..., distinct loaded elements...]``
    (``slot_of_load``: the distinct element of each loaded element)."""
    loaded = slots >= _LOADED
    picked = slot_of_load[np.where(loaded, slots - _LOADED, 0)] if slot_of_load.size else 0
    return np.where(loaded, 1 + n_initial + picked, np.where(slots == 0, 0, 1 + (-2 - slots)))


def _dedupe(prog, name: str, loads: list[_Access], keys: list[np.ndarray]) -> np.ndarray:
    """Set ``prog.<name>`` to the distinct elements of ``loads``; returns, for each loaded
    element, the index of its distinct element (padding elements: unused)."""
    every = _Accesses(loads)
    key = _cat(keys)
    real = np.flatnonzero(key >= 0)
    _, first, inverse = np.unique(key[real], return_index=True, return_inverse=True)
    slot = np.zeros(key.size, np.int64)
    slot[real] = inverse.ravel()
    kept = real[first]
    unique = _Accesses.of(every.mem_type, every.rel[kept], every.sram[kept], every.owner[kept])
    setattr(prog, name, unique)
    return slot
