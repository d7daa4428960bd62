"""Matrix multiply on the accelerator: one 1x256 by 256x256 product on the GEMM core.

The data are packed in tiles the GEMM core consumes: the input (1, 16, 1, 16) holds 16 input
tiles of BATCH x BLOCK_IN, the weights (16, 16, 16, 16) hold 16 x 16 weight tiles of
BLOCK_OUT x BLOCK_IN. One reduction block (ko) at a time, the input and weight tiles are loaded
on chip, then one GEMM instruction accumulates all 16 output tiles; the result is stored as int8.
Run: python tutorials/matrix_multiply.py
"""

import numpy as np

import accel
from accel import te

env = accel.get_env()

# 1. Declare: packed input and weights, on-chip copies, the product, and the narrowing store.
batch_size, in_channels, out_channels = 1, 256, 256
A = te.placeholder(
    (batch_size // env.BATCH, in_channels // env.BLOCK_IN, env.BATCH, env.BLOCK_IN),
    name="A",
    dtype=env.inp_dtype,
)
B = te.placeholder(
    (out_channels // env.BLOCK_OUT, in_channels // env.BLOCK_IN, env.BLOCK_OUT, env.BLOCK_IN),
    name="B",
    dtype=env.wgt_dtype,
)
A_buf = te.compute(A.shape, lambda *i: A(*i), "A_buf")
B_buf = te.compute(B.shape, lambda *i: B(*i), "B_buf")
ko = te.reduce_axis((0, in_channels // env.BLOCK_IN), name="ko")
ki = te.reduce_axis((0, env.BLOCK_IN), name="ki")
out_shape = (batch_size // env.BATCH, out_channels // env.BLOCK_OUT, env.BATCH, env.BLOCK_OUT)
C_buf = te.compute(
    out_shape,
    lambda bo, co, bi, ci: te.sum(
        A_buf[bo, ko, bi, ki].astype(env.acc_dtype) * B_buf[co, ko, ci, ki].astype(env.acc_dtype),
        axis=[ko, ki],
    ),
    name="C_buf",
)
C = te.compute(out_shape, lambda *i: C_buf(*i).astype(env.inp_dtype), name="C")

# 2. Schedule: buffers in the input, weight and accumulator SRAMs; the tiles of one reduction
# block are loaded inside the ko loop; the inner (bi, ci, ki) block becomes one GEMM micro-op.
s = te.create_schedule(C.op)
s[A_buf].set_scope(env.inp_scope)
s[B_buf].set_scope(env.wgt_scope)
s[C_buf].set_scope(env.acc_scope)
s[B_buf].compute_at(s[C_buf], ko)
s[A_buf].compute_at(s[C_buf], ko)
s[A_buf].pragma(s[A_buf].op.axis[0], env.dma_copy)
s[B_buf].pragma(s[B_buf].op.axis[0], env.dma_copy)
s[C].pragma(s[C].op.axis[0], env.dma_copy)
bo, co, bi, ci = s[C_buf].op.axis
s[C_buf].reorder(ko, bo, co, bi, ci, ki)
s[C_buf].tensorize(bi, env.gemm)

print(accel.lower(s, [A, B, C], simple_mode=True))

# 3. Build and run on the simulated accelerator.
f = accel.build(s, [A, B, C], name="my_gemm")
dev = accel.ext_dev(0)
rng = np.random.default_rng(0)
a_np = rng.integers(-128, 128, A.shape, dtype=np.int8)
b_np = rng.integers(-128, 128, B.shape, dtype=np.int8)
a, b = accel.nd.array(a_np, dev), accel.nd.array(b_np, dev)
c = accel.nd.empty(C.shape, env.out_dtype, dev)
accel.sim.clear_stats()
f(a, b, c)
stats = accel.sim.stats()

# 4. Check against numpy: unpack to plain matrices, multiply in int32, keep the low 8 bits.
a_mat = a_np.transpose(0, 2, 1, 3).reshape(batch_size, in_channels).astype(np.int32)
b_mat = b_np.transpose(0, 2, 1, 3).reshape(out_channels, in_channels).astype(np.int32)
c_mat = (a_mat @ b_mat.T).astype(np.int8)
expected = c_mat.reshape(out_shape[0], env.BATCH, out_shape[1], env.BLOCK_OUT).transpose(0, 2, 1, 3)
np.testing.assert_array_equal(c.numpy(), expected)
print("matrix multiply on the accelerator: result matches numpy")
for key in (
    "inp_load_nbytes",
    "wgt_load_nbytes",
    "uop_load_nbytes",
    "out_store_nbytes",
    "gemm_counter",
    "cycles",
):
    print(f"{key:>18}: {stats[key]}")
