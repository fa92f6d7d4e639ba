"""Every field of a job spec that can change what lands in a table is part of its identity.

The fields are generated from schemas/ingestionjob.schema.json: each writable field is changed in
turn, and the plan must notice, through the job's fingerprint (a new job is planned) or the saved
plan's checksum (a reviewed plan goes stale). Only the fields on IGNORED are exempt.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from reconciler.identity import Place
from reconciler.kinds.ingestion_job import compared_form, job_identity, spec_fingerprint
from reconciler.live import LiveState
from reconciler.model import Kind, Location, Resource
from reconciler.plan import checksum
from tests.fixtures import ROOT

# Fields a job spec cannot change: each allows exactly one value, so there is nothing to mutate.
IGNORED = {
    "type": "const batch: this tool declares only batch jobs",
    "target.type": "only table",
    "source.type": "only s3",
}
SELECTORS = ("uris", "prefixes", "objects", "pattern")  # exactly one: a change swaps them
PLACE = Place("aws", "acme-weblogs", "logs/")
BASE: dict[str, Any] = {
    "type": "batch",
    "target": {"type": "table", "tableName": "web_requests"},
    "createTableIfNotExists": False,
    "source": {
        "type": "s3",
        "connectionName": "weblogs-s3",
        "prefixes": ["logs/edge/2026/11/01/"],
        "formatSettings": {"format": "csv", "columns": ["ts", "n"], "skipHeaderRows": 1},
        "inputSchema": [{"name": "ts", "dataType": "string"}, {"name": "n", "dataType": "long"}],
    },
    "mappings": [
        {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
        {"columnName": "n", "expression": '"n"'},
    ],
    "ingestionMode": "append",
    "filterExpression": '"n" > 0',
    "maxParseExceptions": 10,
    "partitionedBy": "day",
    "clusteringColumns": ["n"],
    "replaceAll": False,
    "context": {"maxNumTasks": 2},
}


@cache
def _document(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8")))


def _resolve(schema: dict[str, Any], file: str) -> tuple[dict[str, Any], str]:
    while "$ref" in schema:
        target, _, pointer = schema["$ref"].partition("#")
        file = target or file
        resolved: Any = _document(file)
        for part in pointer.strip("/").split("/"):
            resolved = resolved[part]
        schema = {**resolved, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, file


def _properties(schema: dict[str, Any], file: str, value: Any) -> dict[str, Any]:
    """An object's properties, with those of the if/then variant its value selects."""
    properties = dict(schema.get("properties", {}))
    for variant in schema.get("allOf", []):
        condition = variant.get("if", {}).get("properties", {})
        if condition and all(
            isinstance(value, dict) and value.get(k) == c.get("const") for k, c in condition.items()
        ):
            then, _ = _resolve(variant["then"], file)
            for name, sub in then.get("properties", {}).items():
                properties.setdefault(name, sub)
    return properties


def _sample(schema: dict[str, Any], current: Any) -> Any:
    """A valid value for the schema that differs from `current` (None: no such value)."""
    if "const" in schema:
        return None
    if "enum" in schema:
        others = [v for v in schema["enum"] if v != current and v != schema.get("default")]
        return others[0] if others else None
    kind = schema.get("type")
    if kind == "boolean":
        return not current if current is not None else not schema.get("default", False)
    if kind == "integer":
        return (current if current is not None else schema.get("default", 0)) + 1
    if kind == "string":
        return (current or "") + "mutated"
    if kind == "array":
        return [*(current or []), "mutated"]
    if kind == "object":
        return {**(current or {}), "mutated": "yes"}
    raise AssertionError(f"no sample for {schema}")


def mutations(
    schema: dict[str, Any], file: str, value: Any, path: str = ""
) -> Iterator[tuple[str, Any]]:
    """(field path, a changed copy of `value`) for every field the schema allows, recursively."""
    schema, file = _resolve(schema, file)
    for name, sub in _properties(schema, file, value).items():
        sub, sub_file = _resolve(sub, file)
        field = f"{path}.{name}" if path else name
        current = value.get(name)
        if sub.get("type") == "object" and "properties" in sub and isinstance(current, dict):
            for inner, changed in mutations(sub, sub_file, current, field):
                yield inner, None if changed is None else {**value, name: changed}
            continue
        items, _ = _resolve(sub.get("items", {}), sub_file)
        if sub.get("type") == "array" and "properties" in items and current:
            for inner, changed in mutations(items, sub_file, current[0], f"{field}[]"):
                yield inner, None if changed is None else {**value, name: [changed, *current[1:]]}
            continue
        sample = _sample(sub, current)
        if sample is None:
            yield field, None
            continue
        if name in SELECTORS and current is None:
            if name == "pattern":
                sample = "logs/**.json"
            changed = {k: v for k, v in value.items() if k not in SELECTORS}
            yield field, {**changed, name: sample}
            continue
        yield field, {**value, name: sample}


def _noticed(spec: dict[str, Any]) -> bool:
    def resource(body: dict[str, Any]) -> Resource:
        return Resource(
            Kind.INGESTION_JOB,
            "job",
            body,
            Location("jobs.yaml"),
            fingerprint=spec_fingerprint(compared_form(body)),
        )

    empty = LiveState({}, {}, ())
    same_identity = job_identity(compared_form(spec), PLACE) == job_identity(
        compared_form(BASE), PLACE
    )
    same_checksum = checksum([resource(spec)], empty) == checksum([resource(BASE)], empty)
    return not (same_identity and same_checksum)


GENERATED = list(
    mutations(
        _document("ingestionjob.schema.json")["definitions"]["spec"],
        "ingestionjob.schema.json",
        BASE,
    )
)


def test_the_generated_fields_cover_the_schema_and_the_ignore_list_is_current() -> None:
    fields = {field for field, _ in GENERATED}
    assert {
        "source.formatSettings.skipHeaderRows",
        "mappings[].isAggregation",
        "target.intervals",
    } <= fields
    assert set(IGNORED) <= fields, "an ignored field the schema no longer has"
    assert {field for field, spec in GENERATED if spec is None} <= set(IGNORED)


@pytest.mark.parametrize(
    ("field", "spec"),
    [(f, s) for f, s in GENERATED if s is not None],
    ids=[f for f, s in GENERATED if s is not None],
)
def test_changing_any_job_field_is_noticed_by_the_plan(field: str, spec: dict[str, Any]) -> None:
    assert spec != BASE
    assert field in IGNORED or _noticed(copy.deepcopy(spec)), f"{field} can change unnoticed"
