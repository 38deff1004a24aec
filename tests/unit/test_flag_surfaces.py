"""Validity flags where people read results: the footnote under `results list` says what each flag seen
means, once; `compare --strict` exits 3 when a compared result is flagged (for CI jobs), 0 otherwise."""
from click.testing import CliRunner

from edgeprof.cli import main
from edgeprof.result import Result
from edgeprof.storage import open_store


def stored(tmp_path, monkeypatch, flags):
    monkeypatch.setenv("EDGEPROF_DB", str(tmp_path / "r.sqlite"))
    with open_store(tmp_path / "r.sqlite") as store:
        for backend, median in (("caffe", 10.0), ("pytorch", 5.0)):
            result = Result(device="d", model="alexnet", backend=backend, batch=1, run_id="run1", span="compute",
                            flags=flags if backend == "pytorch" else [])
            result.latency_ms["median"] = median
            store.add(result)


def test_results_list_explains_each_flag_once(tmp_path, monkeypatch):
    stored(tmp_path, monkeypatch, [{"code": "high_spread", "detail": "IQR 40% of the median"},
                                   {"code": "not_converged", "detail": "cap"}])
    out = CliRunner().invoke(main, ["results", "list"]).output
    assert "high_spread: iterations disagree: IQR above 25 % of the median" in out
    assert out.count("not_converged: the stop rule hit its time cap") == 1


def test_compare_strict_exits_3_on_a_flagged_result(tmp_path, monkeypatch):
    stored(tmp_path, monkeypatch, [{"code": "high_spread", "detail": "IQR 40% of the median"}])
    assert CliRunner().invoke(main, ["compare", "--run", "run1"]).exit_code == 0
    assert CliRunner().invoke(main, ["compare", "--run", "run1", "--strict"]).exit_code == 3


def test_compare_strict_exits_0_when_nothing_is_flagged(tmp_path, monkeypatch):
    stored(tmp_path, monkeypatch, [])
    result = CliRunner().invoke(main, ["compare", "--run", "run1", "--strict"])
    assert result.exit_code == 0, result.output
