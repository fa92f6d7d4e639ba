"""Connections v1: list, create, read, update (PATCH), delete and test; connectionsMeta.

Sources: docs/polaris-api-notes.md (Connections v1) and tests/reference/polaris-openapi.json.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler.emulator.api import (
    ApiError,
    Call,
    Response,
    invalid,
    not_found,
    one_of,
    without_nulls,
)
from reconciler.emulator.auth import MANAGE_CONNECTIONS, user
from reconciler.emulator.clock import timestamp
from reconciler.emulator.connection_types import (
    CONNECTION_TYPES,
    ConnectionType,
    addresses,
    check,
    fill,
    view,
    writable,
)
from reconciler.emulator.kinesis import KinesisError, region_of
from reconciler.emulator.routing import Route
from reconciler.s3 import S3Error

if TYPE_CHECKING:
    from reconciler.emulator.state import Project

# Inferred: the reference documents do not say whether names differ by case; the emulator treats
# connection names, like table names (engine.storage_name), as case-sensitive keys, the way
# Druid treats datasource names, so `demo-conn` and `DEMO-conn` are two connections.
CONNECTION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def existing(emulator: Project, name: str) -> dict[str, Any]:
    """A connection by name (404 when there is none)."""
    if name not in emulator.store.connections:
        raise not_found(f"Connection {name} not found")
    return emulator.store.connections[name]


def list_connections(emulator: Project, call: Call) -> Response:
    """GET /connections: every connection, by name (no paging)."""
    records = sorted(emulator.store.connections.values(), key=lambda c: c["name"])
    return Response(200, {"values": [view(c) for c in records]})


def get_connection(emulator: Project, call: Call) -> Response:
    """GET /connections/{name}."""
    return Response(200, view(existing(emulator, call.params["name"])))


def create_connection(emulator: Project, call: Call) -> Response:
    """POST /connections: any type of the Connections v1 API (connection_types.py)."""
    body = without_nulls(call.body)
    name = body.get("name")
    if not isinstance(name, str) or not CONNECTION_NAME.fullmatch(name):
        raise invalid("name must be 1-64 ASCII letters, digits, '.', '_' or '-'")
    kind = _type(body.get("type"))
    check(kind, body, complete=True)
    if name in emulator.store.connections:
        raise ApiError(409, "Conflict", f"Connection with name {name} already exists")
    creator, now = user(call.caller), timestamp(emulator.now())
    record = {
        **body,
        "submittedByUser": creator,
        "submittedOnTimestamp": now,
        "modifiedByUser": creator,
        "modifiedOnTimestamp": now,
    }
    fill(kind, record, host=call.host or "localhost", projectId=emulator.project_id, name=name)
    emulator.store.put("connections", name, record)
    location = f"/v1/projects/{emulator.project_id}/connections/{name}"
    return Response(201, view(record), {"Location": quote(location)})


def _type(name: Any) -> ConnectionType:
    if not one_of(name, CONNECTION_TYPES):
        raise invalid(f"type is required and must be one of {', '.join(sorted(CONNECTION_TYPES))}")
    return CONNECTION_TYPES[name]


def update_connection(emulator: Project, call: Call) -> Response:
    """PATCH /connections/{name}: `type` is required and cannot change; null clears a field.

    Inferred (JSON merge-patch semantics): a field sent as null is removed, and a default field
    removed this way is filled again; secrets of the stored type are merged field by field (so
    a password can be rotated alone), secrets of another type replace them whole. The result
    must still be a complete connection of its type.
    """
    name, body = call.params["name"], call.body
    current = existing(emulator, name)
    if "type" not in body:
        raise invalid("type is required when updating a connection")
    if body["type"] != current["type"]:
        raise invalid(f"The type of a connection cannot change (it is {current['type']})")
    if "name" in body and body["name"] != name:
        raise invalid("The name of a connection cannot change")
    kind = _type(current["type"])
    given = without_nulls(body)
    check(kind, given, complete=False)
    record = {k: v for k, v in {**current, **given}.items() if body.get(k, "") is not None}
    stored, sent = current.get("secrets"), given.get("secrets")
    if isinstance(stored, dict) and isinstance(sent, dict) and stored["type"] == sent["type"]:
        record["secrets"] = {**stored, **sent}
    check(kind, writable(kind, record), complete=True)
    fill(kind, record, host=call.host or "localhost", projectId=emulator.project_id, name=name)
    record.update(modifiedByUser=user(call.caller), modifiedOnTimestamp=timestamp(emulator.now()))
    emulator.store.put("connections", name, record)
    return Response(200, view(record))


def delete_connection(emulator: Project, call: Call) -> Response:
    """DELETE /connections/{name}: refused while an active job reads through it."""
    name = call.params["name"]
    existing(emulator, name)
    if any(j.get("source", {}).get("connectionName") == name for j in emulator.active_jobs()):
        raise invalid("Connection is in use by ingestion jobs")
    emulator.store.delete("connections", name)
    return Response(200, None)


def test_connection(emulator: Project, call: Call) -> Response:
    """POST /connections/{name}/test.

    An s3 connection is checked for real with a data source (the bucket and prefix are listed),
    a kinesis connection with a Kinesis endpoint (the stream's shards are listed). The emulator
    reaches no Azure account, Kafka or Confluent cluster or schema registry, so for those (and
    for s3 and kinesis without a data source or endpoint) a stored connection passes, unless (inferred, for tests of failure paths) what it would reach is
    named unreachable-*: a bucket, a storage account, a bootstrap server, a registry host, a
    stream.
    """
    connection = existing(emulator, call.params["name"])
    if connection["type"] == "s3" and emulator.data is not None:
        bucket, prefix = connection["bucket"], connection.get("prefix") or ""
        source = emulator.data.for_connection(connection)
        try:
            found = source.list(bucket, prefix)
        except S3Error as error:
            raise ApiError(
                400, "ConnectionTestFailed", f"Connection test failed: {error.message}"
            ) from None
        finally:
            getattr(source, "close", lambda: None)()
        if not found:
            raise ApiError(
                400,
                "ConnectionTestFailed",
                f"Connection test failed: no objects under s3://{bucket}/{prefix}",
            )
        return Response(200, None)
    if connection["type"] == "kinesis" and emulator.kinesis_endpoint is not None:
        stream = connection["stream"]
        try:
            emulator.kinesis(region_of(connection)).shard_ids(stream)
        except KinesisError as error:
            raise ApiError(
                400, "ConnectionTestFailed", f"Connection test failed: stream {stream}: {error}"
            ) from None
        return Response(200, None)
    unreachable = [
        a for a in addresses(_type(connection["type"]), connection) if a.startswith("unreachable-")
    ]
    if unreachable:
        raise ApiError(400, "ConnectionTestFailed", f"Connection test failed: {unreachable[0]}")
    return Response(200, None)


def connections_meta(emulator: Project, call: Call) -> Response:
    """GET /connectionsMeta: the external id and Imply's role for AWS trust policies."""
    digest = hashlib.sha256(emulator.project_id.encode()).hexdigest()
    meta = {
        "externalId": str(uuid.UUID(digest[:32])),
        "implyArn": "arn:aws:iam::000000000000:role/imply-emulator",
    }
    return Response(200, meta)


ROUTES = (
    Route("GET", "/connections", list_connections),
    Route("POST", "/connections", create_connection, MANAGE_CONNECTIONS),
    Route("GET", "/connections/{name}", get_connection),
    Route("PATCH", "/connections/{name}", update_connection, MANAGE_CONNECTIONS),
    Route("DELETE", "/connections/{name}", delete_connection, MANAGE_CONNECTIONS),
    Route(
        "POST", "/connections/{name}/test", test_connection, MANAGE_CONNECTIONS, takes_body=False
    ),
    Route("GET", "/connectionsMeta", connections_meta),
)
