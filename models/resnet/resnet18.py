"""A ResNet-18-shaped ONNX model with random weights, written with ``onnx.helper``.

The layer sequence is torchvision's ``resnet18`` (He et al., 2016), with the channel counts
scaled by ``width / 64``::

    conv 7x7/2 (width) + BN + ReLU, max pool 3x3/2
    4 stages of 2 basic blocks, width x (1, 2, 4, 8) channels; the first block of stages 2-4
      has stride 2 and a 1x1/2 conv + BN shortcut
      basic block: conv 3x3 + BN + ReLU, conv 3x3 + BN, + shortcut, ReLU
    global average pool, flatten, Gemm to num_classes

Weights are He-initialized (normal, standard deviation ``sqrt(2 / fan_in)``) from ``seed``.
Each BatchNormalization has gamma ~ 1 and beta ~ 0 (with noise of standard deviation 0.1) and
running statistics as training leaves them: the per-channel mean and variance of the
activations that reach it, measured on a few smooth random images
(:func:`calibration_images`) while the model is built, with the same 10 % noise. Running
statistics drawn blindly (mean 0, variance 1) do not normalize: the post-ReLU means pile up
through the residual additions, activations grow about 20-fold by the last stage and the
logits of different images become 99.9 % correlated (one class for every input). The Gemm's
bias centres the logits on the same images, and its weights give them a standard deviation
of a few units. So every activation keeps a standard deviation of about 0.5 to 1.2 through the
network, and different images get different classes. Tensor names follow torchvision's
(``layer2.0.downsample.0.weight``, ...).

    python -m models.resnet.resnet18 resnet18.onnx                       # full size, 47 MB
    python -m models.resnet.resnet18 small.onnx --hw 32 --width 16 --classes 10
"""

from __future__ import annotations

import argparse
import pathlib
from typing import NamedTuple

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 13
IR_VERSION = 8  # the IR of opset 13..17 (onnx 1.10-1.12): readable by older onnxruntimes too
STAGE_CHANNELS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2
BN_EPSILON = 1e-5
BN_NOISE = 0.1
# BatchNorm statistics come from at least this many values per channel at the last stage
# (whose maps are (input_hw / 32)^2 pixels), and from two images at least: 2 images at
# 224x224, 64 at 32x32.
CALIBRATION_VALUES = 64
LOGIT_STD = 2.0


class Value(NamedTuple):
    """An ONNX tensor name and its value on the calibration images."""

    name: str
    data: np.ndarray


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Cross-correlation of NCHW ``x`` with OIHW ``w`` (square kernel), as im2col + matmul."""
    k = w.shape[-1]
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def _max_pool(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride].max((4, 5))


class _Builder:
    """Collects nodes and initializers while computing every tensor on a calibration batch.

    Each helper takes and returns :class:`Value` pairs. The values exist only to give the
    BatchNormalization nodes running statistics that match the activations that reach them,
    as training leaves them.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, name: str, inputs: list[str], data: np.ndarray, **attrs) -> Value:
        output = f"{name}_output"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return Value(output, data.astype(np.float32))

    def noise(self, n: int) -> np.ndarray:
        return self.rng.normal(0.0, BN_NOISE, n)

    def conv(self, name: str, x: Value, c_out: int, kernel: int, stride: int) -> Value:
        c_in = x.data.shape[1]
        w = self.rng.normal(
            0.0, np.sqrt(2.0 / (c_in * kernel * kernel)), (c_out, c_in, kernel, kernel)
        )
        w = w.astype(np.float32)
        pad = kernel // 2
        return self.node(
            "Conv",
            name,
            [x.name, self.constant(f"{name}.weight", w)],
            _conv(x.data, w, stride, pad),
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
        )

    def batch_norm(self, name: str, x: Value) -> Value:
        channels = x.data.shape[1]
        mean = x.data.mean((0, 2, 3)) + self.noise(channels) * x.data.std((0, 2, 3))
        var = x.data.var((0, 2, 3)) * np.exp(self.noise(channels))
        gamma, beta = 1.0 + self.noise(channels), self.noise(channels)
        scale = gamma / np.sqrt(var + BN_EPSILON)
        data = (x.data - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]
        params = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var}
        inputs = [x.name] + [self.constant(f"{name}.{key}", p) for key, p in params.items()]
        return self.node("BatchNormalization", name, inputs, data, epsilon=BN_EPSILON)

    def relu(self, name: str, x: Value) -> Value:
        return self.node("Relu", name, [x.name], np.maximum(x.data, 0))

    def conv_bn(self, name: str, bn_name: str, x: Value, c_out: int, k: int, s: int) -> Value:
        return self.batch_norm(bn_name, self.conv(name, x, c_out, k, s))

    def basic_block(self, name: str, x: Value, c_out: int, stride: int) -> Value:
        y = self.conv_bn(f"{name}.conv1", f"{name}.bn1", x, c_out, 3, stride)
        y = self.relu(f"{name}.relu1", y)
        y = self.conv_bn(f"{name}.conv2", f"{name}.bn2", y, c_out, 3, 1)
        shortcut = x
        if stride != 1 or x.data.shape[1] != c_out:
            shortcut = self.conv_bn(
                f"{name}.downsample.0", f"{name}.downsample.1", x, c_out, 1, stride
            )
        y = self.node("Add", f"{name}.add", [y.name, shortcut.name], y.data + shortcut.data)
        return self.relu(f"{name}.relu2", y)


def calibration_images(n: int, hw: int, seed: int) -> np.ndarray:
    """``n`` smooth random RGB images ``(n, 3, hw, hw)``, roughly zero-mean and unit-variance:
    Gaussian noise at an eighth of the resolution, upsampled, plus per-image brightness and
    per-pixel grain (what a normalized natural image looks like to a first approximation)."""
    rng = np.random.default_rng(seed)
    low = rng.normal(0.0, 1.0, (n, 3, -(-hw // 8), -(-hw // 8)))
    images = low.repeat(8, axis=2).repeat(8, axis=3)[:, :, :hw, :hw]
    images += rng.normal(0.0, 0.5, (n, 1, 1, 1)) + rng.normal(0.0, 0.25, (n, 3, hw, hw))
    return images.astype(np.float32)


def make_resnet18(
    input_hw: int = 224,
    width: int = 64,
    num_classes: int = 1000,
    seed: int = 0,
    batch: int | None = 1,
) -> onnx.ModelProto:
    """Build a ResNet-18-shaped model for ``(batch, 3, input_hw, input_hw)`` float32 images.

    ``width`` is the first stage's channel count (64 in ResNet-18; the stages have width x
    1, 2, 4, 8). ``batch=None`` declares a symbolic batch dimension. The input is "input" and
    the output "logits" ``(batch, num_classes)``. Raises ``ValueError`` for a width that is
    not a positive multiple of 8 (so every stage scales exactly) or an input smaller than 32
    (the stride of the network).
    """
    if width <= 0 or width % 8:
        raise ValueError(f"width must be a positive multiple of 8, got {width}")
    if input_hw < 32:
        raise ValueError(f"input_hw must be at least 32 (the network's stride), got {input_hw}")
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    channels = [c * width // 64 for c in STAGE_CHANNELS]

    n_images = max(2, -(-CALIBRATION_VALUES // (input_hw // 32) ** 2))
    x = Value(INPUT_NAME, calibration_images(n_images, input_hw, seed))
    x = b.relu("relu", b.conv_bn("conv1", "bn1", x, channels[0], 7, 2))
    x = b.node(
        "MaxPool",
        "maxpool",
        [x.name],
        _max_pool(x.data, 3, 2, 1),
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1] * 4,
    )
    for stage, c_out in enumerate(channels, start=1):
        for block in range(BLOCKS_PER_STAGE):
            stride = 2 if stage > 1 and block == 0 else 1
            x = b.basic_block(f"layer{stage}.{block}", x, c_out, stride)
    x = b.node("GlobalAveragePool", "avgpool", [x.name], x.data.mean((2, 3), keepdims=True))
    x = b.node("Flatten", "flatten", [x.name], x.data.reshape(len(x.data), -1), axis=1)
    c_in = x.data.shape[1]
    fc_w = rng.normal(0.0, np.sqrt(1.0 / c_in), (num_classes, c_in)).astype(np.float32)
    # Centre the logits on the calibration batch, as training balances the classes, and give
    # them a trained network's spread.
    logits = x.data @ fc_w.T
    logits -= logits.mean(0)
    fc_w *= LOGIT_STD / logits.std()
    fc_b = -(x.data @ fc_w.T).mean(0) + rng.normal(0.0, 0.01, num_classes)
    fc = helper.make_node(
        "Gemm",
        [x.name, b.constant("fc.weight", fc_w), b.constant("fc.bias", fc_b)],
        [OUTPUT_NAME],
        name="fc",
        transB=1,
    )
    b.nodes.append(fc)

    dim = batch if batch is not None else "batch"
    graph = helper.make_graph(
        b.nodes,
        f"resnet18_w{width}_{input_hw}",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, [dim, 3, input_hw, input_hw]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [dim, num_classes])],
        b.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="models/resnet/resnet18.py",
        ir_version=IR_VERSION,
    )
    helper.set_model_props(model, {"seed": str(seed), "width": str(width)})
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a ResNet-18-shaped ONNX model.")
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--hw", type=int, default=224, help="input height and width")
    parser.add_argument("--width", type=int, default=64, help="channels of the first stage")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = make_resnet18(args.hw, args.width, args.classes, args.seed)
    onnx.checker.check_model(model)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
