"""Tests of the model catalog (edgeprof.models.catalog) and the figures of its four nets.

Where the expected numbers come from:
- params: AlexNet 60,965,224 and VGG16 138,357,544 are the published counts of BVLC AlexNet and VGG16 (D);
  GoogLeNet 6,998,552 and ResNet-50 25,610,269 are what pycaffe printed for our prototxts (Debian
  bullseye's Caffe 1.0.0+git20180821, `sum(b.data.size for v in net.params.values() for b in v)`), which
  also printed the AlexNet and VGG16 figures. ResNet-50's Caffe count is torchvision's 25,557,032 plus
  conv1's bias (64) and, per BatchNorm, running mean and variance (53,120 together) and the 1-element
  scale factor (53 layers).
- MACs: each equals the figure derived from pycaffe (weight-blob size x output positions for every
  Convolution, weight-blob size for every InnerProduct, batch 1), and agrees with the published ones:
  AlexNet 0.72 G (conv2/4/5 in 2 groups), VGG16 15.47 G, ResNet-50 3.86 G (the paper's "3.8 x 10^9
  FLOPs" are multiply-adds; stride 2 sits in the first 1x1 of a stage, so torchvision's v1.5 reads
  4.1 G), GoogLeNet 1.58 G (the paper gives about 1.5 G multiply-adds).
- layers: pycaffe's len(net.layers) less its Input layer and the Split layers it inserts.
"""
import hashlib
from importlib import resources
from pathlib import Path

import pytest

from edgeprof.models.catalog import ModelSource, UnknownModel, catalog_names, describe, resolve
from edgeprof.models.prototxt import PrototxtError, inputs, parse

FIGURES = {
    # name: (input shape as declared, params, MACs per image, layers)
    "alexnet": ([10, 3, 227, 227], 60_965_224, 724_406_816, 23),
    "googlenet": ([10, 3, 224, 224], 6_998_552, 1_582_671_872, 142),
    "resnet50": ([1, 3, 224, 224], 25_610_269, 3_857_973_248, 228),
    "vgg16": ([10, 3, 224, 224], 138_357_544, 15_470_264_320, 39),
}


def test_catalog_names():
    assert catalog_names() == ["alexnet", "googlenet", "resnet50", "vgg16"]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_describe_catalog_models(name):
    shape, params, macs, layers = FIGURES[name]
    source = resolve(name)
    assert describe(source) == {
        "name": name,
        "path": source.path,
        "catalog": True,
        "sha256": source.sha256,
        "input_shape": shape,
        "params": params,
        "macs": macs,
        "layers": layers,
        "complete": True,
        "unknown_layers": [],
        "uncounted": [],
    }


def test_published_macs_agree():
    assert round(FIGURES["alexnet"][2] / 1e9, 2) == 0.72
    assert round(FIGURES["vgg16"][2] / 1e9, 2) == 15.47
    assert round(FIGURES["resnet50"][2] / 1e9, 2) == 3.86


@pytest.mark.parametrize("name, marks", [
    ("alexnet", ["Krizhevsky", "group", "LRN"]),
    ("googlenet", ["Going Deeper with Convolutions", "ceil"]),
    ("vgg16", ["Very Deep Convolutional Networks"]),
    ("resnet50", ["Deep Residual Learning", "use_global_stats"]),
])
def test_catalog_files_name_their_reference_and_author(name, marks):
    header = "".join(line for line in resolve(name).text.splitlines(keepends=True) if line.startswith("#"))
    assert "Written by edgeprof" in header
    for mark in marks:
        assert mark in header


def test_catalog_nets_have_their_published_structure():
    alexnet = resolve("alexnet").text
    assert "input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } }" in alexnet
    assert alexnet.count("group: 2") == 3 and alexnet.count('type: "LRN"') == 2
    googlenet = parse(resolve("googlenet").text)
    names = [layer.get("name") for layer in googlenet.messages("layer")]
    assert {"inception_3a/1x1", "inception_5b/output", "loss3/classifier", "prob"} <= set(names)
    resnet = resolve("resnet50").text
    assert resnet.count('type: "BatchNorm"') == resnet.count('type: "Scale"') == 53
    assert resnet.count("bias_term: false") == 52  # every convolution but conv1
    assert inputs(parse(resnet))[0].style == "input_dim"


def test_resolve_catalog_model():
    source = resolve("vgg16")
    assert isinstance(source, ModelSource)
    assert (source.name, source.catalog) == ("vgg16", True)
    assert source.path.endswith("vgg16.prototxt")
    assert source.sha256 == hashlib.sha256(source.text.encode("utf-8")).hexdigest()


def test_resolve_path(tmp_path):
    path = tmp_path / "mine.prototxt"
    path.write_text(resolve("alexnet").text.replace("dim: 10", "dim: 3", 1), encoding="utf-8")
    source = resolve(str(path))
    assert (source.name, source.path, source.catalog) == ("mine", str(path), False)
    assert describe(source)["input_shape"] == [3, 3, 227, 227]


def test_a_path_shadows_nothing_in_the_catalog(tmp_path, monkeypatch):
    # A file named like a catalog model in the working directory is not what the bare name means.
    monkeypatch.chdir(tmp_path)
    Path("alexnet").write_text("garbage")
    assert resolve("alexnet").catalog


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModel) as info:
        resolve("alexnt")
    text = str(info.value)
    assert "'alexnt'" in text and "Did you mean alexnet?" in text and ".prototxt" in text
    assert isinstance(info.value, LookupError)
    with pytest.raises(UnknownModel, match="Did you mean resnet50"):
        resolve("ResNet-50")


@pytest.mark.parametrize("name", ["alexnet; rm -rf /", "$(touch pwned)", "`id`", "vgg16 | cat", "../vgg16"])
def test_shell_metacharacters_are_just_unknown(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownModel) as info:
        resolve(name)
    assert repr(name) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_or_non_prototxt_paths(tmp_path):
    with pytest.raises(UnknownModel, match=r"\(no such file\)"):
        resolve(str(tmp_path / "absent.prototxt"))
    weights = tmp_path / "net.caffemodel"
    weights.write_bytes(b"\x00\x01")
    with pytest.raises(UnknownModel, match="A path to a .prototxt file also works"):
        resolve(str(weights))


def test_non_utf8_file_is_located(tmp_path):
    path = tmp_path / "latin1.prototxt"
    path.write_bytes(b'name: "net"\n# caf\xe9\n')
    with pytest.raises(PrototxtError) as info:
        resolve(str(path))
    assert str(info.value) == f"{path}:2:6: not UTF-8 text"


def test_describe_reports_partial_counts():
    data = Path(__file__).parent / "data" / "detection_unknown_layers.prototxt"
    summary = describe(resolve(str(data)))
    assert summary["complete"] is False
    assert summary["unknown_layers"] == ["Python"]


def test_catalog_reads_the_package_data():
    assert resolve("alexnet").path == str(resources.files("edgeprof.prototxts").joinpath("alexnet.prototxt"))


def test_per_layer_counts_add_up_to_the_net_and_say_where_counting_stopped():
    whole = describe(resolve("alexnet"), per_layer=True)
    rows = whole["per_layer"]
    assert sum(r["macs"] for r in rows) == whole["macs"] and sum(r["params"] for r in rows) == whole["params"]
    assert sum(r["macs_share"] for r in rows) == pytest.approx(1.0)
    assert rows[0]["name"] == "conv1" and rows[0]["output_shape"] == [1, 96, 55, 55] and rows[0]["line"] > 0
    partial = describe(resolve(str(Path(__file__).parent / "data" / "detection_unknown_layers.prototxt")))
    assert partial["uncounted"][0] == {"type": "Python", "count": 1, "first_line": 53}
