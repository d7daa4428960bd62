"""The JIT runtime command queue: DMA, micro-op kernels, tokens, synchronize, auto flush.

Every program runs on a fresh simulated device and is checked against numpy.
"""

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel.env import get_env
from accel.errors import (
    AllocationError,
    DeadlockError,
    DeviceMemoryError,
    ISAError,
    LoweringError,
)
from accel.hw.isa import AluOp, MemInsn, MemType
from accel.hw.memory import DeviceMemory
from accel.hw.modules import insn_kind
from accel.runtime.command_queue import (
    MIN_MAX_INSNS,
    CommandQueue,
    get_command_queue,
    stream_counts,
)
from accel.runtime.uop_kernel import KernelRecorder
from accel.sim import Device, Simulator, get_device

ENV = get_env()
ACC, INP, WGT, OUT, UOP = MemType.ACC, MemType.INP, MemType.WGT, MemType.OUT, MemType.UOP
LOAD, COMPUTE, STORE = 1, 2, 3
FLAGS = ("pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep")


def make_device(env=ENV) -> Device:
    memory = DeviceMemory(env, size_bytes=1 << 24)
    return Device(env, memory, Simulator(env, memory, trace=False))


def put(device: Device, array: np.ndarray) -> int:
    """Copy ``array`` into fresh DRAM of ``device``; returns its byte address."""
    data = np.ascontiguousarray(array)
    addr = device.memory.alloc(data.nbytes)
    device.memory.write(addr, data)
    return addr


def get(device: Device, addr: int, shape, dtype) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return device.memory.read(addr, nbytes).view(dtype).reshape(shape)


def acc_tiles(rng, count: int, env=ENV) -> np.ndarray:
    shape = (count, env.BATCH, env.BLOCK_OUT)
    return rng.integers(-(1 << 31), 1 << 31, size=shape, dtype=np.int64).astype(np.int32)


def summary(stream) -> list[tuple[str, int, tuple[str, ...]]]:
    """(kind, x_size or -1, dependency flags set) of each instruction."""
    return [
        (
            insn_kind(i),
            i.x_size if isinstance(i, MemInsn) else -1,
            tuple(f for f in FLAGS if getattr(i, f)),
        )
        for i in stream
    ]


# -- kernels -----------------------------------------------------------------------------------
def record_add(r, extent, src):
    """acc[j] += acc[src + j] for j < extent."""
    r.loop_begin(extent, 1, 1, 0)
    r.push(1, 0, 0, src, 0, AluOp.ADD, 0, 0)
    r.loop_end()


def gemm_reset(r, rows, acc_base):
    r.loop_begin(rows, 1, 0, 0)
    r.push(0, 1, acc_base, 0, 0, 0, 0, 0)
    r.loop_end()


def gemm_update(r, rows, k_tiles, acc_base):
    r.loop_begin(rows, 1, k_tiles, 0)
    r.loop_begin(k_tiles, 0, 1, 1)
    r.push(0, 0, acc_base, 0, 0, 0, 0, 0)
    r.loop_end()
    r.loop_end()


def add_imm_pair(r, first, imm):
    """Two micro-ops, no loop: acc[first] += imm, acc[first + 1] += imm."""
    for dst in (first, first + 1):
        r.push(1, 0, dst, dst, 0, AluOp.ADD, 1, imm)


# -- programs ----------------------------------------------------------------------------------
def vadd(q: CommandQueue, a: int, b: int, c: int, n: int, record=record_add, repeats=1):
    """c = a + repeats * b over ``n`` accumulator tiles, narrowed to int8."""
    q.load_buffer_2d(a, 0, n, 1, n, 0, 0, 0, 0, 0, ACC)
    q.load_buffer_2d(b, 0, n, 1, n, 0, 0, 0, 0, n, ACC)
    for _ in range(repeats):
        q.push_alu(record, (n, n))
    q.dep_push(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_buffer_2d(0, OUT, c, 0, n, 1, n)
    return q.synchronize()


def chunked_vadd(q: CommandQueue, a: int, b: int, c: int, chunks: int, chunk: int):
    """vadd in chunks reusing the same accumulators, with store->compute tokens."""
    q.dep_push(STORE, COMPUTE)
    for i in range(chunks):
        q.dep_pop(STORE, COMPUTE)
        q.load_buffer_2d(a, i * chunk, chunk, 1, chunk, 0, 0, 0, 0, 0, ACC)
        q.load_buffer_2d(b, i * chunk, chunk, 1, chunk, 0, 0, 0, 0, chunk, ACC)
        q.push_alu(record_add, (chunk, chunk))
        q.dep_push(COMPUTE, STORE)
        q.dep_pop(COMPUTE, STORE)
        q.store_buffer_2d(0, OUT, c, i * chunk, chunk, 1, chunk)
        q.dep_push(STORE, COMPUTE)
    q.dep_pop(STORE, COMPUTE)
    return q.synchronize()


def vadd_reference(a: np.ndarray, b: np.ndarray, repeats: int = 1) -> np.ndarray:
    total = a.astype(np.int64) + repeats * b.astype(np.int64)
    return (total & 0xFF).astype(np.uint8).view(np.int8)  # int32 wrap, then the low 8 bits


class VaddData:
    def __init__(self, device: Device, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.device, self.n = device, n
        self.a, self.b = acc_tiles(rng, n, device.env), acc_tiles(rng, n, device.env)
        self.a_addr, self.b_addr = put(device, self.a), put(device, self.b)
        env = device.env
        self.shape = (n, env.BATCH, env.BLOCK_OUT)
        self.c_addr = device.memory.alloc(int(np.prod(self.shape)))

    def result(self) -> np.ndarray:
        return get(self.device, self.c_addr, self.shape, np.int8)


# -- vector add --------------------------------------------------------------------------------
def test_vector_add_matches_numpy_and_counters():
    device = make_device()
    data = VaddData(device, 64)
    q = CommandQueue(device)
    report = vadd(q, data.a_addr, data.b_addr, data.c_addr, 64)
    np.testing.assert_array_equal(data.result(), vadd_reference(data.a, data.b))
    stats = report.stats
    assert stats["acc_load_nbytes"] == 2 * 64 * ENV.BATCH * ENV.BLOCK_OUT * 4
    assert stats["out_store_nbytes"] == 64 * ENV.BATCH * ENV.BLOCK_OUT
    assert stats["alu_counter"] == 64
    assert stats["uop_load_nbytes"] == 4
    assert summary(q.last_stream) == [
        ("LOAD ACC", 64, ()),
        ("LOAD ACC", 64, ()),
        ("LOAD UOP", 1, ()),
        ("ALU", -1, ("push_next_dep",)),
        ("STORE OUT", 64, ("pop_prev_dep", "push_prev_dep")),
        ("LOAD INP", 0, ("push_next_dep",)),
        ("LOAD UOP", 0, ("pop_prev_dep", "pop_next_dep")),
        ("FINISH", -1, ()),
    ]
    alu = q.last_stream[3]
    assert (alu.iter_out, alu.iter_in, alu.dst_factor_in, alu.src_factor_in) == (1, 64, 1, 1)
    assert device.simulator.queues.counts() == dict.fromkeys(device.simulator.queues.counts(), 0)
    assert q.counters["ALU"] == 1 and q.counters["no-op"] == 2 and q.counters["runs"] == 1


# -- GEMM with load <-> compute tokens ---------------------------------------------------------
def test_gemm_with_load_compute_tokens_matches_numpy():
    env, rng = ENV, np.random.default_rng(1)
    n_t, k_t, o_t = 8, 2, 3
    a = rng.integers(-128, 128, size=(n_t, k_t, env.BATCH, env.BLOCK_IN), dtype=np.int8)
    w = rng.integers(-128, 128, size=(o_t, k_t, env.BLOCK_OUT, env.BLOCK_IN), dtype=np.int8)
    device = make_device()
    a_addr, w_addr = put(device, a), put(device, w)
    c_shape = (n_t, o_t, env.BATCH, env.BLOCK_OUT)
    c_addr = device.memory.alloc(int(np.prod(c_shape)))

    q = CommandQueue(device)
    q.dep_push(COMPUTE, LOAD)
    for o in range(o_t):
        q.dep_pop(COMPUTE, LOAD)
        q.load_buffer_2d(a_addr, 0, k_t, n_t, k_t, 0, 0, 0, 0, 0, INP)
        q.load_buffer_2d(w_addr, o * k_t, k_t, 1, k_t, 0, 0, 0, 0, 0, WGT)
        q.dep_push(LOAD, COMPUTE)
        q.dep_pop(LOAD, COMPUTE)
        q.push_gemm(gemm_reset, (n_t, o * n_t))
        q.push_gemm(gemm_update, (n_t, k_t, o * n_t))
        q.dep_push(COMPUTE, LOAD)
        q.dep_push(COMPUTE, STORE)
        q.dep_pop(COMPUTE, STORE)
        q.store_buffer_2d(o * n_t, OUT, c_addr, o, 1, n_t, o_t)
    q.dep_pop(COMPUTE, LOAD)
    report = q.synchronize()

    a_full = a.transpose(0, 2, 1, 3).reshape(n_t * env.BATCH, k_t * env.BLOCK_IN)
    w_full = w.transpose(0, 2, 1, 3).reshape(o_t * env.BLOCK_OUT, k_t * env.BLOCK_IN)
    c_full = a_full.astype(np.int32) @ w_full.astype(np.int32).T
    expected = c_full.reshape(n_t, env.BATCH, o_t, env.BLOCK_OUT).transpose(0, 2, 1, 3)
    result = get(device, c_addr, c_shape, np.int8)
    np.testing.assert_array_equal(result, (expected & 0xFF).astype(np.uint8).view(np.int8))
    assert report.stats["gemm_counter"] == o_t * n_t * k_t
    assert report.stats["inp_load_nbytes"] == o_t * n_t * k_t * env.INP_ELEM_BYTES
    assert report.stats["wgt_load_nbytes"] == o_t * k_t * env.WGT_ELEM_BYTES
    # Each (kernel, acc base) is its own kernel: 2 per output block, one micro-op each.
    assert report.stats["uop_load_nbytes"] == 2 * o_t * 4
    reset = next(i for i in q.last_stream if insn_kind(i) == "GEMM" and i.reset_reg)
    assert (reset.iter_out, reset.iter_in, reset.dst_factor_out) == (n_t, 1, 1)
    update = next(i for i in q.last_stream if insn_kind(i) == "GEMM" and not i.reset_reg)
    assert (update.iter_out, update.iter_in) == (n_t, k_t)
    assert (update.src_factor_out, update.src_factor_in, update.wgt_factor_in) == (k_t, 1, 1)


# -- kernel caching ----------------------------------------------------------------------------
def test_kernels_are_recorded_once_and_loaded_once_per_run():
    calls = []

    def counted_add(r, extent, src):
        calls.append((extent, src))
        record_add(r, extent, src)

    device = make_device()
    q = CommandQueue(device)
    for seed in range(2):
        data = VaddData(device, 16, seed)
        report = vadd(q, data.a_addr, data.b_addr, data.c_addr, 16, counted_add, repeats=3)
        np.testing.assert_array_equal(data.result(), vadd_reference(data.a, data.b, 3))
        assert report.stats["uop_load_nbytes"] == 4  # loaded once, used three times
        assert report.stats["alu_counter"] == 3 * 16
    assert calls == [(16, 16)]
    assert q.counters["kernels_recorded"] == 1 and q.counters["uops_loaded"] == 2


def test_two_queues_one_after_another_reload_their_kernels():
    calls = []

    def counted_add(r, extent, src):
        calls.append((extent, src))
        record_add(r, extent, src)

    def counted_max(r, extent, src):
        calls.append(("max", extent))
        r.loop_begin(extent, 1, 1, 0)
        r.push(1, 0, 0, src, 0, AluOp.MAX, 0, 0)
        r.loop_end()

    device = make_device()
    first, second = CommandQueue(device), CommandQueue(device)
    for q, record in ((first, counted_add), (second, counted_max), (first, counted_add)):
        data = VaddData(device, 8, seed=len(calls))
        vadd(q, data.a_addr, data.b_addr, data.c_addr, 8, record)
        if record is counted_add:
            expected = vadd_reference(data.a, data.b)
        else:
            expected = (np.maximum(data.a, data.b) & 0xFF).astype(np.uint8).view(np.int8)
        np.testing.assert_array_equal(data.result(), expected)
    assert calls == [(8, 8), ("max", 8)]
    assert first.last_stream[2].sram_base == second.last_stream[2].sram_base == 0


def test_a_queue_frees_its_dram_when_collected():
    device = make_device()
    before = device.memory.allocated_bytes
    data = VaddData(device, 4)
    with_data = device.memory.allocated_bytes
    q = CommandQueue(device)
    vadd(q, data.a_addr, data.b_addr, data.c_addr, 4)
    assert device.memory.allocated_bytes > with_data  # micro-ops and instruction buffer
    del q
    gc.collect()
    assert device.memory.allocated_bytes == with_data > before


def test_get_command_queue_is_one_queue_per_device():
    assert get_command_queue() is get_command_queue(get_device())
    other = make_device()
    assert get_command_queue(other) is get_command_queue(other) is not get_command_queue()


# -- dependency tokens and no-ops --------------------------------------------------------------
def test_push_without_an_instruction_of_that_module_makes_a_no_op():
    q = CommandQueue(make_device())
    q.dep_push(COMPUTE, LOAD)
    q.dep_push(COMPUTE, STORE)  # the no-op is free to carry this one too
    q.dep_push(STORE, COMPUTE)
    q.dep_push(LOAD, COMPUTE)
    assert summary(q.stream) == [
        ("LOAD UOP", 0, ("push_prev_dep", "push_next_dep")),
        ("STORE OUT", 0, ("push_prev_dep",)),
        ("LOAD INP", 0, ("push_next_dep",)),
    ]
    assert q.stream[0].y_size == 0 and q.stream[1].memory_type == OUT
    q.dep_push(COMPUTE, LOAD)  # already carried: a second no-op
    assert summary(q.stream)[3] == ("LOAD UOP", 0, ("push_prev_dep",))


def test_push_goes_on_the_modules_last_instruction():
    device = make_device()
    addr = device.memory.alloc(1024)
    q = CommandQueue(device)
    q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, ACC)
    q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, INP)
    q.dep_push(COMPUTE, STORE)
    q.dep_push(LOAD, COMPUTE)
    assert summary(q.stream) == [
        ("LOAD ACC", 1, ("push_next_dep",)),
        ("LOAD INP", 1, ("push_next_dep",)),
    ]


def test_pops_attach_to_the_next_instruction_of_their_module():
    device = make_device()
    addr = device.memory.alloc(1024)
    q = CommandQueue(device)
    q.dep_pop(LOAD, COMPUTE)
    q.dep_pop(COMPUTE, LOAD)
    q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, WGT)
    q.store_buffer_2d(0, OUT, addr, 0, 1, 1, 1)
    q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, ACC)
    assert summary(q.stream) == [
        ("LOAD WGT", 1, ("pop_next_dep",)),
        ("STORE OUT", 1, ()),
        ("LOAD ACC", 1, ("pop_prev_dep",)),
    ]


def test_a_second_pop_of_the_same_queue_commits_the_first_on_a_no_op():
    device = make_device()
    addr = device.memory.alloc(1024)
    q = CommandQueue(device)
    q.dep_pop(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_buffer_2d(0, OUT, addr, 0, 1, 1, 1)
    assert summary(q.stream) == [
        ("STORE OUT", 0, ("pop_prev_dep",)),
        ("STORE OUT", 1, ("pop_prev_dep",)),
    ]


def test_a_push_after_pending_pops_takes_them_on_a_no_op():
    device = make_device()
    addr = device.memory.alloc(1024)
    q = CommandQueue(device)
    q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, ACC)
    q.dep_pop(LOAD, COMPUTE)
    q.dep_push(COMPUTE, STORE)  # must come after the pop: not on the ACC load
    assert summary(q.stream) == [
        ("LOAD ACC", 1, ()),
        ("LOAD UOP", 0, ("pop_prev_dep", "push_next_dep")),
    ]


@pytest.mark.parametrize("pair", [(1, 3), (3, 1), (2, 2), (0, 2), (2, 4)])
def test_illegal_token_pairs_are_refused(pair):
    q = CommandQueue(make_device())
    with pytest.raises(LoweringError, match="no token queue"):
        q.dep_push(*pair)
    with pytest.raises(LoweringError, match="no token queue"):
        q.dep_pop(*pair)


def test_unbalanced_tokens_raise_and_leave_a_clean_queue():
    device = make_device()
    q = CommandQueue(device)
    q.dep_push(COMPUTE, STORE)
    with pytest.raises(LoweringError, match="unbalanced dependency tokens.*compute->store: 1"):
        q.synchronize()
    assert q.stream == () and not any(device.simulator.queues.counts().values())
    data = VaddData(device, 4)
    vadd(q, data.a_addr, data.b_addr, data.c_addr, 4)
    np.testing.assert_array_equal(data.result(), vadd_reference(data.a, data.b))


def test_a_deadlocked_run_leaves_the_queue_reset():
    device = make_device()
    q = CommandQueue(device)
    data = VaddData(device, 4)
    q.push_alu(record_add, (4, 4))
    q.dep_pop(COMPUTE, LOAD)  # nothing ever pushes this token
    with pytest.raises(DeadlockError, match="compute->load"):
        q.synchronize()
    assert q.stream == () and not any(device.simulator.queues.counts().values())
    report = vadd(q, data.a_addr, data.b_addr, data.c_addr, 4)
    np.testing.assert_array_equal(data.result(), vadd_reference(data.a, data.b))
    assert report.stats["uop_load_nbytes"] == 4  # reloaded in the new run


def test_synchronize_with_nothing_to_do_returns_none():
    device = make_device()
    q = CommandQueue(device)
    assert q.synchronize() is None
    assert device.simulator.stats["runs"] == 0 and q.last_stream == ()


# -- micro-op SRAM placement and eviction ------------------------------------------------------
def test_kernels_overflowing_micro_op_sram_are_reloaded():
    with accel.using_env({"LOG_UOP_BUFF_SIZE": 4}) as env:  # 4 micro-op entries
        device = make_device(env)
    rng = np.random.default_rng(3)
    x = acc_tiles(rng, 6, env)
    x_addr = put(device, x)
    out_addr = device.memory.alloc(x.size)
    q = CommandQueue(device)
    q.load_buffer_2d(x_addr, 0, 6, 1, 6, 0, 0, 0, 0, 0, ACC)
    order = [(0, 1), (2, 2), (4, 3), (0, 1), (2, 2), (0, 1)]  # (first tile, immediate)
    for key in order:
        q.push_alu(add_imm_pair, key)
    q.dep_push(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_buffer_2d(0, OUT, out_addr, 0, 6, 1, 6)
    report = q.synchronize()

    expected = x.astype(np.int64)
    for first, imm in order:
        expected[first : first + 2] += imm
    result = get(device, out_addr, x.shape, np.int8)
    np.testing.assert_array_equal(result, (expected & 0xFF).astype(np.uint8).view(np.int8))
    alus = [i for i in q.last_stream if insn_kind(i) == "ALU"]
    assert [i.uop_bgn for i in alus] == [0, 2, 0, 2, 0, 2]
    assert report.stats["uop_load_nbytes"] == len(order) * 2 * 4  # every use was a reload


def test_a_kernel_larger_than_micro_op_sram_is_refused():
    with accel.using_env({"LOG_UOP_BUFF_SIZE": 4}) as env:
        q = CommandQueue(make_device(env))

    def five_uops(r):
        for i in range(5):
            r.push(1, 0, i, i, 0, AluOp.ADD, 1, 1)

    with pytest.raises(AllocationError, match="5 micro-ops but the micro-op SRAM holds 4"):
        q.push_alu(five_uops)


# -- automatic flush ---------------------------------------------------------------------------
@pytest.mark.parametrize("max_insns", [MIN_MAX_INSNS, 9, 13])
def test_auto_flush_gives_the_same_result(max_insns):
    device = make_device()
    data = VaddData(device, 32)
    whole = CommandQueue(device)
    chunked_vadd(whole, data.a_addr, data.b_addr, data.c_addr, 8, 4)
    expected = vadd_reference(data.a, data.b)
    np.testing.assert_array_equal(data.result(), expected)
    assert whole.counters["runs"] == 1

    device.memory.write(data.c_addr, np.zeros(data.shape, np.int8))
    tiny = CommandQueue(device, max_insns=max_insns)
    chunked_vadd(tiny, data.a_addr, data.b_addr, data.c_addr, 8, 4)
    np.testing.assert_array_equal(data.result(), expected)
    assert tiny.counters["runs"] > 1
    assert tiny.counters["ALU"] == 8
    assert not any(device.simulator.queues.counts().values())


@settings(max_examples=15, deadline=None)
@given(
    max_insns=st.integers(MIN_MAX_INSNS, 40),
    chunks=st.integers(1, 6),
    chunk=st.integers(1, 5),
    seed=st.integers(0, 1 << 16),
)
def test_auto_flush_at_any_capacity_matches_numpy(max_insns, chunks, chunk, seed):
    device = make_device()
    data = VaddData(device, chunks * chunk, seed)
    q = CommandQueue(device, max_insns=max_insns)
    chunked_vadd(q, data.a_addr, data.b_addr, data.c_addr, chunks, chunk)
    np.testing.assert_array_equal(data.result(), vadd_reference(data.a, data.b))
    assert device.simulator.stats["alu_counter"] == chunks * chunk


def test_capacity_below_the_minimum_is_refused():
    with pytest.raises(LoweringError, match="at least"):
        CommandQueue(make_device(), max_insns=MIN_MAX_INSNS - 1)


# -- DMA arguments -----------------------------------------------------------------------------
def test_load_of_an_unaligned_address_is_refused():
    device = make_device()
    addr = device.memory.alloc(1024)
    q = CommandQueue(device)
    with pytest.raises(DeviceMemoryError, match="load_buffer_2d.*not aligned to a ACC element"):
        q.load_buffer_2d(addr + 4, 0, 1, 1, 1, 0, 0, 0, 0, 0, ACC)
    with pytest.raises(LoweringError, match="cannot load memory type OUT"):
        q.load_buffer_2d(addr, 0, 1, 1, 1, 0, 0, 0, 0, 0, OUT)
    with pytest.raises(LoweringError, match="OUT only, not ACC"):
        q.store_buffer_2d(0, ACC, addr, 0, 1, 1, 1)
    with pytest.raises(ISAError, match="x_pad_0"):
        q.load_buffer_2d(addr, 0, 1, 1, 1, 16, 0, 0, 0, 0, INP)
    assert q.stream == ()


def test_stream_counts_counts_kinds_no_ops_and_uops():
    q = CommandQueue(make_device())
    q.push_alu(record_add, (4, 4))
    q.dep_push(LOAD, COMPUTE)
    counts = stream_counts(q.stream)
    assert counts == {"LOAD UOP": 1, "ALU": 1, "LOAD INP": 1, "no-op": 1, "uops_loaded": 1}


# -- kernel recording --------------------------------------------------------------------------
def recorder(mode="alu") -> KernelRecorder:
    return KernelRecorder(ENV, mode)


def test_loop_levels_map_onto_the_instruction():
    r = recorder("gemm")
    r.push(0, 0, 1, 2, 3)
    none = r.finish().instruction(5)
    assert (none.uop_bgn, none.uop_end, none.iter_out, none.iter_in) == (5, 6, 1, 1)
    r = recorder("gemm")
    r.loop_begin(7, 1, 2, 3)
    r.push(0, 0, 0, 0, 0)
    r.loop_end()
    one = r.finish().instruction(0)
    # A GEMM's single loop is level 1, the outer one (docs/isa.md §5); an ALU's is the inner one.
    assert (one.iter_out, one.iter_in, one.dst_factor_out, one.wgt_factor_out) == (7, 1, 1, 3)
    r = recorder("alu")
    r.loop_begin(2, 8, 9, 0)
    r.loop_begin(3, 1, 1, 0)
    r.push(1, 0, 0, 4, 0, AluOp.SHR, 1, -2)
    r.push(1, 0, 1, 5, 0, AluOp.SHR, 1, -2)
    r.loop_end()
    r.loop_end()
    kernel = r.finish()
    two = kernel.instruction(10)
    assert kernel.size == 2 and not kernel.uops.flags.writeable
    assert (two.iter_out, two.dst_factor_out, two.src_factor_out) == (2, 8, 9)
    assert (two.iter_in, two.dst_factor_in, two.src_factor_in) == (3, 1, 1)
    assert (two.alu_opcode, two.use_imm, two.imm, two.uop_end) == (AluOp.SHR, True, -2, 12)


def test_loop_misuse_is_refused():
    r = recorder()
    r.push(1, 0, 0, 0, 0, AluOp.ADD)
    with pytest.raises(LoweringError, match="loop_begin after 1 micro-op"):
        r.loop_begin(2, 1, 1, 0)
    r = recorder()
    r.loop_begin(2, 1, 1, 0)
    r.loop_begin(2, 1, 1, 0)
    with pytest.raises(LoweringError, match="third loop level"):
        r.loop_begin(2, 1, 1, 0)
    with pytest.raises(LoweringError, match="loop_end without a matching loop_begin"):
        recorder().loop_end()
    r = recorder()
    r.loop_begin(2, 1, 1, 0)
    r.push(1, 0, 0, 0, 0, AluOp.ADD)
    with pytest.raises(LoweringError, match="1 loop level.*never ended"):
        r.finish()
    r.loop_end()
    with pytest.raises(LoweringError, match="push after a loop_end"):
        r.push(1, 0, 1, 1, 0, AluOp.ADD)
    r = recorder()
    r.loop_begin(2, 1, 1, 0)
    r.loop_end()
    with pytest.raises(LoweringError, match="loop_begin after a loop_end"):
        r.loop_begin(2, 1, 1, 0)
    with pytest.raises(LoweringError, match="has no micro-ops"):
        recorder().finish()


def test_mode_and_shared_flag_mismatches_are_refused():
    with pytest.raises(LoweringError, match="pushed with mode 0"):
        recorder("alu").push(0, 0, 0, 0, 0)
    with pytest.raises(LoweringError, match="mode must be 'gemm' or 'alu'"):
        KernelRecorder(ENV, "vector")
    r = recorder("alu")
    r.push(1, 0, 0, 0, 0, AluOp.ADD, 1, 3)
    with pytest.raises(LoweringError, match="every micro-op of a kernel must agree"):
        r.push(1, 0, 1, 1, 0, AluOp.ADD, 1, 4)
    r = recorder("gemm")
    r.push(0, 1, 0, 0, 0)
    with pytest.raises(LoweringError, match="must agree"):
        r.push(0, 0, 1, 0, 0)

    def mixed(rec):
        rec.push(0, 0, 0, 0, 0)

    with pytest.raises(LoweringError, match="alu kernel: micro-op pushed with mode 0"):
        CommandQueue(make_device()).push_alu(mixed)


def test_indices_and_loop_fields_are_checked_against_their_widths():
    with pytest.raises(ISAError, match="dst_idx = 2048"):
        recorder("gemm").push(0, 0, ENV.ACC_BUFF_DEPTH, 0, 0)
    with pytest.raises(ISAError, match="wgt_idx = -1"):
        recorder("gemm").push(0, 0, 0, 0, -1)
    r = recorder("alu")
    r.loop_begin(1 << 14, 1, 1, 0)
    r.push(1, 0, 0, 0, 0, AluOp.ADD)
    r.loop_end()
    with pytest.raises(ISAError, match="iter_in = 16384"):
        r.finish()
    r = recorder("alu")
    r.push(1, 0, 0, 0, 0, AluOp.ADD, 1, 1 << 15)
    with pytest.raises(ISAError, match="imm = 32768"):
        r.finish()


def test_discard_after_an_automatic_flush_leaves_no_token():
    # A call that fails after part of its stream already ran (an automatic flush with a token
    # outstanding) must not leave that token for the next call.
    memory = DeviceMemory(ENV)
    simulator = Simulator(ENV, memory, trace=False)
    queue = CommandQueue(Device(ENV, memory, simulator))
    queue.dep_push(1, 2)
    queue._reserve(queue.max_insns)  # what an operation overflowing the stream does
    assert any(simulator.queues.counts().values())
    queue.discard()
    assert not any(simulator.queues.counts().values())


def test_a_queue_with_someone_elses_stream_does_not_record():
    memory = DeviceMemory(ENV)
    queue = CommandQueue(Device(ENV, memory, Simulator(ENV, memory, trace=False)))
    queue.dep_push(1, 2)  # a stream being built by hand
    queue.record([memory.alloc(64)])
    assert queue.stop_recording() is None
