"""What the reconciler knows about each connection type of the Connections v1 API, as data.

Normalization, validation, plan and import read this table; no other module branches on a
connection's `type`. The fields are those of the OpenAPI's `CreateXConnectionRequest`
(tests/reference/polaris-openapi.json), which tests/manifest/test_schemas.py holds this table to;
schemas/connection.schema.json is generated from the same document by
scripts/gen_connection_schema.py, for the secrets types named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMMON = ("type", "description")  # CreateConnectionRequest's own fields, less `name`


@dataclass(frozen=True)
class ConnectionType:
    """A connection `type`: what a manifest may declare and what the server adds."""

    name: str
    fields: tuple[str, ...]  # writable fields besides `type`, `description` and `secrets`
    # The secrets types it takes, the one `reconciler import` assumes first (Polaris never says
    # which a live connection has); () means no `secrets` field.
    secrets: tuple[str, ...] = ()
    secrets_required: bool = False  # a create request must carry secrets...
    secrets_unless: str | None = None  # ...unless this field is set (an S3 role instead of keys)
    # Secrets fields required beyond the OpenAPI's (it leaves accessKeyId optional because an
    # Azure shared key has none; an AWS access key is an id and a secret).
    secrets_also_required: tuple[str, ...] = ()
    env_prefix: str = ""  # the middle of the variable names `reconciler import` writes
    # Values the server fills when a request leaves the field out (the OpenAPI `default`s).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    read_only: tuple[str, ...] = ()  # filled by the server; never declared, never compared
    # Batch ingestion jobs read objects only through S3 connections (the API's
    # `S3ConnectionSource`); every other type feeds streaming jobs (kind StreamingJob).
    batch_source: bool = False
    # Streaming jobs read Kafka and Confluent topics, Kinesis streams and push streaming
    # connections: the field that names what a job reads through the connection ("" for push
    # streaming, whose connection is itself the stream). None: not a streaming source.
    stream_field: str | None = None
    # Rules of our own for string fields: field -> (regular expression, what it asks for). The
    # schema checks them, and an error says "spec.FIELD does not match WHAT IT ASKS FOR".
    patterns: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def writable(self) -> tuple[str, ...]:
        """Every field of a create request this tool manages, less `name`."""
        return (*COMMON, *self.fields, *(("secrets",) if self.secrets else ()))

    def needs_secrets(self, spec: Mapping[str, Any]) -> bool:
        """Whether a connection of this type, as `spec` declares it, authenticates with secrets."""
        if not self.secrets:
            return False
        return self.secrets_required or (
            self.secrets_unless is not None and not spec.get(self.secrets_unless)
        )


# The secrets types the OpenAPI's ConnectionSecretsRequiredPayload describes: each field besides
# `type`, and the end of the environment variable name `reconciler import` suggests for it. Every
# one of them is written as an `${env:NAME}` reference in a manifest.
SECRETS_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "access_key": (("accessKeyId", "ACCESS_KEY_ID"), ("accessKeySecret", "SECRET_ACCESS_KEY")),
    "aws_iam": (("awsAssumedRoleArn", "ROLE_ARN"),),
    "basic": (("username", "USERNAME"), ("password", "PASSWORD")),
    "sas_token": (("sasToken", "SAS_TOKEN"),),
    "sasl_plain": (("username", "USERNAME"), ("password", "PASSWORD")),
    "sasl_scram": (("mechanism", "MECHANISM"), ("username", "USERNAME"), ("password", "PASSWORD")),
}

_TOPIC = ("bootstrapServers", "topicName", "topicNameIsPattern")
CONNECTION_TYPES: dict[str, ConnectionType] = {
    t.name: t
    for t in (
        ConnectionType(
            "s3",
            ("bucket", "awsEndpoint", "prefix", "awsAssumedRoleArn"),
            secrets=("access_key",),
            secrets_unless="awsAssumedRoleArn",
            secrets_also_required=("accessKeyId",),
            env_prefix="AWS",
            batch_source=True,
            # A bucket name never holds '/' or ':'; `s3://my-bucket/logs/` is the usual mistake.
            # A `${var:NAME}` reference passes: editors check the file before interpolation.
            patterns={
                "bucket": (
                    r"^(?:[^/:]|\$\{[^}]*\})+$",
                    "a bucket name such as my-bucket, not an s3:// URL or a path "
                    "(write a key prefix in spec.prefix)",
                )
            },
        ),
        ConnectionType(
            "azure",
            ("storageAccount", "container", "prefix"),
            # An Azure shared key has no id: its access_key secrets hold accessKeySecret only.
            secrets=("sas_token", "access_key"),
            secrets_required=True,
            env_prefix="AZURE",
        ),
        ConnectionType(
            "kafka",
            (*_TOPIC, "clientRack", "ssl"),
            secrets=("sasl_plain", "sasl_scram", "aws_iam"),
            secrets_required=True,
            defaults={"topicNameIsPattern": False},
            env_prefix="KAFKA",
            stream_field="topicName",
        ),
        ConnectionType(
            "confluent",
            _TOPIC,
            # The OpenAPI's `confluent` secrets type is deprecated ("instead use sasl_plain").
            secrets=("sasl_plain",),
            secrets_required=True,
            defaults={"topicNameIsPattern": False},
            env_prefix="CONFLUENT",
            stream_field="topicName",
        ),
        ConnectionType(
            "confluent_schema_registry",
            ("urls",),
            secrets=("basic",),
            secrets_required=True,
            defaults={"urls": []},
            env_prefix="REGISTRY",
        ),
        ConnectionType(
            "kinesis", ("awsAssumedRoleArn", "awsEndpoint", "stream"), stream_field="stream"
        ),
        ConnectionType("push_streaming", (), read_only=("endpointUrl",), stream_field=""),
    )
}

BATCH_SOURCE_TYPES = tuple(name for name, kind in CONNECTION_TYPES.items() if kind.batch_source)
STREAMING_SOURCE_TYPES = tuple(
    name for name, kind in CONNECTION_TYPES.items() if kind.stream_field is not None
)


def of(spec: Mapping[str, Any]) -> ConnectionType | None:
    """The type of a connection spec, or None for a type this tool does not know."""
    return CONNECTION_TYPES.get(str(spec.get("type", "")))
