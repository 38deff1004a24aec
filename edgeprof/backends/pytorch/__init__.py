"""PyTorch backend: the Caffe network rebuilt in PyTorch from the same prototxt, timed on the board."""
