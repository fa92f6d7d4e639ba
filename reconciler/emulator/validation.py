"""Request bodies checked against the OpenAPI's own request schemas, like Polaris does.

`request-schemas.json` holds the document's schemas for those bodies, converted to JSON Schema
(scripts/emulator_request_schemas.py writes it from tests/reference/polaris-openapi-full.json).
Each is compiled once by fastjsonschema; a body that breaks one is a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from reconciler.emulator.api import ApiError, invalid

SCHEMAS = Path(__file__).with_name("request-schemas.json")


@cache
def _document() -> dict[str, Any]:
    return dict(json.loads(SCHEMAS.read_text(encoding="utf-8")))


@cache
def _validator(component: str) -> Callable[[Any], Any]:
    root = {**_document(), "$ref": f"#/components/schemas/{component}"}
    return fastjsonschema.compile(root)


def check(component: str, body: Mapping[str, Any]) -> None:
    """Refuse a body that breaks the named component schema: 400 naming the field."""
    try:
        _validator(component)(dict(body))
    except fastjsonschema.JsonSchemaValueException as error:
        raise _named(error) from None


def _named(error: fastjsonschema.JsonSchemaValueException) -> ApiError:
    name, message = str(error.name or "data"), str(error.message or "")
    path = name.removeprefix("data").lstrip(".") or "the request body"
    return invalid(message.replace(name, path, 1) if name in message else f"{path} is not valid")
