"""Tests of shape propagation and parameter/MAC counts (edgeprof.models.stats).

Expected params, blob shapes and layer counts of the fixtures were printed by pycaffe (Debian bullseye's
Caffe 1.0.0+git20180821, python3-caffe) with `caffe.Net(path, caffe.TEST)`: params as
`sum(b.data.size for v in net.params.values() for b in v)`, shapes from `net.blobs`, layers as
`len(net.layers)` less the Input layer and the Split layers Caffe inserts itself. Expected MACs were
cross-checked the same way: sum over Convolution layers of weight-blob size x output positions, plus
InnerProduct weight-blob sizes, at batch 1.
"""
from pathlib import Path

import pytest

from edgeprof.models.prototxt import PrototxtError, parse
from edgeprof.models.stats import analyze

DATA = Path(__file__).parent / "data"


def stats_of(name: str):
    return analyze(parse((DATA / f"{name}.prototxt").read_text(), name))


def net(body: str, shape: str = "dim: 1 dim: 3 dim: 32 dim: 32"):
    return analyze(parse(f'input: "data"\ninput_shape {{ {shape} }}\n{body}', "net.prototxt"))


def test_shape_rules_match_pycaffe():
    stats = stats_of("shapes")
    # pycaffe, batch 2 as declared: 1556 params, layer shapes below.
    assert stats.params == 1556
    assert stats.blob_shapes == {
        "a": (2, 8, 17, 23), "b": (2, 8, 17, 23), "sum": (2, 8, 17, 23),
        "rect": (2, 12, 9, 23),  # kernel_h/w, stride_h/w, pad_h/w, group 4
        "dil": (2, 6, 5, 19),  # dilation 2
        "norm": (2, 6, 5, 19),
        "ceil": (2, 6, 3, 10),  # Caffe rounds up: ceil((5-2)/2)+1 = 3, ceil((19-2)/2)+1 = 10
        "floor": (2, 6, 2, 9),  # round_mode: FLOOR
        "guard": (2, 6, 3, 10),  # pad 1: ceil gives 4 x 11, Caffe drops the window that starts in the padding
        "global": (2, 6, 1, 1),
        "s1": (2, 6, 3, 10), "s2": (2, 6, 3, 10),
        "cat": (2, 6, 3, 20),  # concat axis 3
        "flat": (2, 6, 60),  # flatten from axis 2
        "fc": (2, 6, 7),  # InnerProduct axis 2
        "mul": (2, 6, 7), "prob": (2, 6, 7),
    }
    # train_only (include TRAIN) and not_test (exclude TEST) are not in the TEST net; pycaffe builds 22
    # layers = Input + 20 + one inserted Split.
    assert stats.layers == 20
    assert stats.complete and stats.unknown_layers == ()
    # rect 12*9*23 outputs x 2*3*5 + dil 6*5*19 x 12*3*3 + fc (batch 1: 6 rows) 6*7 x 60
    assert stats.macs == 2484 * 30 + 570 * 108 + 42 * 60 == 138600
    assert stats.input_shape == (2, 8, 17, 23)


def test_batch_shaped_params_are_counted_at_the_declared_batch():
    # The two-bottom Scale's bias has the second bottom's shape, batch axis included: pycaffe counts
    # (2, 6, 7) = 84 of the 1556 at the declared batch 2.
    one = analyze(parse((DATA / "shapes.prototxt").read_text().replace("dim: 2 dim: 8", "dim: 1 dim: 8")))
    assert stats_of("shapes").params - one.params == 84 - 42
    assert one.macs == stats_of("shapes").macs


def test_legacy_v1_layers():
    stats = stats_of("lenet_v1")
    assert stats.params == 431080  # pycaffe
    assert stats.blob_shapes["pool2"] == (64, 50, 4, 4)
    assert stats.blob_shapes["ip2"] == (64, 10)
    assert stats.layers == 8
    # conv1 20*24*24 x 25 + conv2 50*8*8 x 500 + ip1 800*500 + ip2 500*10
    assert stats.macs == 288000 + 1600000 + 400000 + 5000


def test_unknown_layer_types_give_partial_counts():
    stats = stats_of("detection_unknown_layers")
    # SSD's layers have shape rules; the Python proposal layer cannot have one (its code is the user's).
    assert stats.unknown_layers == ("Python",) and stats.unknown_where == {"Python": (1, 53)}
    assert not stats.complete
    assert stats.layers == 9
    # Counted: conv1 (16*27+16), conv1_mbox_loc (16*144+16) and the InnerProduct head on conv1
    # (16*150*150*4+4); Permute, Flatten, PriorBox and DetectionOutput learn nothing.
    assert stats.params == 448 + 2320 + 1440004
    assert stats.macs == 16 * 22500 * 27 + 16 * 22500 * 144 + 360000 * 4
    # 150 x 150 positions x (1 + 1 + 2) priors x 4 coordinates
    assert stats.blob_shapes["conv1_mbox_loc_flat"] == (1, 150 * 150 * 16)
    assert stats.blob_shapes["conv1_mbox_priorbox"] == (1, 2, 150 * 150 * 4 * 4)
    assert "rois" not in stats.blob_shapes


def test_without_input_nothing_propagates():
    stats = analyze(parse('layer { name: "d" type: "Data" top: "data" }\n'
                          'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                          "convolution_param { num_output: 4 kernel_size: 3 } }\n"))
    assert (stats.input_shape, stats.params, stats.macs, stats.layers) == (None, 0, 0, 2)
    assert stats.unknown_layers == ("Data",) and not stats.complete


def test_in_place_unknown_layer_makes_its_blob_unknown():
    stats = net('layer { name: "p" type: "MyForkLayer" bottom: "data" top: "data" }\n'
                'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"'
                " inner_product_param { num_output: 2 } }\n")
    assert stats.unknown_layers == ("MyForkLayer",)
    assert stats.params == 0 and stats.blob_shapes == {}


def test_batch_norm_counts_three_blobs_and_scale_two():
    stats = net('layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" }\n'
                'layer { name: "s" type: "Scale" bottom: "data" top: "data" scale_param { bias_term: true } }\n'
                'layer { name: "s2" type: "Scale" bottom: "data" top: "data" }\n')
    assert stats.params == (2 * 3 + 1) + 2 * 3 + 3


def test_convolution_without_bias():
    stats = net('layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                "  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 bias_term: false } }\n")
    assert stats.blob_shapes["c"] == (1, 8, 16, 16)
    assert stats.params == 8 * 3 * 9
    assert stats.macs == 8 * 16 * 16 * 27


@pytest.mark.parametrize("body, line, message", [
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { kernel_size: 3 } }',
     3, "layer 'c' (Convolution): num_output is required"),
    ('\nlayer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 } }',
     4, "layer 'c' (Convolution): kernel_size, stride and dilation must be positive (kernel_size is required)"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
     "convolution_param { num_output: 2 kernel_size: 40 } }",
     3, "layer 'c' (Convolution): kernel 40 stride 1 pad 0 on size 32 gives no output"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
     "convolution_param { num_output: 4 kernel_size: 1 group: 2 } }",
     3, "layer 'c' (Convolution): group 2 must divide both 3 input and 4 output channels"),
    ('layer { name: "c" type: "Convolution" top: "c" convolution_param { num_output: 2 kernel_size: 1 } }',
     3, "layer 'c' (Convolution): needs a bottom blob"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p"'
     " pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
     'layer { name: "e" type: "Eltwise" bottom: "data" bottom: "p" top: "e" }',
     4, "layer 'e' (Eltwise): bottom shapes (1, 3, 32, 32) and (1, 3, 16, 16) differ"),
])
def test_layers_caffe_would_refuse_are_located(body, line, message):
    with pytest.raises(PrototxtError) as info:
        net(body)
    assert (info.value.path, info.value.line, info.value.column) == ("net.prototxt", line, 1)
    assert info.value.message == message
