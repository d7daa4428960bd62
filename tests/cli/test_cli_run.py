"""``accel run``: the digits model end to end (exit 0, the predicted class, cycles, where the time
went, a profile and a trace), and every bad input as one line on stderr with exit code 2."""

from __future__ import annotations

import json
import pathlib
import re
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from accel.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from models.digits.data import FLOAT_MODEL, QDQ_MODEL, load_split  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    x_train, _, x_test, y_test = load_split()
    folder = tmp_path_factory.mktemp("run")
    np.save(folder / "x.npy", x_test[:1])
    np.save(folder / "xs.npy", x_test[:3])
    np.save(folder / "samples.npy", x_train[:40].reshape(40, 1, 1, 8, 8))
    np.save(folder / "wrong.npy", np.zeros((1, 1, 9, 9), np.float32))
    np.save(folder / "flat.npy", np.zeros((8, 8), np.float32))
    (folder / "junk.onnx").write_bytes(b"not a model")
    node = helper.make_node("Erf", ["input"], ["out"], name="erf")
    graph = helper.make_graph(
        [node],
        "erf",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, folder / "erf.onnx")
    return folder, y_test[:3]


def run(capsys, *argv):
    code = main(["run", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_digits_model_prints_the_predicted_class(files, capsys):
    folder, labels = files
    trace = folder / "trace.json"
    code, out, err = run(
        capsys,
        FLOAT_MODEL,
        "--input",
        folder / "x.npy",
        "--calibrate",
        folder / "samples.npy",
        "--profile",
        "--trace",
        trace,
    )
    assert code == 0, err
    assert f"logits: class {labels[0]}  top-5: {labels[0]} (" in out
    assert "cycles per inference" in out and "GEMM utilization" in out
    assert "where: 6 accelerator steps (13 nodes), 2 host steps" in out
    assert "/head/Gemm" in out and "host ms" in out  # the profile table
    assert json.loads(trace.read_text())["traceEvents"]


def test_several_inputs_one_inference_each_and_no_calibration(files, capsys):
    folder, labels = files
    code, out, err = run(capsys, FLOAT_MODEL, "--input", folder / "xs.npy", "--top-k", "2")
    assert code == 0, err
    assert "note: no --calibrate given" in out
    for i, label in enumerate(labels):
        assert f"input {i}: logits: class {label}  top-2:" in out
    assert "3 inferences" in out


def test_onnxruntime_quantized_model_keeps_its_scales(files, capsys):
    folder, labels = files
    code, out, err = run(capsys, QDQ_MODEL, "--input", folder / "x.npy")
    if code == 2:  # an importer that refuses onnxruntime's one-element bias scales
        assert err.count("\n") == 1 and "accel run: error:" in err
        return
    assert code == 0, err
    assert f"logits: class {labels[0]}" in out
    code, _, err = run(
        capsys, QDQ_MODEL, "--input", folder / "x.npy", "--calibrate", folder / "samples.npy"
    )
    assert code == 2 and "already quantized (QDQ)" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.onnx", "--input", "x.npy"], "no model file"),
        ([FLOAT_MODEL, "--input", "missing.npy"], "no input file"),
        ([FLOAT_MODEL, "--input", "wrong.npy"], r"is \[N, 1, 8, 8\], got \(1, 1, 9, 9\)"),
        ([FLOAT_MODEL, "--input", "flat.npy"], "is not an input of digits_cnn.onnx"),
        ([FLOAT_MODEL, "--input", "x.npy", "--calibrate", "wrong.npy"], "stacked along"),
        (["junk.onnx", "--input", "x.npy"], "is not an ONNX model"),
        (["erf.onnx", "--input", "x.npy"], "Erf"),
        ([FLOAT_MODEL, "--input", "x.npy", "--config", "none.json"], "no configuration file"),
        ([FLOAT_MODEL, "--input", "junk.onnx"], "is not a .npy array"),
        ([FLOAT_MODEL, "--input", "x.npy", "--top-k", "0"], "--top-k must be at least 1"),
    ],
    ids=[
        "missing_model",
        "missing_input",
        "wrong_shape",
        "wrong_rank",
        "bad_calibration",
        "not_onnx",
        "unsupported",
        "missing_config",
        "input_not_npy",
        "top_k",
    ],
)
def test_bad_inputs_are_one_line_errors(files, capsys, argv, message):
    folder, _ = files
    # file names (with a dot) live in the fixture's folder; options and numbers stay as they are
    argv = [a if isinstance(a, pathlib.Path) else folder / a if "." in a else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("accel run: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_runs_without_tqdm(files, capsys, monkeypatch):
    """tqdm is imported only when a progress bar is wanted; without it nothing changes."""
    folder, labels = files
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    code, out, err = run(
        capsys, FLOAT_MODEL, "--input", folder / "xs.npy", "--calibrate", folder / "samples.npy"
    )
    assert code == 0, err
    assert f"input 2: logits: class {labels[2]}" in out
