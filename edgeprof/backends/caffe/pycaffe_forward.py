#!/usr/bin/env python3
"""pycaffe side of `edgeprof check` (Python 3.6+, runs wherever pycaffe and numpy are; uploaded, never installed).

    python3 pycaffe_forward.py DEPLOY.prototxt WEIGHTS INPUT OUTPUT [BLOB ...]

WEIGHTS and INPUT are edgeprof tensor files (weights as {"name": layer, "blob": index}, inputs by blob
name). The TEST-phase net runs once on the CPU; OUTPUT gets its outputs (net.outputs order), then the
extra BLOBs, in the same format (described in edgeprof/backends/pytorch/board_runner.py).
"""
import json
import sys

import numpy as np

import caffe


def read(path):
    with open(path, "rb") as f:
        header = json.loads(f.readline().decode("utf-8"))
        data = f.read()
    return [(e, np.frombuffer(data, "<f4", int(np.prod(e["shape"])), e["offset"]).reshape(e["shape"]))
            for e in header["tensors"]]


def write(path, named):
    arrays = [np.ascontiguousarray(a, dtype="<f4") for _, a in named]
    entries, offset = [], 0
    for (name, _), a in zip(named, arrays):
        entries.append({"name": name, "shape": list(a.shape), "offset": offset})
        offset += a.nbytes
    header = json.dumps({"format": "edgeprof-tensors", "version": 1, "dtype": "float32-le",
                         "tensors": entries}).encode("utf-8")
    header += b" " * (-(len(header) + 1) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(header)
        for a in arrays:
            f.write(a.tobytes())


def main(deploy, weights, inputs, output, *extra):
    caffe.set_mode_cpu()
    net = caffe.Net(deploy, caffe.TEST)
    for entry, array in read(weights):
        blob = net.params[entry["name"]][entry["blob"]]
        blob.data[...] = array.reshape(blob.data.shape)
    for entry, array in read(inputs):
        net.blobs[entry["name"]].reshape(*array.shape)
        net.blobs[entry["name"]].data[...] = array
    net.forward()
    write(output, [(name, net.blobs[name].data) for name in list(net.outputs) + list(extra)])


if __name__ == "__main__":
    main(*sys.argv[1:])
