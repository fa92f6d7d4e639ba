"""`reconciler import`: adopt a live project by writing the manifests that describe it.

Each live resource becomes one manifest that `reconciler validate` accepts and on which
`reconciler plan` shows no change. What normalize.py knows decides what is written: only
writable fields, without the values Polaris fills by default or adds itself. Secrets are
write-only, so a connection that authenticates with them gets `${env:...}` placeholders and a comment
naming the variables to set. Names come from the server and are treated as hostile: a file name
is built from a safe subset of characters (never a path separator or a leading dot) and checked
to stay inside the output directory; a name a manifest cannot hold is left out with a note; every
`${` in a value is escaped as `$${`; and values are written by a YAML emitter that quotes every
string the YAML 1.2 loader would read as something else.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import textwrap
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler import connection_types
from reconciler.client import PolarisClient
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.live import LiveJob
from reconciler.manifest import reads_as_string
from reconciler.model import API_VERSION, Kind
from reconciler.normalize import (
    AGGREGATE_TABLE_DEFAULTS,
    DEFAULTS,
    FORMAT_DEFAULTS,
    SERVER_ADDED_MAPPING,
    TIME_COLUMN,
    fingerprint,
    plain,
    writable,
)
from reconciler.plan import SATISFIED_STATUSES
from reconciler.validate import name_problem

FOLDERS = {Kind.CONNECTION: "connections", Kind.TABLE: "tables", Kind.INGESTION_JOB: "jobs"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_SEGMENT = 80  # characters of a name kept in a file name; the rest is in the hash


@dataclass(frozen=True)
class ImportOptions:
    """What to import: kinds, name globs, and whether batch jobs are included."""

    kinds: frozenset[Kind] = frozenset({Kind.CONNECTION, Kind.TABLE})
    names: tuple[str, ...] = ()  # globs; empty means every name

    def wants(self, kind: Kind, *names: str) -> bool:
        """Whether a resource of this kind, known by any of these names, is imported."""
        if kind not in self.kinds:
            return False
        return not self.names or any(
            fnmatch.fnmatchcase(name, glob) for name in names for glob in self.names
        )


@dataclass(frozen=True)
class ManifestFile:
    """One manifest to write: its path under the output directory and its YAML text."""

    path: str  # relative, with "/" separators
    text: str
    kind: Kind
    name: str
    variables: tuple[str, ...] = ()  # environment variables it needs (secrets)


@dataclass
class ImportResult:
    """The manifests to write, and what was left out and why."""

    files: list[ManifestFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def count(self, kind: Kind) -> int:
        """How many manifests of this kind."""
        return sum(f.kind == kind for f in self.files)


class ImportConflict(ReconcilerError):
    """Files that already exist and would be overwritten without --force."""

    code = ErrorCode.IMPORT_CONFLICT

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        shown = ", ".join(str(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
        super().__init__(
            f"{len(paths)} file(s) already exist ({shown}); nothing was written. "
            "Pass --force to overwrite them, or --out another directory"
        )


def import_project(
    client: PolarisClient, options: ImportOptions, *, parallelism: int = 8
) -> ImportResult:
    """Read the live project and build one manifest per selected resource."""
    result = ImportResult()
    files = _Paths()
    connections = {c["name"]: c for c in client.list_connections()}
    table_names = [t["name"] for t in client.list_tables()]
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        wanted_tables = [
            n
            for n in table_names
            if options.wants(Kind.TABLE, n) and _nameable(Kind.TABLE, n, result.skipped)
        ]
        tables = [t for t in pool.map(client.get_table, wanted_tables) if t is not None]
        jobs: list[Mapping[str, Any]] = []
        if Kind.INGESTION_JOB in options.kinds:
            summaries = list(client.iter_jobs(type="batch"))
            ids = [str(s["id"]) for s in summaries]
            jobs = [j for j in pool.map(client.get_job, ids) if j is not None]
    variables_taken: set[str] = set()
    for name, live in sorted(connections.items()):
        if not options.wants(Kind.CONNECTION, name) or not _nameable(
            Kind.CONNECTION, name, result.skipped
        ):
            continue
        if connection_types.of(live) is None:
            result.skipped.append(
                f"Connection/{_shown(name)}: type {_shown(str(live.get('type')))} is not a "
                "connection type this version knows"
            )
            continue
        result.files.append(_connection(name, live, files, variables_taken))
    for live in sorted(tables, key=lambda t: str(t["name"])):
        result.files.append(_table(live, files))
    result.files += _jobs(jobs, options, connections, files, result.skipped)
    return result


def _nameable(kind: Kind, name: str, skipped: list[str]) -> bool:
    """Whether a manifest can declare this live name; if not, say why it is left out."""
    problem = name_problem(kind, name)
    if problem is not None:
        skipped.append(
            f"{kind}/{_shown(name)}: its name cannot be written in a manifest ({problem})"
        )
    return problem is None


def write_files(result: ImportResult, out: Path, *, force: bool = False) -> list[Path]:
    """Write the manifests under `out`; refuse before writing anything if one already exists."""
    root = out.resolve()
    targets = []
    for manifest in result.files:
        target = (root / manifest.path).resolve()
        if root not in target.parents:  # a symbolic link under --out, say; names never escape
            raise ValueError(
                f"refusing to write {manifest.path}: it resolves to {target}, outside {out}"
            )
        targets.append((target, manifest))
    existing = [target for target, _ in targets if target.exists()]
    if existing and not force:
        raise ImportConflict(existing)
    for target, manifest in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(manifest.text, encoding="utf-8")
    return [target for target, _ in targets]


# Building manifests ------------------------------------------------------------------------------


def _connection(name: str, live: Mapping[str, Any], files: _Paths, taken: set[str]) -> ManifestFile:
    spec = _writable(Kind.CONNECTION, live)
    kind = connection_types.of(live)
    comments = []
    variables: tuple[str, ...] = ()
    if kind is not None:
        _drop_defaults(spec, kind.defaults)
    if kind is not None and kind.needs_secrets(spec):
        # Polaris never returns secrets, not even their type: write the first type the
        # connection type takes, with a variable per field, and say so.
        secrets_type = kind.secrets[0]
        stem = _variable_stem(name, taken)
        fields = connection_types.SECRETS_TYPES[secrets_type]
        # EVENTS_AWS_ACCESS_KEY_ID; a name that already says the type is not repeated.
        middle = "" if stem.endswith(kind.env_prefix) else kind.env_prefix
        variables = tuple("_".join(filter(None, (stem, middle, suffix))) for _, suffix in fields)
        spec["secrets"] = {
            "type": secrets_type,
            **{
                field: f"${{env:{variable}}}"
                for (field, _), variable in zip(fields, variables, strict=True)
            },
        }
        others = [t for t in kind.secrets if t != secrets_type]
        comments.append(
            f"Polaris never returns secrets: set {' and '.join(variables)} to this connection's "
            f"{secrets_type} credentials before plan or apply (they are only sent with "
            "--rotate-secrets or when the connection is created)."
            + (f" If it uses {' or '.join(others)} instead, change spec.secrets." if others else "")
        )
    return _manifest(
        Kind.CONNECTION, name, spec, files.of(Kind.CONNECTION, name), comments, variables
    )


def _table(live: Mapping[str, Any], files: _Paths) -> ManifestFile:
    name = str(live["name"])
    spec = _writable(Kind.TABLE, live)
    schema = [column for column in spec.get("schema", []) if column.get("name") != TIME_COLUMN]
    spec["schema"] = schema  # __time always exists; declaring it adds nothing
    if spec.get("type") == "aggregate":
        _drop_defaults(spec, AGGREGATE_TABLE_DEFAULTS)
    _drop_defaults(spec, DEFAULTS[Kind.TABLE])
    return _manifest(Kind.TABLE, name, spec, files.of(Kind.TABLE, name), [], ())


def _jobs(
    bodies: Iterable[Mapping[str, Any]],
    options: ImportOptions,
    connections: Mapping[str, Any],
    files: _Paths,
    skipped: list[str],
) -> list[ManifestFile]:
    """Jobs that have run or are running, one per spec (the newest), grouped by target table."""
    newest: dict[str, Mapping[str, Any]] = {}
    for body in sorted(bodies, key=lambda b: str(b.get("createdTimestamp", "")), reverse=True):
        job = LiveJob(str(body["id"]), str(body.get("executionStatus")), "", "", "", body)
        table = str(job.spec.get("target", {}).get("tableName", ""))
        connection = str(job.spec.get("source", {}).get("connectionName", ""))
        name = f"{table}-{job.id[:8]}"
        if not options.wants(Kind.INGESTION_JOB, name, table):
            continue
        ref = f"job {_shown(job.id)} ({_shown(table)})"
        if name_problem(Kind.TABLE, table) is not None:
            skipped.append(f"{ref}: its table's name cannot be written in a manifest")
        elif job.status not in SATISFIED_STATUSES:
            skipped.append(f"{ref}: {job.status}; a manifest for it would be planned as resubmit")
        elif connection not in connections:
            skipped.append(f"{ref}: its connection {_shown(connection)} no longer exists")
        elif (mine := fingerprint(body)) in newest:
            skipped.append(f"{ref}: same spec as the newer job {_shown(str(newest[mine]['id']))}")
        else:
            newest[mine] = body
    manifests = []
    names: set[str] = set()
    for body in newest.values():
        job = LiveJob(str(body["id"]), "", "", "", "", body)
        spec = _job_spec(job.spec)
        table = str(spec["target"]["tableName"])
        # A handle only (a job is identified by its spec): short, unique, within the 255 allowed.
        name = f"{table[:200]}-{job.id[:8]}"
        if name in names:
            name = f"{table[:200]}-{job.id[:50]}"
        names.add(name)
        comments = [f"Polaris job {_shown(job.id)}, {_shown(str(body.get('executionStatus')))}."]
        if any(
            m.get("columnName") == SERVER_ADDED_MAPPING["columnName"]
            for m in job.spec.get("mappings", [])
        ):
            comments.append(
                "Polaris does not return isAggregation: mark the aggregating mappings "
                "(isAggregation: true) before reusing this spec for a new job."
            )
        path = files.of(Kind.INGESTION_JOB, job.id, folder=("jobs", table))
        manifests.append(_manifest(Kind.INGESTION_JOB, name, spec, path, comments, ()))
    return sorted(manifests, key=lambda m: m.path)


def _job_spec(live: Mapping[str, Any]) -> dict[str, Any]:
    spec = _writable(Kind.INGESTION_JOB, live)
    spec["mappings"] = [
        {k: v for k, v in m.items() if v is not None}
        for m in spec.get("mappings", [])
        if m != SERVER_ADDED_MAPPING
    ]
    source = spec.get("source", {})
    for selector in ("uris", "prefixes", "objects", "pattern"):
        if source.get(selector) is None:
            source.pop(selector, None)
    settings = source.get("formatSettings", {})
    _drop_defaults(settings, FORMAT_DEFAULTS.get(str(settings.get("format")), {}))
    target = spec.get("target", {})
    if not target.get("intervals"):
        target.pop("intervals", None)
    _drop_defaults(spec, DEFAULTS[Kind.INGESTION_JOB])
    return spec


def _writable(kind: Kind, live: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a manifest may set, as live state has them (read-only fields left out)."""
    return {
        key: plain(live[key])
        for key in writable(kind, live)
        if key in live and live[key] is not None
    }


def _drop_defaults(spec: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, default in defaults.items():
        if key in spec and spec[key] == default:
            del spec[key]


def _manifest(
    kind: Kind,
    name: str,
    spec: Mapping[str, Any],
    path: str,
    comments: list[str],
    variables: tuple[str, ...],
) -> ManifestFile:
    # A manifest expands `${...}` in every string; `$${` is a literal `${`. A live value is text,
    # so each of its `${` is escaped (otherwise one could read a variable into the next apply);
    # only the secret placeholders, which the importer writes itself, are references.
    document = {
        "apiVersion": API_VERSION,
        "kind": str(kind),
        "metadata": {"name": _literal(name)},
        "spec": {k: v if k == "secrets" else _literal(v) for k, v in spec.items()},
    }
    header = ["Imported from Polaris by `reconciler import`.", *comments]
    lines = [wrapped for line in header for wrapped in textwrap.wrap(_CONTROL.sub("?", line), 98)]
    text = "".join(f"# {line}\n" for line in lines) + dump(document)
    return ManifestFile(path, text, kind, name, variables)


def _literal(value: Any) -> Any:
    """`value` with every `${` in its strings escaped as `$${`."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, Mapping):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


# Safe YAML and safe file names ------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """PyYAML's emitter, with strings quoted wherever the YAML 1.2 loader would retype them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML quotes what YAML 1.1 would retype (yes, on); manifests are read as YAML 1.2, where
    # 0o17, 1e3 or .5 are numbers too: quote those as well.
    style = None if reads_as_string(value) and value == value.strip() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(document: Mapping[str, Any]) -> str:
    """One YAML document that reads back, under the manifest loader, as exactly `document`."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )


class _Paths:
    """File names for resources: safe characters only, unique even where names differ only in case."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def of(self, kind: Kind, name: str, *, folder: tuple[str, ...] | None = None) -> str:
        parts = [FOLDERS[kind]] if folder is None else [folder[0], *map(_segment, folder[1:])]
        path = "/".join([*parts, _segment(name)]) + ".yaml"
        if path.lower() in self.used:  # a case-insensitive file system would merge these
            path = "/".join([*parts, _segment(name, force_hash=True)]) + ".yaml"
        self.used.add(path.lower())
        return path


def _segment(name: str, *, force_hash: bool = False) -> str:
    """A file-name segment from a server name: no separator, no leading dot, bounded length."""
    safe = _UNSAFE.sub("_", name).lstrip(".")[:MAX_SEGMENT] or "_"
    if safe != name or force_hash:
        safe += "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe


def _variable_stem(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "CONNECTION"
    if stem[0].isdigit():
        stem = "C_" + stem
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _shown(text: str) -> str:
    """A server value inside a message or comment: one line, no control characters."""
    return _CONTROL.sub("?", text)[:200]
