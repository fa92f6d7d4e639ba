"""Turn loaded documents into desired resources: interpolation, schema and cross-document checks."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import kinds, names, schema
from reconciler.kinds.base import SecretsField
from reconciler.manifest import Boundary, Document, discover, gc_paused, load_files
from reconciler.model import (
    Kind,
    Location,
    ManifestError,
    ManifestErrors,
    Path,
    Resource,
    Secret,
)

ENV_REFERENCE = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One pass over a string finds, in order: the `$${` escape, a `${...}` reference, or a `${`
# that is never closed. Expanded values are not scanned again, so a value cannot inject one.
REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
# The variable that holds the API key when no target names another (cli.py reads it).
API_KEY_VARIABLE = "POLARIS_API_KEY"
KINDS = frozenset(str(kind) for kind in Kind)


@dataclass(frozen=True)
class Manifests:
    """The desired resources, and the expanded secret values every output must hide."""

    resources: tuple[Resource, ...]
    secrets: frozenset[str]
    warnings: tuple[ManifestError, ...] = ()
    identified: bool = False  # each resource's compared form and fingerprint made (`prepared`)

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The resources of one kind, in manifest order."""
        return [r for r in self.resources if r.kind == kind]

    @functools.cached_property
    def prepared(self) -> Manifests:
        """These manifests as a plan reads them: each job's compared form and its fingerprint
        made, once per run (`ResourceKind.identified`). Validation needs neither; a plan makes
        them while its first reads are in flight (`read_live`'s `meanwhile`). The resources
        share their specs."""
        return self if self.identified else _prepared(self)


def _prepared(manifests: Manifests) -> Manifests:
    resources = tuple(_identified(r) for r in manifests.resources)
    return dataclasses.replace(manifests, resources=resources, identified=True)


def _identified(resource: Resource) -> Resource:
    if resource.compared is not None:
        return resource
    fingerprint, compared = kinds.of(resource.kind).identified(resource.spec)
    if compared is None and fingerprint is None:
        return resource
    return dataclasses.replace(resource, fingerprint=fingerprint, compared=compared)


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
    within: Boundary | None = None,
    keep_compared: bool = True,
    identify: bool = True,
) -> Manifests:
    """Load and validate the manifests under `paths`; raise ManifestErrors with every mistake.

    `${env:NAME}` is read from `env`, and only inside spec.secrets; `${var:NAME}` from
    `variables` (a reconciler.yaml target's vars and --var). With `require_env=False` (offline
    validation) an unset environment variable is a warning, not an error. With `within` (the
    repository's directory), a symbolic link in it that leads out of it is an error, not read.
    With `keep_compared=False` (a run that plans nothing: validate) no job's fingerprint is taken,
    nor the compared form it is taken of (10,000 jobs hold about 17 MB of it): the duplicate
    check takes the few it needs. With `identify=False`, a run that plans makes them later, while
    its first reads are in flight (`Manifests.prepared`).
    """
    interpolation = Interpolation(
        env, dict(variables or {}), require_env, frozenset(key_variables), target
    )
    with gc_paused():
        manifests = _load_manifests(paths, interpolation, within, keep_compared)
        return _prepared(manifests) if keep_compared and identify else manifests


def _load_manifests(
    paths: Iterable[str], interpolation: Interpolation, within: Boundary | None,
    interned: bool,
) -> Manifests:  # fmt: skip
    files, errors = discover(paths, within)
    # A run that keeps every spec until it is rendered has their strings interned as each file
    # is parsed (validate, which keeps nothing, spends no time on it).
    documents, file_errors = load_files(files, interned=interned)
    errors.extend(file_errors)  # each file's own errors, then each document's
    resources: list[Resource] = []
    sources: dict[tuple[Kind, str], Document] = {}
    secrets: set[str] = set()
    stand_ins: list[Resource] = []
    for document in documents:
        resource, document_errors = _resource(document, interpolation, secrets)
        errors.extend(document_errors)
        if resource is not None:
            resources.append(resource)
            sources.setdefault(resource.key, document)
        else:
            stand_ins.extend(_stand_in(document))
    errors.extend(cross_check(resources, sources, stand_ins))
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
    name_problem = _name_problem(kind, name)
    # Messages end with the resource; a name that could forge output is never put there.
    shown = isinstance(kind, str) and name and "${" not in name and not name_problem
    ref = f"{kind}/{name}" if shown else None
    # Where this kind keeps secrets, the one place `${env:NAME}` may be written (none: nowhere).
    holder = kinds.of(Kind(kind)).secrets_at if kind in KINDS else None
    errors = _literal_secrets(document, data, ref, holder)
    wrapped: dict[str, Secret] = {}
    read: set[str] = set()  # their values, as read from the environment: for the redactor
    # Secrets stay `${env:NAME}` references through the schema check, so that no message can
    # quote their values; they become Secret values after it.
    expanded = (
        _Interpolator(document, interpolation, ref, errors, wrapped, read, holder).expand(data)
        if document.has_references
        else data
    )
    if expanded is not data:  # a name from a ${var:} is checked as it will be sent
        name = _name(expanded)
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
    resource_kind = kinds.of(Kind(str(kind)))
    bad = [
        ManifestError(document.locate(("spec", *path)), problem, ref)
        for path, problem in resource_kind.document_problems(spec)
    ]
    if bad:
        return None, errors + bad
    if wrapped and holder is not None and isinstance(spec.get(holder.field), dict):
        spec = {**spec, holder.field: {**spec[holder.field], **wrapped}}
        secrets.update(read)
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
    # No fingerprint is taken here: the duplicate check takes the few it needs, and a plan
    # takes each job's, with the compared form it is taken of (`Manifests.prepared`).
    resource = Resource(
        kind=resource_kind.kind,
        name=str(name),
        spec=spec,
        location=document.start,
        policy=expanded.get("policy") or {},
        annotations=expanded["metadata"].get("annotations") or {},
    )
    return resource, errors


def _stand_in(document: Document) -> list[Resource]:
    """What a document that did not validate declares, as far as it can be read: its own errors
    are reported, and the documents that refer to it are not told that nothing declares it."""
    data = document.data
    kind, name = (data.get("kind"), _name(data)) if isinstance(data, dict) else (None, None)
    if isinstance(kind, str) and kind not in KINDS:
        # A misspelt kind (`Conection`) reads as the kind it is closest to, if any is close:
        # its own error names the typo, and the jobs that use it are not blamed as well.
        import difflib  # defers difflib: only a misspelt kind needs it

        kind = next(iter(difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.8)), kind)
    if kind not in KINDS or not name or _name_problem(kind, name):
        return []
    spec = data.get("spec")
    return [Resource(Kind(kind), name, spec if isinstance(spec, dict) else {}, document.start)]


def _name(data: dict[str, Any]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _literal_secrets(
    document: Document, data: dict[str, Any], ref: str | None, holder: SecretsField | None
) -> list[ManifestError]:
    spec = data.get("spec")
    if holder is None or not isinstance(spec, dict):
        return []
    secret_block = spec.get(holder.field)
    if not isinstance(secret_block, dict):
        return []
    return [
        ManifestError(
            document.locate(("spec", holder.field, field)),
            f"spec.{holder.field}.{field} must be an ${{env:NAME}} reference, not a literal "
            "value; put the secret in an environment variable and write ${env:NAME} here",
            ref,
        )
        for field, value in secret_block.items()
        if holder.holds(("spec", holder.field, field))
        and not (isinstance(value, str) and ENV_REFERENCE.fullmatch(value))
    ]


def name_problem(kind: Kind, name: str) -> str | None:
    """Why a manifest cannot declare a resource of this kind by this name, if it cannot.

    `reconciler import` asks before it writes a live resource's manifest.
    """
    return names.name_problem(name) or kinds.of(kind).reserved(name)


def _name_problem(kind: Any, name: str | None) -> str | None:
    """name_problem for a document's kind and name as written (either may be anything)."""
    if name is None:
        return None
    problem = names.name_problem(name)
    if problem is None and isinstance(kind, str) and kind in KINDS:
        problem = kinds.of(Kind(kind)).reserved(name)
    return problem


@dataclass
class _Interpolator:
    """Expands references in every string of one document, noting secrets and mistakes.

    `${var:NAME}` expands anywhere; `${env:NAME}` only as a whole value in spec.secrets, where
    it becomes a Secret (in `wrapped`; its value, as read, in `read`, for the redactor) and
    stays a reference in the returned data, so that no error message can quote it. `$${` is a literal `${`; any other `${...}` is an error.
    """

    document: Document
    interpolation: Interpolation
    ref: str | None
    errors: list[ManifestError]
    wrapped: dict[str, Secret]
    read: set[str]
    holder: SecretsField | None  # where the document's kind keeps secrets

    def expand(self, value: Any, path: Path = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        if self.holder is not None and self.holder.holds(path):
            match = ENV_REFERENCE.fullmatch(value)
            if match:  # anything else is a literal secret, which _literal_secrets reports
                found = self.secret(match.group(1), path)
                if found is not None:
                    self.wrapped[str(path[2])] = found
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
        self.read.add(value)  # registered with the redactor as read; never revealed again
        return Secret(value, reference)

    def report(self, path: Path, message: str, severity: str = "error") -> None:
        self.errors.append(ManifestError(self.document.locate(path), message, self.ref, severity))


def cross_check(
    resources: list[Resource],
    documents: Mapping[tuple[Kind, str], Document],
    stand_ins: Iterable[Resource] = (),
) -> list[ManifestError]:
    """The checks that need more than one document: names declared twice, then each kind's.

    `stand_ins` are what documents with errors of their own declare: a reference to one of them
    is no error, since the document is there and its own errors say what to fix.
    """
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

    def locate(resource: Resource, path: Path) -> Location:
        document = documents.get(resource.key)
        return document.locate(("spec", *path), key=True) if document else resource.location

    declared = {stand_in.key: stand_in for stand_in in stand_ins} | seen
    for kind in kinds.ordered():
        mine = [r for r in resources if r.kind is kind.kind]
        if mine:
            errors.extend(kind.cross_check(mine, declared, locate))
    return errors
