"""Normalization: what Polaris adds or hides is never a difference, and job identity is stable.

Normalization per kind, as tables: what is a difference between a manifest and live state.

Each case is (desired, live) and the field paths `plan` would show as changed. The cases for
each kind's declared fields (defaults, server-chosen, write-only, read-only) and for every
connection type are generated from the kinds' own declarations and from
`connection_types.CONNECTION_TYPES`, so a new field or type is covered without a new case.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import connection_types, kinds
from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.ingestion_job import SpecFingerprint, compared_form, spec_fingerprint
from reconciler.model import Kind
from reconciler.normalize import diff
from reconciler.values import FieldChange, FieldOp
from tests.builders import detail_table, job_spec, s3, secrets, streaming_spec
from tests.connections import CONNECTIONS
from tests.fixtures import IN_PROCESS_HOSTS
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB

USER = {"username": "api-key-pok_vipgj...bjjvyo", "userId": "a52cacf6-3ddc-48e5-8675-xxxxxxxxxxxx"}

# The guide's sample responses, as Polaris returns them for the guide's requests.
GUIDE_CONNECTION_RESPONSE = {
    "type": "s3",
    "name": "demo-conn",
    "submittedByUser": USER,
    "submittedOnTimestamp": "2022-10-27T21:04:03Z",
    "modifiedByUser": USER,
    "modifiedOnTimestamp": "2022-10-27T21:04:03Z",
    "awsEndpoint": "s3.us-east-1.amazonaws.com",
    "bucket": "demo-bucket",
    "secrets": {"type": "access_key"},
}
GUIDE_JOB_RESPONSE: dict[str, Any] = {
    "type": "batch",
    "id": "674f3355-7e17-4158-8f53-de3d5b4ee7c4",
    "target": {"type": "table", "tableName": "Koalas"},
    "createTableIfNotExists": True,
    "desiredExecutionStatus": "running",
    "createdBy": USER,
    "lastModifiedBy": USER,
    "executionStatus": "pending",
    "health": {"status": "ok"},
    "createdTimestamp": "2022-10-28T21:36:36.547149211Z",
    "lastUpdatedTimestamp": "2022-10-28T21:36:36.547149211Z",
    "source": copy.deepcopy(GUIDE_JOB["source"]),
    "ingestionMode": "append",
    "mappings": [
        {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'},
        {"columnName": "city", "expression": '"city"'},
        {"columnName": "session", "expression": '"session"'},
        {"columnName": "max_session_length", "expression": 'MAX("session_length")'},
        {"columnName": "__count", "expression": "COUNT(*)"},
    ],
}


def fingerprint(spec: Mapping[str, Any]) -> SpecFingerprint:
    """The fingerprint validation takes of a job's spec."""
    return spec_fingerprint(compared_form(spec))


def test_the_guides_job_response_has_the_same_fingerprint_as_its_request() -> None:
    assert fingerprint(GUIDE_JOB_RESPONSE) == fingerprint(GUIDE_JOB)


def test_the_guides_job_response_shows_no_difference_from_its_request() -> None:
    job = Kind.INGESTION_JOB
    assert (
        diff(kinds.of(job).normalize(GUIDE_JOB_RESPONSE), kinds.of(job).normalize(GUIDE_JOB)) == []
    )


def test_the_guides_connection_response_shows_no_difference_from_its_request() -> None:
    conn = Kind.CONNECTION
    assert (
        diff(
            kinds.of(conn).normalize(GUIDE_CONNECTION_RESPONSE),
            kinds.of(conn).normalize(GUIDE_CONNECTION),
        )
        == []
    )


def test_a_job_echoed_under_spec_is_compared_by_the_echo() -> None:
    response = {"id": "x", "executionStatus": "completed", "spec": copy.deepcopy(GUIDE_JOB)}
    assert fingerprint(response) == fingerprint(GUIDE_JOB)


def test_writing_a_default_explicitly_is_the_same_job() -> None:
    explicit = {
        **copy.deepcopy(GUIDE_JOB),
        "ingestionMode": "append",
        "maxParseExceptions": 2147483647,
    }
    assert fingerprint(explicit) == fingerprint(GUIDE_JOB)


def test_the_order_of_uris_and_mappings_does_not_change_a_jobs_identity() -> None:
    reordered = copy.deepcopy(GUIDE_JOB)
    reordered["mappings"].reverse()
    reordered["source"]["inputSchema"].reverse()
    assert fingerprint(reordered) == fingerprint(GUIDE_JOB)


def test_a_different_object_or_expression_is_a_different_job() -> None:
    other_file = copy.deepcopy(GUIDE_JOB)
    other_file["source"]["uris"] = ["s3://demo-bucket/polaris-ingest/other.json.gz"]
    other_expression = copy.deepcopy(GUIDE_JOB)
    other_expression["mappings"][1]["expression"] = 'UPPER("city")'
    assert (
        len({fingerprint(GUIDE_JOB), fingerprint(other_file), fingerprint(other_expression)}) == 3
    )


def test_secret_values_never_reach_a_comparison() -> None:
    normalized = kinds.of(Kind.CONNECTION).normalize(GUIDE_CONNECTION)
    assert normalized["secrets"] == {"type": "access_key"}


def test_a_tables_read_only_fields_and_time_column_are_not_differences() -> None:
    desired = {"type": "detail", "schema": [{"name": "city", "dataType": "string"}]}
    live = {
        "name": "t", "type": "detail", "version": 3, "id": "abc", "totalRows": 10,
        "partitioningGranularity": "day", "schemaMode": "flexible", "availability": "available",
        "schema": [{"name": "__time", "dataType": "timestamp"}, {"name": "city", "dataType": "string"}],
    }  # fmt: skip
    manage = frozenset()
    assert (
        diff(
            kinds.of(Kind.TABLE).normalize(live, manage=manage),
            kinds.of(Kind.TABLE).normalize(desired, manage=manage),
        )
        == []
    )


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
selectors = st.sampled_from(["uris", "prefixes", "objects", "pattern"])


@settings(max_examples=100, deadline=None)
@given(
    fields=st.lists(names, min_size=1, max_size=6, unique=True),
    keys=st.lists(names, min_size=1, max_size=4, unique=True),
    selector=selectors,
    mode=st.sampled_from([None, "append"]),
    rollup=st.booleans(),
    csv=st.booleans(),
    max_errors=st.one_of(st.none(), st.integers(0, 1000)),
)
def test_any_job_created_in_the_emulator_and_read_back_shows_no_change(
    fields: list[str],
    keys: list[str],
    selector: str,
    mode: str | None,
    rollup: bool,
    csv: bool,
    max_errors: int | None,
) -> None:
    source: dict[str, Any] = {
        "type": "s3",
        "connectionName": "c",
        "formatSettings": {"format": "csv", "skipHeaderRows": 1} if csv else {"format": "nd-json"},
        "inputSchema": [{"name": f, "dataType": "string"} for f in fields],
    }
    objects = [f"{k}/part.json" for k in keys]
    source[selector] = {
        "uris": [f"s3://b/{o}" for o in objects],
        "prefixes": [f"{k}/" for k in keys],
        "objects": objects,
        "pattern": f"{keys[0]}/**.json",
    }[selector]
    job: dict[str, Any] = {
        "type": "batch",
        "target": {"type": "table", "tableName": "t"},
        "createTableIfNotExists": True,
        "source": source,
        "mappings": [{"columnName": "__time", "expression": f'TIME_PARSE("{fields[0]}")'}]
        + [{"columnName": f"c_{f}", "expression": f'"{f}"'} for f in fields[1:]],
    }
    if mode:
        job["ingestionMode"] = mode
    if max_errors is not None:
        job["maxParseExceptions"] = max_errors
    if rollup:
        job["mappings"].append({"columnName": "n", "expression": "COUNT(*)", "isAggregation": True})
    emulator = Emulator()
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with PolarisClient(config, transport=emulator.transport()) as client:
        client.create_connection({"type": "s3", "name": "c", "bucket": "b", "awsEndpoint": "e"})
        created = client.create_job(job)
        read_back = client.get_job(created["id"])
    assert read_back is not None
    for live in (created, read_back, {k: v for k, v in read_back.items() if k != "spec"}):
        assert fingerprint(live) == fingerprint(job)
        assert (
            diff(
                kinds.of(Kind.INGESTION_JOB).normalize(live),
                kinds.of(Kind.INGESTION_JOB).normalize(job),
            )
            == []
        )


# Every connection type, as the emulator returns it after a create from tests/connections.py: the
# read-only endpointUrl and the defaults it fills are never differences, secrets never compared.
@pytest.mark.parametrize("example", sorted(CONNECTIONS))
def test_every_connection_type_read_back_shows_no_difference_from_its_request(
    example: str,
) -> None:
    emulator = Emulator()
    with PolarisClient(
        ClientConfig(
            "http://polaris.test",
            DEMO_PROJECT_ID,
            DEMO_API_KEY,
            insecure=True,
            allowed_hosts=IN_PROCESS_HOSTS,
        ),
        transport=emulator.transport(),
    ) as client:
        request = {**copy.deepcopy(CONNECTIONS[example]), "name": "c"}
        # As a manifest can declare it: an SSL keystore holds a private key, so it cannot be.
        request.get("ssl", {}).pop("keystore", None)
        client.create_connection(request)
        live = client.get_connection("c")
    assert live is not None
    desired, actual = kinds.of(Kind.CONNECTION).comparable(request, live)
    assert diff(actual, desired) == []
    assert "secrets" not in actual and "endpointUrl" not in actual


def test_a_field_change_holds_its_path_as_parts_and_is_dotted_only_in_output() -> None:
    (change,) = diff({"mappings": [{"expression": "a"}]}, {"mappings": [{"expression": "b"}]})
    assert change.path == ("mappings", 0, "expression")
    assert (change.op, change.field) == (FieldOp.CHANGE, "mappings")
    assert change.to_json() == {
        "path": "mappings[0].expression", "op": "change", "before": "a", "after": "b",
    }  # fmt: skip


def test_a_key_holding_dots_and_brackets_stays_one_part_of_a_field_changes_path() -> None:
    before = {"schema": {"a.b[0]": {"dataType": "long"}}}
    (change,) = diff(before, {"schema": {"a.b[0]": {"dataType": "string"}}})
    assert change.path == ("schema", "a.b[0]", "dataType")
    assert change.field == "schema"
    added, removed = diff({}, {"x": [1]}), diff({"x": [1]}, {})
    assert [(c.op, c.path) for c in added + removed] == [
        (FieldOp.ADD, ("x",)),
        (FieldOp.REMOVE, ("x",)),
    ]


# Per kind, as tables ------------------------------------------------------------------------------

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


def test_a_long_set_of_keys_a_kind_declares_is_one_summarised_change_and_a_plain_list_is_not() -> (
    None
):
    keys = [f"day-{n:03d}/" for n in range(150)]
    before, after = {"source": {"keys": keys}}, {"source": {"keys": [*keys[1:], "day-new/"]}}
    assert diff(before, after, [("source", "keys")]) == [
        FieldChange(
            ("source", "keys"), "150 keys", "150 keys: 1 added, 1 removed (such as day-new/)"
        )
    ]
    assert len(diff(before, after)) > 1  # not declared a set: compared item by item
    added = diff({}, {"source": {"keys": keys}}, [("source", "keys")])
    assert [change.path for change in added] == [("source",), ("source", "keys")]


def test_the_job_kind_declares_its_object_selectors_as_sets_of_keys() -> None:
    assert kinds.of(Kind.INGESTION_JOB).key_sets == (
        ("source", "uris"), ("source", "prefixes"), ("source", "objects"),
    )  # fmt: skip
