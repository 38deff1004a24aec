"""The fork layers Debian's Caffe lacks (so `edgeprof check` cannot compare them with pycaffe), each against a
reference written here from the fork's published source, loop for loop, on a fixed input:

- BN: BNLayer::Forward_cpu of https://github.com/TimoSaemann/caffe-segnet-cudnn5 (commit a210a9e,
  src/caffe/layers/bn_layer.cpp), the SegNet/ENet fork.
- Upsample: UpsampleLayer::Forward_cpu of https://github.com/alexgkendall/caffe-segnet (commit 03d1e9f,
  src/caffe/layers/upsample_layer.cpp), fed by Caffe's MAX pooling mask (checked against pycaffe elsewhere).
- Permute, Normalize, PriorBox, DetectionOutput (with DecodeBBox, ApplyNMSFast and JaccardOverlap of
  src/caffe/util/bbox_util.cpp): https://github.com/weiliu89/caffe/tree/ssd (prior_box_layer.cpp at commit
  3b97386, detection_output_layer.cpp at 0f964fe), the SSD fork MobileNet-SSD was trained with.
- ShuffleChannel: ShuffleChannelLayer::Resize_cpu of https://github.com/farmingyard/ShuffleNet.
- Axpy: AxpyLayer::Forward_cpu of https://github.com/hujie-frank/SENet (src/caffe/layers/axpy_layer.cpp).
- ReLU6: min(max(x, 0), 6).
"""
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edgeprof.models import parse  # noqa: E402
from edgeprof.models.netspec import netspec  # noqa: E402
from edgeprof.onboard.caffe_layers import CaffeNet  # noqa: E402

CORPUS = Path(__file__).parent / "corpus"

FORK_NET = """name: "forks"
input: "data"
input_shape { dim: 2 dim: 6 dim: 6 dim: 8 }
layer { name: "bn_learn" type: "BN" bottom: "data" top: "bn_learn" }
layer { name: "bn_inf" type: "BN" bottom: "data" top: "bn_inf" bn_param { bn_mode: INFERENCE } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" top: "mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pool" bottom: "mask" top: "up" upsample_param { scale: 2 } }
layer { name: "perm" type: "Permute" bottom: "data" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "norm_across" type: "Normalize" bottom: "data" top: "norm_across" }
layer { name: "norm_pos" type: "Normalize" bottom: "data" top: "norm_pos"
  norm_param { across_spatial: false channel_shared: false eps: 0.001 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "shuffle" shuffle_channel_param { group: 3 } }
layer { name: "relu6" type: "ReLU6" bottom: "data" top: "relu6" }
layer { name: "squeeze" type: "Pooling" bottom: "data" top: "squeeze" pooling_param { pool: AVE global_pooling: true } }
layer { name: "axpy" type: "Axpy" bottom: "squeeze" bottom: "data" bottom: "relu6" top: "axpy" }
"""


def run(text: str, seed: int = 3, scale: float = 4.0, extra=()):
    """The net's outputs by name (and the `extra` blobs), its learned blobs by layer, and the input
    (standard normal x scale) of seeded random weights and input."""
    spec = netspec(parse(text, "t.prototxt"))
    net = CaffeNet(spec, list(extra))
    net.init_random(seed)
    x = torch.randn(spec["inputs"][0]["shape"], generator=torch.Generator().manual_seed(seed)) * scale
    with torch.no_grad():
        outputs = dict(zip(net.returns, net(x)))
    return outputs, {name: [b.detach() for b in blobs] for name, blobs in net.named_blobs()}, x


def close(ours, reference, tol=1e-5):
    """Each value within tol of the reference's (relative past 1); a reference value past float32's range
    (random weights make exp(width) overflow) must be the infinity float32 arithmetic gives."""
    ours = ours.flatten().tolist()
    assert len(ours) == len(reference)
    for index, (a, b) in enumerate(zip(ours, reference)):
        if abs(b) > 3.4028234663852886e38:
            assert a == math.copysign(math.inf, b), (index, a, b)
        else:
            assert abs(a - b) <= tol * max(1.0, abs(b)), (index, a, b)


def test_fork_layers_match_their_published_definitions():
    out, blobs, x = run(FORK_NET, extra=("pool", "mask", "relu6"))
    n, c, h, w = x.shape
    v = x.tolist()
    # BN: LEARN normalizes with the batch's statistics, var = E(x^2) - E(x)^2, eps 1e-9; then scale, shift.
    for name in ("bn_learn", "bn_inf"):
        scale, shift = [b.flatten().tolist() for b in blobs[name]]
        ref = []
        for i in range(n):
            for ch in range(c):
                values = [v[j][ch][y][z] for j in range(n) for y in range(h) for z in range(w)]
                mean = sum(values) / len(values)
                var = sum(t * t for t in values) / len(values) - mean * mean
                for y in range(h):
                    for z in range(w):
                        t = v[i][ch][y][z]
                        t = (t - mean) / math.sqrt(var + 1e-9) if name == "bn_learn" else t
                        ref.append(t * scale[ch] + shift[ch])
        close(out[name], ref)
    # Upsample: zeros, then top[mask[i]] = bottom[i] per plane.
    pool, mask = out["pool"].tolist(), out["mask"].tolist()
    ref = []
    for i in range(n):
        for ch in range(c):
            plane = [0.0] * (h * w)
            for y in range(h // 2):
                for z in range(w // 2):
                    plane[int(mask[i][ch][y][z])] = pool[i][ch][y][z]
            ref += plane
    close(out["up"], ref, 0)
    # Permute (0, 2, 3, 1).
    close(out["perm"], [v[i][ch][y][z] for i in range(n) for y in range(h) for z in range(w) for ch in range(c)], 0)
    # Normalize: x / sqrt(sum x^2 + eps) x scale; across_spatial over C, H, W (one shared scale), else over
    # C at each position (a scale per channel).
    [shared] = blobs["norm_across"][0].tolist()
    per_channel = blobs["norm_pos"][0].tolist()
    ref_across, ref_pos = [], []
    for i in range(n):
        total = sum(v[i][ch][y][z] ** 2 for ch in range(c) for y in range(h) for z in range(w))
        for ch in range(c):
            for y in range(h):
                for z in range(w):
                    ref_across.append(v[i][ch][y][z] / math.sqrt(total + 1e-10) * shared)
                    at = sum(v[i][k][y][z] ** 2 for k in range(c))
                    ref_pos.append(v[i][ch][y][z] / math.sqrt(at + 0.001) * per_channel[ch])
    close(out["norm_across"], ref_across)
    close(out["norm_pos"], ref_pos)
    # ShuffleChannel, group 3 of 6 channels: output channel j * 3 + g is input channel g * 2 + j.
    shuffled = [None] * c
    for g in range(3):
        for j in range(c // 3):
            shuffled[j * 3 + g] = g * (c // 3) + j
    close(out["shuffle"], [v[i][shuffled[ch]][y][z] for i in range(n) for ch in range(c) for y in range(h)
                           for z in range(w)], 0)
    close(out["relu6"], [min(max(t, 0.0), 6.0) for t in x.flatten().tolist()], 0)
    # Axpy: per (n, c) the plane's mean (the squeeze) times x, plus relu6's output.
    ref = []
    for i in range(n):
        for ch in range(c):
            mean = sum(v[i][ch][y][z] for y in range(h) for z in range(w)) / (h * w)
            ref += [mean * v[i][ch][y][z] + min(max(v[i][ch][y][z], 0.0), 6.0) for y in range(h) for z in range(w)]
    close(out["axpy"], ref)


def prior_box_reference(p, layer_h, layer_w, img_h, img_w):
    """PriorBoxLayer::Forward_cpu, loop for loop (step from the image when not given)."""
    ratios = [1.0]
    for ar in p.get("aspect_ratio", []):
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if p.get("flip", True):
                ratios.append(1.0 / ar)
    step_w, step_h = (p["step"], p["step"]) if "step" in p else (img_w / layer_w, img_h / layer_h)
    top = []
    for hh in range(layer_h):
        for ww in range(layer_w):
            cx, cy = (ww + 0.5) * step_w, (hh + 0.5) * step_h
            for s, min_size in enumerate(p["min_size"]):
                sides = [(min_size, min_size)]
                if p.get("max_size"):
                    sides.append((math.sqrt(min_size * p["max_size"][s]),) * 2)
                for ar in ratios:
                    if abs(ar - 1.0) < 1e-6:
                        continue
                    base = math.sqrt(min_size * p["max_size"][s]) if p.get("max_size") else min_size
                    sides.append((base * math.sqrt(ar), base / math.sqrt(ar)))
                for bw, bh in sides:
                    top += [(cx - bw / 2) / img_w, (cy - bh / 2) / img_h, (cx + bw / 2) / img_w, (cy + bh / 2) / img_h]
    if p.get("clip"):
        top = [min(max(t, 0.0), 1.0) for t in top]
    variance = p.get("variance", [0.1])
    return top + (variance * len(top) if len(variance) == 1 else variance * (len(top) // 4))


@pytest.mark.parametrize("fields, params", [
    ("min_size: 60 max_size: 111 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: false "
     "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5",
     {"min_size": [60], "max_size": [111], "aspect_ratio": [2, 3], "variance": [0.1, 0.1, 0.2, 0.2]}),
    ("min_size: 30 min_size: 50 aspect_ratio: 2 aspect_ratio: 2 flip: false clip: true step: 16",
     {"min_size": [30, 50], "aspect_ratio": [2], "flip": False, "clip": True, "step": 16}),
])
def test_prior_box_matches_ssd(fields, params):
    text = f"""input: "data"
input_shape {{ dim: 1 dim: 3 dim: 300 dim: 300 }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "f" convolution_param {{ num_output: 2 kernel_size: 3 stride: 16 }} }}
layer {{ name: "prior" type: "PriorBox" bottom: "f" bottom: "data" top: "prior" prior_box_param {{ {fields} }} }}"""
    out, _, _ = run(text)
    close(out["prior"], prior_box_reference(params, 19, 19, 300, 300), 1e-6)


def jaccard(a, b):
    """bbox_util.cpp's JaccardOverlap (normalized boxes)."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))

    def size(box):
        return 0.0 if box[2] < box[0] or box[3] < box[1] else (box[2] - box[0]) * (box[3] - box[1])
    return inter / (size(a) + size(b) - inter)


def detection_output_reference(loc, conf, prior, p):
    """DetectionOutputLayer::Forward_cpu with shared locations, CENTER_SIZE or CORNER codes, loop for loop:
    decode, per class ApplyNMSFast (scores above the threshold, stable-sorted, top_k, greedy NMS), keep_top_k
    per image (sorted by score; Caffe's std::sort leaves ties open, here label then rank), rows by image, label
    ascending, rank; nothing kept anywhere: one (i, -1, ..., -1) row per image."""
    n, priors = len(loc), len(prior[0][0]) // 4
    boxes_p = [prior[0][0][4 * k:4 * k + 4] for k in range(priors)]
    var_p = [prior[0][1][4 * k:4 * k + 4] for k in range(priors)]
    rows_all, kept_any = [], False
    for i in range(n):
        decoded = []
        for k in range(priors):
            pb, pv, lb = boxes_p[k], var_p[k], loc[i][4 * k:4 * k + 4]
            if p["code_type"] == "CENTER_SIZE":
                pw, ph = pb[2] - pb[0], pb[3] - pb[1]
                cx = pv[0] * lb[0] * pw + (pb[0] + pb[2]) / 2
                cy = pv[1] * lb[1] * ph + (pb[1] + pb[3]) / 2
                bw, bh = math.exp(pv[2] * lb[2]) * pw, math.exp(pv[3] * lb[3]) * ph
                decoded.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
            else:
                decoded.append([pb[j] + pv[j] * lb[j] for j in range(4)])
        indices = {}
        for c in range(p["num_classes"]):
            if c == p["background"]:
                continue
            scores = [conf[i][k * p["num_classes"] + c] for k in range(priors)]
            order = sorted((k for k in range(priors) if scores[k] > p["threshold"]), key=lambda k: -scores[k])
            order = order[:p["top_k"]] if p["top_k"] > -1 else order
            kept = []
            for k in order:
                if all(jaccard(decoded[k], decoded[j]) <= p["nms"] for j in kept):
                    kept.append(k)
            indices[c] = kept
        total = sum(len(v) for v in indices.values())
        if p["keep_top_k"] > -1 and total > p["keep_top_k"]:
            pairs = [(conf[i][k * p["num_classes"] + c], c, k) for c in sorted(indices) for k in indices[c]]
            pairs = sorted(pairs, key=lambda t: -t[0])[:p["keep_top_k"]]
            indices = {c: [k for _, cc, k in pairs if cc == c] for c in sorted({cc for _, cc, _ in pairs})}
        for c in sorted(indices):
            for k in indices[c]:
                kept_any = True
                rows_all.append([i, c, conf[i][k * p["num_classes"] + c]] + decoded[k])
    return rows_all if kept_any else [[i, -1, -1, -1, -1, -1, -1] for i in range(n)]


def detection_net(fields: str, priors: int, classes: int) -> str:
    return f"""input: "loc"
input_shape {{ dim: 2 dim: {priors * 4} }}
input: "conf"
input_shape {{ dim: 2 dim: {priors * classes} }}
input: "prior"
input_shape {{ dim: 1 dim: 2 dim: {priors * 4} }}
layer {{ name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det"
  detection_output_param {{ {fields} }} }}"""


def fixed_detection_input(priors: int, classes: int, seed: int):
    """Priors on a grid with neighbours that overlap, small box offsets, and softmax scores with exact ties
    (scores repeated across priors) so that order, NMS and keep_top_k are all exercised."""
    gen = torch.Generator().manual_seed(seed)
    side = int(math.ceil(math.sqrt(priors)))
    boxes = []
    for k in range(priors):
        cx, cy = (k % side + 0.5) / side, (k // side + 0.5) / side
        half = 1.2 / side
        boxes += [cx - half, cy - half, cx + half, cy + half]
    prior = [[boxes, [0.1, 0.1, 0.2, 0.2] * priors]]
    loc = (torch.randn(2, priors * 4, generator=gen) * 0.5).tolist()
    logits = torch.randn(2, priors, classes, generator=gen) * 2
    logits[:, ::3] = logits[:, 1::3][:, :logits[:, ::3].shape[1]] if priors > 3 else logits[:, ::3]
    conf = torch.softmax(logits, -1).reshape(2, -1).tolist()
    return loc, conf, prior


@pytest.mark.parametrize("fields, p", [
    ("num_classes: 4 background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 20 } code_type: CENTER_SIZE "
     "keep_top_k: 12 confidence_threshold: 0.3",
     {"num_classes": 4, "background": 0, "nms": 0.45, "top_k": 20, "code_type": "CENTER_SIZE", "keep_top_k": 12,
      "threshold": 0.3}),
    ("num_classes: 4 background_label_id: 2 nms_param { nms_threshold: 0.3 } code_type: CORNER",
     {"num_classes": 4, "background": 2, "nms": 0.3, "top_k": -1, "code_type": "CORNER", "keep_top_k": -1,
      "threshold": -math.inf}),
    ("num_classes: 4 nms_param { nms_threshold: 0.45 top_k: 10 } code_type: CENTER_SIZE confidence_threshold: 0.999",
     {"num_classes": 4, "background": 0, "nms": 0.45, "top_k": 10, "code_type": "CENTER_SIZE", "keep_top_k": -1,
      "threshold": 0.999}),   # nothing passes: Caffe's one (i, -1...) row per image
])
def test_detection_output_matches_ssd_on_a_fixed_input(fields, p):
    priors, classes = 30, 4
    loc, conf, prior = fixed_detection_input(priors, classes, seed=5)
    net = CaffeNet(netspec(parse(detection_net(fields, priors, classes), "t.prototxt")))
    with torch.no_grad():
        [det] = net(torch.tensor(loc), torch.tensor(conf), torch.tensor(prior))
    reference = detection_output_reference(loc, conf, prior, p)
    assert det.shape == (1, 1, len(reference), 7)
    close(det, [t for row in reference for t in row], 1e-5)
    if p["threshold"] < 0.9:
        assert len({row[1] for row in reference}) > 1 and len(reference) > 2   # the case exercises something


def test_mobilenet_ssd_detections_match_the_reference_on_a_fixed_input():
    """chuanqi305's MobileNet-SSD deploy file end to end in PyTorch (random weights, seed 0, calibrated
    BatchNorm): its detection_out against the reference run on the same net's loc, conf and priors."""
    text = (CORPUS / "mobilenet_ssd_chuanqi305.prototxt").read_text()
    spec = netspec(parse(text, "mobilenet_ssd.prototxt"))
    net = CaffeNet(spec, ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"])
    net.init_random(0)
    net.calibrate([torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(2))])
    x = torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        det, loc, conf, prior = net(x)
    [layer] = [entry for entry in spec["layers"] if entry["type"] == "DetectionOutput"]
    p = {"num_classes": 21, "background": 0, "nms": layer["nms_threshold"], "top_k": layer["top_k"],
         "code_type": layer["code_type"], "keep_top_k": layer["keep_top_k"], "threshold": layer["confidence_threshold"]}
    assert (p["nms"], p["top_k"], p["keep_top_k"], p["threshold"]) == (0.45, 100, 100, 0.25)
    reference = detection_output_reference(loc.tolist(), conf.tolist(), prior.tolist(), p)
    assert det.shape == (1, 1, len(reference), 7) and len(reference) > 1
    close(det, [t for row in reference for t in row], 1e-5)


def test_mobilenet_ssd_detections_in_onnx_runtime_are_the_pytorch_build_s(tmp_path, monkeypatch):
    """The ONNX export (the path every ONNX Runtime and TensorRT run takes) of the same net, weights and
    input gives the same detections: the NMS graph's output size follows the data as the PyTorch build's."""
    ort = pytest.importorskip("onnxruntime")
    from edgeprof.models.catalog import resolve
    from edgeprof.models.onnx_export import build, export_onnx
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = resolve(str(CORPUS / "mobilenet_ssd_chuanqi305.prototxt"))
    exported = export_onnx(model, 1, "fp32", seed=0)
    loaded, inputs = build(model, 1, 0)
    with torch.no_grad():
        [ours] = loaded.net(*inputs)
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    [theirs] = session.run(None, {session.get_inputs()[0].name: inputs[0].numpy()})
    assert ours.shape[2] > 1 and tuple(theirs.shape) == tuple(ours.shape)
    theirs, ours = torch.from_numpy(theirs).view(-1, 7), ours.view(-1, 7)
    # The same detections in the same order (image, label). The random weights' logits and box offsets
    # reach a few hundred, so the softmax and exp(0.2 x offset) turn the two runtimes' 1e-6 differences in
    # the convolutions into up to 2e-4 of the scores and 6e-5 of the corner coordinates.
    assert torch.equal(theirs[:, :2], ours[:, :2])
    close(theirs[:, 2], ours[:, 2].tolist(), 1e-3)
    close(theirs[:, 3:], ours[:, 3:].flatten().tolist(), 1e-3)


@pytest.mark.parametrize("log", [
    # Debian bullseye's caffe on chuanqi305's file (sim-tx2, 2026-12-07): protobuf refuses the fork's block.
    '[libprotobuf ERROR google/protobuf/text_format.cc:309] Error parsing text-format caffe.NetParameter: 2367:17: '
    'Message type "caffe.LayerParameter" has no field named "permute_param".\n',
    # A file whose SSD layer has no parameter block gets as far as the layer registry (layer_factory.hpp).
    "F1207 04:01:02.000000  1234 layer_factory.hpp:81] Check failed: registry.count(type) == 1 (0 vs. 1) Unknown "
    "layer type: PriorBox (known types: AbsVal, ArgMax, BNLL, BatchNorm, ...)\n",
])
def test_a_caffe_without_ssd_layers_is_named_as_such(log):
    from edgeprof.models.stats import caffe_lacks_fork_layers
    said = caffe_lacks_fork_layers(parse((CORPUS / "mobilenet_ssd_chuanqi305.prototxt").read_text(), "m.prototxt"),
                                   log)
    assert said.startswith("this Caffe lacks SSD's layers: the net uses Permute (first at line ")
    assert "PriorBox (first at line " in said and "DetectionOutput (first at line 3080), which SSD's Caffe has " \
        "(https://github.com/weiliu89/caffe/tree/ssd). Run it with a Caffe built from that fork" in said
    no_ssd = 'input: "data"\ninput_shape { dim: 1 dim: 3 }\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
    assert caffe_lacks_fork_layers(parse(no_ssd, "t.prototxt"), log) is None     # no SSD layer: another failure


def test_other_caffe_failures_are_not_blamed_on_ssd():
    from edgeprof.models.stats import caffe_lacks_fork_layers
    text = (CORPUS / "mobilenet_ssd_chuanqi305.prototxt").read_text()
    assert caffe_lacks_fork_layers(parse(text, "m.prototxt"),
                                   "Check failed: error == cudaSuccess (2 vs. 0) out of memory") is None


def test_a_caffe_without_segnet_layers_is_named_as_such():
    from edgeprof.models.stats import caffe_lacks_fork_layers
    text = (CORPUS / "segnet_driving_kendall.prototxt").read_text()
    log = ('[libprotobuf ERROR google/protobuf/text_format.cc:309] Error parsing text-format caffe.NetParameter: '
           '40:12: Message type "caffe.LayerParameter" has no field named "bn_param".\n')
    assert caffe_lacks_fork_layers(parse(text, "s.prototxt"), log).startswith(
        "this Caffe lacks SegNet's layers: the net uses BN (first at line 34), Upsample (first at line 821), which "
        "SegNet's Caffe has (https://github.com/alexgkendall/caffe-segnet)")
