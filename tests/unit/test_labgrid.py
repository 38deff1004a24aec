"""What edgeprof.labgrid checks before it talks to a coordinator (the coordinator itself: tests/integration)."""
import pytest

from edgeprof.labgrid import LabgridError, acquire_places, parse_filter


def test_tag_filters_come_as_separate_or_comma_separated_terms():
    assert parse_filter(["family=tx2,site=lab2", "rack=3"]) == {"family": "tx2", "site": "lab2", "rack": "3"}
    with pytest.raises(LabgridError, match="'tx2' is not a tag filter: use KEY=VALUE"):
        parse_filter(["tx2"])


def test_nothing_asked_for_is_an_error_before_connecting():
    with pytest.raises(LabgridError, match="--place NAME"):
        with acquire_places("127.0.0.1:1"):
            pass
