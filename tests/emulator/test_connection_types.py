"""Every connection type of the Connections v1 API, with each secrets type it takes.

The emulator's tables (reconciler/emulator/connection_types.py) are held to the OpenAPI document;
every response here is also checked against its documented schema by the `emulator` fixture.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from reconciler.emulator import DEMO_PROJECT_ID, Emulator
from reconciler.emulator.connection_types import CONNECTION_TYPES, SECRETS_TYPES, Field
from tests.conformance import openapi_schemas
from tests.connections import CONNECTIONS, SECRET_VALUES
from tests.guide import GUIDE_JOB

COMMON = {"name", "type", "description"}


# The tables against the document ----------------------------------------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi_schemas()[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _flatten(schema: dict[str, Any], follow: bool = True) -> tuple[dict[str, Any], set[str]]:
    """A schema's properties and required names, through allOf and a one-way discriminator."""
    schema = _resolve(schema)
    properties: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, needed = _flatten(part, follow=False)
        properties |= more
        required |= needed
    properties |= schema.get("properties", {})
    mapping = schema.get("discriminator", {}).get("mapping", {})
    if follow and len(mapping) == 1:  # e.g. an SSL keystore, whose only type is pem
        more, needed = _flatten({"$ref": next(iter(mapping.values()))}, follow=False)
        properties |= more
        required |= needed
    return properties, required


def _document_field(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    flags = {k: schema.get(k, False) for k in ("readOnly", "writeOnly")}
    resolved = _resolve(schema)
    if "allOf" in resolved and "type" not in resolved:
        resolved = _resolve(resolved["allOf"][0])
    kinds = {"string": "string", "boolean": "boolean", "object": "object", "array": "strings"}
    described: dict[str, Any] = {
        "kind": kinds[resolved["type"]],
        "required": required,
        "readOnly": flags["readOnly"] or resolved.get("readOnly", False),
        "writeOnly": flags["writeOnly"] or resolved.get("writeOnly", False),
        "default": resolved.get("default"),
        "enum": resolved.get("enum", []),
        "fields": {},
    }
    if resolved["type"] == "object":
        properties, needed = _flatten(resolved)
        described["fields"] = {
            name: _document_field(p, name in needed) for name, p in sorted(properties.items())
        }
    return described


def _emulator_field(field: Field) -> dict[str, Any]:
    default = list(field.default) if isinstance(field.default, tuple) else field.default
    return {
        "kind": field.kind,
        "required": field.required,
        "readOnly": field.read_only,
        "writeOnly": field.write_only,
        "default": default,
        "enum": list(field.choices),
        "fields": {f.name: _emulator_field(f) for f in sorted(field.fields, key=lambda f: f.name)},
    }


def _document_connection_types() -> dict[str, Any]:
    creates = openapi_schemas()["CreateConnectionRequest"]["discriminator"]["mapping"]
    updates = openapi_schemas()["UpdateConnectionRequest"]["discriminator"]["mapping"]
    types = {}
    for name, ref in sorted(creates.items()):
        properties, required = _flatten({"$ref": ref}, follow=False)
        updatable, _ = _flatten({"$ref": updates[name]}, follow=False)
        assert set(updatable) - COMMON == set(properties) - COMMON - {"name"}, name
        secrets = (
            "required"
            if "secrets" in required
            else "optional"
            if "secrets" in properties
            else "none"
        )
        fields = {
            field: _document_field(p, field in required)
            for field, p in sorted(properties.items())
            if field not in COMMON and field != "secrets"
        }
        types[name] = {"fields": fields, "secrets": secrets}
    return types


def test_the_connection_types_are_the_openapi_documents() -> None:
    emulated = {
        name: {
            "fields": {
                f.name: _emulator_field(f) for f in sorted(kind.fields, key=lambda f: f.name)
            },
            "secrets": "required"
            if kind.secrets_required
            else "optional"
            if kind.secrets
            else "none",
        }
        for name, kind in sorted(CONNECTION_TYPES.items())
    }
    assert emulated == _document_connection_types()


def test_the_secrets_types_are_the_openapi_documents() -> None:
    mapping = openapi_schemas()["ConnectionSecretsRequiredPayload"]["discriminator"]["mapping"]
    documented = {}
    for name, ref in sorted(mapping.items()):
        properties, required = _flatten({"$ref": ref}, follow=False)
        documented[name] = {
            field: _document_field(p, field in required)
            for field, p in sorted(properties.items())
            if field != "type"
        }
    emulated = {
        name: {f.name: _emulator_field(f) for f in sorted(kind.fields, key=lambda f: f.name)}
        for name, kind in sorted(SECRETS_TYPES.items())
    }
    assert emulated == documented
    taken = {s for kind in CONNECTION_TYPES.values() for s in kind.secrets}
    assert taken == set(documented), "every secrets type is taken by some connection type"


# Create, read, list, update, delete -------------------------------------------------------------


def _named(example: str) -> dict[str, Any]:
    return {"name": example.replace("/", "-"), **copy.deepcopy(CONNECTIONS[example])}


def _no_secret_in(response: httpx.Response) -> None:
    assert not [value for value in SECRET_VALUES if value in response.text], response.text


@pytest.mark.parametrize("example", sorted(CONNECTIONS))
def test_each_connection_type_is_created_read_listed_updated_and_deleted_without_its_secrets(
    api: httpx.Client, example: str
) -> None:
    body = _named(example)
    name, kind = body["name"], body["type"]
    created = api.post("/connections", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/v1/projects/{DEMO_PROJECT_ID}/connections/{name}"
    shown = created.json()
    sent = {k: v for k, v in body.items() if k not in ("secrets", "ssl")}
    assert {k: shown[k] for k in sent} == sent
    assert "secrets" not in shown
    read = api.get(f"/connections/{name}")
    assert read.json() == shown
    listed = api.get("/connections")
    assert listed.json()["values"] == [shown]
    # The description and the type's first writable string field (none for push streaming).
    change = {"description": "changed"} | {
        f.name: f"changed-{f.name}"
        for f in CONNECTION_TYPES[kind].fields[:1]
        if f.kind == "string" and not f.read_only
    }
    updated = api.patch(f"/connections/{name}", json={"type": kind, **change})
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in change} == change
    assert updated.json() == {
        **shown,
        **change,
        "modifiedOnTimestamp": updated.json()["modifiedOnTimestamp"],
    }
    for response in (created, read, listed, updated):
        _no_secret_in(response)
    assert api.delete(f"/connections/{name}").status_code == 200
    assert api.get(f"/connections/{name}").status_code == 404


def test_secrets_are_stored_as_sent(api: httpx.Client, emulator: Emulator) -> None:
    for example in CONNECTIONS:
        body = _named(example)
        assert api.post("/connections", json=body).status_code == 201
        assert emulator.store.connections[body["name"]].get("secrets") == body.get("secrets")


def test_a_kafka_keystore_is_write_only_and_its_truststore_is_shown(api: httpx.Client) -> None:
    body = _named("kafka/aws_iam")
    shown = api.post("/connections", json=body).json()
    assert shown["ssl"] == {"truststore": body["ssl"]["truststore"]}


def test_the_server_fills_documented_defaults(api: httpx.Client) -> None:
    kafka = api.post("/connections", json=_named("kafka/sasl_plain")).json()
    assert kafka["topicNameIsPattern"] is False
    registry = {k: v for k, v in _named("confluent_schema_registry/basic").items() if k != "urls"}
    assert api.post("/connections", json=registry).json()["urls"] == []
    cleared = api.patch(
        "/connections/kafka-sasl_plain", json={"type": "kafka", "topicNameIsPattern": None}
    )
    assert cleared.json()["topicNameIsPattern"] is False  # a cleared default is the default again


def test_a_push_streaming_endpoint_url_is_filled_by_the_server_and_never_accepted(
    api: httpx.Client,
) -> None:
    created = api.post("/connections", json=_named("push_streaming/none"))
    assert created.json()["endpointUrl"] == (
        f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}/events/push_streaming-none"
    )
    sent = {**_named("push_streaming/none"), "name": "other", "endpointUrl": "https://x.test/e"}
    refused = api.post("/connections", json=sent)
    assert refused.status_code == 400
    assert refused.json()["message"] == "endpointUrl is read-only: Polaris fills it"
    patched = api.patch(
        "/connections/push_streaming-none",
        json={"type": "push_streaming", "endpointUrl": "https://x.test/e"},
    )
    assert patched.status_code == 400


def _required() -> list[tuple[str, str]]:
    cases = []
    for example, body in sorted(CONNECTIONS.items()):
        kind = CONNECTION_TYPES[body["type"]]
        cases += [(example, f.name) for f in kind.fields if f.required]
        secrets = body.get("secrets")
        if secrets:
            fields = SECRETS_TYPES[secrets["type"]].fields
            needed = {f.name for f in fields if f.required} | set(kind.secrets_also_required)
            cases += [(example, f"secrets.{name}") for name in sorted(needed)]
    return cases


@pytest.mark.parametrize(("example", "field"), _required())
def test_a_missing_required_field_is_a_400_naming_it(
    api: httpx.Client, example: str, field: str
) -> None:
    body = _named(example)
    *parents, last = field.split(".")
    target = body
    for part in parents:
        target = target[part]
    del target[last]
    response = api.post("/connections", json=body)
    assert response.status_code == 400
    kind = body["type"]
    assert response.json()["message"] == f"{field} is required for a connection of type {kind}"


@pytest.mark.parametrize(
    ("example", "change", "message"),
    [
        (
            "kafka/sasl_plain",
            {"secrets": None},
            "secrets are required for a connection of type kafka",
        ),
        (
            "kafka/sasl_plain",
            {"secrets": {"type": "sas_token", "sasToken": "t"}},
            "secrets.type must be sasl_plain or sasl_scram or aws_iam for a connection of type kafka",
        ),
        (
            "azure/sas_token",
            {"secrets": {"type": "sas_token", "sasToken": "t", "extra": "x"}},
            "Unrecognized field(s) in secrets of type sas_token: extra",
        ),
        (
            "kinesis/none",
            {"secrets": {"type": "aws_iam", "awsAssumedRoleArn": "r"}},
            "Unrecognized field(s) for a connection of type kinesis: secrets",
        ),
        ("kafka/sasl_plain", {"topicNameIsPattern": "yes"}, "topicNameIsPattern must be a boolean"),
        (
            "confluent_schema_registry/basic",
            {"urls": "https://r.test"},
            "urls must be a list of strings",
        ),
        (
            "kafka/sasl_scram",
            {
                "secrets": {
                    "type": "sasl_scram",
                    "mechanism": "MD5",
                    "username": "u",
                    "password": "p",
                }
            },
            "secrets.mechanism must be one of SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            "kafka/aws_iam",
            {"ssl": {"keystore": {"type": "pem", "certificates": "c"}}},
            "ssl.keystore.key is required for a connection of type kafka",
        ),
        ("kafka/aws_iam", {"ssl": {"keystore": "pem"}}, "ssl.keystore must be an object"),
        (
            "azure/sas_token",
            {"bucket": "b"},
            "Unrecognized field(s) for a connection of type azure: bucket",
        ),
        ("s3/none", {"prefix": 3}, "prefix must be a string"),
    ],
)
def test_a_wrong_field_is_a_400_naming_it(
    api: httpx.Client, example: str, change: dict[str, Any], message: str
) -> None:
    body = {k: v for k, v in {**_named(example), **change}.items() if v is not None}
    response = api.post("/connections", json=body)
    assert (response.status_code, response.json()["message"]) == (400, message)


def test_a_patch_merges_secrets_of_the_same_type_and_keeps_the_connection_complete(
    api: httpx.Client, emulator: Emulator
) -> None:
    api.post("/connections", json=_named("kafka/sasl_scram"))
    path = "/connections/kafka-sasl_scram"
    rotated = api.patch(
        path, json={"type": "kafka", "secrets": {"type": "sasl_scram", "password": "rotated"}}
    )
    assert rotated.status_code == 200, rotated.text
    stored = emulator.store.connections["kafka-sasl_scram"]["secrets"]
    assert stored == {**CONNECTIONS["kafka/sasl_scram"]["secrets"], "password": "rotated"}
    _no_secret_in(rotated)
    other_type = api.patch(
        path, json={"type": "kafka", "secrets": {"type": "sasl_plain", "password": "p"}}
    )
    assert (
        other_type.json()["message"]
        == "secrets.username is required for a connection of type kafka"
    )
    cleared = api.patch(path, json={"type": "kafka", "topicName": None})
    assert cleared.json()["message"] == "topicName is required for a connection of type kafka"
    unsecured = api.patch(path, json={"type": "kafka", "secrets": None})
    assert unsecured.json()["message"] == "secrets are required for a connection of type kafka"
    assert emulator.store.connections["kafka-sasl_scram"]["topicName"] == "events"


@pytest.mark.parametrize(
    ("example", "unreachable"),
    [
        ("s3/access_key", {"bucket": "unreachable-bucket"}),
        ("azure/sas_token", {"storageAccount": "unreachable-account"}),
        ("kafka/sasl_plain", {"bootstrapServers": "ok.test:9092,unreachable-broker:9092"}),
        ("confluent/sasl_plain", {"bootstrapServers": "unreachable-cluster:9092"}),
        ("confluent_schema_registry/basic", {"urls": ["https://unreachable-registry:8081"]}),
        ("kinesis/none", {"stream": "unreachable-stream"}),
    ],
)
def test_a_connection_test_passes_unless_what_it_reaches_is_unreachable(
    api: httpx.Client, example: str, unreachable: dict[str, Any]
) -> None:
    reachable = _named(example)
    assert api.post("/connections", json=reachable).status_code == 201
    assert api.post(f"/connections/{reachable['name']}/test", json={}).status_code == 200
    broken = {**reachable, **unreachable, "name": "broken"}
    assert api.post("/connections", json=broken).status_code == 201
    failed = api.post("/connections/broken/test", json={})
    assert failed.status_code == 400
    assert failed.json()["message"].startswith("Connection test failed: unreachable-")


def test_a_push_streaming_connection_test_passes(api: httpx.Client) -> None:
    api.post("/connections", json=_named("push_streaming/none"))
    assert api.post("/connections/push_streaming-none/test", json={}).status_code == 200


@pytest.mark.parametrize("example", [e for e in sorted(CONNECTIONS) if not e.startswith("s3/")])
def test_a_batch_job_through_a_connection_that_is_not_s3_is_a_400(
    api: httpx.Client, example: str
) -> None:
    body = _named(example)
    api.post("/connections", json=body)
    job = copy.deepcopy(GUIDE_JOB)
    job["source"]["connectionName"] = body["name"]
    response = api.post("/jobs", json=job)
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"Connection {body['name']} is a {body['type']} connection; a batch job with "
        "source.type s3 reads only from an s3 connection"
    )
