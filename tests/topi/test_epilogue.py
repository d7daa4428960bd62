"""General ALU epilogues (``topi.common.alu_epilogue``): convolutions and dense layers with a
program of ALU steps and tensor operands (a per-channel multiplier, a rescaled residual), and
the vector operators built on them (``map_packed``, ``add_scaled_packed``,
``sum_pool2d_packed``), on the simulator, equal to numpy written here, bit for bit."""

import numpy as np
import pytest

import accel
from accel import te, topi
from accel.errors import ScheduleError
from accel.topi import vector
from accel.topi.common import AluStep, Operand

ENV = accel.get_env()
B = ENV.BLOCK_IN


def steps_ref(x, steps, operands=None):
    """The ALU program on int32 ``x`` with wrap-around, in numpy: the test's oracle."""
    acc = x.astype(np.int32)
    for step in steps:
        v = np.int32(step.imm) if step.imm is not None else operands[step.operand]
        if step.op == "add":
            acc = np.add(acc, v, dtype=np.int32)
        elif step.op == "mul":
            acc = np.multiply(acc, v, dtype=np.int32)
        elif step.op == "shr":
            acc = np.right_shift(acc, v, dtype=np.int32)
        elif step.op == "max":
            acc = np.maximum(acc, v, dtype=np.int32)
        else:
            acc = np.minimum(acc, v, dtype=np.int32)
    return acc


def conv_ref(x, w, bias, pad):
    """int32 (wrapping) accumulator of a stride-1 convolution plus bias."""
    k = w.shape[2]
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = x.shape[2] + 2 * pad - k + 1
    acc = np.zeros((x.shape[0], w.shape[0], out, out), np.int64)
    for r in range(k):
        for c in range(k):
            window = xp[:, :, r : r + out, c : c + out]
            acc += np.einsum("bihw,oi->bohw", window, w[:, :, r, c].astype(np.int64))
    return (acc + bias.reshape(1, -1, 1, 1)).astype(np.int32)


# rs(rs(acc, 3) * M, 20) clipped to int8, M per channel: the split form of the 20-bit shift
REQUANT = (
    AluStep("add", 4),
    AluStep("shr", 3),
    AluStep("mul", operand="mult"),
    AluStep("shr", 5),
    AluStep("add", 1 << 14),
    AluStep("shr", 15),
    AluStep("max", -128),
    AluStep("min", 127),
)
# then the residual add: a * Ma + b * Mb, rs(., 15), ReLU
RESIDUAL = (
    AluStep("mul", 18393),
    AluStep("add", operand="resid"),
    AluStep("add", 1 << 14),
    AluStep("shr", 15),
    AluStep("max", 0),
    AluStep("min", 127),
)


@pytest.mark.parametrize("residual", [False, True], ids=["requantize", "with_residual"])
def test_conv2d_with_alu_program_and_operands(residual):
    ci, co, hw = 32, 32, 8
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, ci, hw, hw), dtype=np.int8)
    w = rng.integers(-128, 128, (co, ci, 3, 3), dtype=np.int8)
    bias = rng.integers(-(2**12), 2**12, (co,), dtype=np.int32)
    mult = rng.integers(1000, 30000, (co,), dtype=np.int32)
    r = rng.integers(-128, 128, (1, co, hw, hw), dtype=np.int8)
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((co // B, ci // B, 3, 3, B, B), name="kernel", dtype="int8")
    bias_t = te.placeholder((co // B, 1, B), name="bias", dtype="int32")
    mult_t = te.placeholder((co // B, 1, B), name="mult", dtype="int32")
    resid_t = te.placeholder((1, co // B, hw, hw, 1, B), name="resid", dtype="int8")
    operands = [Operand("mult", mult_t)]
    steps = list(REQUANT)
    arrays = [topi.pack_nchw(x, ENV), topi.pack_kernel(w, ENV), bias.reshape(-1, 1, B)]
    arrays.append(mult.reshape(-1, 1, B))
    if residual:
        operands.append(Operand("resid", resid_t, (AluStep("mul", 21350),)))
        steps += RESIDUAL
        arrays.append(topi.pack_nchw(r, ENV))
    op = topi.conv2d_packed(data, kernel, ENV, 1, 1, bias=bias_t, epilogue=steps, operands=operands)
    f = accel.build(topi.schedule_conv2d_packed(op, ENV), op.args, name="conv")
    out = np.zeros(op.res.shape, np.int8)
    f(*arrays, out)
    scaled = r.astype(np.int32) * np.int32(21350)
    expect = steps_ref(
        conv_ref(x, w, bias, 1), steps, {"mult": mult.reshape(1, -1, 1, 1), "resid": scaled}
    )
    np.testing.assert_array_equal(topi.unpack_nchw(out), expect.astype(np.int8))


def test_conv2d_tiles_count_the_operands_in_the_accumulator():
    """A residual operand doubles the accumulator a tile needs, so the default rows shrink."""
    data = te.placeholder((1, 4, 56, 56, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((4, 4, 3, 3, B, B), name="kernel", dtype="int8")
    resid = te.placeholder((1, 4, 56, 56, 1, B), name="resid", dtype="int8")
    plain = topi.conv2d_packed(data, kernel, ENV, 1, 1, epilogue=[AluStep("max", 0)])
    fused = topi.conv2d_packed(
        data,
        kernel,
        ENV,
        1,
        1,
        epilogue=[AluStep("add", operand="resid")],
        operands=[Operand("resid", resid)],
    )
    a, b = topi.default_tiles(plain, ENV), topi.default_tiles(fused, ENV)
    assert b.oc_blocks * b.rows * 56 * 2 + b.oc_blocks <= ENV.ACC_BUFF_DEPTH // b.threads
    assert b.oc_blocks * b.rows < a.oc_blocks * a.rows


def test_dense_with_per_channel_multiplier():
    n, i, o = 1, 64, 32
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (n, i), dtype=np.int8)
    w = rng.integers(-128, 128, (o, i), dtype=np.int8)
    bias = rng.integers(-5000, 5000, (o,), dtype=np.int32)
    mult = rng.integers(-30000, 30000, (o,), dtype=np.int32)
    data = te.placeholder((n, i // B, 1, B), name="data", dtype="int8")
    weight = te.placeholder((o // B, i // B, B, B), name="weight", dtype="int8")
    bias_t = te.placeholder((o // B, 1, B), name="bias", dtype="int32")
    mult_t = te.placeholder((o // B, 1, B), name="mult", dtype="int32")
    op = topi.dense_packed(
        data, weight, ENV, bias=bias_t, epilogue=REQUANT, operands=[Operand("mult", mult_t)]
    )
    f = accel.build(topi.schedule_dense_packed(op, ENV), op.args, name="dense")
    out = np.zeros(op.res.shape, np.int8)
    f(
        topi.pack_dense_data(x, ENV),
        topi.pack_dense_weight(w, ENV),
        bias.reshape(-1, 1, B),
        mult.reshape(-1, 1, B),
        out,
    )
    acc = (x.astype(np.int64) @ w.astype(np.int64).T + bias).astype(np.int32)
    expect = steps_ref(acc, REQUANT, {"mult": mult.reshape(1, -1)})
    np.testing.assert_array_equal(topi.unpack_dense(out), expect.astype(np.int8))


def run_vector(op, inputs):
    s = vector.schedule_vector_packed(op, ENV)
    f = accel.build(s, op.args, name="vec")
    out = np.zeros(op.res.shape, np.int8)
    f(*(topi.pack_nchw(x, ENV) for x in inputs), out)
    return topi.unpack_nchw(out)


def placeholder(shape, name="x"):
    n, c, h, w = shape
    return te.placeholder((n, c // B, h, w, 1, B), name=name, dtype="int8")


def test_map_packed_requantizes_int8_data():
    x = np.random.default_rng(2).integers(-128, 128, (1, 32, 7, 9), dtype=np.int8)
    steps = [AluStep("mul", 23000), AluStep("add", 1 << 13), AluStep("shr", 14)]
    steps += [AluStep("max", -5), AluStep("min", 100)]
    got = run_vector(vector.map_packed(placeholder(x.shape), ENV, steps), [x])
    np.testing.assert_array_equal(got, steps_ref(x, steps).astype(np.int8))


def test_add_scaled_packed_is_qadd():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (1, 32, 8, 8), dtype=np.int8)
    b = rng.integers(-128, 128, (1, 32, 8, 8), dtype=np.int8)
    sa, sb = [AluStep("mul", 18393)], [AluStep("mul", -21350)]
    tail = [AluStep("add", 1 << 14), AluStep("shr", 15), AluStep("max", 0), AluStep("min", 127)]
    op = vector.add_scaled_packed(
        placeholder(a.shape, "a"), placeholder(b.shape, "b"), ENV, sa, sb, tail
    )
    total = np.add(steps_ref(a, sa), steps_ref(b, sb), dtype=np.int32)
    np.testing.assert_array_equal(run_vector(op, [a, b]), steps_ref(total, tail).astype(np.int8))


@pytest.mark.parametrize("kernel, stride, padding, hw", [(3, 2, 1, 9), (7, 1, 0, 7), (1, 1, 0, 1)])
def test_sum_pool_then_requantize(kernel, stride, padding, hw):
    x = np.random.default_rng(4).integers(-128, 128, (1, 32, hw, hw), dtype=np.int8)
    steps = [AluStep("mul", 21000), AluStep("add", 1 << 14), AluStep("shr", 15)]
    steps += [AluStep("max", -128), AluStep("min", 127)]
    op = vector.sum_pool2d_packed(placeholder(x.shape), ENV, kernel, stride, padding, steps)
    xp = np.pad(x.astype(np.int32), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = (hw + 2 * padding - kernel) // stride + 1
    sums = sum(
        xp[:, :, r : r + out * stride : stride, c : c + out * stride : stride]
        for r in range(kernel)
        for c in range(kernel)
    )
    np.testing.assert_array_equal(run_vector(op, [x]), steps_ref(sums, steps).astype(np.int8))


def test_epilogue_refusals():
    data = te.placeholder((1, 1, 4, 4, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((1, 1, 1, 1, B, B), name="kernel", dtype="int8")
    with pytest.raises(ScheduleError, match="immediate in"):
        topi.conv2d_packed(data, kernel, ENV, epilogue=[AluStep("add", 1 << 16)])
    with pytest.raises(ScheduleError, match="unknown ALU operation 'div'"):
        topi.conv2d_packed(data, kernel, ENV, epilogue=[AluStep("div", 2)])
    with pytest.raises(ScheduleError, match="reads operand 'mult', which is not given"):
        topi.conv2d_packed(data, kernel, ENV, epilogue=[AluStep("mul", operand="mult")])
    odd = te.placeholder((3, 1, B), name="odd", dtype="int32")
    with pytest.raises(ScheduleError, match="operand odd .* is neither per channel"):
        topi.conv2d_packed(
            data,
            kernel,
            ENV,
            epilogue=[AluStep("mul", operand="odd")],
            operands=[Operand("odd", odd)],
        )
    with pytest.raises(ScheduleError, match="operands are read by an epilogue"):
        topi.conv2d_packed(data, kernel, ENV, operands=[Operand("odd", odd)])
    with pytest.raises(ScheduleError, match="reads operand 'm', which is not given"):
        vector.map_packed(data, ENV, [AluStep("mul", operand="m")])
