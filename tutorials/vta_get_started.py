"""Get started with the accelerator: a vector add, from declaration to simulated instructions.

Two int32 tensors of shape (1, 64, BATCH, BLOCK_OUT) are loaded into the accumulator SRAM,
added by the vector ALU, and stored back narrowed to int8. The steps are the classic ones:
declare, schedule, lower, build, save and load, run, check, look at the statistics.
Run: python tutorials/vta_get_started.py
"""

import pathlib
import tempfile

import numpy as np

import accel
from accel import te

env = accel.get_env()
print(f"configuration: {env.name}")

# 1. Declare the computation. The packed layout (o, m, BATCH, BLOCK_OUT) makes every innermost
# (BATCH, BLOCK_OUT) block one accumulator tile, the unit the accelerator moves and computes on.
o, m = 1, 64
shape = (o, m, env.BATCH, env.BLOCK_OUT)
A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
B = te.placeholder(shape, name="B", dtype=env.acc_dtype)
A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")  # copy A on chip
B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")  # copy B on chip
C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")  # add, on chip
C = te.compute(shape, lambda *i: C_buf(*i).astype(env.inp_dtype), "C")  # narrow and store

s = te.create_schedule(C.op)
print("--- default lowering (host loops) ---")
print(accel.lower(s, [A, B, C], simple_mode=True))

# 2. Schedule for the accelerator: the buffers live in the accumulator SRAM, the copies are DMA
# transfers, and the addition runs on the vector ALU.
for buf in (A_buf, B_buf, C_buf):
    s[buf].set_scope(env.acc_scope)
s[A_buf].pragma(s[A_buf].op.axis[0], env.dma_copy)
s[B_buf].pragma(s[B_buf].op.axis[0], env.dma_copy)
s[C_buf].pragma(s[C_buf].op.axis[0], env.alu)
s[C].pragma(s[C].op.axis[0], env.dma_copy)

print("--- accelerator lowering ---")
print(accel.lower(s, [A, B, C], simple_mode=True))

# 3. Build, save to one file and load it back. The file holds the lowered program as data; the
# host code is generated again when it is loaded.
my_vadd = accel.build(s, [A, B, C], name="my_vadd")
with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "vadd.accel.json"
    my_vadd.save(path)
    my_vadd = accel.load_module(path)
print("--- generated host code ---")
print(my_vadd.source)

# 4. Run on the simulated accelerator with arrays in its DRAM, and check against numpy.
dev = accel.ext_dev(0)
rng = np.random.default_rng(0)
a_np = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
b_np = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
a, b = accel.nd.array(a_np, dev), accel.nd.array(b_np, dev)
c = accel.nd.empty(shape, env.inp_dtype, dev)

accel.sim.clear_stats()
my_vadd(a, b, c)
stats = accel.sim.stats()

expected = (a_np + b_np).astype(np.int8)  # int32 wrap-around, then keep the low 8 bits
np.testing.assert_array_equal(c.numpy(), expected)
print("vector add on the accelerator: result matches numpy")

# 5. What the accelerator did.
print("--- simulator statistics ---")
for key in ("acc_load_nbytes", "uop_load_nbytes", "out_store_nbytes", "alu_counter", "cycles"):
    print(f"{key:>18}: {stats[key]}")
print("--- static metrics of the module ---")
print(my_vadd.metrics["instructions"])
