"""Tables v1: list, create, read and update (with the table's version), and unused segments."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler.emulator import validation
from reconciler.emulator.api import ApiError, Call, Response, invalid, not_found, one_of
from reconciler.emulator.auth import MANAGE_TABLES, user
from reconciler.emulator.clock import timestamp
from reconciler.emulator.routing import Route

if TYPE_CHECKING:
    from reconciler.emulator.state import Project

TABLE_TYPES = frozenset({"detail", "aggregate"})
GRANULARITIES = frozenset(
    {
        "second",
        "minute",
        "five_minute",
        "ten_minute",
        "fifteen_minute",
        "thirty_minute",
        "hour",
        "six_hour",
        "eight_hour",
        "day",
        "month",
        "quarter",
        "year",
        "all",
    }
)
WRITABLE = (
    "description",
    "partitioningGranularity",
    "schemaMode",
    "schema",
    "clusteringColumns",
    "storagePolicy",
    "queryGranularity",
    "timeResolution",
)
# The list returns summaries (the OpenAPI's TableSummaryPayload): no schema, no clustering.
SUMMARY = ("availability", "createdByUser", "createdOnTimestamp", "id", "modifiedByUser", "modifiedOnTimestamp", "name",
           "partitioningGranularity", "schemaMode", "segmentCount", "storagePolicy", "precachedDataSizeBytes",
           "totalDataSizeBytes", "totalRows", "type", "version", "description")  # fmt: skip


def list_tables(emulator: Project, call: Call) -> Response:
    """GET /tables: summaries, by name."""
    tables = sorted(emulator.store.tables.values(), key=lambda t: t["name"])
    return Response(200, {"values": [{k: t[k] for k in SUMMARY if k in t} for t in tables]})


def existing(emulator: Project, name: str) -> dict[str, Any]:
    """A table by name (404 when there is none)."""
    if name not in emulator.store.tables:
        raise not_found(f"Table {name} not found")
    return emulator.store.tables[name]


def get_table(emulator: Project, call: Call) -> Response:
    """GET /tables/{tableName}."""
    return Response(200, existing(emulator, call.params["tableName"]))


def unused_segments(emulator: Project, call: Call) -> Response:
    """GET /tables/{tableName}/unusedSegments: the emulator never leaves any."""
    existing(emulator, call.params["tableName"])
    return Response(200, {"values": []})


def _check(body: Mapping[str, Any]) -> None:
    if not one_of(body.get("type"), TABLE_TYPES):
        raise invalid("type is required and must be detail or aggregate")
    if "partitioningGranularity" in body and not one_of(
        body["partitioningGranularity"], GRANULARITIES
    ):
        raise invalid(f"Unknown partitioningGranularity {body['partitioningGranularity']}")
    if "schemaMode" in body and not one_of(body["schemaMode"], {"flexible", "strict"}):
        raise invalid("schemaMode must be flexible or strict")
    schema = body.get("schema", [])
    if not isinstance(schema, list) or not all(
        isinstance(c, dict) and c.get("name") and c.get("dataType") for c in schema
    ):
        raise invalid("schema must be a list of columns with name and dataType")
    if body["type"] == "aggregate":
        # The OpenAPI's AggregateTableColumn requires a type (its discriminator).
        for column in schema:
            if not one_of(column.get("type"), {"dimension", "measure"}):
                raise invalid(
                    f"Column {column['name']} of an aggregate table needs a type: dimension or measure"
                )
    # The OpenAPI requires a version, yet tells clients not to send one on create: 0 then.
    payload = "DetailTablePayload" if body["type"] == "detail" else "AggregateTablePayload"
    validation.check(payload, {"version": 0, **body})
    names = {c["name"] for c in schema}
    missing = [c for c in body.get("clusteringColumns", []) if c not in names]
    if missing and body.get("schemaMode") == "strict":
        raise invalid(f"Clustering column(s) not in the schema: {', '.join(missing)}")


# What Druid reports for the DuckDB types ingestion stores (the OpenAPI's TableColumnDataType).
DATA_TYPES = {"TIMESTAMP": "timestamp", "BIGINT": "long", "INTEGER": "long", "HUGEINT": "long",
              "DOUBLE": "double", "FLOAT": "float", "VARCHAR": "string", "BOOLEAN": "long"}  # fmt: skip


def druid_type(duckdb_type: str) -> str:
    """The data type Polaris reports for a column stored with this DuckDB type."""
    return DATA_TYPES.get(duckdb_type.split("(")[0].split(" ")[0], "string")


def queryable_schema(
    record: Mapping[str, Any], stored: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """The OpenAPI's `queryableSchema`: `__time`, the declared columns, then the `stored`
    columns (name, Polaris data type) that were not declared: those ingestion discovered."""
    time = {"name": "__time", "dataType": "timestamp", "isDiscovered": False}
    declared = [c for c in record.get("schema", []) if c["name"] != "__time"]
    names = {"__time", *(c["name"] for c in declared)}
    return [
        time,
        *({"name": c["name"], "dataType": c.get("dataType", "string"), "isDiscovered": False}
          for c in declared),
        *({"name": name, "dataType": kind, "isDiscovered": True}
          for name, kind in stored if name not in names),
    ]  # fmt: skip


def create_table(emulator: Project, call: Call) -> Response:
    """POST /tables."""
    body = call.body
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise invalid("name must be 1-255 characters")
    _check(body)
    if name in emulator.store.tables:
        raise ApiError(409, "Conflict", f"Table {name} already exists")
    record = new_table(emulator, call.caller, name, body)
    emulator.store.put("tables", name, record)
    location = quote(f"/v1/projects/{emulator.project_id}/tables/{name}")
    return Response(201, record, {"Location": location})


def new_table(emulator: Project, caller: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A table record as Polaris fills it: the request, defaults and read-only fields."""
    creator, now = user(caller), timestamp(emulator.now())
    record: dict[str, Any] = {
        "name": name, "type": body["type"], "version": 0, "id": str(uuid.uuid4()),
        "availability": "available", "partitioningGranularity": "day",
        # Inferred: the OpenAPI gives no default; tables created by jobs are flexible
        # (docs/polaris-api-notes.md, Tables v1).
        "schemaMode": "flexible", "schema": [], "clusteringColumns": [],
        "totalRows": 0, "segmentCount": 0, "segmentTotalBytes": 0, "segmentCompactedBytes": 0,
        "totalDataSizeBytes": 0, "precachedDataSizeBytes": 0,
        "createdByUser": creator, "createdOnTimestamp": now, "modifiedByUser": creator, "modifiedOnTimestamp": now,
    }  # fmt: skip
    if body["type"] == "aggregate":
        record["timeResolution"] = "millisecond"  # the OpenAPI default
    record.update({k: body[k] for k in WRITABLE if k in body})
    record["queryableSchema"] = queryable_schema(record)
    return record


def update_table(emulator: Project, call: Call) -> Response:
    """PUT /tables/{tableName}: only with the current version; columns change only when empty."""
    name = call.params["tableName"]
    current = existing(emulator, name)
    body = call.body
    if body.get("version") != current["version"]:
        raise ApiError(
            409,
            "Conflict",
            f"Table version {body.get('version')} is stale; the current version is {current['version']}",
        )
    _check(body)  # the OpenAPI's TablePayload: name, type and version are required here too
    if body["type"] != current["type"]:
        raise invalid("The type of a table cannot change")
    if body["name"] != name:
        raise invalid("The name of a table cannot change")  # TableName: "unique, immutable"
    old = {c["name"]: c for c in current.get("schema", [])}
    new = {c["name"]: c for c in body.get("schema", current.get("schema", []))}
    altered = [n for n, c in old.items() if new.get(n) != c]
    busy = current["totalRows"] > 0 or any(
        j["target"].get("tableName") == name for j in emulator.active_jobs()
    )
    if altered and busy:
        raise invalid(
            f"Columns {', '.join(altered)} can only be changed or removed while the table is empty and has no active jobs"
        )
    record = {**current, **{k: body[k] for k in WRITABLE if k in body}}
    discovered = [
        (c["name"], c["dataType"]) for c in current.get("queryableSchema", []) if c["isDiscovered"]
    ]
    record.update(
        queryableSchema=queryable_schema(record, discovered),
        version=current["version"] + 1,
        modifiedByUser=user(call.caller),
        modifiedOnTimestamp=timestamp(emulator.now()),
    )
    emulator.store.put("tables", name, record)
    return Response(200, record)


ROUTES = (
    Route("GET", "/tables", list_tables),
    Route("POST", "/tables", create_table, MANAGE_TABLES),
    Route("GET", "/tables/{tableName}", get_table),
    Route("PUT", "/tables/{tableName}", update_table, MANAGE_TABLES),
    Route("GET", "/tables/{tableName}/unusedSegments", unused_segments),
)
