"""Results as rows: the CSV export and the pandas DataFrame share one flattening."""
import pytest

from edgeprof.reporting import export, to_dataframe

from .samples import caffe_result, lab_sweep, pytorch_result, telemetry_for


def test_dataframe_rows_carry_the_headline_figures_power_and_flags():
    pandas = pytest.importorskip("pandas")
    ours = pytorch_result("resnet50", 12.5)
    telemetry_for(ours, window_s=2.0, moving_clocks=True)
    results = [caffe_result("alexnet", 57.3), ours]
    frame = to_dataframe(results)
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 2
    caffe_row, torch_row = frame.to_dict("records")
    assert caffe_row["latency_mean_ms"] == 57.3 and pandas.isna(caffe_row["latency_median_ms"])
    assert torch_row["latency_median_ms"] == pytest.approx(12.5, rel=0.05)
    assert torch_row["power_w"] == ours.telemetry["power_total"]["mean_w"] > 0
    assert "clocks_moved" in torch_row["flags"]
    # The same columns, in the same order, as the CSV export.
    assert export(results, "csv").splitlines()[0].split(",") == list(frame.columns)


def test_a_whole_sweep_fits_in_one_frame():
    pytest.importorskip("pandas")
    results = lab_sweep()
    frame = to_dataframe(results)
    assert len(frame) == len(results) and set(frame["backend"]) == {r.backend for r in results}
