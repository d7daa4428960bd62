"""Get started with accel on the host CPU: declare, schedule, lower, build, run, check.

The computation is the classic get-started vector add: two int32 tensors of shape
(1, 64, BATCH, BLOCK_OUT) are copied into buffers, added, and cast to int8. Here it runs on the
host; the accelerator version of the same program arrives with the runtime.
Run: python tutorials/cpu_get_started.py
"""

import numpy as np

import accel
from accel import te

env = accel.get_env()
print(f"configuration: {env.name}")

# 1. Declare the computation: what to compute, not how.
m = 64
shape = (1, m, env.BATCH, env.BLOCK_OUT)
A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
B = te.placeholder(shape, name="B", dtype=env.acc_dtype)
A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")
C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
C = te.compute(shape, lambda *i: C_buf(*i).astype(env.inp_dtype), "C")

# 2. The default schedule: one loop nest per stage, in declaration order.
s = te.create_schedule(C.op)
print("--- default lowering ---")
print(accel.lower(s, [A, B, C], simple_mode=True))

# 3. A different schedule: compute the sum inline and split the outer axis in two.
s2 = te.create_schedule(C.op)
for stage in (A_buf, B_buf, C_buf):
    s2[stage].compute_inline()
outer, inner = s2[C].split(C.op.axis[1], factor=16)
print("--- inlined and split ---")
print(accel.lower(s2, [A, B, C], simple_mode=True))

# 4. Build and run; results are checked against numpy, bit for bit.
rng = np.random.default_rng(0)
a_np = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
b_np = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
expected = (a_np + b_np).astype(np.int8)  # int32 wrap-around, then keep the low 8 bits

for name, sched in (("default", s), ("inlined", s2)):
    f = accel.build(sched, [A, B, C], name=f"vadd_{name}")
    c = accel.nd.empty(shape, env.inp_dtype)
    f(accel.nd.array(a_np), accel.nd.array(b_np), c)
    np.testing.assert_array_equal(c.numpy(), expected)
    print(f"{name} schedule: result matches numpy")

print("--- generated host code (inlined schedule) ---")
print(f.source)
