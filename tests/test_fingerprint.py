"""A job's fingerprint, as a table: what changes a job's identity, and what does not.

A job that has run is never submitted again, and "the same job" is the same fingerprint: a case
here that wrongly says "same" would skip an ingestion, one that wrongly says "different" would
ingest twice.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.identity import Place, place_of
from reconciler.kinds.ingestion_job import JobIdentity, compared_form, job_identity
from tests.builders import ENDPOINT, edited, job_spec, s3

JOB = job_spec()
PLACE = place_of(s3()).to_json()
MAX = {"columnName": "m", "expression": 'MAX("ts")'}


def fingerprint(spec: dict[str, Any], place: dict[str, str] | None) -> JobIdentity:
    """A job's identity, its connection at `place` (as JSON) or, without one, by name."""
    return job_identity(compared_form(spec), Place(**place) if place is not None else None)


def with_mapping(spec: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "mappings": [*spec["mappings"], mapping]}


SAME = [
    pytest.param(JOB, PLACE, edited(JOB, source__connectionName="renamed"), PLACE,
                 id="a renamed connection at the same place"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(awsEndpoint=f"https://{ENDPOINT.upper()}/")).to_json(),
                 id="one endpoint spelled two ways"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(bucket="ZOO")).to_json(),
                 id="a bucket in capitals"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(awsEndpoint="s3.eu-west-1.amazonaws.com")).to_json(),
                 id="another region of the same AWS partition (bucket names are unique in it)"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(awsEndpoint="zoo.s3.amazonaws.com")).to_json(),
                 id="a virtual-hosted endpoint of the same bucket"),
    pytest.param(edited(JOB, source__objects=["b", "a"]), None,
                 edited(JOB, source__objects=["a", "b"]), None, id="objects in another order"),
    pytest.param(edited(JOB, source__objects=None, source__uris=["s3://zoo/b", "s3://zoo/a"]),
                 None, edited(JOB, source__objects=None, source__uris=["s3://zoo/a", "s3://zoo/b"]),
                 None, id="uris in another order"),
    pytest.param(edited(JOB, mappings=list(reversed(JOB["mappings"]))), None, JOB, None,
                 id="mappings in another order"),
    pytest.param(edited(JOB, source__inputSchema=list(reversed(JOB["source"]["inputSchema"]))),
                 None, JOB, None, id="input fields in another order"),
    pytest.param(with_mapping(JOB, {"columnName": "__count", "expression": "COUNT(*)"}), None,
                 JOB, None, id="the __count mapping Polaris appends to a rollup"),
    pytest.param(with_mapping(JOB, MAX), None, with_mapping(JOB, {**MAX, "isAggregation": True}),
                 None, id="isAggregation left out where the expression aggregates"),
    pytest.param(with_mapping(JOB, {"columnName": "n", "expression": "'SUM(' || \"ts\""}), None,
                 with_mapping(JOB, {"columnName": "n", "expression": "'SUM(' || \"ts\"",
                                    "isAggregation": False}),
                 None, id="an aggregate call inside a string literal is not an aggregation"),
    pytest.param({**JOB, "ingestionMode": "append", "maxParseExceptions": 2147483647,
                  "createTableIfNotExists": False, "replaceAll": False, "context": {}},
                 None, JOB, None, id="documented defaults written out"),
    pytest.param(edited(JOB, source__formatSettings={"format": "csv", "delimiter": ",",
                                                     "skipHeaderRows": 0, "columns": []}),
                 None, edited(JOB, source__formatSettings={"format": "csv"}), None,
                 id="csv defaults written out"),
    pytest.param(edited(JOB, target__intervals=[]), None, JOB, None, id="empty intervals"),
    pytest.param({"id": "j", "executionStatus": "failed", "createdTimestamp": "t",
                  "health": {"status": "error"}, "spec": JOB}, None, JOB, None,
                 id="a live job's id, status, health and timestamps"),
]  # fmt: skip

DIFFERENT = [
    pytest.param(JOB, None, edited(JOB, source__connectionName="renamed"), None,
                 id="another connection name when no place is known"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(bucket="other")).to_json(), id="another bucket"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(prefix="penguins/")).to_json(),
                 id="another connection prefix"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(awsEndpoint="s3.cn-north-1.amazonaws.com.cn")).to_json(),
                 id="another AWS partition"),
    pytest.param(JOB, PLACE, JOB, place_of(s3(awsEndpoint="minio.example.com:9000")).to_json(),
                 id="an S3-compatible store"),
    pytest.param(JOB, PLACE, JOB, None, id="a known place and an unknown one"),
    pytest.param(JOB, None, edited(JOB, source__objects=["penguins/gentoo.json"]), None,
                 id="another object"),
    pytest.param(JOB, None, edited(JOB, source__objects=None, source__prefixes=["penguins/"]),
                 None, id="another selector"),
    pytest.param(JOB, None, edited(JOB, target__tableName="other"), None, id="another table"),
    pytest.param(JOB, None, {**JOB, "ingestionMode": "replace"}, None, id="another mode"),
    pytest.param(JOB, None, {**JOB, "maxParseExceptions": 0}, None,
                 id="another parse exception limit"),
    pytest.param(JOB, None, {**JOB, "filterExpression": '"city" = \'x\''}, None,
                 id="a filter"),
    pytest.param(JOB, None, edited(JOB, source__formatSettings={"format": "csv"}), None,
                 id="another format"),
    pytest.param(with_mapping(JOB, {"columnName": "n", "expression": '"ts"'}), None,
                 with_mapping(JOB, {"columnName": "n", "expression": 'UPPER("ts")'}), None,
                 id="another expression"),
    pytest.param(with_mapping(JOB, MAX), None, with_mapping(JOB, {**MAX, "isAggregation": False}),
                 None, id="isAggregation false on an aggregating expression"),
    pytest.param(with_mapping(JOB, {"columnName": "n", "expression": '"ts"'}), None,
                 with_mapping(JOB, {"columnName": "n", "expression": '"ts"',
                                    "isAggregation": True}),
                 None, id="isAggregation true on a plain expression"),
]  # fmt: skip


@pytest.mark.parametrize(("one", "one_place", "other", "other_place"), SAME)
def test_a_job_keeps_its_identity_through(
    one: dict[str, Any],
    one_place: dict[str, str] | None,
    other: dict[str, Any],
    other_place: dict[str, str] | None,
) -> None:
    assert fingerprint(one, one_place) == fingerprint(other, other_place)


@pytest.mark.parametrize(("one", "one_place", "other", "other_place"), DIFFERENT)
def test_a_job_is_another_job_with(
    one: dict[str, Any],
    one_place: dict[str, str] | None,
    other: dict[str, Any],
    other_place: dict[str, str] | None,
) -> None:
    assert fingerprint(one, one_place) != fingerprint(other, other_place)


def test_a_fingerprint_never_changes_the_spec_it_is_taken_of() -> None:
    spec = edited(JOB, source__objects=["b", "a"])
    fingerprint(spec, PLACE)
    assert spec == edited(JOB, source__objects=["b", "a"])


@pytest.mark.parametrize("place", [None, PLACE], ids=["without a place", "with a place"])
def test_a_fingerprint_leaves_the_spec_it_reads_as_it_was(place: dict[str, str] | None) -> None:
    # The fingerprint normalizes without copying (it reads the result once): nothing it does may
    # reach the spec, which the plan goes on to compare and send.
    spec = with_mapping(edited(JOB, source__uris=["s3://b/z.json", "s3://b/a.json"]), MAX)
    before = copy.deepcopy(spec)

    fingerprint(spec, place)

    assert spec == before
    assert fingerprint(spec, place) == fingerprint(before, place)
