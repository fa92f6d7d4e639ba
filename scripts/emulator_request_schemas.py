"""Write the emulator's request schemas: the OpenAPI's, for the bodies it validates whole.

Run after updating tests/reference/polaris-openapi-full.json:
    python scripts/emulator_request_schemas.py
A test checks that reconciler/emulator/request-schemas.json is what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "tests" / "reference" / "polaris-openapi-full.json"
TARGET = ROOT / "reconciler" / "emulator" / "request-schemas.json"
# The request bodies the emulator checks against the document as a whole (the others have
# hand-written checks that name Polaris's own messages).
ROOTS = ("DetailTablePayload", "AggregateTablePayload")
PREFIX = "#/components/schemas/"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: nullable becomes a null type; keywords
    that only document (examples, formats, discriminators) go; read-only properties go, since
    Polaris ignores them in a request."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    dropped = {"example", "examples", "format", "discriminator", "description", "x-all-of-name",
               "readOnly", "writeOnly", "nullable", "deprecated", "externalDocs", "xml", "title"}  # fmt: skip
    converted = {k: _json_schema(v) for k, v in node.items() if k not in dropped}
    properties = node.get("properties")
    if isinstance(properties, dict):
        read_only = {k for k, v in properties.items() if isinstance(v, dict) and v.get("readOnly")}
        converted["properties"] = {
            k: _json_schema(v) for k, v in properties.items() if k not in read_only
        }
        if "required" in node:
            converted["required"] = [k for k in node["required"] if k not in read_only]
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "$ref" in converted or "allOf" in converted or "oneOf" in converted:
            converted = {"anyOf": [{"type": "null"}, converted]}
    return converted


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(PREFIX) :]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def request_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The closure of ROOTS under $ref, converted, keyed by component name."""
    schemas = document["components"]["schemas"]
    wanted, seen = list(ROOTS), set[str]()
    while wanted:
        name = wanted.pop()
        if name not in seen:
            seen.add(name)
            wanted.extend(_refs(schemas[name]))
    return {name: _json_schema(schemas[name]) for name in sorted(seen)}


def rendered() -> str:
    """The file's text."""
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return json.dumps({"components": {"schemas": request_schemas(document)}}, indent=1) + "\n"


if __name__ == "__main__":
    TARGET.write_text(rendered(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET.relative_to(ROOT)}\n")
