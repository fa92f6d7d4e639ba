"""Check documents against the JSON Schemas in `schemas/` and explain failures in plain words."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reconciler.manifest import Document
from reconciler.model import Kind, ManifestError

SCHEMA_FILES: dict[Kind | None, str] = {
    None: "envelope.schema.json",
    Kind.CONNECTION: "connection.schema.json",
    Kind.TABLE: "table.schema.json",
    Kind.INGESTION_JOB: "ingestionjob.schema.json",
}
CONFIG_SCHEMA = "config.schema.json"  # reconciler.yaml (config.py)
SECRET_SEGMENT = "secrets"  # values below this key are never echoed in a message


def schema_dir() -> FsPath:
    """The directory holding the schemas: inside the installed wheel, else the source tree's."""
    packaged = resources.files("reconciler") / "_schemas"
    if packaged.is_dir():
        return FsPath(str(packaged))
    return FsPath(__file__).resolve().parent.parent / "schemas"


@cache
def _documents() -> dict[str, Any]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schema_dir().glob("*.schema.json"))
    }


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """The jsonschema validator of one schema file, with every other file resolvable."""
    documents = _documents()
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012))
        for doc in documents.values()
    )
    return jsonschema.Draft202012Validator(documents[name], registry=registry)


@cache
def _validators() -> dict[Kind | None, jsonschema.protocols.Validator]:
    """jsonschema validators: the authority, and the source of every explanation."""
    return {kind: _validator(name) for kind, name in SCHEMA_FILES.items()}


@cache
def _compiled() -> dict[Kind | None, Any]:
    """The same schemas compiled to Python by fastjsonschema, for the common valid case.

    jsonschema spends most of its time resolving `$ref`s and building validator objects; at
    10,000 documents that is seconds. The schemas use only draft-07 keywords, so they compile
    once their references are inlined. A document the compiled check rejects is checked again
    by jsonschema, which explains it (and has the last word, should the two ever disagree).
    """
    documents = _documents()
    by_id = {doc["$id"]: doc for doc in documents.values()}
    return {
        # use_default=False: the compiled check must never write schema defaults into the
        # manifest's values (they would be sent to Polaris as if the user had written them).
        kind: fastjsonschema.compile(
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                **_inline(documents[name], by_id),
            },
            use_default=False,
        )
        for kind, name in SCHEMA_FILES.items()
    }


def _inline(node: Any, by_id: dict[str, Any], base: Any = None) -> Any:
    """`node` with every `$ref` replaced by what it points to (the schemas are not recursive)."""
    base = base if base is not None else node
    if isinstance(node, list):
        return [_inline(item, by_id, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        address, _, fragment = node["$ref"].partition("#")
        document = base
        if address:
            document = by_id.get(address) or by_id[base["$id"].rsplit("/", 1)[0] + "/" + address]
        target = document
        for part in filter(None, fragment.split("/")):
            target = target[part]
        resolved = _inline(target, by_id, document)
        siblings = {k: _inline(v, by_id, base) for k, v in node.items() if k != "$ref"}
        return {"allOf": [resolved, siblings]} if siblings else resolved
    dropped = ("$id", "$schema", "definitions", "$defs")
    return {k: _inline(v, by_id, base) for k, v in node.items() if k not in dropped}


def check(document: Document, data: Any, resource: str | None) -> list[ManifestError]:
    """Every schema error in `data` (the document's values after interpolation)."""
    validators = _validators()
    kind = data.get("kind") if isinstance(data, dict) else None
    kind = kind if kind in validators else None
    try:
        _compiled()[kind](data)
        return []
    except fastjsonschema.JsonSchemaException:
        pass
    validator = validators[kind]
    errors = {
        (str(location), message): ManifestError(location, message, resource)
        for error in validator.iter_errors(data)
        for location, message in _explain(document, error)
    }
    return list(errors.values())


def check_config(document: Document) -> list[ManifestError]:
    """Every schema error in a reconciler.yaml document (config.py), explained like a manifest's."""
    return [
        ManifestError(location, message)
        for error in _validator(CONFIG_SCHEMA).iter_errors(document.data)
        for location, message in _explain(document, error)
    ]


def _explain(document: Document, error: ValidationError) -> Iterator[tuple[Any, str]]:
    path = tuple(error.absolute_path)
    where = _dotted(path) or "the document"
    secret = SECRET_SEGMENT in path
    value = "" if secret else f" (got {_show(error.instance)})"
    validator = error.validator
    schema: Any = error.schema
    if validator == "required":
        for field in schema["required"]:
            if isinstance(error.instance, dict) and field not in error.instance:
                yield (
                    document.locate(path, key=True),
                    f"missing required field '{_dotted((*path, field))}'"
                    + _described(schema, field),
                )
    elif validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for field in sorted(set(error.instance) - set(allowed)):
            yield (
                document.locate((*path, field), key=True),
                f"unknown field '{_dotted((*path, field))}'{_suggest(field, allowed)}",
            )
    elif validator in ("oneOf", "anyOf") and _only_required_variants(schema[validator]):
        options = [variant["required"][0] for variant in schema[validator]]
        present = [name for name in options if name in error.instance]
        yield (
            document.locate(path, key=True),
            f"{where} needs exactly one of {', '.join(options)}; found "
            + (", ".join(present) if present else "none"),
        )
    elif validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        yield from _explain(document, best)
    elif validator == "type":
        expected = schema["type"]
        hint = ""
        if expected == "string" and isinstance(error.instance, (int, float, bool)):
            hint = "; YAML read it as a number or boolean, so put it in quotes"
        elif expected == "boolean" and isinstance(error.instance, str):
            hint = "; write true or false"
        yield (
            document.locate(path),
            f"{where} must be {_article(expected)}, not {_type_name(error.instance)}{value}{hint}",
        )
    elif validator == "enum":
        options = [str(option) for option in schema["enum"]]
        yield (
            document.locate(path),
            f"{where} must be one of: {', '.join(options)}{value}"
            + _suggest(str(error.instance), options),
        )
    elif validator == "const":
        yield (document.locate(path), f"{where} must be {_show(schema['const'])}{value}")
    elif validator == "not" and isinstance(schema.get("not"), dict) and "required" in schema["not"]:
        for field in schema["not"]["required"]:
            yield (
                document.locate((*path, field), key=True),
                f"'{_dotted((*path, field))}' is not allowed here"
                + (f": {schema['description']}" if "description" in schema else ""),
            )
    elif validator in ("minLength", "maxLength") and isinstance(error.instance, str):
        limit = schema[validator]
        bound = "at least" if validator == "minLength" else "at most"
        yield (
            document.locate(path),
            f"{where} is {len(error.instance)} characters long; it must be {bound} {limit}",
        )
    elif validator in ("minimum", "maximum") and not secret:
        bound = "at least" if validator == "minimum" else "at most"
        yield (document.locate(path), f"{where} must be {bound} {schema[validator]}{value}")
    elif validator == "pattern":
        rule = schema.get("description") or f"the pattern {schema['pattern']}"
        yield (document.locate(path), f"{where} does not match {rule}{value}")
    else:
        message = error.message if not secret else f"{validator} check failed"
        yield (document.locate(path), f"{where}: {message}")


def _only_required_variants(variants: list[Any]) -> bool:
    return all(isinstance(v, dict) and len(v.get("required", ())) == 1 for v in variants)


def _described(schema: dict[str, Any], field: str) -> str:
    description = schema.get("properties", {}).get(field, {}).get("description")
    return f" ({description.rstrip('.')})" if description else ""


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _article(expected: Any) -> str:
    words = {"object": "a mapping", "array": "a list", "integer": "an integer", "null": "null"}
    if isinstance(expected, list):
        return " or ".join(_article(item) for item in expected)
    return words.get(expected, f"a {expected}")
