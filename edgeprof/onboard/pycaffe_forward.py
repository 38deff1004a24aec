#!/usr/bin/env python3
"""pycaffe side of `edgeprof check` (Python 3.6+, runs wherever pycaffe and numpy are; uploaded with the rest
of edgeprof/onboard/, never installed).

    python3 pycaffe_forward.py DEPLOY.prototxt WEIGHTS INPUT OUTPUT [BLOB ...]

WEIGHTS and INPUT are edgeprof tensor files (tensors.py; weights as {"name": layer, "blob": index}, inputs by
blob name). The TEST-phase net runs once on the CPU; OUTPUT gets its outputs (net.outputs order), then the
extra BLOBs, in the same format.
"""
import sys

import caffe

if __package__:
    from .tensors import read_arrays, write_arrays
else:
    from tensors import read_arrays, write_arrays


def main(deploy, weights, inputs, output, *extra):
    caffe.set_mode_cpu()
    net = caffe.Net(deploy, caffe.TEST)
    for entry, array in read_arrays(weights):
        blob = net.params[entry["name"]][entry["blob"]]
        blob.data[...] = array.reshape(blob.data.shape)
    for entry, array in read_arrays(inputs):
        net.blobs[entry["name"]].reshape(*array.shape)
        net.blobs[entry["name"]].data[...] = array
    net.forward()
    write_arrays(output, [({"name": name}, net.blobs[name].data) for name in list(net.outputs) + list(extra)])


if __name__ == "__main__":
    main(*sys.argv[1:])
