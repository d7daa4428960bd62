"""A 2-D convolution on the accelerator, with virtual threads hiding load latency.

The layer is ResNet-18's 14x14, 256 -> 256 channels, 3x3, stride 1, pad 1 convolution, with the
requantizing epilogue (>> 8, clip to [0, 127]) on the ALU. The output is tiled by 8 output-channel
blocks, 7 rows and 14 columns; input channels stream through one block at a time. Padding is done
by the padded loads, never by copying a padded tensor.

With one thread the load module and the compute module take turns. Binding the output-channel
split to two virtual threads gives each thread its own half of the on-chip buffers and its own
dependency tokens, so the loads of one thread's tile overlap the GEMMs of the other's.
Run: python tutorials/convolution_opt.py
"""

import numpy as np

import accel
from accel import te

env = accel.get_env()

# 1. Declare the layer on packed tensors: activations (N/BATCH, C/BLOCK_IN, H, W, BATCH, BLOCK_IN)
# and weights (O/BLOCK_OUT, I/BLOCK_IN, KH, KW, BLOCK_OUT, BLOCK_IN).
batch, height, width, in_channels, out_channels = 1, 14, 14, 256, 256
kh = kw = 3
pad = stride = 1
out_h = (height + 2 * pad - kh) // stride + 1
out_w = (width + 2 * pad - kw) // stride + 1
data_shape = (
    batch // env.BATCH,
    in_channels // env.BLOCK_IN,
    height,
    width,
    env.BATCH,
    env.BLOCK_IN,
)
kernel_shape = (
    out_channels // env.BLOCK_OUT,
    in_channels // env.BLOCK_IN,
    kh,
    kw,
    env.BLOCK_OUT,
    env.BLOCK_IN,
)
output_shape = (
    batch // env.BATCH,
    out_channels // env.BLOCK_OUT,
    out_h,
    out_w,
    env.BATCH,
    env.BLOCK_OUT,
)

data = te.placeholder(data_shape, name="data", dtype=env.inp_dtype)
kernel = te.placeholder(kernel_shape, name="kernel", dtype=env.wgt_dtype)
padded = (*data_shape[:2], height + 2 * pad, width + 2 * pad, *data_shape[4:])
data_buf = te.compute(
    padded,
    lambda b, c, i, j, bi, ci: te.if_then_else(
        te.all(i >= pad, i < height + pad, j >= pad, j < width + pad),
        data[b, c, i - pad, j - pad, bi, ci],
        te.const(0, env.inp_dtype),
    ),
    name="data_buf",
)
kernel_buf = te.compute(kernel_shape, lambda *i: kernel(*i), "kernel_buf")
ic = te.reduce_axis((0, in_channels // env.BLOCK_IN), name="ic")
ic_tns = te.reduce_axis((0, env.BLOCK_IN), name="ic_tns")
dy = te.reduce_axis((0, kh), name="dy")
dx = te.reduce_axis((0, kw), name="dx")
res_conv = te.compute(
    output_shape,
    lambda bo, co, i, j, bi, ci: te.sum(
        data_buf[bo, ic, i * stride + dy, j * stride + dx, bi, ic_tns].astype(env.acc_dtype)
        * kernel_buf[co, ic, dy, dx, ci, ic_tns].astype(env.acc_dtype),
        axis=[ic, dy, dx, ic_tns],
    ),
    name="res_conv",
)
res_shr = te.compute(output_shape, lambda *i: res_conv(*i) >> 8, name="res_shr")
res_max = te.compute(output_shape, lambda *i: te.max(res_shr(*i), 0), "res_max")
res_min = te.compute(output_shape, lambda *i: te.min(res_max(*i), 127), "res_min")
res = te.compute(output_shape, lambda *i: res_min(*i).astype(env.inp_dtype), name="res")


def schedule(v_threads: int):
    """The tiled schedule, with ``v_threads`` virtual threads along output channels."""
    s = te.create_schedule(res.op)
    b, oc, y, x, b_tns, oc_tns = s[res].op.axis
    b_out, b_inn = s[res].split(b, factor=batch // env.BATCH)
    oc_out, oc_inn = s[res].split(oc, factor=128 // env.BLOCK_OUT)  # 8 output blocks a tile
    y_bo, y_bi = s[res].split(y, factor=7)
    x_bo, x_bi = s[res].split(x, factor=14)
    s[res].reorder(b_out, oc_out, y_bo, x_bo, b_inn, oc_inn, y_bi, x_bi, b_tns, oc_tns)
    for stage in (res_conv, res_shr, res_max, res_min):
        s[stage].set_scope(env.acc_scope)
        s[stage].compute_at(s[res], x_bo)
    b_inn, oc_inn, y_inn, x_inn, b_tns, oc_tns = s[res_conv].op.axis
    ic_out, ic_inn = s[res_conv].split(ic, factor=16 // env.BLOCK_IN)  # one input block
    s[res_conv].reorder(ic_out, b_inn, oc_inn, y_inn, ic_inn, dy, dx, x_inn, b_tns, oc_tns, ic_tns)
    if v_threads > 1:
        _, tx = s[res].split(oc_out, factor=v_threads)
        s[res].reorder(tx, b_out)
        s[res].bind(tx, te.thread_axis("cthread"))
    s[data_buf].set_scope(env.inp_scope)
    s[kernel_buf].set_scope(env.wgt_scope)
    s[data_buf].compute_at(s[res_conv], ic_out)
    s[kernel_buf].compute_at(s[res_conv], ic_out)
    s[data_buf].pragma(s[data_buf].op.axis[0], env.dma_copy)
    s[kernel_buf].pragma(s[kernel_buf].op.axis[0], env.dma_copy)
    s[res].pragma(x_bi, env.dma_copy)
    for stage in (res_shr, res_max, res_min):
        s[stage].pragma(s[stage].op.axis[0], env.alu)
    s[res_conv].tensorize(b_tns, env.gemm)
    return s


s = schedule(v_threads=2)
print(accel.lower(s, [data, kernel, res], simple_mode=True))

# 2. The numpy reference on plain NCHW / OIHW arrays.
rng = np.random.default_rng(0)
data_np = rng.integers(-128, 128, data_shape, dtype=np.int8)
kernel_np = rng.integers(-128, 128, kernel_shape, dtype=np.int8)
x = data_np.transpose(0, 4, 1, 5, 2, 3).reshape(batch, in_channels, height, width)
w = kernel_np.transpose(0, 4, 1, 5, 2, 3).reshape(out_channels, in_channels, kh, kw)
xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
acc = np.zeros((batch, out_channels, out_h, out_w), np.int64)
for r in range(kh):
    for c in range(kw):
        window = xp[:, :, r : r + out_h * stride : stride, c : c + out_w * stride : stride]
        acc += np.einsum("bihw,oi->bohw", window, w[:, :, r, c].astype(np.int64))
expected = np.clip(acc.astype(np.int32) >> 8, 0, 127).astype(np.int8)
expected = expected.reshape(
    batch // env.BATCH, env.BATCH, out_channels // env.BLOCK_OUT, env.BLOCK_OUT, out_h, out_w
).transpose(0, 2, 4, 5, 1, 3)

# 3. Build and run with one and with two virtual threads.
dev = accel.ext_dev(0)
data_nd, kernel_nd = accel.nd.array(data_np, dev), accel.nd.array(kernel_np, dev)
results = {}
for v_threads in (1, 2):
    f = accel.build(schedule(v_threads), [data, kernel, res], name=f"conv_vt{v_threads}")
    res_nd = accel.nd.empty(output_shape, env.out_dtype, dev)
    accel.sim.clear_stats()
    f(data_nd, kernel_nd, res_nd)
    results[v_threads] = accel.sim.stats()
    np.testing.assert_array_equal(res_nd.numpy(), expected)
    print(f"{v_threads} virtual thread(s): result matches numpy")
stats = results[2]

print("--- simulator statistics (two virtual threads) ---")
for key in (
    "inp_load_nbytes",
    "wgt_load_nbytes",
    "acc_load_nbytes",
    "uop_load_nbytes",
    "out_store_nbytes",
    "gemm_counter",
    "alu_counter",
):
    print(f"{key:>18}: {stats[key]}")
print("--- latency hiding ---")
for v_threads, st in results.items():
    cycles = st["cycles"]
    utilization = st["gemm_useful_cycles"] / cycles
    print(
        f"{v_threads} thread(s): {cycles:>8} cycles, {cycles / env.CLOCK_MHZ:8.1f} us at "
        f"{env.CLOCK_MHZ} MHz, GEMM utilization {utilization:.1%}"
    )
