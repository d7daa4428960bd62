"""The 8x8 digits data set (scikit-learn's bundled copy of the UCI handwritten digits) and the
fixed train/test split every digits model, test and tutorial uses.

The split is reproducible from scikit-learn alone: 1 797 images, 25 % held out, stratified by
label, ``random_state=0`` (1 347 training and 450 test images). Pixel values 0..16 are scaled
to [0, 1] and shaped NCHW ``(n, 1, 8, 8)`` float32; labels are int64 class indices 0..9.
"""

from __future__ import annotations

import pathlib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = pathlib.Path(__file__).resolve().parent
FLOAT_MODEL = HERE / "digits_cnn.onnx"
QDQ_MODEL = HERE / "digits_cnn_qdq.onnx"
INPUT_NAME = "input"
INPUT_SHAPE = (1, 1, 8, 8)

TEST_SIZE = 0.25
SPLIT_SEED = 0
PIXEL_MAX = 16.0


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)``: float32 ``(n, 1, 8, 8)`` images in
    [0, 1] and int64 labels, always the same split."""
    digits = load_digits()
    x = (digits.images / PIXEL_MAX).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    return x_train, y_train, x_test, y_test
