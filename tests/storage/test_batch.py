"""store.batch(): several results stored together or not at all (what `edgeprof import` relies on)."""
import pytest

from edgeprof.storage import open_store

from .test_store import sample


def test_a_batch_stores_all_its_results_or_none(db):
    with open_store(db) as store:
        with store.batch():
            ids = [store.add(sample()), store.add(sample(batch=8))]
        assert sorted(r.id for r in store.query()) == sorted(ids)
        with pytest.raises(RuntimeError):
            with store.batch():
                store.add(sample(run_id="r2"))
                raise RuntimeError("the third result of an import turned out to be unusable")
        assert store.query(run_id="r2") == []
        store.add(sample(run_id="r3"))      # outside a batch: its own transaction again
        assert len(store.query(run_id="r3")) == 1
