"""Normalization per kind, as tables: what is a difference between a manifest and live state.

Each case is (desired, live) and the field paths `plan` would show as changed. The cases for
each kind's declared fields (defaults, server-chosen, write-only, read-only) and for every
connection type are generated from the kinds' own declarations and from
`connection_types.CONNECTION_TYPES`, so a new field or type is covered without a new case.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from reconciler import connection_types, kinds
from reconciler.model import Kind
from reconciler.normalize import diff
from tests.builders import detail_table, job_spec, s3, secrets, streaming_spec

BASE: dict[Kind, dict[str, Any]] = {
    Kind.CONNECTION: s3(),
    Kind.TABLE: detail_table(),
    Kind.INGESTION_JOB: job_spec(),
    Kind.STREAMING_JOB: streaming_spec(),
}
# A value Polaris could have chosen for each server-chosen field, and another one a manifest sets.
SERVER_CHOSEN = {
    "schemaMode": ("flexible", "strict"),
    "storagePolicy": ({"retain": {"type": "forever"}}, {"retain": {"type": "period"}}),
    "queryGranularity": ({"type": "simple", "granularity": "hour"}, {"type": "all"}),
}
# For each write-only field: what a manifest declares, and a returned value that differs from it.
WRITE_ONLY = {
    "secrets": (secrets(), {"type": "sas_token"}),
}


def changed(kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The paths `plan` shows as differing between `desired` and `live`."""
    wanted, actual = kinds.of(kind).comparable(desired, live)
    return [change.dotted for change in diff(actual, wanted)]


def fields_changed(kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The top-level fields `plan` shows as differing."""
    wanted, actual = kinds.of(kind).comparable(desired, live)
    return list(dict.fromkeys(change.field for change in diff(actual, wanted)))


def without(spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key != name}


# Every kind's declared fields --------------------------------------------------------------------


def default_cases() -> Iterator[Any]:
    for kind in kinds.ordered():
        base = BASE[kind.kind]
        for name, default in kind.fields.defaults.items():
            omitted, written = without(base, name), {**without(base, name), name: default}
            yield pytest.param(
                kind.kind, omitted, written, id=f"{kind.kind} {name} left out equals it written"
            )
            yield pytest.param(
                kind.kind, written, omitted, id=f"{kind.kind} {name} written equals it left out"
            )


@pytest.mark.parametrize(("kind", "desired", "live"), list(default_cases()))
def test_a_documented_default_written_or_left_out_is_no_difference(
    kind: Kind, desired: dict[str, Any], live: dict[str, Any]
) -> None:
    assert changed(kind, desired, live) == []


def read_only_cases() -> Iterator[Any]:
    for kind in kinds.ordered():
        for name in kind.fields.read_only:
            yield pytest.param(kind.kind, name, id=f"{kind.kind} {name} is never compared")


@pytest.mark.parametrize(("kind", "name"), list(read_only_cases()))
def test_a_read_only_field_the_server_returns_is_no_difference(kind: Kind, name: str) -> None:
    base = BASE[kind]
    assert changed(kind, base, {**base, name: "chosen by the server"}) == []


def server_chosen_cases() -> Iterator[Any]:
    for kind in kinds.ordered():
        base = BASE[kind.kind]
        for name in sorted(kind.fields.server_chosen):
            chosen, declared = SERVER_CHOSEN[name]
            live = {**base, name: chosen}
            yield pytest.param(
                kind.kind, without(base, name), live, [],
                id=f"{kind.kind} {name} left out is not managed",
            )  # fmt: skip
            yield pytest.param(
                kind.kind, {**base, name: declared}, live, [name],
                id=f"{kind.kind} {name} declared is managed",
            )  # fmt: skip
            yield pytest.param(
                kind.kind, {**base, name: chosen}, live, [],
                id=f"{kind.kind} {name} declared as the server chose it is no difference",
            )  # fmt: skip


@pytest.mark.parametrize(("kind", "desired", "live", "paths"), list(server_chosen_cases()))
def test_a_server_chosen_field_is_managed_only_when_a_manifest_declares_it(
    kind: Kind, desired: dict[str, Any], live: dict[str, Any], paths: list[str]
) -> None:
    assert fields_changed(kind, desired, live) == paths


def write_only_cases() -> Iterator[Any]:
    for kind in kinds.ordered():
        base = BASE[kind.kind]
        for name in kind.fields.write_only:
            declared, returned = WRITE_ONLY[name]
            yield pytest.param(
                kind.kind, {**base, name: declared}, without(base, name), [],
                id=f"{kind.kind} {name} not returned is not compared",
            )  # fmt: skip
            yield pytest.param(
                kind.kind, {**base, name: declared}, {**base, name: returned}, [name],
                id=f"{kind.kind} {name} returned is compared",
            )  # fmt: skip


@pytest.mark.parametrize(("kind", "desired", "live", "paths"), list(write_only_cases()))
def test_a_write_only_field_is_compared_only_when_the_server_returns_it(
    kind: Kind, desired: dict[str, Any], live: dict[str, Any], paths: list[str]
) -> None:
    assert fields_changed(kind, desired, live) == paths


# Every connection type ---------------------------------------------------------------------------

CONNECTION = kinds.of(Kind.CONNECTION)
TYPES = connection_types.CONNECTION_TYPES


def connection_type_cases() -> Iterator[Any]:
    for name, connection_type in TYPES.items():
        bare = {"type": name}
        for field, default in connection_type.defaults.items():
            written = {**bare, field: default}
            yield pytest.param(bare, written, [], id=f"{name}: {field} left out equals its default")
            yield pytest.param(
                written, bare, [], id=f"{name}: {field} as its default equals it left out"
            )
        for field in sorted({*CONNECTION.fields.read_only, *connection_type.read_only}):
            live = {**bare, field: "filled by Polaris"}
            yield pytest.param(bare, live, [], id=f"{name}: read-only {field} is never compared")
        if connection_type.secrets:
            declared = {**bare, "secrets": {"type": connection_type.secrets[0], "password": "x"}}
            yield pytest.param(
                declared, bare, [], id=f"{name}: secrets Polaris never returns are not compared"
            )
        yield pytest.param(
            {**bare, "description": "d"}, bare, ["description"],
            id=f"{name}: a declared description is compared",
        )  # fmt: skip
        for field in connection_type.fields:
            if field not in connection_type.defaults:
                yield pytest.param(
                    {**bare, field: "declared"}, {**bare, field: "live"}, [field],
                    id=f"{name}: its field {field} is compared",
                )  # fmt: skip


@pytest.mark.parametrize(("desired", "live", "paths"), list(connection_type_cases()))  # fmt: skip
def test_every_connection_types_fields_defaults_and_read_only_fields(
    desired: dict[str, Any], live: dict[str, Any], paths: list[str]
) -> None:
    assert changed(Kind.CONNECTION, desired, live) == paths


@pytest.mark.parametrize("name", list(TYPES))
def test_every_connection_types_read_only_fields_are_read_only_for_the_connection_kind(
    name: str,
) -> None:
    assert set(TYPES[name].read_only) <= set(CONNECTION.fields.read_only)


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [
        pytest.param(
            s3(secrets=secrets()), s3(secrets={"type": "access_key"}), [],
            id="secret values are never compared, only their type",
        ),
        pytest.param(
            s3(prefix="a/"), s3(), ["prefix"], id="a prefix added is a difference",
        ),
        pytest.param(
            s3(), s3(prefix="a/"), ["prefix"], id="a prefix only live is a difference",
        ),
        pytest.param(
            {"type": "kafka", "topicName": "t", "topicNameIsPattern": True},
            {"type": "kafka", "topicName": "t", "topicNameIsPattern": False},
            ["topicNameIsPattern"],
            id="a value other than the default is a difference",
        ),
        pytest.param(
            {"type": "confluent_schema_registry"},
            {"type": "confluent_schema_registry", "urls": ["https://r"]}, ["urls[0]"],
            id="a live list where the default is empty is a difference",
        ),
        pytest.param(
            {"type": "push_streaming", "description": "d"},
            {"type": "push_streaming", "description": "d", "endpointUrl": "https://e"}, [],
            id="push_streaming endpointUrl Polaris fills is no difference",
        ),
        pytest.param(
            {"type": "push_streaming", "description": "d"},
            {"type": "push_streaming", "endpointUrl": "https://e"}, ["description"],
            id="push_streaming description is compared beside its endpointUrl",
        ),
        pytest.param(
            s3(), {**s3(), "bucket": "other", "kafkaOnly": 1}, ["bucket"],
            id="fields no type declares are ignored, declared ones are not",
        ),
    ],
)  # fmt: skip
def test_connection_comparison(
    desired: dict[str, Any], live: dict[str, Any], paths: list[str]
) -> None:
    assert changed(Kind.CONNECTION, desired, live) == paths


# Tables ------------------------------------------------------------------------------------------

CITY = {"name": "city", "dataType": "string"}
BYTES = {"name": "bytes", "dataType": "long"}
TIME = {"name": "__time", "dataType": "timestamp"}


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [
        pytest.param(
            detail_table(schema=[CITY, BYTES]), detail_table(schema=[BYTES, CITY]), [],
            id="column order is no difference",
        ),
        pytest.param(
            detail_table(schema=[CITY]), detail_table(schema=[TIME, CITY]), [],
            id="the __time column Polaris lists is no difference",
        ),
        pytest.param(
            detail_table(schema=[CITY, BYTES]), detail_table(schema=[CITY]), ["schema.bytes"],
            id="a column added is a difference by its name",
        ),
        pytest.param(
            detail_table(schema=[{**CITY, "dataType": "long"}]), detail_table(schema=[CITY]),
            ["schema.city.dataType"], id="a column's type changed is a difference",
        ),
        pytest.param(
            {"type": "aggregate", "timeResolution": "millisecond"}, {"type": "aggregate"}, [],
            id="an aggregate table's default timeResolution written equals it left out",
        ),
        pytest.param(
            {"type": "aggregate"}, {"type": "aggregate", "timeResolution": "second"},
            ["timeResolution"], id="an aggregate table's other timeResolution is a difference",
        ),
        pytest.param(
            detail_table(), detail_table(type="aggregate"), ["timeResolution", "type"],
            id="a table's type is compared, with the defaults that come with it",
        ),
    ],
)  # fmt: skip
def test_table_comparison(desired: dict[str, Any], live: dict[str, Any], paths: list[str]) -> None:
    assert changed(Kind.TABLE, desired, live) == paths


# Jobs --------------------------------------------------------------------------------------------

JOB = job_spec()


def job_with(**fields: Any) -> dict[str, Any]:
    return {**job_spec(), **fields}


def source_with(**fields: Any) -> dict[str, Any]:
    spec = job_spec()
    spec["source"] = {**spec["source"], **fields}
    return spec


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [
        pytest.param(
            JOB, {"id": "j", "executionStatus": "completed", "spec": JOB}, [],
            id="a job echoed under spec is compared by its echo",
        ),
        pytest.param(
            JOB, {**JOB, "spec": job_spec(connection="other")},
            ["source.connectionName"], id="the echo under spec is preferred to the top level",
        ),
        pytest.param(
            source_with(formatSettings={"format": "csv"}),
            source_with(formatSettings={"format": "csv", "columns": [], "skipHeaderRows": 0,
                                        "delimiter": ","}),
            [], id="csv format defaults written equal them left out",
        ),
        pytest.param(
            source_with(formatSettings={"format": "csv", "delimiter": ";"}),
            source_with(formatSettings={"format": "csv"}),
            ["source.formatSettings.delimiter"], id="a csv delimiter other than the default differs",
        ),
        pytest.param(
            source_with(formatSettings={"format": "parquet", "binaryAsString": False}),
            source_with(formatSettings={"format": "parquet"}),
            [], id="a parquet default written equals it left out",
        ),
        pytest.param(
            source_with(objects=["b", "a"]), source_with(objects=["a", "b"]), [],
            id="the order of objects is no difference",
        ),
        pytest.param(
            source_with(uris=None, pattern=None), JOB, [],
            id="a selector or pattern set to null equals it left out",
        ),
        pytest.param(
            JOB, {**JOB, "mappings": [*JOB["mappings"],
                                      {"columnName": "__count", "expression": "COUNT(*)"}]},
            [], id="the __count mapping Polaris appends is no difference",
        ),
        pytest.param(
            job_with(mappings=[{"columnName": "m", "expression": 'MAX("b")',
                                "isAggregation": True}]),
            job_with(mappings=[{"columnName": "m", "expression": 'MAX("b")'}]),
            [], id="isAggregation left out is derived from an aggregating expression",
        ),
        pytest.param(
            job_with(mappings=[{"columnName": "m", "expression": '"max"',
                                "isAggregation": False}]),
            job_with(mappings=[{"columnName": "m", "expression": '"max"'}]),
            [], id="a column named max is not an aggregation",
        ),
        pytest.param(
            job_with(target={"type": "table", "tableName": "t", "intervals": []}), JOB, [],
            id="empty intervals equal them left out",
        ),
        pytest.param(
            job_with(mappings=list(reversed(JOB["mappings"]))), JOB, [],
            id="the order of mappings is no difference",
        ),
        pytest.param(
            source_with(inputSchema=list(reversed(JOB["source"]["inputSchema"]))), JOB, [],
            id="the order of the input schema is no difference",
        ),
        pytest.param(
            job_with(filterExpression='"city" = \'x\''), JOB, ["filterExpression"],
            id="a filter added differs",
        ),
    ],
)  # fmt: skip
def test_job_comparison(desired: dict[str, Any], live: dict[str, Any], paths: list[str]) -> None:
    assert changed(Kind.INGESTION_JOB, desired, live) == paths
