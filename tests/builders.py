"""Small values for the unit tests of the pure layers: desired resources, live state, plans.

Each builder makes the smallest valid value of its sort and takes keyword overrides, so a test's
table shows only what its case is about. No emulator, no network: a `LiveState` is built here
as the reader would have built it from Polaris's answers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler import kinds
from reconciler.kinds.ingestion_job import JobState, LiveJob
from reconciler.kinds.ingestion_job.identity import Place
from reconciler.live import LiveState
from reconciler.model import Kind, Location, Resource, Secret
from reconciler.plan import Plan
from reconciler.values import Change

ENDPOINT = "s3.us-east-1.amazonaws.com"
SECRET_ID = "AKIAUNITTESTUNITTEST"
SECRET_VALUE = "unit-secret-value-never-shown"
SECRET_REFERENCES = ("${env:UNIT_AWS_ACCESS_KEY_ID}", "${env:UNIT_AWS_SECRET_ACCESS_KEY}")


def resource(
    kind: Kind, name: str, spec: Mapping[str, Any] | None = None, *, external: bool = False
) -> Resource:
    """A desired resource as validate makes it (with its identity); external: policy.manage."""
    spec = dict(spec or {})
    fingerprint, compared = kinds.of(kind).identified(spec) if spec else (None, None)
    return Resource(
        kind=kind,
        name=name,
        spec=spec,
        location=Location(f"manifests/{name}.yaml"),
        policy={"manage": "external"} if external else {},
        fingerprint=fingerprint,
        compared=compared,
    )


def secrets() -> dict[str, Any]:
    """S3 access-key secrets as validate expands them: values wrapped, with their references."""
    return {
        "type": "access_key",
        "accessKeyId": Secret(SECRET_ID, SECRET_REFERENCES[0]),
        "accessKeySecret": Secret(SECRET_VALUE, SECRET_REFERENCES[1]),
    }


def s3(**fields: Any) -> dict[str, Any]:
    """An S3 connection spec (the bucket `zoo`), with `fields` replacing or adding fields."""
    return {"type": "s3", "bucket": "zoo", "awsEndpoint": ENDPOINT, **fields}


def detail_table(**fields: Any) -> dict[str, Any]:
    """A detail table spec with one column besides __time."""
    return {"type": "detail", "schema": [{"name": "city", "dataType": "string"}], **fields}


def job_spec(
    *, table: str = "t", connection: str = "zoo", mode: str | None = None, **selector: Any
) -> dict[str, Any]:
    """A batch job spec; `selector` is its object selector (default: one object)."""
    spec: dict[str, Any] = {
        "type": "batch",
        "target": {"type": "table", "tableName": table},
        "source": {
            "type": "s3",
            "connectionName": connection,
            **(selector or {"objects": ["penguins/adelaide.json"]}),
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [
                {"name": "ts", "dataType": "string"},
                {"name": "city", "dataType": "string"},
            ],
        },
        "mappings": [
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "city", "expression": '"city"'},
        ],
    }
    if mode is not None:
        spec["ingestionMode"] = mode
    return spec


def streaming_spec(
    *, table: str = "t", connection: str = "clicks", **fields: Any
) -> dict[str, Any]:
    """A StreamingJob spec reading a push streaming connection into a table."""
    return {
        "target": {"type": "table", "tableName": table},
        "source": {
            "type": "connection",
            "connectionName": connection,
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [
                {"name": "ts", "dataType": "string"},
                {"name": "page", "dataType": "string"},
            ],
        },
        "mappings": [
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "page", "expression": '"page"'},
        ],
        **fields,
    }


def edited(spec: Mapping[str, Any], **paths: Any) -> dict[str, Any]:
    """A deep copy of `spec` with dotted paths set (`source__uris=[...]`: `__` for a dot)."""
    copied = copy.deepcopy(dict(spec))
    for dotted, value in paths.items():
        *parents, last = dotted.split("__")
        node = copied
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return copied


def live_connection(name: str, spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A connection as Polaris returns it: secrets and their type never returned, users and
    timestamps added."""
    body = {key: value for key, value in (spec or s3()).items() if key != "secrets"}
    return {
        **body,
        "name": name,
        "createdOn": "2026-01-01T00:00:00Z",
        "modifiedOn": "2026-01-01T00:00:00Z",
    }


def live_table(
    name: str, spec: Mapping[str, Any] | None = None, *, rows: int = 0, version: int = 1
) -> dict[str, Any]:
    """A table as Polaris returns it: its __time column listed, server-chosen fields filled."""
    body = dict(spec or detail_table())
    return {
        "schemaMode": "flexible",
        "partitioningGranularity": "day",
        **body,
        "name": name,
        "id": f"id-{name}",
        "version": version,
        "totalRows": rows,
        "schema": [{"name": "__time", "dataType": "timestamp"}, *body.get("schema", [])],
    }


def live_job(
    spec: Mapping[str, Any],
    status: str = "completed",
    *,
    id: str = "job-1",
    connections: Mapping[str, Mapping[str, Any]] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    health: Mapping[str, Any] | None = None,
    declared: Mapping[str, Place] | None = None,
) -> LiveJob:
    """A live job created from `spec`, as the reader resolves it through `connections` (by
    default the one S3 connection `zoo`) and the places the manifests declare for them;
    Polaris echoes the request under `spec`."""
    body = {
        "id": id,
        "type": "batch",
        "executionStatus": status,
        "createdTimestamp": created,
        "health": dict(health or {"status": "ok"}),
        "spec": copy.deepcopy(dict(spec)),
    }
    known = connections if connections is not None else {"zoo": live_connection("zoo")}
    return LiveJob.of(body, known, declared)


def live_state(
    connections: Mapping[str, Mapping[str, Any]] | None = None,
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    jobs: Iterable[LiveJob] = (),
    active_job_connections: Iterable[str] = (),
) -> LiveState:
    """A project's live state as the reader leaves it (nothing at all by default)."""
    return LiveState(
        {
            Kind.CONNECTION: dict(connections or {}),
            Kind.TABLE: dict(tables or {}),
            Kind.INGESTION_JOB: JobState(tuple(jobs), frozenset(active_job_connections)),
        }
    )


def change(kind: Kind = Kind.CONNECTION, name: str = "c", **fields: Any) -> Change:
    """A planned change with only the fields a test sets (noop, up to date, by default)."""
    from reconciler.model import Action

    return Change(
        kind, name, fields.pop("action", Action.NOOP), fields.pop("reason", "r"), **fields
    )


def plan_of(*changes: Change, **fields: Any) -> Plan:
    """A plan holding `changes`."""
    return Plan(tuple(changes), **fields)


# The samples most tables start from: a connection, a table and one job reading through them.
ZOO = resource(Kind.CONNECTION, "zoo", s3())
T = resource(Kind.TABLE, "t", detail_table())
JOB = job_spec()
PLACES = {"zoo": live_connection("zoo")}  # zoo exists as declared
