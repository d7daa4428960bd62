"""Tuning every operator of a graph build: tasks extracted from packing, tuned, applied to
accel.graph.build, and the program still equal to the integer reference bit for bit."""

import pathlib
import sys

import numpy as np

import accel
import accel.graph
from accel import tune
from accel.frontend import from_onnx

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from models.resnet.resnet18 import calibration_images, make_resnet18  # noqa: E402


def test_a_tuned_graph_build_is_faster_and_still_exact(tmp_path):
    images = calibration_images(2, 32, 0)
    qg = accel.graph.quantize(
        from_onnx(make_resnet18(input_hw=32, width=16, num_classes=10)), calibration=[images[:1]]
    )
    tasks = tune.extract_tasks(lambda: accel.graph.pack(qg))
    assert {t.template.kind for t in tasks} == {"conv2d", "vector", "dense"}
    log = tmp_path / "graph.jsonl"
    results = tune.tune(tasks, trials=4, log=log, executor="serial", progress=False)
    with tune.untuned():
        before = accel.graph.build(qg)
    with tune.apply_history_best(log):
        after = accel.graph.build(qg)
    assert after.cycle_count() == sum(r.best.cycles * r.task.repeats for r in results)
    assert after.cycle_count() <= before.cycle_count()
    x = images[1:2]
    np.testing.assert_array_equal(np.asarray(after.run(x)), np.asarray(qg.run(x)))
