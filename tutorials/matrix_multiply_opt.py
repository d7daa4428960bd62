"""A blocked fully-connected layer on the accelerator: 1x1024 by 1024x1024, then requantized.

The layer does not fit on chip at once, so it is blocked: 256 output channels at a time stay in
the accumulator while the 1024 input channels stream through in blocks of 256 (16 input tiles
and 16 x 16 weight tiles per block). Each output block is then shifted right by 8, clipped to
[0, 127] on the vector ALU and stored as int8.
Run: python tutorials/matrix_multiply_opt.py
"""

import numpy as np

import accel
from accel import te

env = accel.get_env()

batch_size, in_channels, out_channels = 1, 1024, 1024
data_shape = (batch_size // env.BATCH, in_channels // env.BLOCK_IN, env.BATCH, env.BLOCK_IN)
weight_shape = (
    out_channels // env.BLOCK_OUT,
    in_channels // env.BLOCK_IN,
    env.BLOCK_OUT,
    env.BLOCK_IN,
)
output_shape = (batch_size // env.BATCH, out_channels // env.BLOCK_OUT, env.BATCH, env.BLOCK_OUT)

# 1. Declare: the product, then the requantization epilogue, then the narrowing store.
data = te.placeholder(data_shape, name="data", dtype=env.inp_dtype)
weight = te.placeholder(weight_shape, name="weight", dtype=env.wgt_dtype)
data_buf = te.compute(data_shape, lambda *i: data(*i), "data_buf")
weight_buf = te.compute(weight_shape, lambda *i: weight(*i), "weight_buf")
ic = te.reduce_axis((0, in_channels // env.BLOCK_IN), name="ic")
ic_tns = te.reduce_axis((0, env.BLOCK_IN), name="ic_tns")
res_gemm = te.compute(
    output_shape,
    lambda bo, co, bi, ci: te.sum(
        data_buf[bo, ic, bi, ic_tns].astype(env.acc_dtype)
        * weight_buf[co, ic, ci, ic_tns].astype(env.acc_dtype),
        axis=[ic, ic_tns],
    ),
    name="res_gemm",
)
inp_max = (1 << (env.INP_WIDTH - 1)) - 1
res_shr = te.compute(output_shape, lambda *i: res_gemm(*i) >> env.INP_WIDTH, name="res_shr")
res_max = te.compute(output_shape, lambda *i: te.max(res_shr(*i), 0), "res_max")
res_min = te.compute(output_shape, lambda *i: te.min(res_max(*i), inp_max), "res_min")
res = te.compute(output_shape, lambda *i: res_min(*i).astype(env.inp_dtype), name="res")

# 2. Block the output channels by 256 and the input channels by 256.
b_block = batch_size // env.BATCH
i_block = 256 // env.BLOCK_IN
o_block = 256 // env.BLOCK_OUT

s = te.create_schedule(res.op)
b, oc, b_tns, oc_tns = s[res].op.axis
b_out, b_inn = s[res].split(b, b_block)
oc_out, oc_inn = s[res].split(oc, o_block)
s[res].reorder(b_out, oc_out, b_inn, oc_inn)
for stage in (res_gemm, res_shr, res_max, res_min):
    s[stage].set_scope(env.acc_scope)
    s[stage].compute_at(s[res], oc_out)
for stage in (res_shr, res_max, res_min):
    s[stage].pragma(s[stage].op.axis[0], env.alu)
s[res].pragma(oc_inn, env.dma_copy)

b, oc, b_tns, oc_tns = s[res_gemm].op.axis
ic_out, ic_inn = s[res_gemm].split(ic, i_block)
s[res_gemm].reorder(ic_out, b, oc, ic_inn, b_tns, oc_tns, ic_tns)
s[data_buf].compute_at(s[res_gemm], ic_out)
s[weight_buf].compute_at(s[res_gemm], ic_out)
s[data_buf].set_scope(env.inp_scope)
s[weight_buf].set_scope(env.wgt_scope)
s[data_buf].pragma(s[data_buf].op.axis[0], env.dma_copy)
s[weight_buf].pragma(s[weight_buf].op.axis[0], env.dma_copy)
s[res_gemm].tensorize(b_tns, env.gemm)

print(accel.lower(s, [data, weight, res], simple_mode=True))

# 3. Build, run, check.
f = accel.build(s, [data, weight, res], name="fully_connected")
dev = accel.ext_dev(0)
rng = np.random.default_rng(0)
data_np = rng.integers(-128, 128, data_shape, dtype=np.int8)
weight_np = rng.integers(-128, 128, weight_shape, dtype=np.int8)
data_nd, weight_nd = accel.nd.array(data_np, dev), accel.nd.array(weight_np, dev)
res_nd = accel.nd.empty(output_shape, env.out_dtype, dev)
accel.sim.clear_stats()
f(data_nd, weight_nd, res_nd)
stats = accel.sim.stats()

data_mat = data_np.transpose(0, 2, 1, 3).reshape(batch_size, in_channels).astype(np.int32)
weight_mat = weight_np.transpose(0, 2, 1, 3).reshape(out_channels, in_channels).astype(np.int32)
res_mat = np.clip((data_mat @ weight_mat.T) >> env.INP_WIDTH, 0, inp_max).astype(np.int8)
expected = res_mat.reshape(output_shape[0], env.BATCH, output_shape[1], env.BLOCK_OUT)
np.testing.assert_array_equal(res_nd.numpy(), expected.transpose(0, 2, 1, 3))
print("blocked fully-connected layer: result matches numpy")
for key in (
    "inp_load_nbytes",
    "wgt_load_nbytes",
    "uop_load_nbytes",
    "out_store_nbytes",
    "gemm_counter",
    "alu_counter",
    "cycles",
):
    print(f"{key:>18}: {stats[key]}")
gemm_cycles = stats["gemm_useful_cycles"]
print(f"GEMM utilization: {gemm_cycles / stats['cycles']:.1%} of {stats['cycles']} cycles")
