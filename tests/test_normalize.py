"""Normalization: what Polaris adds or hides is never a difference, and job identity is stable."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import kinds
from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.ingestion_job import SpecFingerprint, compared_form, spec_fingerprint
from reconciler.model import Kind
from reconciler.normalize import diff
from reconciler.values import FieldOp
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
