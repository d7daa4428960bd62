"""Replayed calls equal the JIT path: words, results, counters and cycles.

The reference is a module that never replays (``replay = False``) on a simulator that never
uses plans (``use_plans = False``): host code driving the command queue call by call, and every
instruction interpreted one by one -- the path the 81 programs were checked against the
original simulator with. Each case runs on fresh devices so addresses are deterministic.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel.errors import ArgumentError
from accel.hw.isa import MemInsn, MemType, decode_stream
from accel.hw.memory import DeviceMemory
from accel.runtime.command_queue import CommandQueue
from accel.sim import Device, Simulator

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "golden"))
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "build"))
sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "benchmarks"))
import bench_api  # noqa: E402
from accel_schedules import packed_matmul  # noqa: E402
from cases import ACCEL_CASES  # noqa: E402

ENV = accel.get_env()


def fresh_queue(use_plans: bool) -> CommandQueue:
    memory = DeviceMemory(ENV)
    simulator = Simulator(ENV, memory, trace=False)
    simulator.use_plans = use_plans
    return CommandQueue(Device(ENV, memory, simulator))


def random_inputs(module, rng) -> list[np.ndarray]:
    arrays = []
    for buf in module.params:
        info = np.iinfo(buf.dtype)
        low, high = max(info.min, -(2**20)), min(info.max, 2**20)
        arrays.append(rng.integers(low, high + 1, buf.shape).astype(buf.dtype))
    return arrays


def call(module, queue, arrays) -> list[np.ndarray]:
    """Copy ``arrays`` into fresh DRAM of ``queue``'s device, run, return every array after."""
    memory = queue.device.memory
    addrs = []
    for a in arrays:
        addr = memory.alloc(max(a.nbytes, 1))
        memory.write(addr, a.reshape(-1).view(np.uint8))
        addrs.append(addr)
    module._run(queue, addrs)
    out = [
        memory.read(addr, a.nbytes).view(a.dtype).reshape(a.shape) for addr, a in zip(addrs, arrays)
    ]
    for addr in addrs:
        memory.free(addr)
    return out


def compare(module, calls: int = 3, seed: int = 0) -> None:
    """Run ``calls`` calls, each with new data at new addresses, on the reference path and on
    the default one (record, then replay with plans); everything must agree."""
    rng = np.random.default_rng(seed)
    reference, replayed = fresh_queue(use_plans=False), fresh_queue(use_plans=True)
    for k in range(calls):
        arrays = random_inputs(module, rng)
        module.replay = False
        want = call(module, reference, arrays)
        module.replay = True
        if k:  # later calls shift the arguments, so relocation is exercised
            replayed.device.memory.alloc(4096 * k)
        got = call(module, replayed, arrays)
        for name, w, g in zip((b.name for b in module.params), want, got):
            np.testing.assert_array_equal(g, w, err_msg=f"call {k}: argument {name}")
        assert dict(replayed.counters) == dict(reference.counters)
        for key, value in reference.device.simulator.stats.items():
            assert replayed.device.simulator.stats[key] == value, key
        # The same instructions except for the arguments' addresses (other arrays, elsewhere).
        assert without_data_addresses(replayed.last_words) == without_data_addresses(
            reference.last_words
        )


def without_data_addresses(words: np.ndarray) -> list:
    insns = decode_stream(words, ENV)
    return [
        dataclasses.replace(i, dram_base=0)
        if isinstance(i, MemInsn) and i.memory_type != MemType.UOP
        else i
        for i in insns
    ]


def _vector(op):
    return accel.topi.schedule_vector_packed(op, ENV), op.args


def _packed(name, c=32, hw=7):
    b = ENV.BLOCK_IN
    return accel.te.placeholder((1, c // b, hw, hw, 1, b), name=name, dtype="int8")


_REQUANTIZE = [("mul", 23000), ("add", 1 << 13), ("shr", 14), ("max", -5), ("min", 100)]


def _steps(pairs):
    return [accel.topi.AluStep(op, imm) for op, imm in pairs]


MORE_CASES = {
    # bench_api's convolution_opt schedules (14x14, 16 -> 256 channels: two virtual threads),
    # with a STORE per tile row, as our tutorial, and per 16-byte tile, as the original one
    "convolution_opt": lambda: bench_api.tutorial_schedule((14, 16, 256, 3, 1)),
    "convolution_opt_classic": lambda: bench_api.tutorial_schedule((14, 16, 256, 3, 1), True),
    "topi_map": lambda: _vector(accel.topi.map_packed(_packed("x"), ENV, _steps(_REQUANTIZE))),
    "topi_add_scaled": lambda: _vector(
        accel.topi.add_scaled_packed(
            _packed("a"),
            _packed("b"),
            ENV,
            _steps([("mul", 18393)]),
            _steps([("mul", -21350)]),
            _steps([("add", 1 << 14), ("shr", 15), ("max", 0), ("min", 127)]),
        )
    ),
    "topi_sum_pool2d": lambda: _vector(
        accel.topi.sum_pool2d_packed(_packed("x", hw=9), ENV, 3, 2, 1, _steps(_REQUANTIZE))
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEL_CASES) + sorted(MORE_CASES))
def test_tutorials_and_operators_replay_like_the_jit_path(name):
    s, args = {**ACCEL_CASES, **MORE_CASES}[name]()
    compare(accel.build(s, args, name=name))


def test_replayed_words_equal_the_jit_words_for_the_same_arrays():
    s, args = ACCEL_CASES["topi_conv2d"]()
    module = accel.build(s, args, name="conv")
    queue = fresh_queue(use_plans=True)
    memory = queue.device.memory
    arrays = random_inputs(module, np.random.default_rng(1))
    addrs = [memory.alloc(max(a.nbytes, 1)) for a in arrays]
    for addr, a in zip(addrs, arrays):
        memory.write(addr, a.reshape(-1).view(np.uint8))
    module._run(queue, addrs)  # JIT, recording
    jit_words = queue.last_words.copy()
    module._run(queue, addrs)  # replay
    np.testing.assert_array_equal(queue.last_words, jit_words)


@settings(max_examples=8, deadline=None)
@given(
    in_blocks=st.integers(1, 4),
    out_blocks=st.integers(1, 4),
    i_factor=st.integers(1, 2),
    o_factor=st.integers(1, 2),
    shift=st.sampled_from([None, 4]),
    seed=st.integers(0, 1000),
)
def test_random_blocked_matmuls_replay_like_the_jit_path(
    in_blocks, out_blocks, i_factor, o_factor, shift, seed
):
    b = ENV.BLOCK_IN
    in_ch, out_ch = in_blocks * i_factor * b, out_blocks * o_factor * b
    s, args, _ = packed_matmul(ENV, ENV.BATCH, in_ch, out_ch, i_factor * b, o_factor * b, shift)
    compare(accel.build(s, args, name="mm"), calls=2, seed=seed)


def test_a_failed_call_leaves_nothing_behind_for_the_replay():
    s, args = ACCEL_CASES["topi_dense"]()
    module = accel.build(s, args, name="dense")
    rng = np.random.default_rng(3)
    arrays = random_inputs(module, rng)
    expected = [a.copy() for a in arrays]
    module.replay = False
    module(*expected)
    module.replay = True
    good = [a.copy() for a in arrays]
    module(*good)  # records
    with pytest.raises(ArgumentError):
        module(*good[:-1])
    again = [a.copy() for a in arrays]
    module(*again)  # replays
    for w, g in zip(expected, again):
        np.testing.assert_array_equal(g, w)


def test_an_interrupted_recording_is_dropped_and_the_next_call_is_right(monkeypatch):
    s, args = ACCEL_CASES["matrix_multiply"]()
    reference = accel.build(s, args, name="mm_reference")
    arrays = random_inputs(reference, np.random.default_rng(4))
    expected = [a.copy() for a in arrays]
    reference.replay = False
    reference(*expected)
    s, args = ACCEL_CASES["matrix_multiply"]()
    module = accel.build(s, args, name="mm_interrupt", prepare=False)
    calls = {"n": 0}
    original = CommandQueue.store_buffer_2d

    def interrupted(self, *a, **k):
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(CommandQueue, "store_buffer_2d", interrupted)
    with pytest.raises(KeyboardInterrupt):
        module(*[a.copy() for a in arrays])  # interrupted while recording its first call
    assert calls["n"] == 1
    monkeypatch.setattr(CommandQueue, "store_buffer_2d", original)
    for _ in range(2):  # records, then replays
        got = [a.copy() for a in arrays]
        module(*got)
        for w, g in zip(expected, got):
            np.testing.assert_array_equal(g, w)


def test_modules_of_two_configurations_keep_their_own_recordings():
    s, args = ACCEL_CASES["vta_get_started"]()
    module = accel.build(s, args, name="vadd")
    other = dict(ENV.to_dict(), LOG_ACC_BUFF_SIZE=ENV.LOG_ACC_BUFF_SIZE - 1)
    arrays = random_inputs(module, np.random.default_rng(5))
    expected = [a.copy() for a in arrays]
    module.replay = False
    module(*expected)
    module.replay = True
    with accel.using_env(other):
        s2, args2 = ACCEL_CASES["vta_get_started"]()
        small = accel.build(s2, args2, name="vadd_small")
        for _ in range(2):
            got = [a.copy() for a in arrays]
            small(*got)
            np.testing.assert_array_equal(got[-1], expected[-1])
        got = [a.copy() for a in arrays]
        module(*got)  # the first module still runs on its own configuration's device
        np.testing.assert_array_equal(got[-1], expected[-1])
    got = [a.copy() for a in arrays]
    module(*got)
    np.testing.assert_array_equal(got[-1], expected[-1])


def test_a_loaded_module_replays_like_the_one_saved(tmp_path):
    s, args = ACCEL_CASES["topi_add"]()
    module = accel.build(s, args, name="add")
    path = tmp_path / "add.accel.json"
    module.save(path)
    loaded = accel.load_module(path)
    compare(loaded, calls=2, seed=6)
    arrays = random_inputs(module, np.random.default_rng(7))
    a, b = [x.copy() for x in arrays], [x.copy() for x in arrays]
    module(*a)
    loaded(*b)
    loaded(*b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_device_arrays_moved_between_calls_are_relocated():
    s, args = ACCEL_CASES["topi_relu"]()
    module = accel.build(s, args, name="relu")
    dev = accel.ext_dev(0)
    rng = np.random.default_rng(8)
    for _ in range(3):
        x = rng.integers(-128, 128, module.params[0].shape).astype(np.int8)
        keep = accel.nd.empty((1024,), "int8", dev)  # shifts where the next arrays land
        xa, ya = accel.nd.array(x, dev), accel.nd.empty(module.params[1].shape, "int8", dev)
        module(xa, ya)
        np.testing.assert_array_equal(ya.numpy(), np.maximum(x, 0))
        del keep


def test_calls_alternating_between_sets_of_arrays_each_get_their_own_results():
    # Patched words and plan keys are remembered for a few address sets: a call on arrays
    # seen before must still read its own arrays, never the last call's.
    s, args = ACCEL_CASES["topi_relu"]()
    module = accel.build(s, args, name="relu_alternating")
    dev = accel.ext_dev(0)
    rng = np.random.default_rng(9)
    shape = module.params[0].shape
    sets = [
        (accel.nd.empty(shape, "int8", dev), accel.nd.empty(module.params[1].shape, "int8", dev))
        for _ in range(6)  # more sets than either cache keeps
    ]
    for round_ in range(3):
        for xa, ya in sets + sets[:2]:
            x = rng.integers(-128, 128, shape).astype(np.int8)
            xa.copyfrom(x)
            module(xa, ya)
            np.testing.assert_array_equal(ya.numpy(), np.maximum(x, 0), err_msg=f"round {round_}")


def test_build_prepares_so_the_first_call_replays_and_counters_are_untouched():
    s, args = ACCEL_CASES["matrix_multiply"]()
    reference = accel.build(s, args, name="mm_unprepared", prepare=False)
    arrays = random_inputs(reference, np.random.default_rng(7))
    expected = [a.copy() for a in arrays]
    reference.replay = False
    reference(*expected)
    before = accel.sim.stats()
    s, args = ACCEL_CASES["matrix_multiply"]()
    module = accel.build(s, args, name="mm_prepared")
    assert accel.sim.stats() == before  # the scratch call left no trace in the counters

    def host_code_must_not_run(*_args):
        raise AssertionError("the first call ran the host code instead of replaying")

    module._fn = host_code_must_not_run
    got = [a.copy() for a in arrays]
    module(*got)
    for w, g in zip(expected, got):
        np.testing.assert_array_equal(g, w)
