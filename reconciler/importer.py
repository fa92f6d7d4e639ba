"""`reconciler import`: adopt a live project by writing the manifests that describe it.

Each live resource becomes one manifest that `reconciler validate` accepts and on which
`reconciler plan` shows no change. Import reads the project with plan's own live read
(`live.read_live`: its read-ahead, its job cache), with the chosen kinds read in full; then each
kind's module (reconciler/kinds) writes its manifests from its part of that live state:
only writable fields, without the values Polaris fills by default or adds itself. Secrets are
write-only, so a connection that authenticates with them gets `${env:...}` placeholders and a comment
naming the variables to set. Names come from the server and are treated as hostile: a file name
is built from a safe subset of characters (never a path separator or a leading dot) and checked
to stay inside the output directory; a name a manifest cannot hold is left out with a note; every
`${` in a value is escaped as `$${`; and values are written by a YAML emitter that quotes every
string the YAML 1.2 loader would read as something else.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler import kinds
from reconciler.client import PolarisClient
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.live import read_live
from reconciler.model import API_VERSION, Kind
from reconciler.names import shown
from reconciler.normalize import plain
from reconciler.ports import JobStore, Writable
from reconciler.validate import name_problem
from reconciler.values import ManifestFile
from reconciler.yaml_full import reads_as_string

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_SEGMENT = 80  # characters of a name kept in a file name; the rest is in the hash


@dataclass(frozen=True)
class ImportOptions:
    """What to import: kinds, name globs, and whether batch jobs are included."""

    kinds: frozenset[Kind] = frozenset()  # empty: those imported by default (not jobs)
    names: tuple[str, ...] = ()  # globs; empty means every name

    def chosen(self, kind: Kind) -> bool:
        """Whether this kind is imported."""
        if self.kinds:
            return kind in self.kinds
        return kinds.of(kind).imported_by_default

    def wants(self, kind: Kind, *names: str) -> bool:
        """Whether a resource of this kind, known by any of these names, is imported."""
        if not self.chosen(kind):
            return False
        return not self.names or any(
            fnmatch.fnmatchcase(name, glob) for name in names for glob in self.names
        )


@dataclass
class ImportResult:
    """The manifests to write, and what was left out and why."""

    files: list[ManifestFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def count(self, kind: Kind, *, history: bool = False) -> int:
        """How many manifests of this kind go to the active paths (or, with `history`, to the
        history path)."""
        return sum(f.kind == kind and f.history == history for f in self.files)


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


class ImportWriter:
    """What each kind's `imported` (reconciler/kinds) writes with: the selection, and the helpers
    that make a manifest safe to write."""

    def __init__(self, options: ImportOptions) -> None:
        self.options = options
        self.result = ImportResult()
        self.files = _Paths()
        self.shown = shown

    def wants(self, kind: Kind, *names: str) -> bool:
        """Whether the selection (--kind, --name) includes this resource."""
        return self.options.wants(kind, *names)

    def skip(self, reason: str) -> None:
        """Leave a resource out, saying why."""
        self.result.skipped.append(reason)

    def nameable(self, kind: Kind, name: str) -> bool:
        """Whether a manifest can declare this live name; if not, say why it is left out."""
        problem = name_problem(kind, name)
        if problem is not None:
            self.skip(f"{kind}/{shown(name)}: its name cannot be written in a manifest ({problem})")
        return problem is None

    def writable(self, kind: Writable, live: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a manifest may set, as live state has them (read-only fields left out)."""
        return {
            key: plain(live[key])
            for key in kind.writable(live)
            if key in live and live[key] is not None
        }

    @staticmethod
    def drop_defaults(spec: dict[str, Any], defaults: Mapping[str, Any]) -> None:
        """Leave out every field that holds its documented default."""
        for key, default in defaults.items():
            if key in spec and spec[key] == default:
                del spec[key]

    def path(self, kind: Kind, name: str, *, folder: tuple[str, ...] | None = None) -> str:
        """A safe, unique file path for a resource."""
        return self.files.of(kind, name, folder=folder)

    def variable_stem(self, name: str, taken: set[str]) -> str:
        """The start of the environment variable names for a connection's secrets."""
        return _variable_stem(name, taken)

    def manifest(
        self, kind: Kind, name: str, spec: Mapping[str, Any], path: str, comments: list[str],
        variables: tuple[str, ...], *, history: bool = False,
    ) -> ManifestFile:  # fmt: skip
        """The manifest file for one resource (`history`: for the history path)."""
        return dataclasses.replace(
            _manifest(kind, name, spec, path, comments, variables), history=history
        )


def import_project(
    client: PolarisClient, options: ImportOptions, *, parallelism: int = 8,
    cache: JobStore | None = None,
) -> ImportResult:  # fmt: skip
    """Read the live project as a plan does, the chosen kinds in full, and build one manifest per
    selected resource, kind by kind."""
    chosen = [kind for kind in kinds.ordered() if options.chosen(kind.kind)]
    live = read_live(
        client, [], parallelism=parallelism, cache=cache, full=[kind.kind for kind in chosen]
    )
    writer = ImportWriter(options)
    for kind in chosen:
        writer.result.files.extend(kind.imported(live, writer))
    return writer.result


def write_files(
    result: ImportResult, out: Path, *, history: Path | None = None, force: bool = False
) -> list[Path]:
    """Write the manifests under `out` (finished jobs' under `history`, if given); refuse before
    writing anything if one already exists."""
    targets = []
    for manifest in result.files:
        directory = history if manifest.history and history is not None else out
        root = directory.resolve()
        target = (root / manifest.path).resolve()
        if root not in target.parents:  # a symbolic link under --out, say; names never escape
            raise ValueError(
                f"refusing to write {manifest.path}: it resolves to {target}, outside {directory}"
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
    holder = kinds.of(kind).secrets_at
    secrets = holder.field if holder is not None else None
    document = {
        "apiVersion": API_VERSION,
        "kind": str(kind),
        "metadata": {"name": _literal(name)},
        "spec": {k: v if k == secrets else _literal(v) for k, v in spec.items()},
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
        parts = (
            [kinds.of(kind).collection]
            if folder is None
            else [folder[0], *map(_segment, folder[1:])]
        )
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
