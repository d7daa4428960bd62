"""Train the digits CNN and export it to ONNX as ``models/digits/digits_cnn.onnx``.

Run from the repository root (PyTorch is a development tool only: nothing in ``accel/`` or the
tests imports it)::

    python -m models.digits.train            # about ten seconds on one core

The network (input ``1x8x8`` in [0, 1], 28 k parameters)::

    conv 3x3 1->16 + BN + ReLU                     8x8
    conv 3x3 16->32 + BN + ReLU                    8x8
    max pool 2x2                                   4x4
    residual block: conv 3x3 32->32 + BN + ReLU,
                    conv 3x3 32->32 + BN, + input, ReLU
    flatten (512) -> Gemm to 10 logits

Training is deterministic (fixed seed, one thread, deterministic kernels) on the split of
:func:`models.digits.data.load_split`. The export keeps the BatchNormalization nodes (the
importer folds them) and a dynamic batch dimension; the test accuracy is printed and stored in
the model's ``metadata_props`` (``test_accuracy``).
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import onnx
import torch
from torch import nn

from models.digits.data import FLOAT_MODEL, INPUT_NAME, load_split

SEED = 0
EPOCHS = 40
BATCH = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
OPSET = 13
OUTPUT_NAME = "logits"


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """A 3x3, stride-1, same-padded convolution followed by BatchNorm (no ReLU)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))


class ResidualBlock(nn.Module):
    """Two conv+BN layers whose output is added to the block's input, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv_bn(channels, channels)
        self.conv2 = conv_bn(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(y + x)


class DigitsCNN(nn.Module):
    """The digits classifier described in the module docstring."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 16),
            nn.ReLU(),
            conv_bn(16, 32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            ResidualBlock(32),
        )
        self.head = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def train(x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS) -> DigitsCNN:
    """Train a fresh :class:`DigitsCNN` on ``x``/``y`` with Adam and a cosine learning rate."""
    torch.manual_seed(SEED)
    model = DigitsCNN()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps = epochs * ((len(xs) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        total = 0.0
        for start in range(0, len(xs), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(xs[batch]), ys[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}: training loss {total / len(xs):.4f}")
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``x``/``y``."""
    with torch.no_grad():
        predicted = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((predicted == y).mean())


def export(model: DigitsCNN, path: pathlib.Path, metadata: dict[str, str]) -> None:
    """Write ``model`` as ONNX (opset 13, input "input" with a dynamic batch, BatchNorm kept)."""
    dummy = torch.zeros(1, 1, 8, 8)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        dynamo=False,  # the TorchScript exporter: the torch.export one needs onnxscript
        opset_version=OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        # PRESERVE keeps the model's (eval) mode but skips the exporter's own Conv+BN fusion,
        # so the file has the BatchNormalization nodes a framework export usually has; there is
        # nothing else to fold.
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )
    proto = onnx.load(str(path))
    proto.graph.name = "digits_cnn"
    proto.doc_string = "8x8 digits CNN trained by models/digits/train.py"
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=FLOAT_MODEL)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = load_split()
    model = train(x_train, y_train, args.epochs)
    train_acc = accuracy(model, x_train, y_train)
    test_acc = accuracy(model, x_test, y_test)
    print(f"train accuracy {train_acc:.4f} ({len(y_train)} images)")
    print(f"test accuracy  {test_acc:.4f} ({len(y_test)} images)")
    export(model, args.out, {"test_accuracy": f"{test_acc:.4f}", "seed": str(SEED)})
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
