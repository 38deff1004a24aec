"""ONNX Runtime backend: the PyTorch build exported to ONNX on the host, timed in ONNX Runtime on the board."""
