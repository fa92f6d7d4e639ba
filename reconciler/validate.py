"""Turn loaded documents into desired resources: interpolation, schema and cross-document checks."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import schema
from reconciler.manifest import Document, gc_paused, load
from reconciler.model import (
    Kind,
    Location,
    ManifestError,
    ManifestErrors,
    Path,
    Resource,
)
from reconciler.normalize import fingerprint

ENV_REFERENCE = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Double-quoted identifiers in a Druid SQL expression; "" inside one is an escaped quote.
QUOTED_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"')
SELECTORS = ("uris", "prefixes", "objects", "pattern")


@dataclass(frozen=True)
class Manifests:
    """The desired resources, and the expanded secret values every output must hide."""

    resources: tuple[Resource, ...]
    secrets: frozenset[str]
    warnings: tuple[ManifestError, ...] = ()

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The resources of one kind, in manifest order."""
        return [r for r in self.resources if r.kind == kind]


def load_manifests(
    paths: Iterable[str], env: Mapping[str, str], *, require_env: bool = True
) -> Manifests:
    """Load and validate the manifests under `paths`; raise ManifestErrors with every mistake.

    With `require_env=False` (offline validation) an unset variable is a warning, not an error.
    """
    with gc_paused():
        return _load_manifests(paths, env, require_env)


def _load_manifests(paths: Iterable[str], env: Mapping[str, str], require_env: bool) -> Manifests:
    documents, errors = load(paths)
    resources: list[Resource] = []
    sources: dict[tuple[Kind, str], Document] = {}
    secrets: set[str] = set()
    for document in documents:
        resource, document_errors = _resource(document, env, require_env, secrets)
        errors.extend(document_errors)
        if resource is not None:
            resources.append(resource)
            sources.setdefault(resource.key, document)
    errors.extend(cross_check(resources, sources))
    if any(error.severity == "error" for error in errors):
        raise ManifestErrors(errors)
    warnings = tuple(sorted(errors, key=lambda e: (e.location, e.message)))
    return Manifests(tuple(resources), frozenset(s for s in secrets if s), warnings)


def _resource(
    document: Document, env: Mapping[str, str], require_env: bool, secrets: set[str]
) -> tuple[Resource | None, list[ManifestError]]:
    data = document.data
    if not isinstance(data, dict):
        return None, [
            ManifestError(
                document.start,
                "each document must be a mapping with apiVersion, kind, metadata and spec",
            )
        ]
    kind, name = data.get("kind"), _name(data)
    ref = f"{kind}/{name}" if isinstance(kind, str) and name else None
    errors = _literal_secrets(document, data, ref)
    expanded = (
        _Interpolator(document, env, ref, require_env, errors, secrets).expand(data)
        if document.has_references
        else data
    )
    errors.extend(schema.check(document, expanded, ref))
    if any(error.severity == "error" for error in errors):
        return None, errors
    spec = expanded.get("spec") or {}
    if "name" in spec and spec["name"] != name:
        errors.append(
            ManifestError(
                document.locate(("spec", "name")),
                f"spec.name '{spec['name']}' differs from metadata.name '{name}'; "
                "remove spec.name (the name is taken from metadata.name)",
                ref,
            )
        )
        return None, errors
    spec = {k: v for k, v in spec.items() if k != "name"}
    resource_kind = Kind(str(kind))
    resource = Resource(
        kind=resource_kind,
        name=str(name),
        spec=spec,
        location=document.start,
        policy=expanded.get("policy") or {},
        annotations=expanded["metadata"].get("annotations") or {},
        fingerprint=fingerprint(spec) if resource_kind == Kind.INGESTION_JOB else None,
    )
    return resource, errors


def _name(data: dict[str, Any]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _literal_secrets(
    document: Document, data: dict[str, Any], ref: str | None
) -> list[ManifestError]:
    spec = data.get("spec")
    secret_block = spec.get("secrets") if isinstance(spec, dict) else None
    if not isinstance(secret_block, dict):
        return []
    return [
        ManifestError(
            document.locate(("spec", "secrets", field)),
            f"spec.secrets.{field} must be an ${{env:NAME}} reference, not a literal value; "
            "put the secret in an environment variable and write ${env:NAME} here",
            ref,
        )
        for field, value in secret_block.items()
        if field != "type" and not (isinstance(value, str) and ENV_REFERENCE.fullmatch(value))
    ]


@dataclass
class _Interpolator:
    """Expands `${env:NAME}` in every string of one document, noting secrets and mistakes."""

    document: Document
    env: Mapping[str, str]
    ref: str | None
    require_env: bool
    errors: list[ManifestError]
    secrets: set[str]

    def expand(self, value: Any, path: Path = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        expanded = ENV_REFERENCE.sub(lambda match: self.lookup(match, path), value)
        if path[:2] == ("spec", "secrets") and path[-1] != "type":
            self.secrets.add(expanded)
        return expanded

    def lookup(self, match: re.Match[str], path: Path) -> str:
        variable = match.group(1)
        if not ENV_NAME.fullmatch(variable):
            self.report(
                path,
                f"'${{env:{variable}}}' is not a valid reference; "
                "use ${env:NAME} with letters, digits and underscores",
            )
        elif variable in self.env:
            return self.env[variable]
        else:
            # Offline validation may run where secrets are not available (a pull request from a
            # fork, an editor): there an unset variable is a warning; plan and apply need values.
            self.report(
                path,
                f"environment variable {variable} is not set; "
                f"export {variable} before running the reconciler",
                "error" if self.require_env else "warning",
            )
        return match.group(0)

    def report(self, path: Path, message: str, severity: str = "error") -> None:
        self.errors.append(ManifestError(self.document.locate(path), message, self.ref, severity))


def cross_check(
    resources: list[Resource], documents: Mapping[tuple[Kind, str], Document]
) -> list[ManifestError]:
    """The checks that need more than one document, or knowledge beyond the schema."""
    errors: list[ManifestError] = []
    seen: dict[tuple[Kind, str], Resource] = {}
    for resource in resources:
        if resource.key in seen:
            first = seen[resource.key].location
            errors.append(
                ManifestError(
                    resource.location,
                    f"{resource.ref} is declared twice (first at {first}); "
                    "rename or remove one of them",
                    resource.ref,
                )
            )
        else:
            seen[resource.key] = resource
    jobs = [r for r in resources if r.kind == Kind.INGESTION_JOB]
    for job in jobs:
        errors.extend(_check_job(job, seen, documents.get(job.key)))
    # A job's identity is its spec: two manifests with one spec would be one job in Polaris, and
    # the first apply would submit it twice.
    first_with: dict[str, Resource] = {}
    for job in jobs:
        other = first_with.setdefault(job.fingerprint or fingerprint(job.spec), job)
        if other is not job:
            errors.append(
                ManifestError(
                    job.location,
                    f"{job.ref} has the same spec as {other.ref} (at {other.location}); "
                    "a job is identified by its spec, so remove one of them",
                    job.ref,
                )
            )
    return errors


def _check_job(
    job: Resource, declared: Mapping[tuple[Kind, str], Resource], document: Document | None
) -> list[ManifestError]:
    def at(*path: str | int) -> Location:
        return document.locate(("spec", *path), key=True) if document else job.location

    errors: list[ManifestError] = []
    spec = job.spec
    source, target = spec["source"], spec["target"]
    connection = source["connectionName"]
    if (Kind.CONNECTION, connection) not in declared:
        errors.append(
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' names no declared Connection; "
                "declare it (use policy: {manage: external} if it is managed elsewhere)",
                job.ref,
            )
        )
    table_name = target["tableName"]
    table = declared.get((Kind.TABLE, table_name))
    auto_create = spec.get("createTableIfNotExists", False)
    if table is None and not auto_create:
        errors.append(
            ManifestError(
                at("target", "tableName"),
                f"target.tableName '{table_name}' names no declared Table and "
                "createTableIfNotExists is false; declare the Table or set createTableIfNotExists: true",
                job.ref,
            )
        )
    mappings = spec.get("mappings", [])
    if not any(m["columnName"] == "__time" for m in mappings):
        errors.append(
            ManifestError(
                at("mappings"),
                "no mapping for __time; add one such as "
                "{columnName: __time, expression: 'TIME_PARSE(\"timestamp\")'}",
                job.ref,
            )
        )
    aggregations = [m["columnName"] for m in mappings if m.get("isAggregation")]
    if aggregations and table is not None and table.spec.get("type") == "detail":
        errors.append(
            ManifestError(
                at("mappings"),
                f"mappings {', '.join(aggregations)} aggregate, but Table/{table_name} is a detail "
                "table; make the table aggregate or remove isAggregation",
                job.ref,
            )
        )
    known = {field["name"] for field in source["inputSchema"]}
    for index, mapping in enumerate(mappings):
        for identifier in QUOTED_IDENTIFIER.findall(mapping["expression"]):
            name = identifier.replace('""', '"')
            if name not in known and name != "__time":
                errors.append(
                    ManifestError(
                        at("mappings", index, "expression"),
                        f"mapping for '{mapping['columnName']}' refers to \"{name}\", which is not "
                        f"in source.inputSchema{_close(name, known)}",
                        job.ref,
                    )
                )
    if target.get("intervals") and spec.get("ingestionMode", "append") != "replace":
        errors.append(
            ManifestError(
                at("target", "intervals"),
                "target.intervals is only allowed with ingestionMode: replace; "
                "remove intervals or set ingestionMode: replace",
                job.ref,
            )
        )
    return errors


def _close(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f'; did you mean "{close[0]}"?' if close else f" (declared: {', '.join(sorted(known))})"
