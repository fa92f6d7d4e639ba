"""Connections v1: list, create, read, update (PATCH), delete and test; connectionsMeta.

Sources: docs/polaris-api-notes.md (Connections v1) and tests/reference/polaris-openapi.json.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler.emulator.api import ApiError, Call, Response, invalid, not_found, one_of
from reconciler.emulator.auth import MANAGE_CONNECTIONS, user
from reconciler.emulator.clock import timestamp
from reconciler.emulator.routing import Route

if TYPE_CHECKING:
    from reconciler.emulator.app import Emulator

CONNECTION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
S3_FIELDS = frozenset(
    {
        "type",
        "name",
        "description",
        "bucket",
        "awsEndpoint",
        "prefix",
        "awsAssumedRoleArn",
        "secrets",
    }
)
OTHER_CONNECTION_TYPES = frozenset(
    {"azure", "confluent", "confluent_schema_registry", "kafka", "kinesis", "push_streaming"}
)


def view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A connection as the API shows it: secret values are write-only, never returned."""
    return {k: v for k, v in record.items() if k != "secrets"}


def existing(emulator: Emulator, name: str) -> dict[str, Any]:
    """A connection by name (404 when there is none)."""
    if name not in emulator.store.connections:
        raise not_found(f"Connection {name} not found")
    return emulator.store.connections[name]


def list_connections(emulator: Emulator, call: Call) -> Response:
    """GET /connections: every connection, by name (no paging)."""
    records = sorted(emulator.store.connections.values(), key=lambda c: c["name"])
    return Response(200, {"values": [view(c) for c in records]})


def get_connection(emulator: Emulator, call: Call) -> Response:
    """GET /connections/{name}."""
    return Response(200, view(existing(emulator, call.params["name"])))


def create_connection(emulator: Emulator, call: Call) -> Response:
    """POST /connections."""
    body = call.body
    name = body.get("name")
    if not isinstance(name, str) or not CONNECTION_NAME.fullmatch(name):
        raise invalid("name must be 1-64 ASCII letters, digits, '.', '_' or '-'")
    _check_s3_connection(body, creating=True)
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
    emulator.store.put("connections", name, record)
    location = f"/v1/projects/{emulator.project_id}/connections/{name}"
    return Response(201, view(record), {"Location": quote(location)})


def _check_s3_connection(body: Mapping[str, Any], *, creating: bool) -> None:
    kind = body.get("type")
    if one_of(kind, OTHER_CONNECTION_TYPES):
        raise invalid(f"Connection type {kind} is not supported by the emulator (only s3)")
    if kind != "s3":
        raise invalid("type is required and must be a known connection type")
    unknown = sorted(set(body) - S3_FIELDS)
    if unknown:
        raise invalid(f"Unrecognized field(s) for an s3 connection: {', '.join(unknown)}")
    for field_name in ("bucket", "awsEndpoint"):
        value = body.get(field_name)
        if (creating or field_name in body) and not (isinstance(value, str) and value):
            raise invalid(f"{field_name} is required for an s3 connection")
    for field_name in ("description", "prefix", "awsAssumedRoleArn"):
        if body.get(field_name) is not None and not isinstance(body[field_name], str):
            raise invalid(f"{field_name} must be a string")
    secrets = body.get("secrets")
    if secrets is not None:
        if not isinstance(secrets, dict) or secrets.get("type") != "access_key":
            raise invalid("secrets.type must be access_key for an s3 connection")
        for field_name in ("accessKeyId", "accessKeySecret"):
            if not isinstance(secrets.get(field_name), str) or not secrets[field_name]:
                raise invalid(f"secrets.{field_name} is required")


def update_connection(emulator: Emulator, call: Call) -> Response:
    """PATCH /connections/{name}: `type` is required and cannot change; null clears a field."""
    name, body = call.params["name"], call.body
    current = existing(emulator, name)
    if "type" not in body:
        raise invalid("type is required when updating a connection")
    if body["type"] != current["type"]:
        raise invalid(f"The type of a connection cannot change (it is {current['type']})")
    if "name" in body and body["name"] != name:
        raise invalid("The name of a connection cannot change")
    _check_s3_connection({k: v for k, v in body.items() if v is not None}, creating=False)
    # Inferred: a field sent as null is removed (JSON merge-patch semantics).
    record = {k: v for k, v in {**current, **body}.items() if v is not None}
    record.update(modifiedByUser=user(call.caller), modifiedOnTimestamp=timestamp(emulator.now()))
    emulator.store.put("connections", name, record)
    return Response(200, view(record))


def delete_connection(emulator: Emulator, call: Call) -> Response:
    """DELETE /connections/{name}: refused while an active job reads through it."""
    name = call.params["name"]
    existing(emulator, name)
    if any(j["source"].get("connectionName") == name for j in emulator.active_jobs()):
        raise invalid("Connection is in use by ingestion jobs")
    emulator.store.delete("connections", name)
    return Response(200, None)


def test_connection(emulator: Emulator, call: Call) -> Response:
    """POST /connections/{name}/test: with a data source, lists the bucket and prefix for real."""
    connection = existing(emulator, call.params["name"])
    if emulator.data is not None:
        from reconciler.s3 import S3Error

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
    # Inferred, for tests of failure paths: buckets named unreachable-* cannot be reached.
    if connection.get("bucket", "").startswith("unreachable-"):
        raise ApiError(400, "ConnectionTestFailed", "Connection test failed")
    return Response(200, None)


def connections_meta(emulator: Emulator, call: Call) -> Response:
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
    Route("POST", "/connections/{name}/test", test_connection, MANAGE_CONNECTIONS),
    Route("GET", "/connectionsMeta", connections_meta),
)
