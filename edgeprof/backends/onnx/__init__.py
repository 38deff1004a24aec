"""ONNX export of the PyTorch build of a model (export.py), cached by content; the ONNX Runtime and TensorRT
backends run its files."""
from .export import DEFAULT_OPSET, ExportError, OnnxModel, export_onnx

__all__ = ["DEFAULT_OPSET", "ExportError", "OnnxModel", "export_onnx"]
