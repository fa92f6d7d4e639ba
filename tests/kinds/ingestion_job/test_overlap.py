"""Overlap, as a table: a live job's selector and a new job's -> overlap, uncertain, or none.

`reconciler.kinds.ingestion_job.identity` decides whether two jobs into one table read a common object: "overlap"
names an object both read, "uncertain" means it cannot be decided (and is never read as safe),
"none" means no object is read by both.

The overlap index: what a job reads, compared with every live job in work linear in the keys.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from reconciler.kinds.ingestion_job import LiveJob, jobs_of
from reconciler.kinds.ingestion_job.identity import OverlapIndex, Place, place_of, reads_of
from reconciler.model import Kind, Location, Resource
from reconciler.plan import Action, make_plan
from tests.builders import live_state
from tests.guide import GUIDE_JOB

ZOO = Place("aws", "zoo")
ZOO_PENGUINS = Place(ZOO.service, ZOO.bucket, "penguins/")
OTHER_BUCKET = Place(ZOO.service, "other")
OTHER_PARTITION = Place("aws-cn", "zoo")
OTHER_STORE = Place("minio.example.com:9000", "zoo")


def selecting(**selector: Any) -> dict[str, Any]:
    return {"source": {"connectionName": "zoo", **selector}}


class Side(NamedTuple):
    """One job: what it selects, and where its connection points (None: connection unknown)."""

    spec: dict[str, Any]
    place: Place | None = ZOO


def reading(place: Place | None = ZOO, **selector: Any) -> Side:
    return Side(selecting(**selector), place)


def verdict(live: Side, mine: Side, table: str = "t") -> tuple[str, str | None]:
    index = OverlapIndex([("live", "t", reads_of(live.spec, live.place))])
    found = index.find(table, reads_of(mine.spec, mine.place))
    if not found:
        return ("none", None)
    (overlap,) = found
    return ("uncertain" if overlap.uncertain else "overlap", overlap.example)


ADELAIDE = "penguins/adelaide.json"
CASES = [
    # Certain overlaps: an object both read, named
    pytest.param(reading(objects=[ADELAIDE]), reading(objects=[ADELAIDE]), ("overlap", ADELAIDE),
                 id="the same object"),
    pytest.param(reading(uris=[f"s3://zoo/{ADELAIDE}"]), reading(objects=[ADELAIDE]),
                 ("overlap", ADELAIDE), id="a uri and an object of the same key"),
    pytest.param(reading(uris=[f"s3://ZOO/{ADELAIDE}"]), reading(objects=[ADELAIDE]),
                 ("overlap", ADELAIDE), id="a uri whose bucket is in capitals"),
    pytest.param(reading(objects=[ADELAIDE]), reading(pattern="penguins/{adelaide,gentoo}.json"),
                 ("overlap", ADELAIDE), id="an object and a brace pattern that matches it"),
    pytest.param(reading(prefixes=["penguins/"]), reading(pattern="**.json"),
                 ("overlap", "penguins/.json"), id="a prefix and a pattern that meet"),
    pytest.param(reading(pattern="penguins/*.json"), reading(prefixes=["pen"]),
                 ("overlap", "penguins/.json"), id="a pattern and a shorter prefix"),
    pytest.param(reading(prefixes=["penguins/"]), reading(objects=[ADELAIDE]), ("overlap", ADELAIDE),
                 id="a prefix and an object under it"),
    pytest.param(reading(ZOO, objects=[ADELAIDE]), reading(ZOO_PENGUINS, objects=["adelaide.json"]),
                 ("overlap", ADELAIDE), id="a key relative to its connection's prefix"),
    pytest.param(reading(objects=["b", ADELAIDE]), reading(objects=[ADELAIDE, "a"]),
                 ("overlap", ADELAIDE), id="one common object among others"),
    # Spellings of one key (docs/places.md): Polaris's pattern matcher sees Paths.get(key), Druid's
    # object locations drop one leading slash, and a URI's path is percent-decoded
    pytest.param(reading(objects=["penguins//adelaide.json"]), reading(pattern="penguins/*.json"),
                 ("overlap", ADELAIDE), id="a doubled slash in a key a pattern selects"),
    pytest.param(reading(pattern="penguins/*.json"), reading(objects=["penguins/adelaide.json/"]),
                 ("overlap", ADELAIDE), id="a trailing slash in a key a pattern selects"),
    pytest.param(reading(prefixes=["penguins//"]), reading(pattern="penguins/*.json"),
                 ("overlap", "penguins/.json"), id="a doubled slash in a prefix"),
    pytest.param(reading(objects=[ADELAIDE]), reading(objects=[f"/{ADELAIDE}"]),
                 ("overlap", ADELAIDE), id="a leading slash"),
    pytest.param(reading(prefixes=["/penguins/"]), reading(objects=[ADELAIDE]),
                 ("overlap", ADELAIDE), id="a prefix with a leading slash"),
    pytest.param(reading(Place(ZOO.service, ZOO.bucket, "/penguins/"), objects=[ADELAIDE]),
                 reading(objects=[ADELAIDE]), ("overlap", ADELAIDE),
                 id="a connection prefix with a leading slash"),
    pytest.param(reading(Place(ZOO.service, ZOO.bucket, "penguins//"), pattern="**.json"),
                 reading(objects=[ADELAIDE]), ("overlap", ADELAIDE),
                 id="a connection prefix with a doubled slash"),
    pytest.param(reading(uris=["s3://zoo/penguins/a%20b.json"]),
                 reading(objects=["penguins/a b.json"]), ("overlap", "penguins/a b.json"),
                 id="a percent-encoded uri"),
    # No overlap
    pytest.param(reading(objects=[ADELAIDE]), reading(objects=[f"./{ADELAIDE}"]), ("none", None),
                 id="a ./ is part of the key (S3 resolves no dot segments)"),
    pytest.param(reading(objects=["penguins/a%20b.json"]), reading(objects=["penguins/a b.json"]),
                 ("none", None), id="a percent sign in an object key is a percent sign"),
    pytest.param(reading(objects=[ADELAIDE]), reading(objects=["penguins/gentoo.json"]), ("none", None),
                 id="different objects"),
    pytest.param(reading(objects=[ADELAIDE]), reading(pattern="penguins/[!a]*.json"), ("none", None),
                 id="a pattern that excludes the object"),
    pytest.param(reading(pattern="*.json"), reading(objects=[ADELAIDE]), ("none", None),
                 id="a single star never crosses a slash"),
    pytest.param(reading(uris=[f"s3://other-bucket/{ADELAIDE}"]), reading(objects=[ADELAIDE]), ("none", None),
                 id="a uri in another bucket"),
    pytest.param(reading(OTHER_BUCKET, objects=[ADELAIDE]), reading(objects=[ADELAIDE]), ("none", None),
                 id="the same key through a connection to another bucket"),
    pytest.param(reading(OTHER_PARTITION, objects=[ADELAIDE]), reading(objects=[ADELAIDE]), ("none", None),
                 id="the same key and bucket name in another AWS partition"),
    pytest.param(reading(OTHER_STORE, objects=[ADELAIDE]), reading(objects=[ADELAIDE]), ("none", None),
                 id="the same key and bucket name in another S3-compatible store"),
    pytest.param(reading(prefixes=["koalas/"]), reading(ZOO_PENGUINS, pattern="**.json"), ("none", None),
                 id="a connection prefix limits what a pattern reads"),
    pytest.param(reading(prefixes=["penguins/a"]), reading(prefixes=["penguins/b"]), ("none", None),
                 id="two prefixes neither of which extends the other"),
    # Uncertain: never read as safe
    pytest.param(reading(None, objects=[ADELAIDE]), reading(objects=[ADELAIDE]),
                 ("uncertain", ADELAIDE), id="the live job's connection is gone and the keys meet"),
    pytest.param(reading(objects=[ADELAIDE]), reading(None, objects=[ADELAIDE]),
                 ("uncertain", ADELAIDE), id="the new job's connection is unknown and the keys meet"),
    pytest.param(reading(), reading(objects=[ADELAIDE]), ("uncertain", None),
                 id="the live job's selector cannot be analysed"),
    pytest.param(reading(objects=[ADELAIDE]), reading(), ("uncertain", None),
                 id="the new job's selector cannot be analysed"),
    pytest.param(reading(None, objects=[ADELAIDE]), reading(objects=["penguins/gentoo.json"]),
                 ("none", None), id="not when the keys differ, whatever the place"),
]  # fmt: skip


@pytest.mark.parametrize(("live", "mine", "expected"), CASES)
def test_two_jobs_into_one_table(live: Side, mine: Side, expected: tuple[str, str | None]) -> None:
    assert verdict(live, mine) == expected


@pytest.mark.parametrize(("live", "mine", "expected"), CASES)
def test_jobs_into_different_tables_never_overlap(
    live: Side, mine: Side, expected: tuple[str, str | None]
) -> None:
    assert verdict(live, mine, table="another table") == ("none", None)


# The overlap index: linear work over many keys and live jobs --------------------------------------

PLACE = Place("aws", "zoo")
MANY = 20_000


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
    live = live_state({"zoo": connection}, jobs=live_jobs)
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
    assert jobs_of(live).overlaps.comparisons == 1
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
