"""Overlap, as a table: a live job's selector and a new job's -> overlap, uncertain, or none.

`reconciler.identity` decides whether two jobs into one table read a common object: "overlap"
names an object both read, "uncertain" means it cannot be decided (and is never read as safe),
"none" means no object is read by both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from reconciler.identity import OverlapIndex, Place, reads_of

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
