"""The JIT runtime's command queue: what generated host code calls to drive the device.

The methods are the Python forms of the original VTA runtime API (``VTALoadBuffer2D``,
``VTAStoreBuffer2D``, ``VTAPushGEMMOp``, ``VTAPushALUOp``, ``VTADepPush``, ``VTADepPop``,
``VTASynchronize``). They build one instruction stream; :meth:`CommandQueue.synchronize` ends
it with FINISH, writes it to simulated DRAM and runs it (docs/isa.md §5).

Dependency tokens (docs/isa.md §3). Stages are numbered as in the original runtime API
(``Module.stage``: 1 = load, 2 = compute, 3 = store). A pop waits, pending, until the next
instruction created for the popping module carries it. A push goes on the pushing module's last
instruction of the current stream when that instruction is free to carry it; otherwise -- or
when the module has pops pending, which must be taken before the push, or has no instruction
yet -- a no-op (x_size 0) carries it and takes the pending pops.

Micro-op kernels are recorded once per ``(record, key)`` and cached for the life of the queue;
each kernel's micro-ops are copied to DRAM when recorded. Before its first use in a run a kernel
is loaded into micro-op SRAM (LOAD of type UOP), placed after the previous one; when it does not
fit, every kernel is considered evicted and placement restarts at entry 0, which is safe because
the compute module runs in order. A run reloads kernels before their first use.

The stream holds at most ``max_insns`` instructions: when an operation would overflow it, the
queue first runs what it has (an automatic synchronize). Tokens persist between runs, so a
program may have tokens outstanding across such a flush; an explicit :meth:`synchronize` checks
that none are left. One queue per device (:func:`get_command_queue`) is the intended use.
"""

from __future__ import annotations

import itertools
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from accel.errors import AllocationError, DeviceMemoryError, LoweringError
from accel.hw.isa import FinishInsn, Insn, MemInsn, MemType, Opcode, encode_int, encode_stream
from accel.hw.modules import LINK_BETWEEN, Module, insn_kind, module_of
from accel.runtime.recording import Recorder, Recording
from accel.runtime.uop_kernel import KernelRecorder, UopKernel
from accel.sim import Device, RunReport, get_device

DEFAULT_MAX_INSNS = 1 << 16
_SERIALS = itertools.count()
INSN_BYTES = 16

# Instructions synchronize may add: a no-op each for load and store, one for compute pops
# committed early, the compute no-op taking the final pops, and FINISH.
_SYNC_INSNS = 5
_LARGEST_OP = 2  # push_gemm / push_alu: LOAD UOP + GEMM or ALU
MIN_MAX_INSNS = _SYNC_INSNS + _LARGEST_OP


@dataclass(eq=False)
class _CachedKernel:
    """A recorded kernel, the element index of its micro-ops in DRAM, and (while it is
    resident in micro-op SRAM during the current run) its first SRAM entry."""

    kernel: UopKernel
    dram_index: int
    sram_base: int | None = None


KernelKey = tuple[str, Callable[..., None], tuple]


class CommandQueue:
    """Builds and runs instruction streams on one simulated device.

    Args:
        device: an :class:`accel.sim.Device` (configuration, DRAM, simulator).
        max_insns: stream capacity; an operation that would exceed it first runs the stream.

    Attributes:
        last_stream: the instructions of the last stream built by the JIT path (FINISH
            included); ``last_words``: the words of the last stream run, built or replayed
            (read-only: a replay's words are shared with its recording).
        counters: since creation, instructions run per kind (``"LOAD UOP"``, ``"GEMM"``, ...),
            ``"no-op"`` (LOAD/STORE with x_size 0, also counted in their kind),
            ``"uops_loaded"``, ``"kernels_recorded"`` and ``"runs"``.
    """

    def __init__(self, device: Device, max_insns: int = DEFAULT_MAX_INSNS):
        if max_insns < MIN_MAX_INSNS:
            raise LoweringError(
                f"command queue capacity {max_insns} is too small; it needs at least "
                f"{MIN_MAX_INSNS} instructions (one kernel call plus synchronize)"
            )
        self.device = device
        self.env = device.env
        self.max_insns = max_insns
        self.last_stream: tuple[Insn, ...] = ()
        self.last_words = np.zeros((0, 2), np.uint64)
        self.counters: Counter[str] = Counter()
        self._kernels: dict[KernelKey, _CachedKernel] = {}
        self._resident: list[_CachedKernel] = []
        self._uop_top = 0  # next free micro-op SRAM entry in this run
        self._stream: list[Insn] = []
        self._last: dict[Module, int] = {}  # module -> index of its last instruction
        self._pending: dict[Module, set[str]] = {m: set() for m in Module}
        self._insn_addr = 0
        self._insn_capacity = 0
        self._blocks: list[int] = []  # DRAM the queue owns: micro-ops, instruction buffer
        self._zero_addr = self._zero_bytes = 0  # zeros for loads of padding only
        # Bumped when a block that recorded streams may address is freed (see recording.py).
        self.generation = 0
        self.serial = next(_SERIALS)  # unlike id(), never reused by a later queue
        self._recorder: Recorder | None = None
        weakref.finalize(self, _free_all, device.memory, self._blocks)

    @property
    def stream(self) -> tuple[Insn, ...]:
        """The instructions of the stream being built (not yet run), pending pops excluded."""
        return tuple(self._stream)

    # -- DMA -----------------------------------------------------------------------------------
    def load_buffer_2d(
        self,
        src_addr: int,
        src_elem_offset: int,
        x_size: int,
        y_size: int,
        x_stride: int,
        x_pad_before: int,
        y_pad_before: int,
        x_pad_after: int,
        y_pad_after: int,
        dst_sram_index: int,
        dst_memory_type: int,
    ) -> None:
        """Append a LOAD of ``y_size`` rows of ``x_size`` elements, zero-padded, into SRAM.

        ``src_addr`` is the DRAM byte address of the source buffer; ``src_elem_offset``,
        ``x_stride`` and ``dst_sram_index`` count elements of ``dst_memory_type`` (INP, WGT,
        ACC, ACC_8BIT or UOP). INP and WGT loads run on the load module, the others on compute.
        Raises DeviceMemoryError when ``src_addr`` is not aligned to an element, LoweringError
        for memory type OUT, ISAError when a value does not fit its instruction field.
        """
        mem_type = _memory_type(dst_memory_type, "load_buffer_2d")
        if mem_type == MemType.OUT:
            raise LoweringError("load_buffer_2d cannot load memory type OUT (it is store-only)")
        if (x_size == 0 or y_size == 0) and x_size + y_size + x_pad_before + x_pad_after > 0:
            # A tile made only of padding: x_size 0 would make the LOAD a no-op that writes
            # nothing, so load the zeros from a zero-filled DRAM block instead.
            rows = y_pad_before + y_size + y_pad_after
            width = x_pad_before + x_size + x_pad_after
            if rows and width:
                src_addr, src_elem_offset = self._zeros(rows * width, mem_type), 0
                x_size, y_size, x_stride = width, rows, width
                x_pad_before = y_pad_before = x_pad_after = y_pad_after = 0
            else:
                return
        insn = MemInsn(
            opcode=Opcode.LOAD,
            memory_type=mem_type,
            sram_base=dst_sram_index,
            dram_base=self._dram_index(src_addr, mem_type, "load_buffer_2d") + src_elem_offset,
            y_size=y_size,
            x_size=x_size,
            x_stride=x_stride,
            y_pad_0=y_pad_before,
            y_pad_1=y_pad_after,
            x_pad_0=x_pad_before,
            x_pad_1=x_pad_after,
        )
        self._reserve(1)
        self._note_address(src_addr, insn.dram_base, mem_type)
        self._append(insn)

    def store_buffer_2d(
        self,
        src_sram_index: int,
        src_memory_type: int,
        dst_addr: int,
        dst_elem_offset: int,
        x_size: int,
        y_size: int,
        x_stride: int,
    ) -> None:
        """Append a STORE of ``y_size`` rows of ``x_size`` accumulator tiles, narrowed to OUT.

        ``src_memory_type`` must be OUT (4), as generated code passes it; ``dst_addr`` is a
        DRAM byte address, ``dst_elem_offset`` and ``x_stride`` count output elements.
        """
        mem_type = _memory_type(src_memory_type, "store_buffer_2d")
        if mem_type != MemType.OUT:
            raise LoweringError(f"store_buffer_2d stores memory type OUT only, not {mem_type.name}")
        insn = MemInsn(
            opcode=Opcode.STORE,
            memory_type=mem_type,
            sram_base=src_sram_index,
            dram_base=self._dram_index(dst_addr, mem_type, "store_buffer_2d") + dst_elem_offset,
            y_size=y_size,
            x_size=x_size,
            x_stride=x_stride,
        )
        self._reserve(1)
        self._note_address(dst_addr, insn.dram_base, mem_type)
        self._append(insn)

    def _note_address(self, addr: int, dram_base: int, mem_type: MemType) -> None:
        if self._recorder is not None:
            size = self.device.memory.elem_sizes[mem_type]
            self._recorder.note(len(self._stream), addr, dram_base, size)

    def _zeros(self, elems: int, mem_type: MemType) -> int:
        """The byte address of at least ``elems`` zero elements of ``mem_type`` in DRAM."""
        nbytes = elems * self.device.memory.elem_sizes[mem_type]
        if nbytes > self._zero_bytes:
            if self._zero_bytes:
                self.device.memory.free(self._zero_addr)
                self._blocks.remove(self._zero_addr)
                self.generation += 1
            self._zero_addr = self.device.memory.alloc(nbytes)  # fresh memory is zero
            self.device.memory.write(self._zero_addr, np.zeros(nbytes, np.uint8))
            self._blocks.append(self._zero_addr)
            self._zero_bytes = nbytes
        return self._zero_addr

    # -- micro-op kernels ----------------------------------------------------------------------
    def push_gemm(self, record: Callable[..., None], key: Iterable[int] = ()) -> None:
        """Append a GEMM running the kernel ``record(recorder, *key)`` describes.

        The kernel is recorded on the first call with this ``(record, key)`` and reused after;
        it is loaded into micro-op SRAM before its first use in each run. Raises
        AllocationError when the kernel is larger than the micro-op SRAM.
        """
        self._push_kernel("gemm", record, tuple(key))

    def push_alu(self, record: Callable[..., None], key: Iterable[int] = ()) -> None:
        """Append an ALU instruction for the kernel ``record(recorder, *key)``; see push_gemm."""
        self._push_kernel("alu", record, tuple(key))

    def _push_kernel(self, mode: str, record: Callable[..., None], key: tuple) -> None:
        entry = self._kernel(mode, record, key)
        self._reserve(_LARGEST_OP)
        if entry.sram_base is None:
            self._load_kernel(entry)
        self._append(entry.kernel.instruction(entry.sram_base))

    def _kernel(self, mode: str, record: Callable[..., None], key: tuple) -> _CachedKernel:
        """The cached kernel of ``(mode, record, key)``, recorded and copied to DRAM once."""
        entry = self._kernels.get((mode, record, key))
        if entry is not None:
            return entry
        recorder = KernelRecorder(self.env, mode)
        record(recorder, *key)
        kernel = recorder.finish()
        depth = self.env.UOP_BUFF_DEPTH
        if kernel.size > depth:
            raise AllocationError(
                f"{mode} kernel {getattr(record, '__name__', record)}{key} has {kernel.size} "
                f"micro-ops but the micro-op SRAM holds {depth}; split the kernel"
            )
        memory = self.device.memory
        addr = memory.alloc(kernel.uops.nbytes, align=self.env.UOP_ELEM_BYTES)
        self._blocks.append(addr)
        memory.write(addr, kernel.uops)
        entry = _CachedKernel(kernel, memory.to_elem_index(addr, MemType.UOP))
        self._kernels[mode, record, key] = entry
        self.counters["kernels_recorded"] += 1
        return entry

    def _load_kernel(self, entry: _CachedKernel) -> None:
        """Place ``entry`` after the resident kernels (or at 0, evicting them) and load it."""
        size = entry.kernel.size
        if self._uop_top + size > self.env.UOP_BUFF_DEPTH:
            self._evict_kernels()
        entry.sram_base = self._uop_top
        self._uop_top += size
        self._resident.append(entry)
        self._append(
            MemInsn(
                opcode=Opcode.LOAD,
                memory_type=MemType.UOP,
                sram_base=entry.sram_base,
                dram_base=entry.dram_index,
                y_size=1,
                x_size=size,
                x_stride=size,
            )
        )

    def _evict_kernels(self) -> None:
        for entry in self._resident:
            entry.sram_base = None
        self._resident.clear()
        self._uop_top = 0

    # -- dependency tokens ---------------------------------------------------------------------
    def dep_push(self, from_stage: int, to_stage: int) -> None:
        """Give a token from ``from_stage`` to ``to_stage`` (1 load, 2 compute, 3 store) once
        the sending module's instructions so far are done (``VTADepPush``)."""
        route = _route(from_stage, to_stage, "dep_push")
        self._reserve(1)
        self._push_token(*route)

    def dep_pop(self, from_stage: int, to_stage: int) -> None:
        """Make the next instruction of ``to_stage`` wait for a token from ``from_stage``
        (``VTADepPop``)."""
        route = _route(from_stage, to_stage, "dep_pop")
        self._reserve(1)
        self._pop_token(*route)

    def _push_token(self, sender: Module, receiver: Module) -> None:
        flag = LINK_BETWEEN[sender, receiver].push_flag
        last = self._last.get(sender)
        if not self._pending[sender] and last is not None and not getattr(self._stream[last], flag):
            self._stream[last] = replace(self._stream[last], **{flag: True})
        else:
            self._append(replace(_no_op(sender), **{flag: True}))

    def _pop_token(self, sender: Module, receiver: Module) -> None:
        flag = LINK_BETWEEN[sender, receiver].pop_flag
        if flag in self._pending[receiver]:
            self._commit_pops(receiver)
        self._pending[receiver].add(flag)

    def _commit_pops(self, module: Module) -> None:
        """Put ``module``'s pending pops on a no-op of their own."""
        if self._pending[module]:
            self._append(_no_op(module))

    # -- running -------------------------------------------------------------------------------
    def synchronize(self) -> RunReport | None:
        """End the stream with FINISH, run it and wait (``VTASynchronize``).

        The compute module first waits for the last load and the last store. Returns the run's
        :class:`~accel.sim.RunReport`, or None without running anything when no instruction and
        no pop is pending. After the run, every kernel counts as unloaded. Raises LoweringError
        when dependency tokens are left in the device's queues (every dep_push needs a matching
        dep_pop), and whatever the simulator raises (SimulatorError, DeadlockError, ...). In
        every case the queue is reset: the stream is discarded, and on an error the device's
        leftover tokens are dropped so the next run starts clean.
        """
        return self._run(check_tokens=True)

    def _reserve(self, count: int) -> None:
        """Run the stream first if ``count`` more instructions would not leave room for
        synchronize's own."""
        if len(self._stream) + count + _SYNC_INSNS > self.max_insns:
            self._run(check_tokens=False)

    def _run(self, check_tokens: bool) -> RunReport | None:
        if not self._stream and not any(self._pending.values()):
            return None
        try:
            self._close_stream()
            stream = tuple(self._stream)
        finally:
            self._reset()
        self.last_stream = stream
        words = encode_stream(stream, self.env)
        counts = stream_counts(stream)
        if self._recorder is not None:
            self._recorder.end_stream(words, counts, check_tokens)
        return self._run_words(words, counts, check_tokens)

    def _run_words(self, words: np.ndarray, counts: Counter, check_tokens: bool) -> RunReport:
        words.flags.writeable = False  # a recording may keep them
        self.last_words = words
        simulator = self.device.simulator
        try:
            report = simulator.run(self._write_words(words), words.shape[0])
        except BaseException:
            simulator.queues.set_counts({})
            raise
        self.counters.update(counts)
        self.counters["runs"] += 1
        if check_tokens:
            self._check_tokens()
        return report

    # -- recording and replaying ---------------------------------------------------------------
    def record(self, addrs: list[int]) -> None:
        """Start recording the streams of one call whose arguments are at ``addrs``. Nothing is
        recorded when the queue already holds instructions or pops of someone else's stream:
        a replay would run them again."""
        idle = not self._stream and not any(self._pending.values())
        self._recorder = Recorder(addrs, self.generation, self.serial, self.env) if idle else None

    def stop_recording(self) -> Recording | None:
        """The recording of the call (None if the arguments aliased each other)."""
        recorder, self._recorder = self._recorder, None
        if (
            recorder is None
            or not recorder.valid
            or self.generation != recorder.recording.generation
        ):
            return None
        return recorder.recording

    def can_replay(self, recording: Recording) -> bool:
        return recording.queue_id == self.serial and recording.generation == self.generation

    def replay(self, recording: Recording, addrs: list[int]) -> bool:
        """Run a recorded call for arguments at ``addrs``; False (nothing run) when an address
        cannot be patched in, so the caller takes the JIT path, which reports why."""
        patched = [recording.words_for(run, addrs, self.env) for run in recording.runs]
        if any(words is None for words in patched):
            return False
        for run, words in zip(recording.runs, patched):
            self._run_words(words, run.counts, run.check_tokens)
        return True

    def _close_stream(self) -> None:
        """Synchronize's bookkeeping: compute waits for load and store, then FINISH."""
        for module in (Module.LOAD, Module.STORE):
            self._commit_pops(module)
            self._push_token(module, Module.COMPUTE)
        for module in (Module.STORE, Module.LOAD):
            self._pop_token(module, Module.COMPUTE)
        self._commit_pops(Module.COMPUTE)  # FINISH must not carry pops
        self._append(FinishInsn())

    def discard(self) -> None:
        """Drop the stream being built after a failure in the code that was building it, and
        the tokens its earlier automatic flushes left in the device's queues, so the next
        stream starts clean."""
        self._reset()
        self.device.simulator.queues.set_counts({})

    def _reset(self) -> None:
        self._stream = []
        self._last.clear()
        for pops in self._pending.values():
            pops.clear()
        self._evict_kernels()

    def _write_words(self, words: np.ndarray) -> int:
        """Write encoded instructions into the DRAM instruction buffer (grown when too small)."""
        memory = self.device.memory
        count = words.shape[0]
        if count > self._insn_capacity:
            if self._insn_capacity:
                memory.free(self._insn_addr)
                self._blocks.remove(self._insn_addr)
                self._insn_capacity = 0
            capacity = max(count, 2 * self._insn_capacity, 64)
            self._insn_addr = memory.alloc(capacity * INSN_BYTES, align=INSN_BYTES)
            self._blocks.append(self._insn_addr)
            self._insn_capacity = capacity
        memory.write(self._insn_addr, words)
        return self._insn_addr

    def _check_tokens(self) -> None:
        queues = self.device.simulator.queues
        counts = queues.counts()
        if any(counts.values()):
            queues.set_counts({})
            left = ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
            raise LoweringError(
                f"unbalanced dependency tokens after synchronize ({left} left in the queues); "
                "every dep_push needs a matching dep_pop. The leftover tokens were discarded."
            )

    # -- building the stream -------------------------------------------------------------------
    def _append(self, insn: Insn) -> None:
        """Append ``insn`` with its module's pending pops; checks every field fits."""
        module = module_of(insn)
        pops = self._pending[module]
        if pops:
            insn = replace(insn, **dict.fromkeys(pops, True))
        encode_int(insn, self.env)
        pops.clear()
        self._last[module] = len(self._stream)
        self._stream.append(insn)

    def _dram_index(self, addr: int, mem_type: MemType, what: str) -> int:
        try:
            return self.device.memory.to_elem_index(int(addr), mem_type)
        except DeviceMemoryError as exc:
            raise DeviceMemoryError(f"{what}: {exc}") from None


def stream_counts(stream: Iterable[Insn]) -> Counter[str]:
    """Instructions per kind (``"LOAD INP"``, ``"GEMM"``, ...), plus ``"no-op"`` for LOADs and
    STOREs with x_size 0 and ``"uops_loaded"`` for the micro-ops LOAD UOPs bring in."""
    counts: Counter[str] = Counter()
    for insn in stream:
        counts[insn_kind(insn)] += 1
        if isinstance(insn, MemInsn):
            if insn.x_size == 0:
                counts["no-op"] += 1
            elif insn.memory_type == MemType.UOP:
                counts["uops_loaded"] += insn.x_size * insn.y_size
    return counts


def _no_op(module: Module) -> MemInsn:
    """An instruction of ``module`` that only moves tokens (x_size 0)."""
    if module == Module.STORE:
        opcode, mem_type = Opcode.STORE, MemType.OUT
    else:
        opcode, mem_type = Opcode.LOAD, MemType.INP if module == Module.LOAD else MemType.UOP
    return MemInsn(
        opcode=opcode,
        memory_type=mem_type,
        sram_base=0,
        dram_base=0,
        y_size=0,
        x_size=0,
        x_stride=0,
    )


def _route(from_stage: int, to_stage: int, what: str) -> tuple[Module, Module]:
    """The (sender, receiver) modules of stage numbers; only neighbours exchange tokens."""
    pair = (Module.from_stage(from_stage), Module.from_stage(to_stage))
    if pair not in LINK_BETWEEN:
        raise LoweringError(
            f"{what}({from_stage}, {to_stage}): no token queue between these stages; stages are "
            "1 load, 2 compute, 3 store, and only load<->compute and compute<->store exchange "
            "tokens"
        )
    return pair


def _memory_type(value: int, what: str) -> MemType:
    if value not in MemType._value2member_map_:
        names = ", ".join(f"{t.name} {t.value}" for t in MemType)
        raise LoweringError(f"{what}: unknown memory type {value} (known: {names})")
    return MemType(value)


def _free_all(memory, blocks: list[int]) -> None:
    for addr in blocks:
        memory.free(addr)


_QUEUES: dict[Device, CommandQueue] = {}


def get_command_queue(device: Device | None = None) -> CommandQueue:
    """The command queue of ``device`` (default: ``accel.sim.get_device()``), made on first use."""
    device = get_device() if device is None else device
    queue = _QUEUES.get(device)
    if queue is None:
        queue = _QUEUES[device] = CommandQueue(device)
    return queue
