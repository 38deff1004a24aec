"""The corpus of real deploy prototxts (tests/models/corpus/, sources and figures in SOURCES.md): every file is
read, counted within 2 % of the figures its sources publish, rewritten to another batch without touching
anything else, and either built (netspec and the PyTorch CaffeNet) or refused naming what is missing.

Conventions of the published figures (SOURCES.md says which each one uses): papers' "FLOPs" or
"multiply-adds" and torchvision's "GFLOPS" are multiply-accumulates, edgeprof's MACs; Keras Applications
counts a batch norm's four per-channel values (scale, shift, mean, variance), which is Caffe's BatchNorm (mean,
variance and one factor) plus its Scale (scale, shift) within one value per layer; torchvision and the papers
leave the running mean and variance out, so edgeprof's count is above theirs by 2C + 1 per BatchNorm (under
1.2 % on these nets).
"""
import difflib
from pathlib import Path

import pytest

from edgeprof.models import analyze, parse
from edgeprof.models.netspec import UnsupportedLayer, netspec
from edgeprof.models.prototxt import inputs, set_batch

CORPUS = Path(__file__).parent / "corpus"

M, G = 1e6, 1e9
# file: (published parameters, published MACs per image at the file's input size), None where no source
# gives a figure for this file's net (SOURCES.md says which source each figure is from, and why one is absent).
PUBLISHED = {
    "densenet121_shicai": (8_062_504, 2.83 * G),
    "densenet169_shicai": (14_307_880, 3.36 * G),
    "densenet201_shicai": (20_242_984, 4.29 * G),
    "resnet50_kaiminghe": (25_636_712, 3.8 * G),
    "resnet101_kaiminghe": (44_707_176, 7.6 * G),
    "resnet152_kaiminghe": (60_419_944, 11.3 * G),
    "squeezenet_v1_0_forresti": (1_248_424, None),
    "squeezenet_v1_1_forresti": (1_235_496, None),
    "mobilenet_v1_shicai": (4_253_864, 569 * M),
    "mobilenet_v2_shicai": (3_538_984, None),
    "se_resnet50_hujie": (None, 3.87 * G),
    "se_bn_inception_hujie": (None, 2.04 * G),
    "enet_timosaemann": (0.37 * M, None),
    "segnet_driving_kendall": (29.5 * M, None),
    "dpn92_soeaver": (37.8 * M, 6.5 * G),
    "inception_v3_soeaver": (23_851_784, 5.71 * G),
    "inception_v4_soeaver": (None, None),
    "inception_resnet_v2_soeaver": (55_873_736, None),
    "xception_soeaver": (22_910_480, None),
    "resnext50_soeaver": (25.0 * M, 4.2 * G),
    "vgg16_soeaver": (138_357_544, 15.47 * G),
    "mobilenet_ssd_chuanqi305": (None, None),
    "mobilenet_ssd_merged_chuanqi305": (None, None),
    "enet_bn_timosaemann": (None, None),
    "faster_rcnn_vgg16_rbg": (None, None),
}
# Files whose Keras count is the same net's to the value: Keras keeps a batch norm in four per-channel values,
# Caffe in BatchNorm's mean, variance and one moving-average factor plus Scale's two, so edgeprof counts one
# more per BatchNorm layer and nothing else differs.
EXACT_KERAS = ("densenet121_shicai", "densenet169_shicai", "densenet201_shicai", "mobilenet_v1_shicai",
               "xception_soeaver", "vgg16_soeaver")
# Files the PyTorch backend refuses, with the end of the refusal: every type it lacks, counted, and the
# Python layer's module and class.
REFUSED = {
    "enet_bn_timosaemann": "all it cannot build here: Python x27 (first at line 216). The Python layer runs "
                           "spatial_dropout.SpatialDropoutLayer, code of your own that edgeprof cannot translate "
                           "(Faster R-CNN's proposal layer is one): measure the net up to the layer before it",
    "faster_rcnn_vgg16_rbg": "all it cannot build here: Python x1 (first at line 461), ROIPooling x1 (first at line "
                             "477). The Python layer runs rpn.proposal_layer.ProposalLayer, code of your own that "
                             "edgeprof cannot translate (Faster R-CNN's proposal layer is one): measure the net up "
                             "to the layer before it",
}


def test_the_corpus_is_the_table():
    assert sorted(p.stem for p in CORPUS.glob("*.prototxt")) == sorted(PUBLISHED)
    listed = (CORPUS / "SOURCES.md").read_text()
    assert all(f"`{name}.prototxt`" in listed for name in PUBLISHED)


def text_of(name: str) -> str:
    return (CORPUS / f"{name}.prototxt").read_text()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_the_published_figures(name):
    stats = analyze(parse(text_of(name), f"{name}.prototxt"))
    params, macs = PUBLISHED[name]
    assert stats.complete == (name not in REFUSED)
    if params is not None:
        assert stats.params == pytest.approx(params, rel=0.02)
    if macs is not None:
        assert stats.macs == pytest.approx(macs, rel=0.02)
    if name in EXACT_KERAS:
        assert stats.params == params + sum(layer.type == "BatchNorm" for layer in stats.per_layer)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
            if line[:1] in "+-"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_batch_rewrite_changes_the_batch_only(name):
    text = text_of(name)
    decls = inputs(parse(text))
    rewritten = set_batch(text, 7)
    # Line by line: only the lines holding a batch number change, each into itself with that number 7.
    lines = text.splitlines(keepends=True)
    expected = list(lines)
    for d in decls:
        span = d.dim_spans[0]
        line = expected[span.line - 1]
        start = span.column - 1
        end = start + (span.end - span.start)
        expected[span.line - 1] = line[:start] + "7" + line[end:]
    assert rewritten == "".join(expected)
    assert len(changed_lines(text, rewritten)) == 2 * len({d.dim_spans[0].line for d in decls})
    assert [list(d.dims) for d in inputs(parse(rewritten))] == [[7] + list(d.dims[1:]) for d in decls]
    assert set_batch(rewritten, decls[0].dims[0]) == text


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_file_is_built_or_refused_naming_what_is_missing(name):
    torch = pytest.importorskip("torch")
    from edgeprof.onboard.caffe_layers import CaffeNet
    msg = parse(set_batch(text_of(name), 1), f"{name}.prototxt")
    if name in REFUSED:
        with pytest.raises(UnsupportedLayer) as refused:
            netspec(msg)
        assert str(refused.value).endswith(REFUSED[name])
        return
    spec = netspec(msg)
    with torch.device("meta"):   # the modules and their weight shapes, without allocating the weights
        net = CaffeNet(spec)
    stats = analyze(msg)
    assert sum(b.numel() for _, blobs in net.named_blobs() for b in blobs) == stats.params
