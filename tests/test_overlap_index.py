"""The overlap index: what a job reads, compared with every live job in work linear in the keys."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.identity import OverlapIndex, Place, place_of, reads_of
from reconciler.kinds.ingestion_job import LiveJob
from reconciler.live import LiveState
from reconciler.model import Kind, Location, Resource
from reconciler.plan import Action, make_plan
from tests.guide import GUIDE_JOB

PLACE = Place("aws", "zoo")
MANY = 20_000


def selecting(**selector: Any) -> dict[str, Any]:
    return {"source": {"connectionName": "zoo", **selector}}


@pytest.mark.parametrize(
    "endpoint",
    [
        "s3.us-east-1.amazonaws.com",
        "S3.US-EAST-1.AMAZONAWS.COM",
        "https://s3.us-east-1.amazonaws.com",
        "https://s3.us-east-1.amazonaws.com./",
        "s3.us-east-1.amazonaws.com:443",
    ],
)
def test_one_endpoint_spelled_differently_is_one_place(endpoint: str) -> None:
    assert place_of({"awsEndpoint": endpoint, "bucket": "Zoo"}) == PLACE


def test_two_jobs_of_20000_objects_each_are_compared_in_linear_work() -> None:
    live = reads_of(selecting(objects=[f"data/a-{i}.json" for i in range(MANY)]), PLACE)
    index = OverlapIndex([("live", "t", live)])
    disjoint = reads_of(selecting(objects=[f"data/b-{i}.json" for i in range(MANY)]), PLACE)
    assert index.find("t", disjoint) == []
    assert index.comparisons == 0  # each key is one dictionary look-up, never a scan
    shared = reads_of(
        selecting(objects=[f"data/b-{i}.json" for i in range(MANY)] + ["data/a-7.json"]), PLACE
    )
    assert [o.example for o in index.find("t", shared)] == ["data/a-7.json"]
    assert index.comparisons == 1
    by_pattern = reads_of(selecting(pattern="data/b-*.json"), PLACE)
    assert index.find("t", by_pattern) == []
    assert index.comparisons == 1  # no key starts with the pattern's stem: nothing to compare
    broad = reads_of(selecting(pattern="data/*.json"), PLACE)
    assert len(index.find("t", broad)) == 1
    assert index.comparisons == 2  # the first key proves overlap; that job is not compared again


def test_plan_of_a_20000_object_job_against_a_live_one_compares_at_most_once_per_live_job() -> None:
    connection = {
        "name": "zoo",
        "type": "s3",
        "bucket": "zoo",
        "awsEndpoint": "s3.us-east-1.amazonaws.com",
    }

    def job(job_id: str, keys: list[str]) -> dict[str, Any]:
        source = {k: v for k, v in GUIDE_JOB["source"].items() if k != "uris"}
        return {
            **GUIDE_JOB,
            "id": job_id,
            "executionStatus": "completed",
            "source": {**source, "connectionName": "zoo", "objects": keys},
        }

    live_jobs = [
        LiveJob.of(job(f"live-{n}", [f"d/{n}-{i}" for i in range(MANY)]), {"zoo": connection})
        for n in range(2)
    ]
    live = LiveState({"zoo": connection}, {}, tuple(live_jobs))
    wanted = {
        k: v
        for k, v in job("x", [f"d/1-{i}" for i in range(MANY)]).items()
        if k not in ("id", "executionStatus")
    }
    wanted["source"] = {
        **wanted["source"],
        "objects": [f"d/new-{i}" for i in range(MANY)] + ["d/1-5"],
    }
    resource = Resource(Kind.INGESTION_JOB, "new", wanted, Location("jobs.yaml"))
    (change,) = make_plan([resource], live).changes
    assert change.action is Action.CREATE and change.reingest
    assert "job live-1 (completed, connection zoo)" in change.warnings[0]
    assert live.overlaps.comparisons == 1
    (objects,) = [
        c for c in change.diff if c.path == ("source", "objects")
    ]  # summarised, not 40,000
    assert objects.after == "20001 keys: 20000 added, 19999 removed (such as d/new-0)"


def test_a_job_whose_connection_is_unknown_is_compared_on_keys_everywhere_and_is_uncertain() -> (
    None
):
    index = OverlapIndex(
        [
            ("zoo", "t", reads_of(selecting(objects=["penguins/adelaide.json"]), PLACE)),
            ("elsewhere", "t", reads_of(selecting(objects=["koalas/x.json"]), Place("e", "b"))),
        ]
    )
    (overlap,) = index.find("t", reads_of(selecting(pattern="penguins/*"), None))
    assert (overlap.item, overlap.example) == ("zoo", "penguins/adelaide.json")
    assert overlap.uncertain is not None and "connection zoo is not known" in overlap.uncertain


def test_a_key_outside_the_connection_prefix_is_read_relative_to_it_so_no_reading_hides_overlap() -> (
    None
):
    limited = Place(PLACE.service, PLACE.bucket, "penguins/")
    index = OverlapIndex(
        [("live", "t", reads_of(selecting(objects=["penguins/adelaide.json"]), PLACE))]
    )
    (full,) = index.find("t", reads_of(selecting(objects=["penguins/adelaide.json"]), limited))
    (relative,) = index.find("t", reads_of(selecting(objects=["adelaide.json"]), limited))
    assert full.example == relative.example == "penguins/adelaide.json"
