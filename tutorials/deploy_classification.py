"""Deploy a quantized classifier: an ONNX model, from import to every held-out image run on the
simulated accelerator.

The model is the repository's digits CNN (models/digits: two convolutions, max pooling, a
residual block and a dense head, trained on scikit-learn's 8x8 handwritten digits). The steps
are the classic ones of a deployment: import, quantize with calibration, pack (partition
between accelerator and host, fuse, lay out), build, run, and check against onnxruntime and
against the integer reference executor, which the accelerator must match bit for bit.
Run: python tutorials/deploy_classification.py
"""

import pathlib
import sys
import tempfile

import numpy as np
import onnxruntime as ort

import accel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository's models
from models.digits.data import FLOAT_MODEL, load_split  # noqa: E402

env = accel.get_env()
print(f"configuration: {env.name}")
x_train, y_train, x_test, y_test = load_split()
print(f"digits: {len(x_train)} training and {len(x_test)} held-out images of 8x8")

# 1. Import. The model has a symbolic batch dimension; fix it at 1, one image an inference.
graph = accel.frontend.from_onnx(FLOAT_MODEL, shape={"input": (1, 1, 8, 8)})
print(f"--- imported: {len(graph.nx)} nodes ---")
print(", ".join(n.op for n in graph.nodes_in_order()))

# 2. Quantize: scales from 100 training images (max |x| / 127 per tensor), int8 weights, int32
# biases, every rescaling as ALU integer steps. The report says how closely each 16-bit
# multiplier and shift approximate the real scale.
calibration = [x_train[i : i + 1] for i in range(100)]
qgraph = accel.graph.quantize(graph, calibration=calibration)
print("--- quantized ---")
print(qgraph.report())

# 3. Pack: which nodes run where, fused into which accelerator operators, and why.
packed = accel.graph.pack(qgraph, env)
print("--- packed ---")
print(packed.report())

# 4. Build every accelerator step once; save the program and load it back (a zip of JSON and
# .npy files: no code, no pickles, checked completely when loaded).
program = accel.graph.build(packed)
with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "digits.accel"
    program.save(path)
    program = accel.graph.load_program(path)
print(f"--- built: {program!r} ---")

# 5. Run every held-out image on the simulator, and the integer reference executor beside it.
predicted, same = [], 0
for i in range(len(x_test)):
    x = x_test[i : i + 1]
    logits = program.run(x)
    same += np.array_equal(logits, qgraph.run(x))
    predicted.append(int(np.argmax(logits)))
predicted = np.array(predicted)

# 6. Check. onnxruntime runs the float model on all images at once.
session = ort.InferenceSession(str(FLOAT_MODEL), providers=["CPUExecutionProvider"])
float_predicted = np.argmax(session.run(None, {"input": x_test})[0], axis=1)
float_accuracy = np.mean(float_predicted == y_test)
int8_accuracy = np.mean(predicted == y_test)
print("--- results ---")
print(f"float model (onnxruntime): accuracy {float_accuracy:.2%}")
print(f"int8 on the simulated accelerator: accuracy {int8_accuracy:.2%}")
print(f"top-1 agreement with onnxruntime: {np.mean(predicted == float_predicted):.2%}")
print(f"logits equal to the integer reference bit for bit on {same} of {len(x_test)} images")
assert same == len(x_test), "the accelerator differs from the integer reference"
assert abs(int8_accuracy - float_accuracy) <= 0.01
print("the simulated accelerator matches numpy (the integer reference executor) bit for bit")

# 7. Where the time goes: one inference per step, in simulated cycles (host milliseconds vary
# from run to run, so this table leaves them out; `print(program.profile())` shows them).
print("--- profile of one inference ---")
print(program.profile().table(host_times=False))
metrics = program.metrics
print(
    f"weights on the device: {metrics['weight_bytes']:,} bytes; instructions: "
    f"{metrics['instructions']['total']:,}; DRAM bytes loaded "
    f"{sum(v for k, v in metrics['dram_bytes'].items() if k != 'out'):,}, stored "
    f"{metrics['dram_bytes']['out']:,}"
)
print(f"{program.compute_duration_us():.1f} us per image at {env.CLOCK_MHZ} MHz")
