"""Matrix multiplies built for the accelerator and run on the simulator equal numpy bit for bit."""

import numpy as np
import pytest
from accel_schedules import packed_matmul, random_int8
from hypothesis import given, settings
from hypothesis import strategies as st

import accel
from accel.errors import AllocationError, ArgumentError, TensorizeError

ENV = accel.get_env()
T = ENV.BLOCK_IN  # channels per tile (16 by default)


def run(s, args, reference, seed=0):
    f = accel.build(s, args, name="matmul")
    rng = np.random.default_rng(seed)
    data = random_int8(rng, args[0].shape)
    weight = random_int8(rng, args[1].shape)
    out = np.zeros(args[2].shape, np.int8)
    f(data, weight, out)
    np.testing.assert_array_equal(out, reference(data, weight))
    return f


@pytest.mark.parametrize(
    "batch, in_ch, out_ch, i_block, o_block, shift",
    [
        (1, 256, 256, 256, 256, None),
        (1, 1024, 512, 256, 256, 8),
        (1, 64, 128, 32, 64, 4),
        (1, 16, 16, 16, 16, None),
    ],
)
def test_blocked_matmul_matches_numpy(batch, in_ch, out_ch, i_block, o_block, shift):
    run(*packed_matmul(ENV, batch, in_ch, out_ch, i_block, o_block, shift))


@settings(max_examples=12, deadline=None)
@given(
    in_tiles=st.integers(1, 8),
    out_tiles=st.integers(1, 8),
    data=st.data(),
    shift=st.sampled_from([None, 0, 5, 8]),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_and_tilings(in_tiles, out_tiles, data, shift, seed):
    i_div = data.draw(st.sampled_from([d for d in range(1, in_tiles + 1) if in_tiles % d == 0]))
    o_div = data.draw(st.sampled_from([d for d in range(1, out_tiles + 1) if out_tiles % d == 0]))
    args = packed_matmul(ENV, 1, in_tiles * T, out_tiles * T, i_div * T, o_div * T, shift)
    run(*args, seed=seed)


def test_weight_tile_that_overflows_its_sram_is_refused_at_build():
    # 1024 x 1024 weights in one block are 64 * 64 = 4096 weight tiles; the buffer holds 1024.
    s, args, _ = packed_matmul(ENV, 1, 1024, 1024, 1024, 1024)
    with pytest.raises(AllocationError, match=r"weight_buf needs 4096 tiles \(1048576 bytes\)"):
        accel.build(s, args)


def test_tensorize_on_a_body_that_is_not_the_product():
    from accel import te

    A = te.placeholder((1, 4, 1, T), name="A", dtype="int8")
    B = te.placeholder((4, 4, T, T), name="B", dtype="int8")
    k = te.reduce_axis((0, 4), name="k")
    kk = te.reduce_axis((0, T), name="kk")
    C = te.compute(
        (1, 4, 1, T),
        lambda b, o, bi, oi: te.max(
            A[b, k, bi, kk].astype("int32") * B[o, k, oi, kk].astype("int32"), axis=[k, kk]
        ),
        name="C",
    )
    s = te.create_schedule(C.op)
    b, o, bi, oi = C.op.axis
    s[C].reorder(b, o, k, bi, oi, kk)
    s[C].tensorize(bi, ENV.gemm)
    with pytest.raises(TensorizeError, match="does not match the intrinsic"):
        accel.build(s, [A, B, C])


def test_wrong_arrays_are_refused_and_leave_the_device_clean():
    s, args, reference = packed_matmul(ENV, 1, 32, 32, 32, 32)
    f = accel.build(s, args)
    rng = np.random.default_rng(1)
    data, weight = random_int8(rng, args[0].shape), random_int8(rng, args[1].shape)
    kept = data.copy()
    with pytest.raises(ArgumentError, match="argument weight has shape"):
        f(data, weight[:1], np.zeros(args[2].shape, np.int8))
    with pytest.raises(ArgumentError, match="argument res has dtype int32, expected int8"):
        f(data, weight, np.zeros(args[2].shape, np.int32))
    np.testing.assert_array_equal(data, kept)
    out = np.zeros(args[2].shape, np.int8)
    f(data, weight, out)  # the failed calls left nothing behind
    np.testing.assert_array_equal(out, reference(data, weight))
