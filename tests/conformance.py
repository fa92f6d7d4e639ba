"""Check emulator responses against the response schemas of the official OpenAPI document."""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30ReadValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI = Path(__file__).parent / "reference" / "polaris-openapi.json"
SPEC_URI = "urn:polaris-openapi"


@cache
def _spec() -> dict[str, Any]:
    return dict(json.loads(OPENAPI.read_text(encoding="utf-8")))


@cache
def openapi_paths() -> dict[str, Any]:
    """The document's operations by path template."""
    return dict(_spec()["paths"])


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(_spec(), default_specification=DRAFT4)
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@cache
def _validator(template: str, method: str, status: str) -> OAS30ReadValidator | None:
    """The validator for one documented response, or None when the document describes no body."""
    operation = _spec()["paths"].get(template, {}).get(method.lower())
    if operation is None:
        return None
    responses = operation["responses"]
    if status not in responses:
        return None
    response = responses[status]
    if "$ref" in response:
        response = _spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if "application/json" not in response.get("content", {}):
        return None
    pointer = "/".join(
        _escape(p)
        for p in (
            "paths",
            template,
            method.lower(),
            "responses",
            status,
            "content",
            "application/json",
            "schema",
        )
    )
    return OAS30ReadValidator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=_registry())


class ConformanceLog:
    """Collects every response that does not match its documented schema."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked = 0
        self.lock = threading.Lock()

    def __call__(self, method: str, template: str, status: int, body: bytes) -> None:
        """The emulator's response observer."""
        validator = _validator(template, method, str(status))
        if validator is None:
            return  # undocumented status (401, 405, 429, 5xx) or no body in the document
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = body.decode("utf-8", "replace")
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        with self.lock:
            self.checked += 1
            for error in errors[:3]:
                where = "/".join(str(p) for p in error.absolute_path)
                self.violations.append(
                    f"{method} {template} {status} at /{where}: {error.message[:300]}"
                )

    def documented(self, method: str, template: str, status: int) -> bool:
        """Whether the document describes this status for this operation."""
        operation = _spec()["paths"].get(template, {}).get(method.lower(), {})
        return str(status) in operation.get("responses", {})
