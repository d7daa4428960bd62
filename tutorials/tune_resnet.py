"""Tuning a ResNet-18 convolution: knobs, measured candidates, a log applied at build time.

The hand-written rule of ``accel.topi.default_tiles`` picks one tiling per layer. Here the
tuner measures candidates of a 28x28, 128 -> 128 channel 3x3 convolution through the cycle
model, keeps every result in a JSON-lines log, and ``apply_history_best`` makes topi build the
best one. We then check the tuned operator against numpy, look at its energy, and see what
the compute module's epilogue leaves for any schedule (docs/tuning.md).
"""

import tempfile
from pathlib import Path

import numpy as np

import accel
from accel import topi, tune

env = accel.get_env()

######################################################################
# The task and its space
# ----------------------
# A task is an operator declaration on a configuration. Its template declares the knobs: one
# per field of ``Conv2dTiles`` (tile sizes along output channels, rows, columns and input
# channels; virtual threads along channels and rows).
task = tune.conv2d_task(28, 128, 128, 3, 1)
space = task.template.space(task.op, env)
print(f"{task}: {len(space)} points")
print(space.describe())

######################################################################
# Tuning
# ------
# Candidates whose tiles cannot fit the SRAMs are rejected before anything is built (the
# reason is kept); the analytic predictor ranks the rest, and the tuner measures the best
# predicted ones and their neighbours, on worker processes, logging each result.
log = Path(tempfile.mkdtemp()) / "tune.jsonl"
result = tune.tune(task, trials=16, log=log, workers=2, progress=False)
print(result.summary(times=False))
print(f"rejected before building: {len(result.rejected)}, e.g. {result.rejected[0][2]}")
print(f"speed-up over the rule: {result.speedup:.3f}x")

######################################################################
# Applying the log
# ----------------
# Inside ``apply_history_best``, ``schedule_conv2d_packed`` without tiles uses the best logged
# ones. The tuned operator must still compute exactly what numpy computes.
with tune.apply_history_best(log):
    assert topi.default_tiles(task.op, env) == result.best_tiles
    schedule = topi.schedule_conv2d_packed(task.op, env)
    module = accel.build(schedule, task.op.args, name="tuned_conv")

rng = np.random.default_rng(0)
x = rng.integers(-128, 128, (1, 128, 28, 28), dtype=np.int8)
w = rng.integers(-128, 128, (128, 128, 3, 3), dtype=np.int8)
bias = rng.integers(-(2**12), 2**12, (128,), dtype=np.int32)
out = np.zeros(task.op.res.shape, np.int8)
module(topi.pack_nchw(x, env), topi.pack_kernel(w, env), bias.reshape(8, 1, 16), out)

xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
acc = sum(
    np.einsum("bihw,oi->bohw", xp[:, :, r : r + 28, c : c + 28], w[:, :, r, c].astype(np.int64))
    for r in range(3)
    for c in range(3)
)
expected = np.clip((acc.astype(np.int32) + bias.reshape(1, 128, 1, 1)) >> 8, 0, 127)
np.testing.assert_array_equal(topi.unpack_nchw(out), expected.astype(np.int8))
print(f"tuned convolution matches numpy; {module.metrics['cycles']:,} cycles")

######################################################################
# Energy, and what no schedule can pass
# -------------------------------------
# Energy comes from the run's exact action counts and per-action energies (45 nm figures from
# Horowitz, ISSCC 2014). The compute module runs the GEMMs (72 cycles per output vector here:
# 8 input-channel blocks x 3 x 3) and the epilogue (bias add, shift, two clips: 4 x 2 cycles per
# vector), so GEMM utilization cannot pass 72 / 80 = 90 %.
model = tune.EnergyModel()
best = result.best
energy = model.energy(env, best.result["actions"], best.result["cycles"])
parts = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in energy.items() if k != "total")
print(f"energy {energy['total'] / 1e6:.1f} uJ ({parts} uJ)")
print(f"area {model.area(env)['total']:.2f} mm^2 at 45 nm")
utilization = best.result["gemm_useful_cycles"] / best.result["cycles"]
print(f"GEMM utilization {utilization:.1%} against the epilogue bound {72 / 80:.1%}")
