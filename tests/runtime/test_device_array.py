import gc

import numpy as np

import accel


def test_device_array_lives_in_simulated_dram():
    dev = accel.ext_dev(0)
    host = np.arange(64, dtype=np.int32).reshape(4, 16)
    arr = accel.nd.array(host, dev)
    memory = accel.sim.get_device().memory
    assert arr.device == dev and arr.shape == (4, 16) and arr.dtype == "int32"
    raw = memory.read(arr.addr, host.nbytes).view(np.int32).reshape(4, 16)
    np.testing.assert_array_equal(raw, host)
    np.testing.assert_array_equal(arr.numpy(), host)


def test_device_array_is_freed_with_the_array():
    memory = accel.sim.get_device().memory
    before = memory.allocated_bytes
    arr = accel.nd.empty((8, 16), "int8", accel.ext_dev(0))
    assert memory.allocated_bytes > before
    del arr
    gc.collect()
    assert memory.allocated_bytes == before


def test_host_modules_accept_device_arrays():
    from accel import te

    A = te.placeholder((4, 16), "int32", "A")
    B = te.compute((4, 16), lambda i, j: A[i, j] * 2, "B")
    f = accel.build(te.create_schedule(B.op), [A, B])
    a = accel.nd.array(np.arange(64, dtype=np.int32).reshape(4, 16), accel.ext_dev(0))
    b = accel.nd.empty((4, 16), "int32", accel.ext_dev(0))
    f(a, b)
    np.testing.assert_array_equal(b.numpy(), a.numpy() * 2)
