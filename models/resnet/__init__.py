"""ResNet-18-shaped networks with random weights, built with ``onnx.helper``."""
