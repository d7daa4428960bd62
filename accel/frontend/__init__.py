"""Model importers: ``from_onnx`` turns an ONNX model into an :class:`accel.graph.Graph`."""

from accel.frontend.onnx_import import from_onnx

__all__ = ["from_onnx"]
