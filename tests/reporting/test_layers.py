"""The per-layer table (edgeprof.reporting.layers) and `edgeprof layers`: rows in the prototxt's order with MACs from
edgeprof.models.stats, groups (a folded BatchNorm + Scale, a fused kernel) on their first layer's row, ratios and
moved layers between two results of one runtime, refusals; and the command on a stored SQLite store."""
import json

import pytest
from click.testing import CliRunner

from edgeprof.cli import main
from edgeprof.errors import ReportError
from edgeprof.models import describe, resolve
from edgeprof.reporting.layers import cell_texts, describe as describe_table, layer_table, layer_tables, model_stats
from edgeprof.result import Result
from edgeprof.storage import open_store

ALEXNET = resolve("alexnet")
CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _result(backend: str, figures: dict, id_: int, device: str = "sim-tx2", model=ALEXNET, **kw) -> Result:
    result = Result(device, model.name, backend, 1, "run", figures=figures, id=id_, iterations=20,
                    model_info={"path": model.path, "sha256": model.sha256, "kind": "prototxt"}, **kw)
    result.latency_ms["median" if backend != "caffe" else "mean"] = sum(_times().values())
    return result


def _times(scale: float = 1.0) -> dict:
    layers = [one["name"] for one in describe(ALEXNET, per_layer=True)["per_layer"]]
    return {name: (4.0 if name in CONVS else 0.1) * scale for name in layers}


def caffe(id_: int = 1, scale: float = 1.0, **kw) -> Result:
    layers = [{"name": "data", "forward_ms": 0.001, "backward_ms": 0.0}]
    layers += [{"name": n, "forward_ms": ms, "backward_ms": ms} for n, ms in _times(scale).items()]
    return _result("caffe", {"layers": layers}, id_, **kw)


def pytorch(id_: int = 2, **kw) -> Result:
    per_layer = {"timer": "perf_counter", "iterations": 20, "forward_ms": 30.0,
                 "layers": [{"name": n, "covers": [n], "ms": ms} for n, ms in _times().items()]}
    return _result("pytorch", {"per_layer": per_layer, "variant": "fp32"}, id_, **kw)


def onnxruntime(id_: int = 3) -> Result:
    times = _times()
    groups = [{"name": "conv1", "covers": ["conv1", "relu1"], "ms": 3.0, "nodes": ["a"]},
              {"name": "(other nodes)", "covers": [], "ms": 1.0, "nodes": ["ReorderOutput"]}]
    groups += [{"name": n, "covers": [n], "ms": ms, "nodes": [n]} for n, ms in times.items()
               if n not in ("conv1", "relu1")]
    per_layer = {"timer": "onnxruntime profiler", "iterations": 20, "forward_ms": 31.0, "layers": groups}
    return _result("onnxruntime", {"per_layer": per_layer, "provider": "CPUExecutionProvider"}, id_,
                   device="sim-desktop")


def test_rows_follow_the_prototxt_with_macs_per_ms_and_shares():
    table = layer_table([caffe(), pytorch()])
    names = [row.layer for row in table.rows]
    # Caffe's Input layer has no counts: it comes where Caffe timed it, before conv1.
    assert names[:3] == ["data", "conv1", "relu1"] and names[-1] == "prob"
    conv1 = table.rows[1]
    macs = next(one["macs"] for one in describe(ALEXNET, per_layer=True)["per_layer"] if one["name"] == "conv1")
    assert conv1.macs == macs == 105_415_200
    cell = conv1.cells[0]
    assert cell.ms == 4.0 and cell.macs_per_ms == pytest.approx(macs / 4.0)
    assert cell.share == pytest.approx(4.0 / table.columns[0].total_ms)
    # MACs per ms only where the layer has MACs.
    assert table.rows[2].cells[0].macs_per_ms is None
    assert sum(row.cells[1].share or 0 for row in table.rows) == pytest.approx(1.0)
    assert "caffe time's per-layer forward timers (CPU, wall clock)" in table.columns[0].how
    assert "the net by its latency" in table.columns[1].how


def test_a_group_has_its_time_on_its_first_layer_and_the_others_point_to_it():
    table = layer_table([pytorch(), onnxruntime()])
    rows = {row.layer: row for row in table.rows}
    assert rows["conv1"].cells[1].ms == 3.0 and rows["conv1"].cells[1].group == ["conv1", "relu1"]
    assert rows["relu1"].cells[1].in_group == "conv1" and rows["relu1"].cells[1].ms is None
    assert cell_texts(rows["conv1"].cells[1])[0] == "3.000 (2 layers)"
    assert cell_texts(rows["relu1"].cells[1]) == ["in conv1", "", ""]
    assert rows["(other nodes)"].cells[1].ms == 1.0 and rows["(other nodes)"].cells[0].ms is None
    # Two runtimes: no ratios.
    assert table.columns[1].against is None and not table.moved


def test_two_results_of_one_runtime_show_which_layers_moved():
    table = layer_table([caffe(1), pytorch(2), caffe(3, scale=1.0, device="sim-tx2-41")])
    assert table.columns[2].against == 0
    table = layer_table([caffe(1), caffe(3, scale=1.0, device="sim-tx2-41")])
    assert not table.moved
    slower = caffe(4, device="sim-tx2-41")
    for layer in slower.figures["layers"]:
        if layer["name"] == "conv2":
            layer["forward_ms"] = 8.0
        if layer["name"] == "relu2":
            layer["forward_ms"] = 0.0005     # x0.001, but under 1 % of both sums: not a move
    table = layer_table([caffe(1), slower])
    assert [(m.layer, m.ratio, m.from_ms, m.to_ms) for m in table.moved] == [("conv2", 2.0, 4.0, 8.0)]
    conv2 = next(row for row in table.rows if row.layer == "conv2")
    assert conv2.cells[1].ratio == 2.0
    lines = describe_table(table)
    assert "moved: conv2 4.000 -> 8.000 ms (x2.00) in #4 against #1" in lines


def test_refusals_say_why():
    with pytest.raises(ReportError, match="one model at a time"):
        layer_table([caffe(), _result("caffe", {"layers": []}, 5, model=resolve("googlenet"))])
    with pytest.raises(ReportError, match="measure again with --per-layer"):
        layer_table([_result("pytorch", {"variant": "fp32"}, 6)])
    with pytest.raises(ReportError, match="libtorch results carry no per-layer figures"):
        layer_table([_result("libtorch", {}, 7)])
    # Stored figures are data from boards: entries that are not a name and a time are skipped.
    odd = pytorch(8)
    odd.figures["per_layer"]["layers"] += [{"name": 3, "ms": 1.0}, {"name": "x", "ms": "fast"}, "junk"]
    assert len(layer_table([odd]).columns[0].groups) == len(_times())
    # Without per-layer figures, a result is left out of the report's tables.
    assert [len(t.columns) for t in layer_tables([caffe(), _result("pytorch", {}, 9)])] == [1]


def test_macs_need_the_prototxt_the_result_was_measured_with():
    changed = caffe()
    changed.model_info["sha256"] = "0" * 64
    assert model_stats(changed) is None
    table = layer_table([changed])
    assert all(row.macs is None for row in table.rows)
    assert any("not at hand" in note for note in table.notes)


def test_layers_command_prints_the_table_and_json(tmp_path):
    db = tmp_path / "results.sqlite"
    with open_store(db) as store:
        ids = [store.add(r) for r in (caffe(None), pytorch(None))]
    runner = CliRunner()
    shown = runner.invoke(main, ["layers", *map(str, ids), "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "conv1" in shown.output and "MMAC/ms" in shown.output and "sum of the layers" in shown.output
    as_json = runner.invoke(main, ["layers", *map(str, ids), "--db", str(db), "--json"])
    doc = json.loads(as_json.output)
    assert [c["backend"] for c in doc["columns"]] == ["caffe", "pytorch"]
    missing = runner.invoke(main, ["layers", "999", "--db", str(db)])
    assert missing.exit_code != 0 and "no result 999" in missing.output


def test_the_html_report_has_the_per_layer_table(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'edgeprof[report]'")
    from edgeprof.reporting.html import write_report
    page = tmp_path / "report.html"
    write_report([caffe(), pytorch(), _result("pytorch", {"variant": "fp32"}, 5)], page)
    text = page.read_text()
    section = text[text.index('<section id="layers">'):]
    section = section[:section.index("</section>")]
    assert "<h3>alexnet</h3>" in section and "#1 sim-tx2 caffe batch 1: ms" in section
    assert "<td>conv1</td><td>Convolution</td>" in section and "caffe time&#x27;s per-layer forward timers" in section
    assert "#5" not in section   # a result without per-layer figures is left out of the table


def tensorrt(id_: int, names_ms: list, **kw) -> Result:
    """A TensorRT result's figures as the backend keeps trtexec's --exportProfile (parsers/trtexec.py)."""
    layers = [{"name": n, "time_ms": ms * 20, "average_ms": ms, "median_ms": None, "percentage": 0.0}
              for n, ms in names_ms]
    return _result("tensorrt", {"layers": layers, "profile_iterations": 20, "trt_version": "8.2.1"}, id_, **kw)


def test_tensorrt_engine_layers_are_shown_against_the_layers_they_fuse():
    # Names as TensorRT writes them: ONNX node names joined by " + " (edgeprof names nodes "<layer>/<op>"), the
    # prototxt's own names when built from it, a DLA loadable as {ForeignNode[first...last]}, and layers of its own.
    result = tensorrt(10, [("Reformatting CopyNode for Input Tensor 0 to conv1/conv/Conv + relu1/Relu", 0.01),
                           ("conv1/conv/Conv + relu1/Relu", 2.0), ("norm1/Mul", 0.2), ("norm1/AveragePool", 0.3),
                           ("{ForeignNode[pool1/MaxPool...relu5/Relu]}", 5.0), ("pool5", 0.1),
                           ("fc6 + relu6", 3.0), ("Constant_140", 0.05)])
    table = layer_table([result])
    rows = {row.layer: row.cells[0] for row in table.rows}
    assert rows["conv1"].ms == 2.0 and rows["conv1"].group == ["conv1", "relu1"]
    assert rows["norm1"].ms == pytest.approx(0.5)
    assert rows["pool1"].ms == 5.0 and rows["pool1"].group[-1] == "relu5" and rows["conv5"].in_group == "pool1"
    assert rows["pool5"].ms == 0.1 and rows["fc6"].group == ["fc6", "relu6"]
    assert rows["(other nodes)"].ms == pytest.approx(0.06)
    assert "each engine layer's mean over 20 queries" in table.columns[0].how
    # 8.5 and later write medianMs: the median is shown.
    for layer in result.figures["layers"]:
        layer["median_ms"] = layer["average_ms"] / 2
    table = layer_table([result])
    assert next(r for r in table.rows if r.layer == "conv1").cells[0].ms == 1.0
    assert "median over 20" in table.columns[0].how
