"""Whole models on the simulated accelerator: the digits CNN (calibrated here, and as quantized
by onnxruntime) and a reduced ResNet-18 equal the integer reference executor bit for bit,
before and after save/load; accuracy against the float model and agreement with onnxruntime;
the program's figures; program files refused when they are wrong."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import accel
import accel.graph
from accel.errors import ArgumentError, LoadError, SaveError
from accel.frontend import from_onnx
from models.digits.data import FLOAT_MODEL, QDQ_MODEL, load_split
from models.digits.quantize_ort import scalar_quant_params
from models.resnet.resnet18 import calibration_images, make_resnet18


@pytest.fixture(scope="module")
def split():
    return load_split()


@pytest.fixture(scope="module")
def digits(split):
    x_train, _, _, _ = split
    graph = from_onnx(FLOAT_MODEL, shape={"input": (1, 1, 8, 8)})
    qg = accel.graph.quantize(graph, calibration=[x_train[i : i + 1] for i in range(100)])
    return qg, accel.graph.build(qg)


def test_digits_equals_the_integer_reference_and_keeps_the_float_accuracy(split, digits):
    _, _, x_test, y_test = split
    qg, prog = digits
    batch = from_onnx(FLOAT_MODEL, shape={"input": (len(x_test), 1, 8, 8)})
    float_accuracy = np.mean(np.argmax(batch.run(x_test), axis=1) == y_test)
    predicted = []
    for i in range(len(x_test)):
        x = x_test[i : i + 1]
        y = prog.run(x)
        np.testing.assert_array_equal(y, qg.run(x))
        predicted.append(int(np.argmax(y)))
    int8_accuracy = np.mean(np.array(predicted) == y_test)
    assert abs(int8_accuracy - float_accuracy) <= 0.01, (int8_accuracy, float_accuracy)


def test_digits_after_save_and_load(split, digits, tmp_path):
    _, _, x_test, _ = split
    qg, prog = digits
    path = tmp_path / "digits.accel"
    prog.save(path)
    loaded = accel.graph.load_program(path)
    assert [s.name for s in loaded.packed.steps] == [s.name for s in prog.packed.steps]
    for i in range(0, len(x_test), 15):
        x = x_test[i : i + 1]
        np.testing.assert_array_equal(loaded.run(x), qg.run(x))
    assert loaded.cycle_count() == prog.cycle_count()
    assert loaded.metrics == prog.metrics
    assert loaded.tiles == prog.tiles


def test_onnxruntime_quantized_digits_agree_with_onnxruntime(split):
    _, _, x_test, _ = split
    model = scalar_quant_params(onnx.load(str(QDQ_MODEL)))
    qg = accel.graph.quantize(from_onnx(model, shape={"input": (1, 1, 8, 8)}))
    prog = accel.graph.build(qg)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options)
    expected = np.argmax(session.run(None, {"input": x_test})[0], axis=1)
    got = []
    for i in range(len(x_test)):
        x = x_test[i : i + 1]
        y = prog.run(x)
        if i % 30 == 0:
            np.testing.assert_array_equal(y, qg.run(x))
        got.append(int(np.argmax(y)))
    assert np.mean(np.array(got) == expected) >= 0.98
    # onnxruntime's Relu after each QuantizeLinear folds into the convolution before it
    assert all(len(s.nodes) >= 3 for s in prog.packed.accel_steps if s.kind == "conv2d")


def test_reduced_resnet_bit_for_bit_and_after_save_and_load(tmp_path):
    graph = from_onnx(make_resnet18(input_hw=32, width=16, num_classes=10))
    images = calibration_images(7, 32, 3)
    qg = accel.graph.quantize(graph, calibration=[images[i : i + 1] for i in range(4)])
    prog = accel.graph.build(qg)
    assert len(prog.packed.host_steps) == 2  # quantize the input, dequantize the logits
    path = tmp_path / "resnet.accel"
    prog.save(path)
    loaded = accel.graph.load_program(path)
    for i in range(4, 7):
        x = images[i : i + 1]
        expected = qg.run(x)
        np.testing.assert_array_equal(prog.run(x), expected)
        np.testing.assert_array_equal(loaded.run(x), expected)
    assert loaded.cycle_count() == prog.cycle_count()


def test_program_figures(split, digits):
    _, _, x_test, _ = split
    _, prog = digits
    assert prog.input_shapes == {"input": (1, 1, 8, 8)}
    assert prog.output_shapes == {"logits": (1, 10)}
    first = prog.run(x_test[:1])
    cycles = prog.cycle_count()
    np.testing.assert_array_equal(prog.run(x_test[:1]), first)  # identical across runs
    assert prog.cycle_count() == cycles > 0
    profile = prog.profile()
    assert profile.cycles == cycles
    assert {r.where for r in profile.records} == {"host", "accelerator", "upload", "download"}
    assert prog.compute_duration_us(clock_mhz=200) == pytest.approx(cycles / 200)
    assert prog.compute_duration_us() == pytest.approx(cycles / prog.env.CLOCK_MHZ)
    table = profile.table()
    assert "/head/Gemm" in table and "GEMM util" in table and "host time" in table
    assert "host ms" not in profile.table(host_times=False)
    m = prog.metrics
    assert m["cycles"] == cycles
    assert m["nodes"] == {"accelerator": 13, "host": 2}
    assert m["steps"] == {"accelerator": 6, "host": 2}
    assert m["instructions"]["total"] == sum(
        v for k, v in m["instructions"].items() if k != "total"
    )
    assert m["weight_bytes"] == sum(v.nbytes for v in prog.packed.constants.values())
    assert m["transfer_bytes"] == {"upload": 1 * 8 * 8 * 16, "download": 16}
    for use in m["sram_peak"].values():
        assert 0 < use["tiles"] <= use["capacity"]
    assert m["dram_bytes"]["out"] > 0 and 0 < m["gemm_utilization"] < 1
    trace = profile.to_chrome_trace()
    assert json.loads(json.dumps(trace))["traceEvents"]


def test_program_inputs_are_checked_and_left_untouched(split, digits):
    _, _, x_test, _ = split
    _, prog = digits
    with pytest.raises(ArgumentError, match=r"input 'input': expected float32\[1, 1, 8, 8\]"):
        prog.run(x_test[:2])
    with pytest.raises(ArgumentError, match="missing: input"):
        prog.run(image=x_test[:1])
    x = x_test[:1].copy()
    prog.run(input=x)
    np.testing.assert_array_equal(x, x_test[:1])


@pytest.fixture(scope="module")
def saved(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("prog") / "digits.accel"
    digits[1].save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(tmp_path, members: dict) -> str:
    path = tmp_path / "changed.accel"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def with_manifest(saved, change) -> dict:
    manifest = json.loads(saved["manifest.json"])
    change(manifest)
    return {**saved, "manifest.json": json.dumps(manifest)}


def test_load_program_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(LoadError, match="no program file"):
        accel.graph.load_program(tmp_path / "missing.accel")
    junk = tmp_path / "junk.accel"
    junk.write_bytes(b"not a zip")
    with pytest.raises(LoadError, match="is not a program file"):
        accel.graph.load_program(junk)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(version=99), "reads version 1, the file is 99"),
        (lambda m: m.update(format="pickle"), "expected 'accel-program'"),
        (lambda m: m["steps"][1].update(target="host"), r"steps\[1\]: lists conv2d step"),
        (lambda m: m["steps"].pop(), "expected the 8 steps"),
        (lambda m: m["graph"]["nodes"][1].update(op="eval"), "unknown operator 'eval'"),
        (lambda m: m["graph"]["nodes"][1]["attrs"].update(group=2), "does not check"),
        (lambda m: m["steps"][1].update(tiles={"type": "Conv2dTiles"}), "positive integers"),
        (lambda m: m["config"].update(LOG_BLOCK="x"), "config"),
        (lambda m: m.pop("steps"), "expected the keys"),
    ],
    ids=[
        "version",
        "format",
        "steps",
        "step_count",
        "operator",
        "attribute",
        "tiles",
        "config",
        "keys",
    ],
)
def test_load_program_refuses_a_changed_manifest(saved, tmp_path, change, message):
    with pytest.raises(LoadError, match=message):
        accel.graph.load_program(rewrite(tmp_path, with_manifest(saved, change)))


def test_load_program_refuses_pickled_constants_and_mismatched_modules(saved, tmp_path):
    manifest = json.loads(saved["manifest.json"])
    member = next(iter(manifest["constant_files"].values()))
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LoadError, match="is not a .npy array"):
        accel.graph.load_program(rewrite(tmp_path, {**saved, member: buffer.getvalue()}))
    swapped = {**saved, "modules/0.json": saved["modules/1.json"]}
    with pytest.raises(LoadError, match=r"modules/0.json takes"):
        accel.graph.load_program(rewrite(tmp_path, swapped))
    broken = {**saved, "modules/2.json": b"{"}
    with pytest.raises(LoadError, match="modules/2.json"):
        accel.graph.load_program(rewrite(tmp_path, broken))
    missing = {k: v for k, v in saved.items() if k != "modules/3.json"}
    with pytest.raises(LoadError, match="has no modules/3.json"):
        accel.graph.load_program(rewrite(tmp_path, missing))


def test_save_into_a_missing_folder_is_a_save_error(digits, tmp_path):
    with pytest.raises(SaveError, match="cannot write the program"):
        digits[1].save(tmp_path / "no" / "such" / "dir" / "p.accel")


@pytest.mark.parametrize(
    "change",
    [
        {"LOG_BATCH": 1},
        {"LOG_BLOCK": 3, "LOG_INP_BUFF_SIZE": 14, "LOG_WGT_BUFF_SIZE": 16, "LOG_ACC_BUFF_SIZE": 16},
    ],
    ids=["batch2", "block8"],
)
def test_other_configurations_pad_batch_and_channels_to_their_blocks(split, digits, change):
    """build(..., env=...) packs for that configuration (batch 1 padded to BATCH 2, channels to
    blocks of 8), and the program still equals the integer reference."""
    _, _, x_test, _ = split
    qg, _ = digits
    env = accel.Environment.from_dict({**accel.get_env().to_dict(), **change})
    prog = accel.graph.build(qg, env=env)
    assert prog.env == env
    assert prog.packed.layouts["input.q"].packed == (
        1,
        1,
        8,
        8,
        env.BATCH,
        env.BLOCK_IN,
    )
    for i in range(5):
        x = x_test[i : i + 1]
        np.testing.assert_array_equal(prog.run(x), qg.run(x))
