"""A job's fingerprint, as a table: what changes a job's identity, and what does not.

A job that has run is never submitted again, and "the same job" is the same fingerprint: a case
here that wrongly says "same" would skip an ingestion, one that wrongly says "different" would
ingest twice.

Every field of a job spec that can change what lands in a table is part of its identity.

The fields are generated from schemas/ingestionjob.schema.json: each writable field is changed in
turn, and the plan must notice, through the job's fingerprint (a new job is planned) or the saved
plan's checksum (a reviewed plan goes stale). Only the fields on IGNORED are exempt.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from reconciler.kinds.ingestion_job import (
    JobIdentity,
    compared_form,
    job_identity,
    spec_fingerprint,
)
from reconciler.kinds.ingestion_job.identity import Place, place_of
from reconciler.live import LiveState
from reconciler.model import Kind, Location, Resource
from reconciler.plan import checksum
from tests.builders import ENDPOINT, edited, job_spec, s3
from tests.fixtures import ROOT

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


# Every field of the schema, changed in turn -------------------------------------------------------

# Fields a job spec cannot change: each allows exactly one value, so there is nothing to mutate.
IGNORED = {
    "type": "const batch: this tool declares only batch jobs",
    "target.type": "only table",
    "source.type": "only s3",
}
SELECTORS = ("uris", "prefixes", "objects", "pattern")  # exactly one: a change swaps them
WEBLOGS = Place("aws", "acme-weblogs", "logs/")
BASE: dict[str, Any] = {
    "type": "batch",
    "target": {"type": "table", "tableName": "web_requests"},
    "createTableIfNotExists": False,
    "source": {
        "type": "s3",
        "connectionName": "weblogs-s3",
        "prefixes": ["logs/edge/2026/11/01/"],
        "formatSettings": {"format": "csv", "columns": ["ts", "n"], "skipHeaderRows": 1},
        "inputSchema": [{"name": "ts", "dataType": "string"}, {"name": "n", "dataType": "long"}],
    },
    "mappings": [
        {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
        {"columnName": "n", "expression": '"n"'},
    ],
    "ingestionMode": "append",
    "filterExpression": '"n" > 0',
    "maxParseExceptions": 10,
    "partitionedBy": "day",
    "clusteringColumns": ["n"],
    "replaceAll": False,
    "context": {"maxNumTasks": 2},
}


@cache
def _document(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8")))


def _resolve(schema: dict[str, Any], file: str) -> tuple[dict[str, Any], str]:
    while "$ref" in schema:
        target, _, pointer = schema["$ref"].partition("#")
        file = target or file
        resolved: Any = _document(file)
        for part in pointer.strip("/").split("/"):
            resolved = resolved[part]
        schema = {**resolved, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, file


def _properties(schema: dict[str, Any], file: str, value: Any) -> dict[str, Any]:
    """An object's properties, with those of the if/then variant its value selects."""
    properties = dict(schema.get("properties", {}))
    for variant in schema.get("allOf", []):
        condition = variant.get("if", {}).get("properties", {})
        if condition and all(
            isinstance(value, dict) and value.get(k) == c.get("const") for k, c in condition.items()
        ):
            then, _ = _resolve(variant["then"], file)
            for name, sub in then.get("properties", {}).items():
                properties.setdefault(name, sub)
    return properties


def _sample(schema: dict[str, Any], current: Any) -> Any:
    """A valid value for the schema that differs from `current` (None: no such value)."""
    if "const" in schema:
        return None
    if "enum" in schema:
        others = [v for v in schema["enum"] if v != current and v != schema.get("default")]
        return others[0] if others else None
    kind = schema.get("type")
    if kind == "boolean":
        return not current if current is not None else not schema.get("default", False)
    if kind == "integer":
        return (current if current is not None else schema.get("default", 0)) + 1
    if kind == "string":
        return (current or "") + "mutated"
    if kind == "array":
        return [*(current or []), "mutated"]
    if kind == "object":
        return {**(current or {}), "mutated": "yes"}
    raise AssertionError(f"no sample for {schema}")


def mutations(
    schema: dict[str, Any], file: str, value: Any, path: str = ""
) -> Iterator[tuple[str, Any]]:
    """(field path, a changed copy of `value`) for every field the schema allows, recursively."""
    schema, file = _resolve(schema, file)
    for name, sub in _properties(schema, file, value).items():
        sub, sub_file = _resolve(sub, file)
        field = f"{path}.{name}" if path else name
        current = value.get(name)
        if sub.get("type") == "object" and "properties" in sub and isinstance(current, dict):
            for inner, changed in mutations(sub, sub_file, current, field):
                yield inner, None if changed is None else {**value, name: changed}
            continue
        items, _ = _resolve(sub.get("items", {}), sub_file)
        if sub.get("type") == "array" and "properties" in items and current:
            for inner, changed in mutations(items, sub_file, current[0], f"{field}[]"):
                yield inner, None if changed is None else {**value, name: [changed, *current[1:]]}
            continue
        sample = _sample(sub, current)
        if sample is None:
            yield field, None
            continue
        if name in SELECTORS and current is None:
            if name == "pattern":
                sample = "logs/**.json"
            changed = {k: v for k, v in value.items() if k not in SELECTORS}
            yield field, {**changed, name: sample}
            continue
        yield field, {**value, name: sample}


def _noticed(spec: dict[str, Any]) -> bool:
    def resource(body: dict[str, Any]) -> Resource:
        return Resource(
            Kind.INGESTION_JOB,
            "job",
            body,
            Location("jobs.yaml"),
            fingerprint=spec_fingerprint(compared_form(body)),
        )

    empty = LiveState()
    same_identity = job_identity(compared_form(spec), WEBLOGS) == job_identity(
        compared_form(BASE), WEBLOGS
    )
    same_checksum = checksum([resource(spec)], empty) == checksum([resource(BASE)], empty)
    return not (same_identity and same_checksum)


GENERATED = list(
    mutations(
        _document("ingestionjob.schema.json")["definitions"]["spec"],
        "ingestionjob.schema.json",
        BASE,
    )
)


def test_the_generated_fields_cover_the_schema_and_the_ignore_list_is_current() -> None:
    fields = {field for field, _ in GENERATED}
    assert {
        "source.formatSettings.skipHeaderRows",
        "mappings[].isAggregation",
        "target.intervals",
    } <= fields
    assert set(IGNORED) <= fields, "an ignored field the schema no longer has"
    assert {field for field, spec in GENERATED if spec is None} <= set(IGNORED)


@pytest.mark.parametrize(
    ("field", "spec"),
    [(f, s) for f, s in GENERATED if s is not None],
    ids=[f for f, s in GENERATED if s is not None],
)
def test_changing_any_job_field_is_noticed_by_the_plan(field: str, spec: dict[str, Any]) -> None:
    assert spec != BASE
    assert field in IGNORED or _noticed(copy.deepcopy(spec)), f"{field} can change unnoticed"
