"""The SQLite store keeps every field of a result and reads it back."""
from edgeprof.result import Result
from edgeprof.storage import ResultStore


def sample(**changes) -> Result:
    result = Result(device="sim-tx2", model="alexnet", backend="caffe", batch=1, run_id="r1", span="caffe_forward",
                    figures={"forward_ms": 12.9, "layers": []}, raw_log="I... Average Forward pass: 12.9 ms.",
                    commands=[{"command": "caffe time", "exit_status": 0, "duration_s": 1.0}],
                    prototxt_diff="-dim: 10\n+dim: 1\n")
    result.latency_ms["mean"] = 12.9
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def test_round_trip_keeps_everything(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        stored = sample()
        store.add(stored)
        back = store.get(stored.id)
    assert back.to_dict(full=True) == stored.to_dict(full=True)
    assert back.to_dict()["caffe"]["forward_ms"] == 12.9


def test_query_filters_newest_first(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        for model in ("alexnet", "vgg16", "alexnet"):
            store.add(sample(model=model))
        found = store.query(model="alexnet")
    assert [r.id for r in found] == [3, 1]


def test_failed_result_keeps_its_error(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        failed = sample().fail("caffe aborted (SIGABRT): Not Implemented Yet")
        store.add(failed)
        assert store.get(failed.id).status == "failed"
        assert store.get(failed.id).error.startswith("caffe aborted")
        assert store.get(999) is None
