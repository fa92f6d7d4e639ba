"""reconciler.yaml: the targets (dev, prod, ...) a manifests repository deploys to, reviewed in git.

Everything that differs between environments lives here and is shown in plans: each target's URL,
project id, manifest paths and `vars` (used in manifests as `${var:NAME}`), and the NAME of the
environment variable holding its API key. Secrets never do: they stay `${env:NAME}` references in
spec.secrets. The file is found in the current directory, or given with `--config FILE`; paths in
it are relative to the directory it is in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path as FsPath
from types import MappingProxyType

from reconciler import schema
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.manifest import Boundary, Document, parse, read_checked
from reconciler.model import Location, ManifestError, ManifestErrors

CONFIG_FILE = "reconciler.yaml"
DEFAULT_PATHS = ("manifests",)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Target:
    """One Polaris project and the manifests deployed to it."""

    name: str
    url: str
    project: str
    api_key_env: str  # the NAME of the environment variable that holds the API key
    paths: tuple[str, ...]  # relative to the current directory (joined to the config's)
    vars: Mapping[str, str]  # read-only; `${var:NAME}` values
    location: Location  # where the target is declared
    history: tuple[str, ...] = ()  # finished jobs' manifests: drift --history (joined like paths)
    ignore: tuple[str, ...] = ()  # name globs another tool owns: drift --ignore

    def with_vars(self, overrides: Mapping[str, str]) -> Target:
        """This target with `--var` overrides; each must be a variable the target declares."""
        unknown = sorted(set(overrides) - set(self.vars))
        if unknown:
            declared = ", ".join(sorted(self.vars)) or "none"
            raise ConfigError(
                f"--var {unknown[0]}: target {self.name} declares no such variable "
                f"(declared: {declared}); add it to its vars in {self.location.file}"
            )
        return replace(self, vars=MappingProxyType({**self.vars, **overrides}))


@dataclass(frozen=True)
class Config:
    """A loaded, valid reconciler.yaml."""

    file: str
    targets: Mapping[str, Target]  # in file order

    @property
    def key_variables(self) -> frozenset[str]:
        """Every variable that holds a target's API key: none may be interpolated."""
        return frozenset(target.api_key_env for target in self.targets.values())

    def target(self, name: str | None) -> Target:
        """The target called `name`; without one, the only target, if there is only one."""
        names = ", ".join(self.targets)
        if name is None:
            if len(self.targets) == 1:
                return next(iter(self.targets.values()))
            raise ConfigError(f"{self.file} declares targets {names}: choose one with --target")
        if name not in self.targets:
            raise ConfigError(f"no target {name!r} in {self.file}; it declares: {names}")
        return self.targets[name]


class ConfigError(ReconcilerError):
    """A wrong choice of target or variable on the command line: one message, no location."""

    code = ErrorCode.CONFIG


def find_config(explicit: str | None, directory: FsPath | None = None) -> FsPath | None:
    """The config to use: `--config FILE` if given, else reconciler.yaml in `directory` (cwd).

    A reconciler.yaml found (not named) must be a file of that directory: a symbolic link to a
    file elsewhere would make the reconciler read, and quote in its errors, a file outside the
    repository, chosen by whoever wrote the link.
    """
    if explicit is not None:
        return FsPath(explicit)
    folder = directory or FsPath()
    candidate = folder / CONFIG_FILE
    if not candidate.exists():
        return None
    if not Boundary(os.path.realpath(folder), "").holds(candidate):
        raise ConfigError(
            f"{candidate} is a symbolic link to a file outside {folder.resolve()}; it is not read. "
            "Pass the file you mean with --config FILE"
        )
    return candidate


def load_config(path: FsPath) -> Config:
    """Read and check reconciler.yaml; raise ManifestErrors with every mistake, located."""
    name = str(path)
    text = read_checked(path, name)
    documents, errors = parse(text, name)
    if not errors and len(documents) != 1:
        errors.append(
            ManifestError(Location(name), "reconciler.yaml must hold exactly one YAML document")
        )
    if errors:
        raise ManifestErrors(errors)
    (document,) = documents
    errors = schema.check_config(document)
    if not errors and not document.data["targets"]:
        errors.append(
            ManifestError(document.locate(("targets",)), "targets is empty; declare at least one")
        )
    if errors:
        raise ManifestErrors(errors)
    errors = [error for name in document.data["targets"] for error in _escapes(document, name)]
    if errors:
        raise ManifestErrors(errors)
    return Config(name, MappingProxyType(_targets(document, path.parent)))


def _targets(document: Document, base: FsPath) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for target_name, declared in document.data["targets"].items():
        paths = tuple(str(base / p) for p in declared.get("paths", DEFAULT_PATHS))
        targets[target_name] = Target(
            name=target_name,
            url=declared["url"],
            project=declared["project"],
            api_key_env=declared["apiKeyEnv"],
            paths=paths,
            vars=MappingProxyType(dict(declared.get("vars") or {})),
            location=document.locate(("targets", target_name), key=True),
            history=tuple(str(base / p) for p in declared.get("history", ())),
            ignore=tuple(declared.get("ignore", ())),
        )
    return targets


def boundary(config: Config | None) -> Boundary:
    """The repository's directory, which no path or link may lead out of: the directory of
    reconciler.yaml, or the current directory without one."""
    if config is None:
        return Boundary(os.path.realpath(FsPath()), "the current directory")
    return Boundary(os.path.realpath(FsPath(config.file).parent), _DIRECTORY)


def _escapes(document: Document, target: str) -> Iterator[ManifestError]:
    """Errors for a target's paths that lead outside the directory of reconciler.yaml.

    reconciler.yaml may come with a pull request: its paths must not make the reconciler read a
    file of the machine it runs on (and quote it in validation errors), nor make `import` write
    one. So every path is relative and stays under the file's directory once `..` and symbolic
    links are resolved; links found under it are checked as the manifests are discovered.
    """
    base = FsPath(document.file).parent
    inside = Boundary(os.path.realpath(base), _DIRECTORY)
    declared = document.data["targets"][target]
    for field in ("paths", "history"):
        default = DEFAULT_PATHS if field == "paths" else ()
        for index, raw in enumerate(declared.get(field, default)):
            where = document.locate(("targets", target, field, index))
            prefix = f"targets.{target}.{field}[{index}]: {raw}"
            if FsPath(raw).is_absolute():
                yield ManifestError(
                    where, f"{prefix} is absolute, and may lead {_OUTSIDE}; {_STAY}"
                )
            elif not inside.holds(base / raw):
                how = "through .." if ".." in FsPath(raw).parts else "through a symbolic link"
                yield ManifestError(where, f"{prefix} leads {_OUTSIDE} ({how}); {_STAY}")


_DIRECTORY = f"the directory of {CONFIG_FILE}"
_OUTSIDE = f"outside {_DIRECTORY}"
_STAY = f"paths in {CONFIG_FILE} are relative to its directory and stay under it"


def parse_vars(assignments: Iterable[str]) -> dict[str, str]:
    """`--var NAME=VALUE` options as a mapping; raise ConfigError for a malformed one."""
    result: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not _VARIABLE.fullmatch(name):
            raise ConfigError(
                f"--var {assignment!r} is not NAME=VALUE (NAME: letters, digits and '_')"
            )
        result[name] = value
    return result
