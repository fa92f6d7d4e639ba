"""Check documents against the JSON Schemas in `schemas/` and explain failures in plain words."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from reconciler import kinds, marshalled
from reconciler.manifest import Document
from reconciler.model import Kind, ManifestError

# jsonschema (and the referencing library under it) takes longer to import than the rest of
# `reconciler validate` takes to run, and only an invalid document needs it: it is imported
# when a document fails the compiled check, never for valid manifests.
if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

ENVELOPE_SCHEMA = "envelope.schema.json"  # apiVersion, kind, metadata: every document's
# Each kind's schema is named by its module in reconciler/kinds.
SCHEMA_FILES: dict[Kind | None, str] = {
    None: ENVELOPE_SCHEMA,
    **{kind.kind: kind.schema_file for kind in kinds.ordered()},
}
CONFIG_SCHEMA = "config.schema.json"  # reconciler.yaml (config.py)
SECRET_SEGMENT = "secrets"  # values below this key are never echoed in a message


def schema_dir() -> FsPath:
    """The directory holding the schemas: inside the installed wheel, else the source tree's."""
    packaged = resources.files("reconciler") / "_schemas"
    if packaged.is_dir():
        return FsPath(str(packaged))
    return FsPath(__file__).resolve().parent.parent / "schemas"


def files() -> dict[str, bytes]:
    """Every schema file as shipped, by name: `reconciler schema --out DIR` writes these."""
    return {path.name: path.read_bytes() for path in sorted(schema_dir().glob("*.schema.json"))}


@cache
def _documents() -> dict[str, Any]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schema_dir().glob("*.schema.json"))
    }


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """The jsonschema validator of one schema file, with every other file resolvable.

    The files have no `$id`: a `$ref` such as `envelope.schema.json#/definitions/metadata` is
    relative to the file that holds it, so each file is registered under its own name, the way
    an editor or check-jsonschema finds it next to the file it reads.
    """
    import jsonschema  # deferred: see the note on jsonschema above
    from referencing import Registry, Resource  # deferred with jsonschema, whose library it is
    from referencing.jsonschema import DRAFT202012

    documents = _documents()
    registry: Registry[Any] = Registry().with_resources(
        (file, Resource.from_contents(doc, default_specification=DRAFT202012))
        for file, doc in documents.items()
    )
    return jsonschema.Draft202012Validator(documents[name], registry=registry)


class Invalid(Exception):
    """Raised by a compiled check: the document breaks its schema (jsonschema says how)."""


# The names the code fastjsonschema generates imports from it; bound to Invalid instead, so that
# loading the compiled checks from the cache needs neither fastjsonschema nor its code generator.
_GENERATED_IMPORT = "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException"
_REWRITE = 4  # counts changes to how _generate rewrites the generated code (4: set displays)
Check = Callable[[Any], Any]


@cache
def _compiled(name: str) -> Check:
    """One schema compiled to Python by fastjsonschema, for the valid case.

    jsonschema spends most of its time resolving `$ref`s and building validator objects; at
    10,000 documents that is seconds. The schemas use only draft-07 keywords, so they compile
    once their references are inlined. A document the compiled check rejects is checked again
    by jsonschema, which explains it (and has the last word, should the two ever disagree).

    Compiling takes longer than validating a few manifests, so the compiled code is kept in the
    user's cache directory, under a key made of the schemas, the fastjsonschema release and the
    Python version: every run after the first loads it instead (see `_cached_code`). Each
    schema is compiled when a document first needs it: a run that declares no streaming job
    never compiles that schema (16 ms of the 66 ms all of them take).
    """
    namespace: dict[str, Any] = {
        "Invalid": Invalid,
        "JsonSchemaValueException": Invalid,
        "JsonSchemaValuesException": Invalid,
    }
    exec(_cached_code(_documents(), name), namespace)  # code generated from our own schemas
    check: Check = namespace["validate"]
    return check


@cache
def _cache_key() -> str:
    """What the generated code depends on: the schemas, fastjsonschema's release, Python's, and
    how `_generate` rewrites what fastjsonschema generates."""
    digest = hashlib.sha256(json.dumps(_documents(), sort_keys=True).encode("utf-8"))
    digest.update(f"rewrite {_REWRITE}".encode())
    spec = importlib.util.find_spec("fastjsonschema")  # finds the package without importing it
    if spec is not None and spec.origin is not None:
        with contextlib.suppress(OSError):  # version.py holds the release, and nothing else
            digest.update(FsPath(spec.origin).with_name("version.py").read_bytes())
    digest.update(f"{sys.implementation.cache_tag}|{sys.version}".encode())
    return digest.hexdigest()[:32]


def _cached_code(documents: dict[str, Any], name: str) -> Any:
    """The compiled check of one schema as a code object: from the cache, else generated (and
    then cached)."""
    directory = marshalled.cache_directory() / "schemas"
    path = directory / f"{_cache_key()}-{name.removesuffix('.schema.json')}.marshal"
    cached = marshalled.load(path)
    if isinstance(cached, types.CodeType):
        return cached
    code = compile(_generate(documents, name), f"<compiled {name}>", "exec")
    marshalled.save(path, code)  # a read-only home still validates, only slower
    return code


def _generate(documents: dict[str, Any], name: str) -> str:
    """Python source of one schema's check: a module whose `validate` raises Invalid."""
    import fastjsonschema  # deferred: only generating a check (a cache miss) needs it

    # use_default=False: the compiled check must never write schema defaults into the
    # manifest's values (they would be sent to Polaris as if the user had written them).
    source: str = fastjsonschema.compile_to_code(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            **_inline(documents[name], documents),
        },
        use_default=False,
    )
    if _GENERATED_IMPORT not in source:  # a fastjsonschema release that generates otherwise
        raise RuntimeError(f"fastjsonschema generated unexpected code for {name}")
    source = _BARE_RAISE.sub(r"\1raise Invalid", source.replace(_GENERATED_IMPORT, ""))
    source = _SET_OF_NAMES.sub(r"{\1}", source)
    if "JsonSchemaValueException(" in source or "JsonSchemaValuesException(" in source:
        raise RuntimeError(f"fastjsonschema generated a raise this module cannot rewrite ({name})")
    return source


# Every raise in the generated code builds a message and a copy of the failing subschema, which
# only fastjsonschema's own exception would use. The check fails on purpose many times per valid
# document (every `if` that does not hold, every `oneOf` branch that does not match), and the
# answer is only "valid or not" (jsonschema explains), so each raise is reduced to `raise Invalid`,
# an exception class with no Python __init__: that was a quarter of the check's time.
# (fastjsonschema's detailed_exceptions=False would build no details, but fails on `const` in
# release 2.22.3.)
_BARE_RAISE = re.compile(r"^(\s*)raise JsonSchemaValueException\(.*\)$", re.MULTILINE)
# Each `required` is checked as `set(['a', 'b']) - data.keys()`: a list made, then `set` looked
# up and called, for every document. The same set as a display (`{'a', 'b'}`) took a sixth off
# the check of 1,000 jobs (18.5 -> 15.5 ms). Only plain quoted names are rewritten.
_SET_OF_NAMES = re.compile(r"\bset\(\[((?:'[A-Za-z0-9_.$-]*'(?:, )?)+)\]\)")


def _inline(node: Any, documents: dict[str, Any], base: Any = None) -> Any:
    """`node` with every `$ref` replaced by what it points to (the schemas are not recursive).

    A `$ref` names another file of the same directory, or a fragment of the file it is in."""
    base = base if base is not None else node
    if isinstance(node, list):
        return [_inline(item, documents, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        address, _, fragment = node["$ref"].partition("#")
        document = documents[address] if address else base
        target = document
        for part in filter(None, fragment.split("/")):
            target = target[part]
        resolved = _inline(target, documents, document)
        siblings = {k: _inline(v, documents, base) for k, v in node.items() if k != "$ref"}
        return {"allOf": [resolved, siblings]} if siblings else resolved
    dropped = ("$id", "$schema", "definitions", "$defs")
    return {k: _inline(v, documents, base) for k, v in node.items() if k not in dropped}


def check(document: Document, data: Any, resource: str | None) -> list[ManifestError]:
    """Every schema error in `data` (the document's values after interpolation)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    known = Kind(kind) if isinstance(kind, str) and kind in SCHEMA_FILES else None
    return _errors(document, data, SCHEMA_FILES[known], resource)


def check_config(document: Document) -> list[ManifestError]:
    """Every schema error in a reconciler.yaml document (config.py), explained like a manifest's."""
    return _errors(document, document.data, CONFIG_SCHEMA, None)


def _errors(document: Document, data: Any, name: str, resource: str | None) -> list[ManifestError]:
    try:
        _compiled(name)(data)
        return []
    except Invalid:
        pass
    errors = {
        (str(location), message): ManifestError(location, message, resource)
        for error in _validator(name).iter_errors(data)
        for location, message in _explain(document, error)
    }
    return list(errors.values())


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
        from jsonschema.exceptions import best_match  # deferred: see the note on jsonschema

        best = best_match(error.context)
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
        # The description may say what to write instead (a streaming job is another kind).
        hint = f"; {schema['description']}" if "description" in schema else ""
        yield (document.locate(path), f"{where} must be {_show(schema['const'])}{value}{hint}")
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
    import difflib  # only a document with a mistake gets here

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
