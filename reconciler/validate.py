"""Turn loaded documents into desired resources: interpolation, schema and cross-document checks."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import connection_types, schema
from reconciler.globs import GlobError, sequences
from reconciler.manifest import Document, gc_paused, load
from reconciler.model import (
    LOCK_TABLE,
    Kind,
    Location,
    ManifestError,
    ManifestErrors,
    Path,
    Resource,
    Secret,
)
from reconciler.normalize import aggregates, fingerprint

ENV_REFERENCE = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One pass over a string finds, in order: the `$${` escape, a `${...}` reference, or a `${`
# that is never closed. Expanded values are not scanned again, so a value cannot inject one.
REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
# The variable that holds the API key when no target names another (cli.py reads it).
API_KEY_VARIABLE = "POLARIS_API_KEY"
# A Druid SQL expression: string literals ('' escapes a quote) are skipped, so a " inside one
# is text; double-quoted identifiers ("" escapes a quote) are the input fields it reads.
SQL_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"((?:[^\"]|\"\")+)\"")
# Characters that a URL path, a terminal or a log would treat as something other than text.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Manifests:
    """The desired resources, and the expanded secret values every output must hide."""

    resources: tuple[Resource, ...]
    secrets: frozenset[str]
    warnings: tuple[ManifestError, ...] = ()

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The resources of one kind, in manifest order."""
        return [r for r in self.resources if r.kind == kind]


@dataclass(frozen=True)
class Interpolation:
    """What `${env:NAME}` and `${var:NAME}` may expand to in one run."""

    env: Mapping[str, str]
    variables: Mapping[str, str]
    require_env: bool
    # Variables that hold an API key: never expanded, not even into a secret.
    key_variables: frozenset[str]
    target: str | None  # the reconciler.yaml target the variables come from, for messages


def load_manifests(
    paths: Iterable[str],
    env: Mapping[str, str],
    *,
    require_env: bool = True,
    variables: Mapping[str, str] | None = None,
    key_variables: Iterable[str] = (API_KEY_VARIABLE,),
    target: str | None = None,
) -> Manifests:
    """Load and validate the manifests under `paths`; raise ManifestErrors with every mistake.

    `${env:NAME}` is read from `env`, and only inside spec.secrets; `${var:NAME}` from
    `variables` (a reconciler.yaml target's vars and --var). With `require_env=False` (offline
    validation) an unset environment variable is a warning, not an error.
    """
    interpolation = Interpolation(
        env, dict(variables or {}), require_env, frozenset(key_variables), target
    )
    with gc_paused():
        return _load_manifests(paths, interpolation)


def _load_manifests(paths: Iterable[str], interpolation: Interpolation) -> Manifests:
    documents, errors = load(paths)
    resources: list[Resource] = []
    sources: dict[tuple[Kind, str], Document] = {}
    secrets: set[str] = set()
    for document in documents:
        resource, document_errors = _resource(document, interpolation, secrets)
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
    document: Document, interpolation: Interpolation, secrets: set[str]
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
    # Messages end with the resource; a name that could forge output is never put there.
    shown = isinstance(kind, str) and name and "${" not in name and not _name_problem(kind, name)
    ref = f"{kind}/{name}" if shown else None
    errors = _literal_secrets(document, data, ref)
    revealed: dict[str, Secret] = {}
    # Secrets stay `${env:NAME}` references through the schema check, so that no message can
    # quote their values; they become Secret values after it.
    expanded = (
        _Interpolator(document, interpolation, ref, errors, revealed).expand(data)
        if document.has_references
        else data
    )
    name = _name(expanded)  # a name from a ${var:} is checked as it will be sent
    name_problem = _name_problem(kind, name)
    checked = schema.check(document, expanded, ref)
    if name_problem:
        at = document.locate(("metadata", "name"))
        errors.append(ManifestError(at, name_problem, ref))
        checked = [e for e in checked if e.location != at]  # one reason per name is enough
    errors.extend(checked)
    if any(error.severity == "error" for error in errors):
        return None, errors
    spec = expanded.get("spec") or {}
    if kind == Kind.INGESTION_JOB:  # the names a job sends in paths and query parameters
        named = [("source", "connectionName"), ("target", "tableName")]
        bad = [
            ManifestError(document.locate(("spec", *path)), problem, ref)
            for path in named
            if (problem := _name_problem(None, spec[path[0]][path[1]], ".".join(("spec", *path))))
        ]
        if bad:
            return None, errors + bad
    if revealed and isinstance(spec.get("secrets"), dict):
        spec = {**spec, "secrets": {**spec["secrets"], **revealed}}
        secrets.update(secret.reveal() for secret in revealed.values())
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


def name_problem(kind: Kind, name: str) -> str | None:
    """Why a manifest cannot declare a resource of this kind by this name, if it cannot.

    `reconciler import` asks before it writes a live resource's manifest.
    """
    return _name_problem(kind, name)


def _name_problem(kind: Any, name: str | None, field: str = "metadata.name") -> str | None:
    """Why Polaris would route this name wrongly or output would show it falsely, if it would."""
    if name is None:
        return None
    if name in (".", ".."):
        return (
            f"{field} '{name}' cannot be used: '.' and '..' name the collection or the "
            "project in a URL, not a resource; choose another name"
        )
    for character in ("/", "\\"):
        if character in name:
            return (
                f"{field} contains '{character}', which a URL path would split; "
                "use letters, digits, '.', '_' or '-'"
            )
    control = CONTROL.search(name)
    if control:
        return (
            f"{field} contains the control character U+{ord(control.group()):04X}, which "
            "would rewrite terminal and Markdown output; remove it"
        )
    if name != name.strip():
        return f"{field} begins or ends with whitespace, which Polaris does not keep; remove it"
    if name == LOCK_TABLE and (kind == Kind.TABLE or field == "spec.target.tableName"):
        return (
            f"the table name {LOCK_TABLE} is reserved for the project lock "
            "(reconciler/lock.py); choose another table name"
        )
    return None


@dataclass
class _Interpolator:
    """Expands references in every string of one document, noting secrets and mistakes.

    `${var:NAME}` expands anywhere; `${env:NAME}` only as a whole value in spec.secrets, where
    it becomes a Secret (in `revealed`) and stays a reference in the returned data, so that
    no error message can quote it. `$${` is a literal `${`; any other `${...}` is an error.
    """

    document: Document
    interpolation: Interpolation
    ref: str | None
    errors: list[ManifestError]
    revealed: dict[str, Secret]

    def expand(self, value: Any, path: Path = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        secret = len(path) == 3 and path[:2] == ("spec", "secrets") and path[2] != "type"
        if secret:
            match = ENV_REFERENCE.fullmatch(value)
            if match:  # anything else is a literal secret, which _literal_secrets reports
                found = self.secret(match.group(1), path)
                if found is not None:
                    self.revealed[str(path[2])] = found
            return value
        return REFERENCE.sub(lambda match: self.replace(match, path), value)

    def replace(self, match: re.Match[str], path: Path) -> str:
        text = match.group(0)
        if text == "$${":
            return "${"
        inner = match.group(1)
        if inner is None:
            self.report(path, "'${' without a closing '}'; write $${ for a literal ${")
            return text
        scheme, _, name = inner.partition(":")
        if scheme == "var" and ENV_NAME.fullmatch(name):
            return self.variable(name, path) or text
        if scheme == "env" and name in self.interpolation.key_variables:
            self.report(
                path,
                f"{text} holds the Polaris API key, which is never sent anywhere but the "
                "Authorization header; remove it",
            )
            return text
        if scheme == "env" and ENV_NAME.fullmatch(name):
            self.report(
                path,
                f"{text} is only allowed as a value in spec.secrets, where it is never shown; "
                f"for other values that differ between targets, declare a var in "
                f"reconciler.yaml and write ${{var:{name}}}",
            )
            return text
        self.report(
            path,
            f"'{text}' is not a reference; write ${{var:NAME}} (a reconciler.yaml variable), "
            "${env:NAME} (in spec.secrets only) or $${ for a literal ${",
        )
        return text

    def variable(self, name: str, path: Path) -> str | None:
        variables = self.interpolation.variables
        if name in variables:
            return variables[name]
        target = self.interpolation.target
        where = f"the vars of target {target} in reconciler.yaml" if target else "reconciler.yaml"
        self.report(
            path,
            f"variable {name} is not declared; declare it in {where} or pass --var {name}=VALUE",
        )
        return None

    def secret(self, name: str, path: Path) -> Secret | None:
        reference = f"${{env:{name}}}"
        if not ENV_NAME.fullmatch(name):
            self.report(
                path,
                f"'{reference}' is not a valid reference; "
                "use ${env:NAME} with letters, digits and underscores",
            )
            return None
        if name in self.interpolation.key_variables:
            self.report(
                path,
                f"{reference} holds the Polaris API key, which is never sent anywhere but "
                "the Authorization header; use the variable that holds this secret",
            )
            return None
        env = self.interpolation.env
        if name not in env:
            # Offline validation may run where secrets are not available (a pull request from a
            # fork, an editor): there an unset variable is a warning; plan and apply need values.
            self.report(
                path,
                f"environment variable {name} is not set; export {name} before running the reconciler",
                "error" if self.interpolation.require_env else "warning",
            )
            return None
        value = env[name]
        if not value:
            self.report(path, f"environment variable {name} is empty; a secret cannot be empty")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # os.environ keeps undecodable bytes as surrogates
            self.report(
                path,
                f"environment variable {name} is not valid UTF-8; set it to the secret's text",
            )
            return None
        return Secret(value)

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
    source_connection = declared.get((Kind.CONNECTION, connection))
    if source_connection is None:
        errors.append(
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' names no declared Connection; "
                "declare it (use policy: {manage: external} if it is managed elsewhere)",
                job.ref,
            )
        )
    elif (
        kind := connection_types.of(source_connection.spec)
    ) is not None and not kind.batch_source:
        errors.append(
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' is a connection of type {kind.name} "
                f"(at {source_connection.location}); batch jobs read only from "
                f"{' or '.join(connection_types.BATCH_SOURCE_TYPES)} connections, so name one",
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
    for index, mapping in enumerate(mappings):
        explicit = mapping.get("isAggregation")
        if isinstance(explicit, bool) and explicit != aggregates(mapping["expression"]):
            # Polaris does not echo isAggregation, so a live job's is derived from its expression;
            # a manifest that says otherwise may never match the job it submitted.
            errors.append(
                ManifestError(
                    at("mappings", index, "isAggregation"),
                    f"mapping for '{mapping['columnName']}' sets isAggregation: "
                    f"{str(explicit).lower()}, but its expression "
                    f"{'does not aggregate' if explicit else 'aggregates'}; Polaris does not return "
                    "isAggregation, so the plan derives it from the expression: make them agree "
                    "(or leave isAggregation out)",
                    job.ref,
                    severity="warning",
                )
            )
    if isinstance(source.get("pattern"), str):
        try:
            sequences(source["pattern"])
        except GlobError as error:
            # The plan could not tell which objects it reads, so could not rule out double
            # ingestion; Polaris reads it as a Java glob and would reject most such patterns.
            errors.append(
                ManifestError(
                    at("source", "pattern"),
                    f"source.pattern is not a glob this tool can read: {error}; see the Java "
                    "PathMatcher glob syntax (*, **, ?, [...], {a,b}, \\ escapes)",
                    job.ref,
                )
            )
    known = {field["name"] for field in source["inputSchema"]}
    for index, mapping in enumerate(mappings):
        identifiers = [m.group(1) for m in SQL_TOKEN.finditer(mapping["expression"]) if m.group(1)]
        for identifier in identifiers:
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
