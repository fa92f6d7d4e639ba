"""Write schemas/connection.schema.json from the Polaris OpenAPI document.

    python scripts/gen_connection_schema.py            # rewrite the schema
    python scripts/gen_connection_schema.py --check    # exit 1 if it is out of date

The fields, required names, types, enums and descriptions of each connection type are those of
the OpenAPI's `CreateXConnectionRequest` and of its `XSecretsPropertiesRequired` payloads
(tests/reference/polaris-openapi.json). Which secrets types a connection type takes is stated
only in the document's prose, so it comes from reconciler/connection_types.py, as do the fields
a manifest may declare. Two rules are the tool's own: every secret field is an `${env:NAME}`
reference (so it is a plain string here), and a field the document marks `writeOnly` outside
`secrets` (a Kafka SSL keystore, which holds a private key) is left out, because a manifest could
only hold it as a literal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.connection_types import CONNECTION_TYPES, SECRETS_TYPES  # noqa: E402

OPENAPI = ROOT / "tests" / "reference" / "polaris-openapi.json"
TARGET = ROOT / "schemas" / "connection.schema.json"
SECRET_PAYLOADS = {
    "access_key": "AccessKeySecretsPropertiesRequired",
    "aws_iam": "AwsIamRoleSecretsPropertiesRequired",
    "basic": "HttpBasicAuthSecretsPropertiesRequired",
    "sas_token": "SasTokenSecretsPropertiesRequired",
    "sasl_plain": "SaslPlainSecretsPropertiesRequired",
    "sasl_scram": "SaslScramSecretsPropertiesRequired",
}
NAME = {
    "description": "the Polaris connection name rule: 1 to 64 ASCII letters, digits, '.', '_' or '-'",
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": "^[A-Za-z0-9._-]+$",
}


class OpenApi:
    """The document's component schemas, with allOf and $ref followed."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def flatten(self, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Properties and required names of a schema, through allOf (discriminators not followed)."""
        schema = self.resolve(schema)
        properties: dict[str, Any] = {}
        required = list(schema.get("required", []))
        for part in schema.get("allOf", []):
            more, needed = self.flatten(part)
            properties |= more
            required += [name for name in needed if name not in required]
        properties |= schema.get("properties", {})
        return properties, required

    def create_request(self, connection_type: str) -> str:
        mapping = self.schemas["CreateConnectionRequest"]["discriminator"]["mapping"]
        return str(mapping[connection_type].rsplit("/", 1)[1])

    def field(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """A manifest field for an OpenAPI property; None for one a manifest cannot hold."""
        resolved = self.resolve(schema)
        if schema.get("writeOnly") or resolved.get("writeOnly") or resolved.get("readOnly"):
            return None
        if "allOf" in resolved and "type" not in resolved:
            resolved = self.resolve(resolved["allOf"][0])
        out: dict[str, Any] = {
            "description": _one_line(schema.get("description") or resolved.get("description", "")),
            "type": resolved["type"],
        }
        if "enum" in resolved:
            out["enum"] = resolved["enum"]
        if resolved["type"] == "array":
            out["items"] = {"type": resolved["items"]["type"]}
        if resolved["type"] == "object":
            properties, required = self.flatten(resolved)
            mapping = resolved.get("discriminator", {}).get("mapping", {})
            if len(mapping) == 1:  # an SSL store, whose only type is pem
                more, needed = self.flatten({"$ref": next(iter(mapping.values()))})
                properties = properties | more
                required += [n for n in needed if n not in required]
            fields = {n: f for n, p in properties.items() if (f := self.field(p)) is not None}
            out["properties"] = fields
            if [n for n in required if n in fields]:
                out["required"] = [n for n in required if n in fields]
            out["additionalProperties"] = False
        if not out["description"]:
            out["description"] = f"See the OpenAPI's {schema.get('$ref', 'schema')}."
        return out


def _one_line(text: str) -> str:
    """A description as error messages quote it: the document's line breaks and lists folded."""
    return " ".join(text.split())


def connection_definition(api: OpenApi, name: str) -> dict[str, Any]:
    kind = CONNECTION_TYPES[name]
    request = api.create_request(name)
    properties, required = api.flatten({"$ref": f"#/components/schemas/{request}"})
    fields: dict[str, Any] = {
        "name": {
            "$ref": "#/definitions/connectionName",
            "description": "Optional; if given it must equal metadata.name.",
        },
        "type": {"description": "Connection type.", "const": name},
        "description": {"description": "Description of the connection.", "type": "string"},
    }
    for field in kind.fields:
        described = api.field(properties[field])
        assert described is not None, f"{request}.{field} cannot be declared"
        if field in required and described["type"] == "string":
            described["minLength"] = 1  # Polaris refuses an empty required value
        if field in kind.patterns:
            # In a schema of its own, whose description is what an error says the value must be.
            pattern, rule = kind.patterns[field]
            described["allOf"] = [{"description": rule, "pattern": pattern}]
        fields[field] = described
    if kind.secrets:
        fields["secrets"] = (
            {"$ref": f"#/definitions/secrets_{kind.secrets[0]}"}
            if len(kind.secrets) == 1
            else secrets_choice(kind.secrets)
        )
        if kind.secrets_also_required:
            fields["secrets"] = {
                "description": f"Secrets of a connection of type {name}: "
                + ", ".join(kind.secrets_also_required)
                + " is required too.",
                "allOf": [fields["secrets"], {"required": list(kind.secrets_also_required)}],
            }
    return {
        "description": f"{api.schemas[request]['description']} Fields of the OpenAPI's {request}.",
        "type": "object",
        "required": [n for n in required if n in fields and n != "name"],
        "properties": fields,
        "additionalProperties": False,
    }


def secrets_choice(types: tuple[str, ...]) -> dict[str, Any]:
    return {
        "description": "Write-only credentials: "
        + ", ".join(types)
        + ". Polaris never returns them.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"description": "Secrets type.", "enum": list(types)}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                "then": {"$ref": f"#/definitions/secrets_{t}"},
            }
            for t in types
        ],
    }


def secrets_definition(api: OpenApi, name: str) -> dict[str, Any]:
    properties, required = api.flatten({"$ref": f"#/components/schemas/{SECRET_PAYLOADS[name]}"})
    names = [field for field, _ in SECRETS_TYPES[name]]
    assert sorted(properties) == sorted(names), name
    fields: dict[str, Any] = {"type": {"description": "Secrets type.", "const": name}}
    for field in names:
        text = _one_line(
            properties[field].get("description")
            or api.resolve(properties[field]).get("description", field)
        )
        fields[field] = {
            "description": f"{text.strip().rstrip('.')}. An ${{env:NAME}} reference, never a literal.",
            "type": "string",
        }
    return {
        "description": f"Secrets of type {name} (the OpenAPI's {SECRET_PAYLOADS[name]}). "
        "Write-only: Polaris never returns them. Give every value as an ${env:NAME} reference.",
        "type": "object",
        "required": ["type", *[n for n in required if n != "type"]],
        "properties": fields,
        "additionalProperties": False,
    }


def schema() -> dict[str, Any]:
    """The whole connection schema."""
    api = OpenApi(json.loads(OPENAPI.read_text("utf-8")))
    types = list(CONNECTION_TYPES)
    definitions: dict[str, Any] = {"connectionName": NAME}
    for name in types:
        definitions[f"type_{name}"] = connection_definition(api, name)
    for name in SECRETS_TYPES:
        definitions[f"secrets_{name}"] = secrets_definition(api, name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated by scripts/gen_connection_schema.py from the Polaris OpenAPI.",
        "title": "Connection",
        "description": "A Polaris connection (Connections v1). The spec is the create-request "
        "body less name, which comes from metadata.name.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"$ref": "envelope.schema.json#/definitions/apiVersion"},
            "kind": {"description": "The kind of resource: Connection.", "const": "Connection"},
            "metadata": {
                "description": "metadata.name is the Polaris connection name.",
                "allOf": [
                    {"$ref": "envelope.schema.json#/definitions/metadata"},
                    {"properties": {"name": {"$ref": "#/definitions/connectionName"}}},
                ],
            },
            "spec": {"$ref": "#/definitions/spec"},
            "policy": {"$ref": "envelope.schema.json#/definitions/managedPolicy"},
        },
        "additionalProperties": False,
        "allOf": [{"$ref": "envelope.schema.json#/definitions/specRequiredUnlessExternal"}],
        "definitions": {
            "spec": {
                "description": "The body of POST /connections, less name. May be left out only "
                "with policy.manage: external.",
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"description": "Connection type.", "enum": types},
                },
                "allOf": [
                    {
                        "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                        "then": {"$ref": f"#/definitions/type_{name}"},
                    }
                    for name in types
                ],
            },
            **definitions,
        },
    }


def text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    if "--check" in sys.argv[1:]:
        if TARGET.read_text("utf-8") != text():
            print(f"{TARGET} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text(), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
