"""Every connection type of the Connections v1 API and every secrets type, as data.

The tables below are the OpenAPI document's (tests/reference/polaris-openapi.json): the fields of
`CreateXConnectionRequest` / `XConnectionProperties`, which `XConnectionPropertiesRequired` makes
required, what is `readOnly`, `writeOnly` or has a `default`, and the `XSecretsProperties` of each
secrets type. tests/emulator/test_connection_types.py derives the same tables from the document
and fails, naming the difference, when they disagree; so a new type is one entry here.

Two columns are not in the document's schemas: which secrets types a connection type takes (the
document states it only in prose, in the description of `ConnectionSecretsRequiredPayload`), and
the field `/test` pretends to reach. Connections of every type are validated the same way by
`check` and shown by `view`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from reconciler.emulator.api import invalid

Kind = Literal["string", "boolean", "strings", "object"]
KIND_NAMES = {"string": "a string", "boolean": "a boolean", "strings": "a list of strings",
              "object": "an object"}  # fmt: skip
COMMON = ("name", "type", "description")  # CreateConnectionRequest's own fields


@dataclass(frozen=True)
class Field:
    """One field of a connection (or of an object inside one, or of its secrets)."""

    name: str
    kind: Kind = "string"
    required: bool = False  # on create, and still after any update
    read_only: bool = False  # the server fills it; a client may not send it
    write_only: bool = False  # accepted and stored, never returned
    default: Any = None  # what the server fills when it is left out (None: nothing)
    choices: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()  # an object's own fields
    template: str | None = None  # a read-only value: str.format(host, projectId, name)


@dataclass(frozen=True)
class SecretsType:
    """A `secrets.type` and the fields it carries besides `type`."""

    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class ConnectionType:
    """A connection `type`: its fields, the secrets types it takes, and where `/test` looks."""

    name: str
    fields: tuple[Field, ...]
    secrets: tuple[str, ...] = ()  # the secrets types it takes; () means no `secrets` field
    secrets_required: bool = False  # a create request must carry secrets
    # Secrets fields required beyond the OpenAPI's (it leaves accessKeyId optional because an
    # Azure shared key has none; an AWS access key is an id and a secret).
    secrets_also_required: tuple[str, ...] = ()
    address: str | None = None  # the field naming what a connection test would reach


def _secret(name: str) -> Field:
    return Field(name, required=True, write_only=True)


SECRETS_TYPES = {
    t.name: t
    for t in (
        SecretsType("access_key", (Field("accessKeyId"), _secret("accessKeySecret"))),
        SecretsType("aws_iam", (Field("awsAssumedRoleArn", required=True),)),
        SecretsType("basic", (Field("username", required=True), _secret("password"))),
        # Deprecated in the OpenAPI for Confluent connections ("instead use sasl_plain").
        SecretsType("confluent", (Field("key", required=True), _secret("secret"))),
        SecretsType("sas_token", (Field("sasToken", required=True),)),
        SecretsType("sasl_plain", (Field("username", required=True), _secret("password"))),
        SecretsType(
            "sasl_scram",
            (
                Field("mechanism", required=True, choices=("SCRAM-SHA-256", "SCRAM-SHA-512")),
                Field("username", required=True),
                _secret("password"),
            ),
        ),
    )
}

_PEM = Field("type", required=True, choices=("pem",))
_TOPIC = (
    Field("bootstrapServers", required=True),
    Field("topicName", required=True),
    Field("topicNameIsPattern", "boolean", default=False),
)
CONNECTION_TYPES = {
    t.name: t
    for t in (
        ConnectionType(
            "s3",
            (
                Field("awsAssumedRoleArn"),
                Field("awsEndpoint", required=True),
                Field("bucket", required=True),
                Field("prefix"),
            ),
            secrets=("access_key",),
            secrets_also_required=("accessKeyId",),
            address="bucket",
        ),
        ConnectionType(
            "azure",
            (
                Field("storageAccount", required=True),
                Field("container", required=True),
                Field("prefix"),
            ),
            secrets=("access_key", "sas_token"),
            secrets_required=True,
            address="storageAccount",
        ),
        ConnectionType(
            "confluent",
            _TOPIC,
            secrets=("sasl_plain", "confluent"),
            secrets_required=True,
            address="bootstrapServers",
        ),
        ConnectionType(
            "confluent_schema_registry",
            (Field("urls", "strings", default=()),),
            secrets=("basic",),
            secrets_required=True,
            address="urls",
        ),
        ConnectionType(
            "kafka",
            (
                *_TOPIC,
                Field("clientRack"),
                Field(
                    "ssl",
                    "object",
                    fields=(
                        Field(
                            "keystore",
                            "object",
                            write_only=True,  # it holds the private key
                            fields=(
                                _PEM,
                                Field("certificates", required=True),
                                Field("key", required=True),
                                Field("keyPassword"),
                            ),
                        ),
                        Field(
                            "truststore",
                            "object",
                            fields=(_PEM, Field("certificates", required=True)),
                        ),
                    ),
                ),
            ),
            secrets=("sasl_plain", "sasl_scram", "aws_iam"),
            secrets_required=True,
            address="bootstrapServers",
        ),
        ConnectionType(
            "kinesis",
            (
                Field("awsAssumedRoleArn", required=True),
                Field("awsEndpoint", required=True),
                Field("stream", required=True),
            ),
            address="stream",
        ),
        ConnectionType(
            "push_streaming",
            (
                # Where events are pushed (https://docs.imply.io/polaris/api-stream/); the
                # emulator serves it (streaming.push_events).
                Field(
                    "endpointUrl",
                    read_only=True,
                    template="http://{host}/v1/projects/{projectId}/events/{name}",
                ),
            ),
        ),
    )
}


def check(kind: ConnectionType, body: Mapping[str, Any], *, complete: bool) -> None:
    """400 for a field the type does not have, a read-only field, a value of the wrong kind and,
    when `complete`, a missing required field or secrets. A null counts as absent."""
    allowed = {*COMMON, *(f.name for f in kind.fields), *(("secrets",) if kind.secrets else ())}
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise invalid(
            f"Unrecognized field(s) for a connection of type {kind.name}: {', '.join(unknown)}"
        )
    if body.get("description") is not None and not isinstance(body["description"], str):
        raise invalid("description must be a string")
    _check_fields(kind.fields, body, "", kind.name, complete=complete)
    secrets = body.get("secrets")
    if secrets is None:
        if complete and kind.secrets_required:
            raise invalid(f"secrets are required for a connection of type {kind.name}")
        return
    if not isinstance(secrets, dict) or secrets.get("type") not in kind.secrets:
        raise invalid(
            f"secrets.type must be {' or '.join(kind.secrets)} for a connection of type {kind.name}"
        )
    secrets_type = SECRETS_TYPES[secrets["type"]]
    unknown = sorted(
        k for k in secrets if k != "type" and k not in {f.name for f in secrets_type.fields}
    )
    if unknown:
        raise invalid(
            f"Unrecognized field(s) in secrets of type {secrets_type.name}: {', '.join(unknown)}"
        )
    _check_fields(secrets_type.fields, secrets, "secrets.", kind.name, complete=complete)
    if complete:
        for name in kind.secrets_also_required:
            if not secrets.get(name):
                raise invalid(f"secrets.{name} is required for a connection of type {kind.name}")


def _check_fields(
    fields: tuple[Field, ...], body: Mapping[str, Any], where: str, kind: str, *, complete: bool
) -> None:
    for field in fields:
        path = where + field.name
        value = body.get(field.name)
        if value is None:
            if complete and field.required:
                raise invalid(f"{path} is required for a connection of type {kind}")
            continue
        if field.read_only:
            raise invalid(f"{path} is read-only: Polaris fills it")
        if not _is(field.kind, value):
            raise invalid(f"{path} must be {KIND_NAMES[field.kind]}")
        if field.required and value in ("", []):
            raise invalid(f"{path} is required for a connection of type {kind}")
        if field.choices and value not in field.choices:
            raise invalid(f"{path} must be one of {', '.join(field.choices)}")
        if field.kind == "object":
            names = {f.name for f in field.fields}
            unknown = sorted(k for k in value if k not in names)
            if unknown:
                raise invalid(f"Unrecognized field(s) in {path}: {', '.join(unknown)}")
            # An object is sent whole, so its own required fields are always required.
            _check_fields(field.fields, value, f"{path}.", kind, complete=True)


def _is(kind: Kind, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, dict)


def writable(kind: ConnectionType, record: Mapping[str, Any]) -> dict[str, Any]:
    """What a client may send of a stored record: no server-filled or read-only field."""
    read_only = {f.name for f in kind.fields if f.read_only}
    allowed = {*COMMON, *(f.name for f in kind.fields), "secrets"} - read_only
    return {k: v for k, v in record.items() if k in allowed}


def fill(kind: ConnectionType, record: dict[str, Any], **context: str) -> dict[str, Any]:
    """The record with the server's defaults and read-only values filled in."""
    for field in kind.fields:
        if field.name in record:
            continue
        if field.template is not None:
            record[field.name] = field.template.format(**context)
        elif field.default is not None:
            default = field.default
            record[field.name] = list(default) if isinstance(default, tuple) else default
    return record


def view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored connection as the API shows it: no write-only value, and no secrets at all.

    Not even `secrets.type`: the OpenAPI's response schemas require the non-write-only fields of
    a returned secrets object (a username, a sasToken, a role), so naming the type alone would
    break the documented shape, and returning those fields would return a token.
    """
    kind = CONNECTION_TYPES.get(record.get("type", ""))
    return _visible(
        kind.fields if kind else (), {k: v for k, v in record.items() if k != "secrets"}
    )


def _visible(fields: tuple[Field, ...], body: Mapping[str, Any]) -> dict[str, Any]:
    shown = dict(body)
    for field in fields:
        if field.name not in shown:
            continue
        if field.write_only:
            del shown[field.name]
        elif field.kind == "object" and isinstance(shown[field.name], Mapping):
            shown[field.name] = _visible(field.fields, shown[field.name])
    return shown


def addresses(kind: ConnectionType, record: Mapping[str, Any]) -> list[str]:
    """The hosts or names a connection test would reach: a bucket, a storage account, each
    bootstrap server, each registry URL's host, a stream."""
    value = record.get(kind.address) if kind.address else None
    values = value if isinstance(value, list) else str(value or "").split(",")
    return [(urlsplit(v).hostname or "") if "://" in v else v.strip() for v in values if v.strip()]
