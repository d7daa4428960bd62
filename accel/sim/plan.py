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
- **Accumulator rows are renamed at every reset**, and every operation is placed one *level*
  after the last operation on the rows it touches (GEMM updates of a row join its last GEMM
  level: updates only add products of renamed, immutable inputs and weights, so they commute).
  Operations of one level touch different rows, so each level runs as one product plan for all
  its GEMM updates (``gemm.plan_products``: for a whole layer, typically one BLAS product
  written straight into the accumulators), one array operation per ALU opcode and immediate
  (an ALU MAX and MIN by immediates of the same rows fused into one clip), and one scatter for
  its stores.
- **Gathers and scatters** of DRAM elements move whole elements as opaque items, through a
  strided view when the elements form one (``strided.py``), else by an index array.

Exactness. Results, final SRAM contents, DRAM contents, counters and cycles equal the
instruction-by-instruction run. The plan is only valid for the stream it was made from (the key
holds every word except the relocatable data addresses, and the micro-op words loaded) and the
token counts it started with; it is not used when a store of the run writes DRAM that a load of
the same run reads (then load order would matter) or that another store of it writes (the last
would have to win), or when two loads that shared a slot no longer read the same element (their
DRAM allocations moved apart), all checked from the addresses (the last few address sets that
passed are remembered). Micro-ops a stream runs without loading them are compared on every run.
Timing, counters and the trace depend only on the stream and are computed once, when scheduling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from accel.env import Environment
from accel.errors import DeviceMemoryError, SimulatorError
from accel.hw.isa import AluInsn, AluOp, GemmInsn, MemInsn, MemType, Opcode, uop_columns
from accel.hw.memory import DeviceMemory
from accel.hw.modules import insn_kind
from accel.sim.alu import apply_alu, chunk_bounds
from accel.sim.gemm import compute_products, float32_holds, plan_products, product_bound
from accel.sim.loops import CHUNK_ITERATIONS, as_slice, check_bound, expand
from accel.sim.state import Srams
from accel.sim.strided import StridedIndex, items

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
        self._strided_fields()

    def _strided_fields(self) -> None:
        # Set by find_strides: the elements as a strided view, the instructions owning them
        # and their dram_base then; ``shift``: how far the view moved for the addresses of
        # the run (None: the owners moved apart, so the index array is used).
        self.strided: StridedIndex | None = None
        self.owners = np.zeros(0, np.int64)
        self.origin = np.zeros(0, np.int64)
        self.shift: int | None = None

    def find_strides(self, dram_base: np.ndarray) -> None:
        """Look for the strided view this run's elements form (``dram_base``: the addresses
        the plan is made with); later runs use it while every owner moves by the same amount."""
        if self.any_pad or not self.rel.size:
            return
        self.strided = StridedIndex.find(self.index(dram_base))
        self.owners = np.unique(self.owner)
        self.origin = dram_base[self.owners]
        self.shift = 0 if self.strided is not None else None

    def follow(self, dram_base: np.ndarray) -> None:
        """Move the view to ``dram_base``'s addresses, or drop it for this run when the owning
        instructions did not all move by the same amount."""
        if self.strided is None:
            return
        moved = dram_base[self.owners] - self.origin
        self.shift = int(moved[0]) if (moved == moved[0]).all() else None

    def gather(self, source: np.ndarray, out: np.ndarray, dram_base: np.ndarray) -> None:
        """Copy the accessed elements of ``source`` (DRAM as items of this memory type) into
        ``out``, in order; padding elements are zeros."""
        target = items(out)
        if self.strided is not None and self.shift is not None:
            target.reshape(self.strided.shape)[...] = self.strided.view(source, self.shift)
        else:
            np.take(source, self.index(dram_base), out=target)
        if self.any_pad:
            out[self.pad] = 0

    def scatter(self, values: np.ndarray, target: np.ndarray, dram_base: np.ndarray) -> None:
        """Write ``values`` (one per access, of the elements' type) to the accessed elements of
        ``target`` (DRAM as items of this memory type)."""
        source = items(values)
        if self.strided is not None and self.shift is not None:
            self.strided.view(target, self.shift)[...] = source.reshape(self.strided.shape)
        else:
            target[self.index(dram_base)] = source

    @classmethod
    def of(cls, mem_type: MemType, rel, sram, owner) -> _Accesses:
        """Accesses given element by element (``rel`` >= 0: no padding)."""
        made = cls([])
        made.mem_type, made.rel, made.sram, made.owner = mem_type, rel, sram, owner
        made.pad = np.zeros(rel.size, bool)
        made.any_pad = False
        return made

    def renumbered(self, number: np.ndarray) -> _Accesses:
        """The same accesses with SRAM index ``i`` read as ``number[i]``, in ascending SRAM
        order (elements of one gather or scatter are independent)."""
        sram = number[self.sram]
        order = np.argsort(sram, kind="stable")
        made = _Accesses([])
        made.mem_type, made.rel, made.sram = self.mem_type, self.rel[order], sram[order]
        made.owner, made.pad, made.any_pad = self.owner[order], self.pad[order], self.any_pad
        return made

    def index(self, dram_base: np.ndarray) -> np.ndarray:
        """Absolute element indices (padding: 0)."""
        index = dram_base[self.owner] + self.rel
        return np.where(self.pad, 0, index) if self.any_pad else index


class _Spans:
    """Byte intervals of accesses, per access: ``[(base + lo) * size, (base + hi) * size)``."""

    def __init__(self, accesses: list[_Access], elem_sizes: dict):
        accesses = [a for a in accesses if a.rel.size]
        self.insn = np.array([a.insn for a in accesses], np.int64)
        self.size = np.array([elem_sizes[a.mem_type] for a in accesses], np.int64)
        if not accesses:
            self.lo = self.hi = np.zeros(0, np.int64)
            return
        rel = _cat([a.rel for a in accesses])
        starts = np.cumsum([0] + [a.rel.size for a in accesses[:-1]])
        big = np.iinfo(np.int64).max
        self.lo = np.minimum.reduceat(np.where(rel >= 0, rel, big), starts)
        self.hi = np.maximum.reduceat(rel, starts) + 1
        real = self.lo != big  # accesses of padding only touch no DRAM
        self.insn, self.size = self.insn[real], self.size[real]
        self.lo, self.hi = self.lo[real], self.hi[real]

    def bytes(self, dram_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = dram_base[self.insn]
        return (base + self.lo) * self.size, (base + self.hi) * self.size


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass
class _Step:
    """One array operation of the plan, on the virtual accumulators or on DRAM."""

    kind: str  # "gemm", "alu", "clip" or "store"
    gemm: object = None  # GemmPlan over the virtual input / weight arrays; its dst: acc rows
    assign: bool = False  # gemm: its rows hold the zeros of a reset, so sums are written
    direct: bool = False  # gemm: ... by the product itself, straight into the accumulators
    alu: AluInsn | None = None  # alu: the operation (opcode, immediate) every chunk applies
    chunks: list = field(default_factory=list)  # alu: (dst, src) run one after another
    clip: tuple[int, int] = (0, 0)  # clip: an ALU MAX and MIN by immediates fused, (low, high)
    stores: _Accesses | None = None  # store: DRAM elements, ``sram`` holding accumulator rows
    rows: object = None  # store: the accumulator rows stored (a slice when consecutive)


class StreamProgram:
    """The translated stream; :meth:`run` executes it for one set of data addresses."""

    def __init__(self, env: Environment, srams: Srams, dram: DeviceMemory):
        self.env = env
        self.srams = srams
        self.dram = dram
        self.steps: list[_Step] = []
        # The distinct elements loaded, one per virtual slot, in parts gathered one after the
        # other: those some GEMM reads, then those only the final SRAM contents keep.
        self.inp_loads: list[_Accesses] = []
        self.wgt_loads: list[_Accesses] = []
        # Loads that share slots must keep their addresses' differences: instruction, the
        # first instruction of its DRAM allocation, and the difference of their dram_base.
        self.same_group: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 3
        self.store_spans: _Spans | None = None
        self.read_spans: _Spans | None = None
        self.all_spans: _Spans | None = None
        self.inp_initial = np.zeros(0, np.int64)  # physical indices read before any load
        self.wgt_initial = np.zeros(0, np.int64)
        # At the end, (physical indices -- a slice when consecutive --, virtual positions).
        self.inp_final: tuple = (np.zeros(0, np.int64),) * 2
        self.wgt_final: tuple = (np.zeros(0, np.int64),) * 2
        self.uop_final: tuple[np.ndarray, np.ndarray] | None = None
        # Micro-ops the stream reads before loading them (left by an earlier stream): their
        # indices and the values the plan was made with; the plan holds only while they stay.
        self.uop_inherited: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
        self.wgt_loaded = False
        # Whether a run reads SRAM contents from before it (initial input, weight or
        # accumulator values, inherited micro-ops).
        self.reads_sram = True
        # Virtual accumulators: how many, those a reset zeroes (and no GEMM overwrites whole),
        # those holding a physical row's value from before the run (physical, virtual), those
        # an accumulator load fills (one _Accesses per memory type), and at the end the
        # virtual row each physical row holds (physical, virtual).
        self.acc_rows = 0
        self.acc_zero: slice | np.ndarray = np.zeros(0, np.int64)
        self.acc_initial: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
        self.acc_loads: list[_Accesses] = []
        self.acc_final: tuple = (np.zeros(0, np.int64),) * 2
        # The virtual accumulators, two arrays kept between runs (_accumulators).
        self._accs: list[np.ndarray | None] = [None, None]
        # The virtual weights of the last run and their version: the products' weight matrices
        # (converted and laid out for BLAS) are rebuilt only when the weights change.
        self._wgt_seen: np.ndarray | None = None
        self._wgt_version = 0
        # The last few data addresses that passed the checks (their bytes), with the shift of
        # every strided view for them: calls alternating between a few sets of arrays (an
        # allocator reusing its blocks) check nothing again.
        self._passed: dict[bytes, list[int | None]] = {}
        self.strided: list[_Accesses] = []  # the gathers and scatters run on strided views
        self._dram_views: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # _dram_items

    # -- running ---------------------------------------------------------------------------
    def run(self, dram_base: np.ndarray) -> bool:
        """Run with ``dram_base`` (the base element index of every instruction of the stream).
        Returns False, having changed nothing, when the plan does not hold for this run: a
        store of the run writes DRAM a load of it reads or another store writes, loads that
        shared a slot no longer read the same elements, or micro-ops the stream inherited have
        changed. Raises DeviceMemoryError, before changing anything, for an access outside
        device memory."""
        if not self._addresses_hold(dram_base):
            return False
        index, values = self.uop_inherited
        if index.size and not np.array_equal(self.srams.uop[index], values):
            return False
        srams = self.srams
        if self.reads_sram or not srams.pending_from(self):
            srams.flush()
        # Else the copies this plan's last run left stay pending until this run's replace them
        # (the same rows): nothing below reads them, and the accumulators they copy from are
        # not the ones this run writes (_accumulators), so an interrupted run loses nothing.
        inp = self._virtual(
            srams.unflushed("inp"), self.inp_initial, self.inp_loads, dram_base, srams.inp_dtype
        )
        wgt = self._unchanged_weights()
        if wgt is None:
            wgt = self._virtual(
                srams.unflushed("wgt"), self.wgt_initial, self.wgt_loads, dram_base, srams.wgt_dtype
            )
            if self._wgt_seen is None or not np.array_equal(wgt, self._wgt_seen):
                self._wgt_version += 1  # else the weight matrices of the last run still hold
                self._wgt_seen = wgt
        acc = self._accumulators(dram_base)
        for step in self.steps:
            if step.kind == "gemm":
                if step.direct:
                    compute_products(step.gemm, inp, wgt, self._wgt_version, acc[step.gemm.dst])
                else:
                    sums = compute_products(step.gemm, inp, wgt, self._wgt_version)
                    _add_products(acc, step, sums)
            elif step.kind == "alu":
                for dst, src in step.chunks:
                    apply_alu(acc, step.alu, dst, src)
            elif step.kind == "clip":
                _clip(acc, step.chunks[0][0], *step.clip)
            else:
                self._store(step, acc, dram_base)
        if self.wgt_loaded:
            srams.wgt_version += 1
        if self.uop_final is not None:  # no pending copy writes micro-ops
            srams.unflushed("uop")[self.uop_final[0]] = self.uop_final[1]
        # The final SRAM contents, written when someone looks (or never, if this plan runs
        # next and overwrites them).
        srams.defer(
            self,
            [
                ("acc", self.acc_final[0], acc, self.acc_final[1]),
                ("inp", self.inp_final[0], inp, self.inp_final[1]),
                ("wgt", self.wgt_final[0], wgt, self.wgt_final[1]),
            ],
        )
        return True

    def _store(self, step: _Step, acc: np.ndarray, dram_base: np.ndarray) -> None:
        """Write a store step's accumulator rows to DRAM, keeping their low bits."""
        dtype = self.srams.out_dtype
        out = self._dram_items(MemType.OUT, dtype, acc.shape[1:])
        step.stores.scatter(acc[step.rows].astype(dtype), out, dram_base)

    def _addresses_hold(self, dram_base: np.ndarray) -> bool:
        """Whether the plan holds for these addresses: no store writes what a load reads or
        another store writes, and loads that shared slots still read the same elements. Raises
        DeviceMemoryError for an access outside device memory. The last addresses that passed
        are remembered."""
        key = dram_base.tobytes()
        shifts = self._passed.get(key)
        if shifts is not None:
            for accesses, shift in zip(self.strided, shifts, strict=True):
                accesses.shift = shift
            return True
        if self.store_spans.insn.size:
            stored = self.store_spans.bytes(dram_base)
            if self.read_spans.insn.size and _overlap(stored, self.read_spans.bytes(dram_base)):
                return False
            if _overlap_each_other(stored):  # the last store would have to win
                return False
        insns, leaders, diffs = self.same_group
        if insns.size and (dram_base[insns] - dram_base[leaders] != diffs).any():
            return False
        self._check_dram(dram_base)
        for accesses in self.strided:
            accesses.follow(dram_base)
        if len(self._passed) >= _ADDRESS_SETS:
            del self._passed[next(iter(self._passed))]  # the oldest
        self._passed[key] = [accesses.shift for accesses in self.strided]
        return True

    def _virtual(self, sram, initial, parts: list[_Accesses], dram_base, dtype) -> np.ndarray:
        """The virtual SRAM, in the element type of DRAM (a quarter of the bytes of the SRAM's
        floating values for 8-bit ones; products convert): slot 0 zero, then the physical
        elements read before being loaded, then the loaded elements some GEMM reads or the SRAM
        keeps."""
        n_loaded = sum(loads.rel.size for loads in parts)
        out = np.empty((1 + initial.size + n_loaded, *sram.shape[1:]), dtype)
        out[0] = 0
        out[1 : 1 + initial.size] = sram[initial]
        start = 1 + initial.size
        for loads in parts:
            loaded = out[start : start + loads.rel.size]
            start += loads.rel.size
            source = self._dram_items(loads.mem_type, dtype, sram.shape[1:])
            loads.gather(source, loaded, dram_base)
        return out

    def _accumulators(self, dram_base) -> np.ndarray:
        """The virtual accumulators at the start of the run: zeros where a reset made them,
        the physical rows' values from before the run, the rows accumulator loads fill (rows a
        GEMM overwrites whole are left as they are). Two arrays take turns: a run writes the
        one the copies its last complete run left pending do not read."""
        physical = self.srams.unflushed("acc")
        busy = self.srams.pending_source(self, "acc")
        turn = 1 if busy is not None and busy is self._accs[0] else 0
        acc = self._accs[turn]
        if acc is None:
            acc = self._accs[turn] = np.empty((self.acc_rows, *physical.shape[1:]), physical.dtype)
        acc[self.acc_zero] = 0
        phys, virt = self.acc_initial
        if phys.size:  # such a plan reads SRAM: its run flushed first
            acc[virt] = physical[phys]
        for loads in self.acc_loads:
            dtype = np.int8 if loads.mem_type == MemType.ACC_8BIT else self.srams.acc_dtype
            source = self._dram_items(loads.mem_type, dtype, acc.shape[1:])
            values = np.empty((loads.rel.size, *acc.shape[1:]), dtype)
            loads.gather(source, values, dram_base)
            acc[loads.sram] = values
        return acc

    def _dram_items(self, mem_type: MemType, dtype, elem_shape) -> np.ndarray:
        """DRAM as a 1-D array of opaque ``mem_type`` elements (made once per plan)."""
        return self._dram_view(mem_type, dtype, tuple(elem_shape), True)

    def _dram_elements(self, mem_type: MemType, dtype, elem_shape) -> np.ndarray:
        """DRAM as an array of ``mem_type`` elements of ``elem_shape`` (made once per plan)."""
        return self._dram_view(mem_type, dtype, tuple(elem_shape), False)

    def _dram_view(self, mem_type: MemType, dtype, elem_shape: tuple, as_items: bool):
        key = (mem_type, np.dtype(dtype).str, elem_shape, as_items)
        data, view = self._dram_views.get(key, (None, None))
        if data is not self.dram.data:
            data = self.dram.data
            size = self.dram.elem_sizes[mem_type]
            count = self.dram.size // size
            view = data[: count * size].view(dtype).reshape(count, *elem_shape)
            if as_items:
                view = items(view)
            self._dram_views[key] = (data, view)
        return view

    def _unchanged_weights(self) -> np.ndarray | None:
        """The virtual weights of the last run when DRAM still holds them, compared in place
        (no gather first; weights are the largest operand of late layers); else None. Only
        for weights that are one strided view of DRAM."""
        seen = self._wgt_seen
        if seen is None or self.wgt_initial.size or len(self.wgt_loads) != 1:
            return None
        loads = self.wgt_loads[0]
        if loads.strided is None or loads.shift is None:
            return None
        elements = self._dram_elements(loads.mem_type, self.srams.wgt_dtype, seen.shape[1:])
        view = loads.strided.view(elements, loads.shift)
        return seen if np.array_equal(view, seen[1:].reshape(view.shape)) else None

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


def _clip(acc: np.ndarray, rows, low: int, high: int) -> None:
    if acc.dtype == np.int32:  # immediates fit: numpy skips its range checks of Python ints
        low, high = np.int32(low), np.int32(high)
    if isinstance(rows, slice):
        view = acc[rows]
        np.clip(view, low, high, out=view)
    else:
        acc[rows] = np.clip(acc[rows], low, high)


def _add_products(acc: np.ndarray, step: _Step, sums: np.ndarray) -> None:
    """Add a GEMM step's exact sums into its accumulator rows, wrapping like the hardware."""
    rows = step.gemm.dst
    if (step.gemm.dtype == np.float32 or sums.dtype == np.int32) and acc.dtype == np.int32:
        # Every sum fits in int32 here: cast once; int32 addition wraps by itself.
        if step.assign:
            acc[rows] = sums
        elif isinstance(rows, slice):
            view = acc[rows]
            view += sums.astype(np.int32)
        else:
            acc[rows] += sums.astype(np.int32)
    else:
        wide = acc[rows].astype(np.int64) + sums.astype(np.int64)
        acc[rows] = wide.astype(acc.dtype)


def _overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether some interval of ``a`` intersects some interval of ``b``."""
    a_lo, a_hi = a
    b_lo, b_hi = b
    order = np.argsort(b_lo, kind="stable")
    b_lo, b_hi = b_lo[order], np.maximum.accumulate(b_hi[order])
    last = np.searchsorted(b_lo, a_hi, side="left") - 1  # the b intervals starting before a_hi
    return bool(((last >= 0) & (b_hi[np.maximum(last, 0)] > a_lo)).any())


def _overlap_each_other(spans: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two intervals of ``spans`` intersect."""
    lo, hi = spans
    if lo.size < 2:
        return False
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    return bool((lo[1:] < np.maximum.accumulate(hi[:-1])).any())


# -- translation ---------------------------------------------------------------------------------


def translate(
    insns: list,
    order: list[int],
    dram_base: np.ndarray,
    env: Environment,
    srams: Srams,
    dram: DeviceMemory,
) -> StreamProgram:
    """The plan of ``insns`` (decoded, checked instructions) run in schedule ``order``, with
    ``dram_base`` the DRAM address of every instruction in this first run."""
    prog = StreamProgram(env, srams, dram)
    t = _Translator(prog, env, srams, dram, dram_base)
    for index in order:
        t.insn(index, insns[index])
    t.finish()
    return prog


class _Rows:
    """Per virtual accumulator row: the level of the last operation writing it and of the last
    one reading it, the level of the last write again if it was a GEMM update (else -1), the
    level of the first operation on it (-1: none yet), and whether a reset made it (it starts
    as zeros)."""

    def __init__(self, capacity: int):
        self.count = 0
        self.written = np.zeros(capacity, np.int64)
        self.read = np.zeros(capacity, np.int64)
        self.gemm = np.zeros(capacity, np.int64)
        self.first = np.zeros(capacity, np.int64)
        self.reset = np.zeros(capacity, bool)

    def new(self, n: int, reset: bool) -> np.ndarray:
        if self.count + n > self.written.size:
            grow = max(self.written.size, n)
            for name in ("written", "read", "gemm", "first", "reset"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros(grow, old.dtype)]))
        rows = np.arange(self.count, self.count + n, dtype=np.int64)
        self.count += n
        self.written[rows] = 0
        self.read[rows] = 0
        self.gemm[rows] = -1
        self.first[rows] = -1
        self.reset[rows] = reset
        return rows

    def level(self, writes: np.ndarray, reads: np.ndarray) -> int:
        """The first level after every write of ``writes`` and ``reads`` and every read of
        ``writes`` (reads of a row by several operations need no order among them)."""
        level = 0
        if writes.size:
            level = max(int(self.written[writes].max()), int(self.read[writes].max()))
        if reads.size:
            level = max(level, int(self.written[reads].max()))
        return level + 1

    def gemm_level(self, writes: np.ndarray) -> int:
        """The level of a GEMM update of ``writes``: the level of a row's last GEMM update when
        nothing came after it (updates commute), else the next level."""
        written, read = self.written[writes], self.read[writes]
        join = (self.gemm[writes] == written) & (read < written)
        return int(np.where(join, written, np.maximum(written, read) + 1).max())

    def note(self, writes: np.ndarray, reads: np.ndarray, level: int, gemm: bool) -> None:
        for rows in (writes, reads):
            if rows.size:
                first = self.first[rows]
                self.first[rows] = np.where(first < 0, level, first)
        self.written[writes] = level
        self.gemm[writes] = level if gemm else -1
        if reads.size:
            self.read[reads] = np.maximum(self.read[reads], level)


_NONE = np.zeros(0, np.int64)


@functools.lru_cache(maxsize=1024)
def _offsets(y_size, x_size, x_stride, y_pad_0, y_pad_1, x_pad_0, x_pad_1):
    """(element offset from dram_base of every SRAM element a 2-D access fills, -1 for
    padding; 0..n-1), shared by every access of that shape (read-only)."""
    rows = y_pad_0 + y_size + y_pad_1
    cols = x_pad_0 + x_size + x_pad_1
    y = np.arange(rows).reshape(-1, 1) - y_pad_0
    x = np.arange(cols).reshape(1, -1) - x_pad_0
    inside = (y >= 0) & (y < y_size) & (x >= 0) & (x < x_size)
    rel = np.where(inside, y * x_stride + x, -1).ravel().astype(np.int64)
    count = np.arange(rows * cols, dtype=np.int64)
    rel.flags.writeable = count.flags.writeable = False
    return rel, count


# Address sets a plan remembers as checked.
_ADDRESS_SETS = 4
# A stream whose virtual accumulators would pass this many rows runs instruction by instruction.
MAX_ACC_ROWS = 1 << 20
# GEMM updates of one level that run as one product plan, at most (index entries); more are
# cut into several plans so that the gathered operands stay a few tens of megabytes.
GEMM_BATCH = 1 << 20


class _Translator:
    """Walks the schedule, renaming SRAM loads and accumulator rows, and gives every
    accumulator operation a level: one more than the last level of any row it touches (GEMM
    updates join a GEMM level of their rows, since updates commute). Operations of one level
    touch different rows, so each kind of them runs as one array operation."""

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
        # Physical accumulator row -> the virtual row it holds; -1: its value from before.
        self.acc_version = np.full(env.ACC_BUFF_DEPTH, -1, np.int64)
        self.rows = _Rows(env.ACC_BUFF_DEPTH)
        self.acc_initial: list[tuple[np.ndarray, np.ndarray]] = []
        self.acc_loads: list[_Access] = []  # their ``sram``: virtual rows
        self.resets: list[np.ndarray] = []
        self.ops: list[tuple[int, str, object]] = []  # (level, kind, what) in schedule order
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
        if self.rows.count > MAX_ACC_ROWS:
            raise NotTranslated

    def _access(self, index: int, insn: MemInsn) -> _Access:
        """Element offsets and SRAM indices of one 2-D LOAD or STORE, padding included."""
        rel, count = _offsets(
            insn.y_size, insn.x_size, insn.x_stride,
            insn.y_pad_0, insn.y_pad_1, insn.x_pad_0, insn.x_pad_1,
        )  # fmt: skip
        sram = insn.sram_base + count
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
        """New virtual rows, filled from DRAM before anything runs (no store of the run writes
        what a load reads; ``StreamProgram.run`` checks it)."""
        a = self._access(index, insn)
        self.reads.append(a)
        virt = self.rows.new(a.sram.size, reset=False)
        self.acc_version[a.sram] = virt
        self.acc_loads.append(_Access(index, a.mem_type, a.rel, virt))

    def _store(self, index: int, insn: MemInsn) -> None:
        if insn.y_size > 1 and insn.x_stride < insn.x_size:
            raise NotTranslated  # its rows overlap
        a = self._access(index, insn)  # a STORE has no padding: every element is real
        self.stores.append(a)
        virt = self._current(a.sram)
        self._add("store", _NONE, virt, _Access(index, a.mem_type, a.rel, virt))

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

    def _current(self, phys: np.ndarray) -> np.ndarray:
        """The virtual rows physical rows ``phys`` hold now (rows not written yet by the run get
        a virtual row holding their value from before it)."""
        virt = self.acc_version[phys]
        if (virt < 0).any():
            fresh = np.unique(phys[virt < 0])
            made = self.rows.new(fresh.size, reset=False)
            self.acc_version[fresh] = made
            self.acc_initial.append((fresh, made))
            virt = self.acc_version[phys]
        return virt

    def _add(self, kind: str, writes: np.ndarray, reads: np.ndarray, what) -> None:
        """Record an operation writing virtual rows ``writes`` and reading ``reads``, at the
        first level after the operations it depends on."""
        if not (writes.size or reads.size):  # e.g. a store of no rows
            return
        level = self.rows.level(writes, reads)
        self.rows.note(writes, reads, level, gemm=False)
        self.ops.append((level, kind, what))

    def _gemm(self, insn: GemmInsn) -> None:
        words = self._micro_ops(insn)
        if not (words.size and insn.iter_out and insn.iter_in):
            return
        _check_size(insn, words.size)
        udst, usrc, uwgt = uop_columns(words, self.env)
        dst = _expand(insn, udst, "dst", self.env.ACC_BUFF_DEPTH, "acc")
        if insn.reset_reg:  # new rows of zeros
            phys = np.unique(dst)
            virt = self.rows.new(phys.size, reset=True)
            self.acc_version[phys] = virt
            self.resets.append(virt)
            return
        src = _expand(insn, usrc, "src", self.env.INP_BUFF_DEPTH, "inp")
        wgt = _expand(insn, uwgt, "wgt", self.env.WGT_BUFF_DEPTH, "wgt")
        vsrc = self._resolve(src, self.inp_map, self.inp_initial)
        vwgt = self._resolve(wgt, self.wgt_map, self.wgt_initial)
        vdst = self._current(dst)
        level = self.rows.gemm_level(vdst)
        self.rows.note(vdst, _NONE, level, gemm=True)
        self.ops.append((level, "gemm", (vdst, vsrc, vwgt)))

    def _resolve(self, phys: np.ndarray, mapping: np.ndarray, initial: list[int]) -> np.ndarray:
        """Virtual slots (as encoded slot ids) of physical SRAM indices at this point."""
        slots = mapping[phys]
        unread = slots == -1
        fresh = np.unique(phys[unread]) if unread.any() else _NONE
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
        depth = self.env.ACC_BUFF_DEPTH
        dst = _expand(insn, udst, "dst", depth, "acc")
        src = None if insn.use_imm else _expand(insn, usrc, "src", depth, "acc")
        bounds = chunk_bounds(dst, src, depth)  # hazards inside the instruction
        vdst = self._current(dst)
        vsrc = None if src is None else self._current(src)
        self._add("alu", vdst, _NONE if vsrc is None else vsrc, (insn, vdst, vsrc, bounds))

    # -- the plan ------------------------------------------------------------------------------
    def finish(self) -> None:
        prog = self.prog
        sizes = self.dram.elem_sizes
        inp_loads, inp_slot = _dedupe(self.inp_loads, self.inp_keys)
        wgt_loads, wgt_slot = _dedupe(self.wgt_loads, self.wgt_keys)
        checks = np.array(self.group_checks, np.int64).reshape(-1, 3)
        prog.same_group = (checks[:, 0], checks[:, 1], checks[:, 2])
        prog.store_spans = _Spans(self.stores, sizes)
        prog.read_spans = _Spans(self.reads, sizes)
        prog.all_spans = _Spans(self.stores + self.reads, sizes)
        n_inp_init, n_wgt_init = len(self.inp_initial), len(self.wgt_initial)
        prog.inp_initial = np.array(self.inp_initial, np.int64)
        prog.wgt_initial = np.array(self.wgt_initial, np.int64)
        assigned = []
        gemm_steps = []
        previous_alus: list[_Step] = []
        int32 = self.prog.srams.acc.dtype == np.int32
        for level, ops in _by_level(self.ops):
            batches = _batches([what for kind, what in ops if kind == "gemm"])
            for dst, src, wgt in batches:
                src = _position(src, n_inp_init, inp_slot)
                wgt = _position(wgt, n_wgt_init, wgt_slot)
                step = _Step("gemm", gemm=(dst, src, wgt))
                rows = _distinct(dst)
                # One product writing rows that hold nothing but a reset's zeros: write its
                # sums instead of zeroing the rows and adding.
                if len(batches) == 1 and self._fresh(rows, level):
                    step.assign = True
                    assigned.append(rows)
                prog.steps.append(step)
                gemm_steps.append(step)
            alus = _alu_steps([what for kind, what in ops if kind == "alu"])
            if int32:
                alus = [step for step in alus if not _fuse_clip(previous_alus, step)]
            prog.steps.extend(alus)
            previous_alus = alus
            stores = [what for kind, what in ops if kind == "store"]
            if stores:
                accesses = _Accesses(stores)
                prog.steps.append(_Step("store", stores=accesses, rows=as_slice(accesses.sram)))
        finals = {}
        for mapping, n_init, slot, name in (
            (self.inp_map, n_inp_init, inp_slot, "inp_final"),
            (self.wgt_map, n_wgt_init, wgt_slot, "wgt_final"),
        ):
            phys = np.flatnonzero((mapping[:-1] >= _LOADED) | (mapping[:-1] == 0))
            finals[name] = (phys, _position(mapping[phys], n_init, slot))
        # Only the loaded elements some GEMM reads or an SRAM keeps at the end are gathered.
        prog.inp_loads, inp_kept = _keep_used(
            inp_loads, n_inp_init, [s.gemm[1] for s in gemm_steps], finals["inp_final"]
        )
        prog.wgt_loads, wgt_kept = _keep_used(
            wgt_loads, n_wgt_init, [s.gemm[2] for s in gemm_steps], finals["wgt_final"]
        )
        prog.inp_final = (as_slice(finals["inp_final"][0]), inp_kept[finals["inp_final"][1]])
        prog.wgt_final = (as_slice(finals["wgt_final"][0]), wgt_kept[finals["wgt_final"][1]])
        for step in gemm_steps:
            dst, src, wgt = step.gemm
            step.gemm = (dst, inp_kept[src], wgt_kept[wgt])
            step.gemm = self._product_plan(*step.gemm)
        self._accumulators(assigned)
        number = self._output_order(gemm_steps)
        if number is not None:
            _renumber(prog, number, self._product_plan)
        for step in gemm_steps:
            step.direct = (
                step.assign and isinstance(step.gemm.dst, slice) and _fits_int32(step.gemm, prog)
            )
        written = np.flatnonzero(self.uop_written)
        if written.size:
            prog.uop_final = (written, self.uop[written])
        if self.uop_inherited:
            index = np.array(sorted(self.uop_inherited), np.int64)
            values = np.array([self.uop_inherited[i] for i in index.tolist()], np.uint32)
            prog.uop_inherited = (index, values)
        prog.reads_sram = bool(
            prog.inp_initial.size
            or prog.wgt_initial.size
            or prog.acc_initial[0].size
            or prog.uop_inherited[0].size
        )
        stores = [step.stores for step in prog.steps if step.kind == "store"]
        for accesses in [*prog.inp_loads, *prog.wgt_loads, *prog.acc_loads, *stores]:
            accesses.find_strides(self.dram_base)
            if accesses.strided is not None:
                prog.strided.append(accesses)

    def _product_plan(self, dst: np.ndarray, src: np.ndarray, wgt: np.ndarray):
        plan = plan_products(dst, src, wgt, 0, 0, self.product_bound, self.float32_ok)
        plan.updates = (dst, src, wgt)  # kept for a renumbering of the rows
        return plan

    def _output_order(self, gemm_steps: list[_Step]) -> np.ndarray | None:
        """A renumbering of the virtual accumulator rows (the new number of every row) under
        which each product writing fresh rows gives them in ascending order, so that it writes
        straight into the accumulators instead of through a scatter; None when no product
        needs one. Rows are only permuted among the rows of one product."""
        number = np.arange(self.rows.count, dtype=np.int64)
        claimed = np.zeros(self.rows.count, bool)
        changed = False
        for step in gemm_steps:
            plan = step.gemm
            if not step.assign or plan.layout != "blocks":
                continue
            rows = _distinct(plan.updates[0])  # the plan's rows, in its order
            produced = rows[np.concatenate([_indices(block[2]) for block in plan.blocks])]
            if claimed[produced].any():
                continue
            number[produced] = rows
            claimed[produced] = True
            changed = True
        return number if changed else None

    def _fresh(self, rows: np.ndarray, level: int) -> bool:
        """Whether every row in ``rows`` is a reset's zeros, first touched at ``level``."""
        return bool((self.rows.reset[rows] & (self.rows.first[rows] == level)).all())

    def _accumulators(self, assigned: list[np.ndarray]) -> None:
        """The virtual accumulators' layout: how many, which start as zeros, which as physical
        rows' values from before the run, which as loaded values; the final mapping."""
        prog = self.prog
        prog.acc_rows = self.rows.count
        zero = _cat(self.resets)
        zero = np.setdiff1d(zero, _cat(assigned)) if assigned else np.sort(zero)
        prog.acc_zero = as_slice(zero)
        if self.acc_initial:
            prog.acc_initial = (
                _cat([phys for phys, _ in self.acc_initial]),
                _cat([virt for _, virt in self.acc_initial]),
            )
        for mem_type in (MemType.ACC, MemType.ACC_8BIT):
            loads = [a for a in self.acc_loads if a.mem_type == mem_type]
            if loads:
                prog.acc_loads.append(_Accesses(loads))
        phys = np.flatnonzero(self.acc_version >= 0)
        prog.acc_final = (as_slice(phys), self.acc_version[phys])


def _renumber(prog: StreamProgram, number: np.ndarray, product_plan) -> None:
    """Give every virtual accumulator row ``r`` the number ``number[r]`` throughout the plan.
    Elements of one operation are independent, so each operation's elements are sorted by
    their new rows (consecutive rows become slices again)."""
    for step in prog.steps:
        if step.kind == "gemm":
            dst, src, wgt = step.gemm.updates
            step.gemm = product_plan(number[dst], src, wgt)
        elif step.kind in ("alu", "clip"):
            chunks = []
            for dst, src in step.chunks:
                dst = number[_indices(dst)]
                order = np.argsort(dst, kind="stable")
                src = None if src is None else as_slice(number[_indices(src)][order])
                chunks.append((as_slice(dst[order]), src))
            step.chunks = chunks
        else:
            step.stores = step.stores.renumbered(number)
            step.rows = as_slice(step.stores.sram)
    if prog.acc_zero is not None:
        prog.acc_zero = as_slice(np.sort(number[_indices(prog.acc_zero)]))
    phys, virt = prog.acc_initial
    prog.acc_initial = (phys, number[virt])
    prog.acc_loads = [loads.renumbered(number) for loads in prog.acc_loads]
    phys, virt = prog.acc_final
    prog.acc_final = (phys, number[virt])


def _distinct(rows: np.ndarray) -> np.ndarray:
    """``np.unique`` of non-negative row numbers, by counting (GEMM batches hold millions)."""
    return np.flatnonzero(np.bincount(rows)) if rows.size else _NONE


def _indices(rows) -> np.ndarray:
    """Row indices of a slice or an index array."""
    if isinstance(rows, slice):
        return np.arange(rows.start, rows.stop, dtype=np.int64)
    return rows


def _fits_int32(plan, prog: StreamProgram) -> bool:
    """Whether the plan's sums can be written into int32 accumulators as they come (float32
    sums stay below 2^24; pieces are summed as int32)."""
    return prog.srams.acc.dtype == np.int32 and (plan.dtype == np.float32 or bool(plan.k_chunk))


def _by_level(ops: list[tuple[int, str, object]]) -> list[tuple[int, list]]:
    """The operations grouped by level, levels in order, schedule order kept inside one."""
    levels: dict[int, list] = {}
    for level, kind, what in ops:
        levels.setdefault(level, []).append((kind, what))
    return sorted(levels.items(), key=lambda item: item[0])


_CLIP_PAIRS = {(AluOp.MAX, AluOp.MIN), (AluOp.MIN, AluOp.MAX)}


def _fuse_clip(previous: list[_Step], step: _Step) -> bool:
    """When ``step`` is a MIN (MAX) by an immediate of exactly the rows a MAX (MIN) by an
    immediate of the previous level worked on, turn that one into a clip of both bounds and
    say so (``step`` is then dropped). No operation between the two touches those rows:
    operations of one level touch different rows."""
    if step.kind != "alu" or not step.alu.use_imm or len(step.chunks) != 1:
        return False
    rows = step.chunks[0][0]
    for earlier in previous:
        if (
            earlier.kind == "alu"
            and earlier.alu.use_imm
            and len(earlier.chunks) == 1
            and (earlier.alu.alu_opcode, step.alu.alu_opcode) in _CLIP_PAIRS
            and _same_rows(earlier.chunks[0][0], rows)
        ):
            pair = {earlier.alu.alu_opcode: earlier.alu.imm, step.alu.alu_opcode: step.alu.imm}
            low, high = pair[AluOp.MAX], pair[AluOp.MIN]
            if low > high:  # min(max(x, lo), hi) is hi everywhere; max(min(...)) is lo
                return False
            earlier.kind, earlier.clip = "clip", (low, high)
            return True
    return False


def _same_rows(a, b) -> bool:
    if isinstance(a, slice) or isinstance(b, slice):
        return a == b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _batches(gemms: list[tuple]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """GEMM updates ``(dst, src, wgt)`` of one level, concatenated into batches of at most
    ``GEMM_BATCH`` entries (an instruction is never cut)."""
    parts: list[list[tuple]] = []
    size = 0
    for update in gemms:
        if not parts or size + update[0].size > GEMM_BATCH:
            parts.append([])
            size = 0
        parts[-1].append(update)
        size += update[0].size
    return [tuple(np.concatenate([u[i] for u in part]) for i in range(3)) for part in parts]


def _alu_steps(alus: list[tuple]) -> list[_Step]:
    """The ALU instructions of one level (they touch different rows): those without a hazard
    inside become one operation per opcode and immediate; the others run chunk by chunk."""
    steps: list[_Step] = []
    merged: dict[tuple, tuple[AluInsn, list, list]] = {}
    for insn, dst, src, bounds in alus:
        if len(bounds) == 2:
            key = (insn.alu_opcode, insn.use_imm, insn.imm if insn.use_imm else None)
            _, dsts, srcs = merged.setdefault(key, (insn, [], []))
            dsts.append(dst)
            if src is not None:
                srcs.append(src)
            continue
        chunks = [
            (as_slice(dst[lo:hi]), None if src is None else as_slice(src[lo:hi]))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        steps.append(_Step("alu", alu=insn, chunks=chunks))
    for insn, dsts, srcs in merged.values():
        dst = np.concatenate(dsts)
        order = np.argsort(dst, kind="stable")  # ascending rows are often one slice
        src = as_slice(np.concatenate(srcs)[order]) if srcs else None
        steps.append(_Step("alu", alu=insn, chunks=[(as_slice(dst[order]), src)]))
    return steps


def _expand(insn, column: np.ndarray, role: str, depth: int, sram: str) -> np.ndarray:
    """The ``role`` ("dst", "src" or "wgt") index of every iteration of ``insn``, checked to
    lie inside the ``sram`` of ``depth`` elements."""
    factors = getattr(insn, f"{role}_factor_out"), getattr(insn, f"{role}_factor_in")
    indices = expand(column, insn.iter_out, insn.iter_in, *factors)
    check_bound(indices, depth, sram)
    return indices


class NotTranslated(Exception):
    """A stream no plan runs exactly; it runs instruction by instruction. Either an instruction
    is too large to translate (interpreted, huge instructions run in pieces of bounded memory),
    or a STORE's rows overlap, so one instruction writes a DRAM element twice and the later
    row must win (a plan's scatter may reorder the elements)."""


def _check_size(insn, n_uops: int) -> None:
    if insn.iter_out * insn.iter_in * n_uops > CHUNK_ITERATIONS:
        raise NotTranslated


# Slot ids: a loaded element k is _LOADED + k; the initial value number k is -2 - k.
_LOADED = 1 << 40


def _position(slots: np.ndarray, n_initial: int, slot_of_load: np.ndarray) -> np.ndarray:
    """Positions in the virtual array ``[zero, initial values..., distinct loaded elements...]``
    (``slot_of_load``: the distinct element of each loaded element)."""
    loaded = slots >= _LOADED
    picked = slot_of_load[np.where(loaded, slots - _LOADED, 0)] if slot_of_load.size else 0
    return np.where(loaded, 1 + n_initial + picked, np.where(slots == 0, 0, 1 + (-2 - slots)))


def _keep_used(
    loads: _Accesses, n_initial: int, reads: list[np.ndarray], final: tuple[np.ndarray, np.ndarray]
) -> tuple[list[_Accesses], np.ndarray]:
    """The distinct loaded elements ``loads`` without those that neither ``reads`` (positions in
    the virtual array) nor the ``final`` SRAM contents use, in two parts: those read, then
    those only kept at the end (apart, the first part is more often a strided view). Returns
    the parts and the new position of every old position (unused ones: 0)."""
    first = 1 + n_initial  # positions before this are the zero slot and initial values
    read = np.zeros(first + loads.rel.size, bool)
    for positions in reads:
        read[positions] = True
    kept = np.zeros(read.size, bool)
    kept[final[1]] = True
    kept_only = np.flatnonzero(kept[first:] & ~read[first:])
    read_loads = np.flatnonzero(read[first:])
    new = np.zeros(read.size, np.int64)
    new[:first] = np.arange(first)
    new[first + read_loads] = first + np.arange(read_loads.size)
    new[first + kept_only] = first + read_loads.size + np.arange(kept_only.size)
    parts = [
        _Accesses.of(loads.mem_type, loads.rel[part], loads.sram[part], loads.owner[part])
        for part in (read_loads, kept_only)
        if part.size
    ]
    return parts, new


def _dedupe(loads: list[_Access], keys: list[np.ndarray]) -> tuple[_Accesses, np.ndarray]:
    """The distinct elements of ``loads``, and for each loaded element the index of its
    distinct element (padding elements: unused)."""
    every = _Accesses(loads)
    key = _cat(keys)
    real = np.flatnonzero(key >= 0)
    _, first, inverse = np.unique(key[real], return_index=True, return_inverse=True)
    slot = np.zeros(key.size, np.int64)
    slot[real] = inverse.ravel()
    kept = real[first]
    unique = _Accesses.of(every.mem_type, every.rel[kept], every.sram[kept], every.owner[kept])
    return unique, slot
