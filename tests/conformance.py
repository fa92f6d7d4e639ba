"""Check emulator responses against the response schemas of the official OpenAPI document."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI = Path(__file__).parent / "reference" / "polaris-openapi.json"
SPEC_URI = "urn:polaris-openapi"


@cache
def _spec() -> dict[str, Any]:
    return dict(json.loads(OPENAPI.read_text(encoding="utf-8")))


@cache
def openapi_schemas() -> dict[str, Any]:
    """The document's components.schemas by name."""
    return dict(_spec()["components"]["schemas"])


def openapi_paths() -> dict[str, Any]:
    """The document's operations by path template."""
    return dict(_spec()["paths"])


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(_spec(), default_specification=DRAFT4)
    )


_following = threading.local()


def _discriminator(
    validator: Any, discriminator: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    """Validate an instance of an abstract schema (ConnectionResponse, AggregateTableColumn,
    JobSourceSummary...) against the concrete schema its discriminator maps it to as well: the
    validator follows a discriminator only beside allOf/anyOf/oneOf, so without this a Kafka
    connection missing its bootstrapServers would pass as a bare ConnectionResponse."""
    mapping = discriminator.get("mapping", {})
    if any(k in schema for k in ("allOf", "anyOf", "oneOf")) or not isinstance(instance, dict):
        return  # the validator handles these itself
    ref = mapping.get(instance.get(discriminator["propertyName"]))
    if not isinstance(ref, str):
        return  # an unknown value: the property's enum reports it
    active: set[tuple[int, str]] = _following.__dict__.setdefault("active", set())
    key = (id(instance), ref)
    if key in active:
        return  # the concrete schema includes the abstract one (allOf): validate once
    active.add(key)
    try:
        yield from validator.descend(instance, {"$ref": ref})
    finally:
        active.discard(key)


_follow_reference = OAS30ReadValidator.VALIDATORS["$ref"]
# Digests of (reference, discriminators being followed, document) found valid. The emulator answers
# the same connections, tables and jobs again and again (each page lists them; each create echoes
# the same sub-documents), and what was valid once is valid again: only the first is checked.
_valid: set[bytes] = set()
_REMEMBERED = 500_000


def _reference(validator: Any, ref: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """$ref, checked once per distinct document: a remembered valid one yields no error at once."""
    active = _following.__dict__.get("active", ())
    following = sorted(r for i, r in active if i == id(instance))  # see _discriminator
    text = json.dumps([ref, following, instance], sort_keys=True, default=repr)
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    if digest in _valid:
        return
    errors = list(_follow_reference(validator, ref, instance, schema))
    if not errors:
        if len(_valid) > _REMEMBERED:
            _valid.clear()
        _valid.add(digest)
    yield from errors


ResponseValidator = extend(
    OAS30ReadValidator, validators={"discriminator": _discriminator, "$ref": _reference}
)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@cache
def _validator(template: str, method: str, status: str) -> Any:
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
    return ResponseValidator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=_registry())


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
