"""Load manifest files into plain documents that remember where every value came from.

The YAML rule: scalars are resolved with the YAML 1.2 core schema, not PyYAML's YAML 1.1 one.
Only `true`/`false`, `null`/`~`, plain integers and floats are typed; everything else stays a
string. So `on`, `no`, `2024-01-01` and `1:20` are strings, never booleans, dates or sexagesimal
numbers. A value the API wants as a string but YAML reads as a number (`bucket: 2024`) is not
changed behind the user's back: the schema check reports it and asks for quotes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path as FsPath
from typing import Any

import yaml

from reconciler.model import Location, ManifestError, ManifestErrors, Path

MANIFEST_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 4 * 1024 * 1024  # a thousand jobs fit in well under 1 MiB
MAX_DEPTH = 64  # Polaris request bodies nest about six levels deep
MAX_NODES = 200_000  # per document, counting every alias expansion: stops billion-laughs bombs

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}


def reads_as_string(text: str) -> bool:
    """Whether `text`, written as a plain (unquoted) scalar, reads back as a string here."""
    return not (text in _BOOL or text in _NULL or _INT.fullmatch(text) or _FLOAT.fullmatch(text))


@dataclass(frozen=True)
class Document:
    """One YAML document: its plain data, and where each value and mapping key is written."""

    file: str
    index: int  # position of the document in its file, from 0
    data: Any
    begins: tuple[int, int]  # (line, column) where the document's value begins
    source: _Source  # the file's text, parsed again for positions when a message needs them
    has_references: bool = False  # some string holds "${": interpolation has work to do

    @property
    def start(self) -> Location:
        """Where the document begins."""
        return Location(self.file, *self.begins)

    @functools.cached_property
    def locations(self) -> dict[Path, tuple[int, int]]:
        """(line, column) of every value, by path."""
        return self.source.positions(self.index)[0]

    @functools.cached_property
    def key_locations(self) -> dict[Path, tuple[int, int]]:
        """(line, column) of every mapping key, by path."""
        return self.source.positions(self.index)[1]

    def locate(self, path: Iterable[str | int], *, key: bool = False) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        parts = tuple(path)
        if key and parts in self.key_locations:
            return Location(self.file, *self.key_locations[parts])
        while parts not in self.locations and parts:
            parts = parts[:-1]
        return Location(self.file, *self.locations.get(parts, (1, 1)))


# Tags the resolver gives to untagged nodes. They are private, so that a node still carrying a
# standard tag (`!!str`, `!!map`) is known to have been tagged explicitly in the file.
_IMPLICIT = "tag:polaris-reconciler,implicit:"
_STR, _BOOL_TAG, _INT_TAG, _FLOAT_TAG, _NULL_TAG, _SEQ, _MAP = (
    _IMPLICIT + kind for kind in ("str", "bool", "int", "float", "null", "seq", "map")
)


class _Resolver(yaml.resolver.BaseResolver):
    """Tags plain scalars by the YAML 1.2 core schema; see the module docstring."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        # Called once per node: kept lean (no path resolvers, which manifests never use).
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, pattern in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if pattern.match(value):
                        return str(tag)
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """Path resolvers are not used; nothing to track."""

    def ascend_resolver(self) -> None:
        """Path resolvers are not used; nothing to track."""


for _tag, _pattern, _first in [
    (_BOOL_TAG, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT_TAG, rf"^(?:{_INT.pattern})$", "-+0123456789"),
    (_FLOAT_TAG, rf"^(?:{_FLOAT.pattern})$", "-+.0123456789"),
    (_NULL_TAG, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]:
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


try:  # libyaml's C parser and composer are an order of magnitude faster than pure Python
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

    _C_EVENTS = True

    class _Composer(_CParser, _Resolver):
        """Builds node trees with libyaml; values are constructed by `_Builder`."""

        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            _Resolver.__init__(self)

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _C_EVENTS = False

    class _Composer(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _Resolver,
    ):
        """Builds node trees in pure Python; values are constructed by `_Builder`."""

        def __init__(self, text: str) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Resolver.__init__(self)


class _Source:
    """A file's text, and the positions of its documents' values once a message asks for one.

    Valid manifests never need a position but the document's start, so loading records none:
    a table of every value's (line, column) cost more than the rest of loading put together.
    The first message that needs one parses the file again, recording them all.
    """

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self._positions: list[Positions] | None = None

    def positions(self, index: int) -> Positions:
        """The positions of the values and keys of the file's document number `index`."""
        if self._positions is None:
            self._positions = []
            composer = _Composer(self.text)
            try:
                for node in _nodes(composer):
                    builder = _Builder(self.name, record=True)
                    with contextlib.suppress(_Abort):
                        builder.build(node, ())
                    self._positions.append((builder.locations, builder.key_locations))
            except (yaml.YAMLError, RecursionError):
                pass  # a later document's mistake, which `parse` reported: every one before it is in
            finally:
                composer.dispose()
        return self._positions[index]


Positions = tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]


class _Builder:
    """Turns one node tree into plain Python values, refusing abuse (and, if asked, locating)."""

    def __init__(self, file: str, *, record: bool = False) -> None:
        self.file = file
        self.record = record  # keep the position of every value and key (see _Source)
        self.locations: dict[Path, tuple[int, int]] = {}
        self.key_locations: dict[Path, tuple[int, int]] = {}
        self.errors: list[ManifestError] = []
        self.nodes = 0
        self.active: set[int] = set()  # nodes being built: meeting one again is an alias cycle
        self.has_references = False

    def mark(self, node: yaml.Node) -> tuple[int, int]:
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, *self.mark(node))

    def error(self, mark: tuple[int, int], message: str) -> None:
        self.errors.append(ManifestError(Location(self.file, *mark), message))

    def build(self, node: yaml.Node, path: Path, key: tuple[int, int] | None = None) -> Any:
        """The value of `node` at `path`; `key` is where its mapping key is, if it has one."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(
                self.loc(node),
                f"document expands to more than {MAX_NODES} values (an alias bomb?); "
                "write the values out instead of repeating aliases",
            )
        if len(path) > MAX_DEPTH:
            raise _Abort(
                self.loc(node),
                f"values nest deeper than {MAX_DEPTH} levels; flatten the document",
            )
        if self.record:
            self.locations[path] = self.mark(node)
        if isinstance(node, yaml.ScalarNode):
            return self.build_scalar(node)
        if id(node) in self.active:
            raise _Abort(
                Location(self.file, *(key or self.mark(node))),
                "alias that refers to a value containing it (an endless cycle); "
                "write the value out instead",
            )
        if node.tag not in (_SEQ, _MAP):
            self.refuse_tag(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.build_mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def build_mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_mark = self.mark(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_mark, "a mapping key must be a plain string")
                continue
            key = str(key_node.value)
            if key == "<<":
                self.error(
                    key_mark, "merge keys (<<) are not supported; write the fields out in full"
                )
                continue
            key_path = (*path, key)
            if key in result:
                first = next(k for k, _ in node.value if k.value == key).start_mark.line + 1
                self.error(
                    key_mark,
                    f"duplicate key '{key}' (first defined at line {first}); remove one of them",
                )
                continue
            if self.record:
                self.key_locations[key_path] = key_mark
            result[key] = self.build(value_node, key_path, key_mark)
        return result

    def build_scalar(self, node: yaml.ScalarNode) -> Any:
        value: str = node.value
        if node.tag == _STR:
            if "${" in value:
                self.has_references = True
            return value
        typed = _typed(node.tag, value)
        if typed is _NOT_FINITE:
            # JSON has no NaN or infinity: Polaris could not receive it, and json.dumps
            # would write a token no JSON parser accepts.
            self.error(
                self.mark(node),
                f"{value} is not a finite number, which JSON cannot carry; write a number",
            )
            return float(value.lower().replace(".inf", "inf").replace(".nan", "nan"))
        if typed is _UNTYPED:
            self.refuse_tag(node)
            return value
        return typed

    def refuse_tag(self, node: yaml.Node) -> None:
        # An application tag (!include, !!python/object) would mean something to some other
        # loader and is dropped by this one; even a standard tag (!!str) is one more dialect.
        shown = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        self.error(
            self.mark(node),
            f"YAML tag '{shown}' is not allowed; remove it: manifests are plain YAML "
            "(quote a value to make it a string)",
        )


_NOT_FINITE, _UNTYPED = object(), object()  # what _typed answers for the values it refuses


def _typed(tag: str, value: str) -> Any:
    """The value of a scalar the resolver tagged `tag` (not a string), or why it has none."""
    if tag == _BOOL_TAG:
        return _BOOL.get(value, value)
    if tag == _NULL_TAG:
        return None if value in _NULL else value
    if tag == _INT_TAG and _INT.fullmatch(value):
        if value.startswith(("0x", "0o")):
            return int(value[2:], 16 if value[1] == "x" else 8)
        return int(value)
    if tag == _FLOAT_TAG and _FLOAT.fullmatch(value):
        number = float(value.lower().replace(".inf", "inf").replace(".nan", "nan"))
        return number if math.isfinite(number) else _NOT_FINITE
    return _UNTYPED


class _Abort(Exception):
    def __init__(self, location: Location, message: str) -> None:
        self.error = ManifestError(location, message)


# Why a file that cannot be read is an error and never skipped: whatever it declares would look
# undeclared, and `apply --prune` would delete it.
_UNSEEN = "whatever it declares would look undeclared to plan and prune"


@dataclass(frozen=True)
class Boundary:
    """The directory of the repository: a path in it may not lead out of it through a link."""

    root: str  # a real path (symbolic links resolved)
    name: str  # how messages name it: "the directory of reconciler.yaml"

    def holds(self, path: FsPath) -> bool:
        """Whether `path`, with `..` and symbolic links resolved, is inside the root."""
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)

    def leaves(self, path: FsPath) -> bool:
        """Whether `path`, written inside the root, leads outside it through a symbolic link.

        A path written outside the root (`/srv/shared`, named on the command line) is the
        operator's choice, not a file's, and is read as it is.
        """
        written = os.path.normpath(os.path.abspath(path))
        inside = written == self.root or written.startswith(self.root.rstrip(os.sep) + os.sep)
        return inside and not self.holds(path)

    def error(self, path: FsPath) -> ManifestError:
        """The error for a link that leads outside: it names the path, never what it points to."""
        return ManifestError(
            Location(str(path)),
            f"a symbolic link that leads outside {self.name}; it is not read (manifests of the "
            "repository stay in it): replace the link with the files",
        )


def discover(
    paths: Iterable[str], within: Boundary | None = None
) -> tuple[list[FsPath], list[ManifestError]]:
    """Every manifest file under `paths` (files given by name are taken whatever their suffix).

    Nothing under a path is skipped in silence: a broken or looping symbolic link, a directory
    or file that cannot be read, something that is not a regular file, and a file whose suffix
    is `.yaml` or `.yml` in another case are errors naming the path. With `within`, a symbolic
    link in the repository that leads out of it is an error too, and is not followed: manifests
    may come with a pull request, and errors would quote the file it points to.
    """
    files: list[FsPath] = []
    errors: list[ManifestError] = []
    for raw in paths:
        path = FsPath(raw)
        if within is not None and within.leaves(path):
            errors.append(within.error(path))
            continue
        mode = _mode(path, errors, explicit=True)
        if mode is None:
            continue
        if stat.S_ISDIR(mode):
            found: list[FsPath] = []
            before = len(errors)
            guard = within if within is not None and within.holds(path) else None
            _walk(path, found, errors, {_identity(path)}, guard)
            if not found and len(errors) == before:
                errors.append(
                    ManifestError(Location(raw), "no *.yaml or *.yml files found in this directory")
                )
            files.extend(sorted(found))
        elif stat.S_ISREG(mode):
            files.append(path)
        else:
            errors.append(_not_regular(path))
    return list(dict.fromkeys(files)), errors


def _identity(path: FsPath) -> tuple[int, int]:
    status = path.stat()
    return (status.st_dev, status.st_ino)


def _mode(path: FsPath, errors: list[ManifestError], *, explicit: bool = False) -> int | None:
    """The file type of `path` (following links), or None after recording why it has none."""
    try:
        return path.stat().st_mode
    except OSError as error:
        link = path.is_symlink()
        if error.errno == errno.ELOOP:
            message = f"symbolic link loop; fix or remove the link ({_UNSEEN})"
        elif link:
            message = (
                f"broken symbolic link (it points to {os.readlink(path)}, which does not exist); "
                f"fix or remove the link ({_UNSEEN})"
            )
        elif explicit and error.errno == errno.ENOENT:
            message = "no such file or directory"
        else:
            message = f"cannot read: {(error.strerror or str(error)).lower()} ({_UNSEEN})"
        errors.append(ManifestError(Location(str(path)), message))
        return None


def _not_regular(path: FsPath) -> ManifestError:
    return ManifestError(
        Location(str(path)),
        "not a regular file (a named pipe, socket or device); manifests must be regular files: "
        f"remove it or move it out of the manifest path ({_UNSEEN})",
    )


def _walk(
    directory: FsPath, found: list[FsPath], errors: list[ManifestError],
    seen: set[tuple[int, int]], within: Boundary | None = None,
) -> None:  # fmt: skip
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        errors.append(
            ManifestError(
                Location(str(directory)),
                f"cannot list directory: {(error.strerror or str(error)).lower()}; "
                f"make it readable or move it out of the manifest path ({_UNSEEN})",
            )
        )
        return
    for entry in entries:
        path = FsPath(entry.path)
        if within is not None and entry.is_symlink() and not within.holds(path):
            errors.append(within.error(path))
            continue
        mode = _mode(path, errors)
        if mode is None:
            continue
        if stat.S_ISDIR(mode):
            identity = _identity(path)
            if identity in seen:
                errors.append(
                    ManifestError(
                        Location(str(path)),
                        "directory already read through another path (a symbolic link loop "
                        "or a second link to it); remove the link",
                    )
                )
                continue
            seen.add(identity)
            _walk(path, found, errors, seen, within)
        elif not stat.S_ISREG(mode):
            errors.append(_not_regular(path))
        elif path.suffix in MANIFEST_SUFFIXES:
            found.append(path)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            errors.append(
                ManifestError(
                    Location(str(path)),
                    f"rename it to {path.stem}{path.suffix.lower()}: only lower-case .yaml and .yml "
                    f"files are read as manifests ({_UNSEEN})",
                )
            )


def read_text(path: FsPath, name: str) -> str:
    """The file's text, refusing what is too large, binary or not UTF-8."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _Abort(
            Location(name),
            f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit; split it into several files",
        )
    raw = path.read_bytes()
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise _Abort(Location(name, line), "file contains NUL bytes: it is binary, not YAML")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _Abort(
            Location(name, line, col),
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
        ) from None


def read_checked(path: FsPath, name: str) -> str:
    """`read_text` for one file read on its own: every refusal raised as ManifestErrors."""
    try:
        return read_text(path, name)
    except _Abort as abort:
        raise ManifestErrors([abort.error]) from None
    except OSError as error:
        message = f"cannot read file: {(error.strerror or str(error)).lower()}"
        raise ManifestErrors([ManifestError(Location(name), message)]) from None


def parse(text: str, name: str, *, fast: bool = True) -> tuple[list[Document], list[ManifestError]]:
    """Parse every document in `text`; `name` is how the file is shown in messages.

    Three paths give the same documents: yaml-rs for plain files (`fast`; tests turn it off to
    compare), libyaml's events for plain files, and the composer for everything else.
    """
    plain = _parse_fast(text, name) if fast else None
    if plain is not None:
        return plain, []
    plain = _parse_plain(text, name)
    if plain is not None:
        return plain, []
    documents: list[Document] = []
    errors: list[ManifestError] = []
    source = _Source(text, name)
    composer = _Composer(text)
    try:
        for index, node in enumerate(_nodes(composer)):
            builder = _Builder(name)
            try:
                data = builder.build(node, ())
            except _Abort as abort:
                errors.append(abort.error)
                continue
            errors.extend(builder.errors)
            documents.append(
                Document(name, index, data, builder.mark(node), source, builder.has_references)
            )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        errors.append(ManifestError(Location(name, line, col), f"invalid YAML: {problem}"))
    except (yaml.YAMLError, RecursionError) as exc:
        errors.append(ManifestError(Location(name), f"invalid YAML: {exc}"))
    finally:
        composer.dispose()
    return documents, errors


try:  # yaml-rs (Rust) parses values several times faster than libyaml's events reach Python
    import yaml_rs as _yaml_rs
except ImportError:  # pragma: no cover - an optional speed-up; the paths below do the same
    _yaml_rs = None  # type: ignore[assignment]

# What the fast path leaves to the others, found in the text before parsing: what yaml-rs would
# accept silently or read otherwise than libyaml (each pattern says which), and plain scalars that
# YAML 1.2's core schema (this module's rule) reads as strings but yaml-rs reads as numbers.
# Anchors, aliases and tags are found where a token begins, also inside quotes, which only costs
# the fast path. tests/manifest/test_loading.py checks both paths against each other.
# Each pattern begins with the character it looks for (so the scan is fast), then looks back one
# character: a token begins at the start of the text or after a blank or a flow indicator.
_AT_TOKEN_START = r"(?<![^\s\[\]{},:].)"
_AT_TOKEN_END = r"(?![^\s\[\]{},:#])"
_NUMBER_CHARACTERS = r"[-+._0-9a-fA-FxXoO]"
_MARKERS = re.compile(r"^(?:%|\.\.\.(?:\s|$))", re.MULTILINE)  # directives, document ends
# Characters YAML does not allow in a stream; a byte order mark (libyaml drops one at the start
# of the text, yaml-rs keeps it in the first key); the line breaks of YAML 1.1 that libyaml
# honours and yaml-rs does not (NEL, LS, PS); and tabs, which the two read differently after an
# indicator. In a text of ASCII only, these are every character but line breaks and 0x20-0x7e,
# which bytes.translate removes at C speed (a scan with this class took seven times as long).
_REFUSED_CHARACTERS = re.compile(
    "[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\ufeff\ufffe\uffff]"
)
_ASCII_ALLOWED = b"\n\r" + bytes(range(0x20, 0x7F))
# Indicators where a token begins, each scanned for only in a text that holds one of its
# characters (which `in` finds far faster than a pattern that begins with a class):
_INDICATORS = (
    ("&*!", re.compile(r"[&*!]" + _AT_TOKEN_START)),  # anchors, aliases, tags
    # Block scalars (`|`, `>`): yaml-rs keeps a line break libyaml does not at the end of a file.
    ("|>", re.compile(r"[|>]" + _AT_TOKEN_START)),
    # A question mark where a token begins: in a flow collection libyaml reads `[?a]` as a mapping
    # with the key `a`, yaml-rs as the string `?a`.
    ("?", re.compile(r"\?" + _AT_TOKEN_START)),
)
_RADIX = r"(?:0[xXoObB]|[bBXO])"
_FAST_REFUSES = (
    # Numbers to yaml-rs, strings to the core schema: `0b1`, `-0x1F`, `0X1F`, `+0o7`. One pattern
    # per first character: a pattern that begins with a literal is scanned for several times
    # faster than one that begins with a class.
    re.compile("0" + _AT_TOKEN_START + _RADIX),
    re.compile("-" + _AT_TOKEN_START + _RADIX),
    re.compile(r"\+" + _AT_TOKEN_START + _RADIX),
    # A plain scalar that begins with a colon (`[:0]`): YAML 1.2 allows it, libyaml does not.
    # (`arn:aws:iam::1` is one scalar: a colon after a colon does not begin a token.)
    re.compile(r":(?<![^\s\[\]{},].)[^\s\[\]{},]"),
)
# Numbers to yaml-rs, strings to the core schema: `1_000`, `_0`, `-_1`. yaml-rs skips underscores
# anywhere in a number, so a token made only of number characters that holds one is left to the
# others (`__time` and `table_1` hold other letters and are not). It is found from an underscore
# whose run of number characters reaches the token's end (rare), then looked back from in Python:
# a pattern that begins at every digit and letter a to f took as long as yaml-rs's whole parse.
_UNDERSCORE_TO_TOKEN_END = re.compile("_" + _NUMBER_CHARACTERS + "*" + _AT_TOKEN_END)
_NUMBER_SET = frozenset("-+._0123456789abcdefABCDEFxXoO")
_TOKEN_BOUNDARY = re.compile(r"[\s\[\]{},:]")


def _fast_refuses(text: str) -> bool:
    """Whether the text holds something `_parse_fast` leaves to the other paths."""
    if ("%" in text or "..." in text) and _MARKERS.search(text):
        return True
    if text.isascii():
        if text.encode("ascii").translate(None, _ASCII_ALLOWED):
            return True
    elif _REFUSED_CHARACTERS.search(text):
        return True
    for characters, pattern in _INDICATORS:
        if any(character in text for character in characters) and pattern.search(text):
            return True
    return any(pattern.search(text) for pattern in _FAST_REFUSES) or _underscore_number(text)


def _underscore_number(text: str) -> bool:
    """Whether a token of number characters only (`1_000`, `-_1`) holds an underscore."""
    for match in _UNDERSCORE_TO_TOKEN_END.finditer(text):
        start = match.start()
        while start and text[start - 1] in _NUMBER_SET:
            start -= 1
        if start == 0 or _TOKEN_BOUNDARY.match(text, start - 1):
            return True
    return False


# A line that holds nothing but blanks or a comment.
_NO_CONTENT = re.compile(r"[ \t]*(?:#.*)?$")


def _parse_fast(text: str, name: str) -> list[Document] | None:
    """The documents of a plain file (see `_parse_plain`) parsed by yaml-rs; else None.

    yaml-rs reports no positions, so each document's beginning is found in the text: YAML
    forbids a line starting with `---` inside any scalar, so such a line always starts a
    document, and its value begins at the first thing that is neither blank nor a comment.
    Anything this path cannot vouch for (a construct `_FAST_REFUSES` finds, a non-string key,
    a value too deep, too large or not finite, a count of documents that does not match)
    answers None, and the slower paths decide: this one only ever accepts what they accept,
    with the same values.
    """
    if _yaml_rs is None or _fast_refuses(text):
        return None
    begins = _document_beginnings(text)
    if not begins:
        return None
    try:
        loaded: Any = _yaml_rs.loads(text, parse_datetime=False)  # any YAML value, or a list
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # its own errors, and a Rust panic (pyo3 raises a BaseException)
        return None
    values: list[Any]
    if len(begins) == 1:
        values = [loaded]
    elif isinstance(loaded, list) and len(loaded) == len(begins):
        values = loaded
    else:
        return None
    source = _Source(text, name)
    documents = []
    maybe_references = "${" in text  # most files hold none: their strings need no search
    for index, (value, where) in enumerate(zip(values, begins, strict=True)):
        if not _plain_value(value):
            return None
        references = maybe_references and _holds_reference(value)
        documents.append(Document(name, index, value, where, source, references))
    return documents


def _document_beginnings(text: str) -> list[tuple[int, int]]:
    """(line, column) where each document's value begins; [] where a document has none."""
    lines = text.splitlines()
    starts = [
        number
        for number, line in enumerate(lines)
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t")
    ]
    if not starts or any(not _NO_CONTENT.match(line) for line in lines[: starts[0]]):
        starts.insert(0, -1)  # a first document without a `---` line
    found = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(lines)
        where = None
        if start >= 0:
            rest = lines[start][3:]
            stripped = rest.lstrip(" \t")
            if not _NO_CONTENT.fullmatch(stripped):
                where = (start + 1, 3 + len(rest) - len(stripped) + 1)
        for offset in range(start + 1, end):
            if where is not None:
                break
            line = lines[offset]
            stripped = line.lstrip(" \t")
            if not _NO_CONTENT.fullmatch(stripped):
                where = (offset + 1, len(line) - len(stripped) + 1)
        if where is None:
            return []  # an empty document: the other paths say what it is
        found.append(where)
    return found


class _NotPlain(Exception):
    """A value `_parse_plain` would not accept: the other paths decide."""


_SCALARS = (str, int, bool, type(None))  # by exact type: every value yaml-rs makes but a float


def _plain_value(root: Any) -> bool:
    """Whether a parsed value is plain (see `_parse_plain`): string keys, no merge key, nothing
    deeper than MAX_DEPTH, no more than MAX_NODES values, every number finite.

    Recursive, and skipping scalars without a call: every value of 10,000 resources is visited
    here, and an explicit stack of (value, depth) pairs took three times as long.
    """
    try:
        nodes = _count(root, 0)
    except _NotPlain:
        return False
    return nodes <= MAX_NODES


def _count(value: Any, depth: int) -> int:
    kind = type(value)
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise _NotPlain
        nodes = len(value) + 1
        if kind is dict:
            for key in value:
                if type(key) is not str or key == "<<":
                    raise _NotPlain
            items = value.values()
        else:
            items = value
        for item in items:
            if type(item) not in _SCALARS:
                nodes += _count(item, depth + 1) - 1
        return nodes
    if kind is float:
        if not math.isfinite(value):
            raise _NotPlain
        return 1
    if kind in _SCALARS:
        return 1
    raise _NotPlain


def _holds_reference(value: Any) -> bool:
    """Whether some string value (not a key) holds "${"."""
    kind = type(value)
    if kind is str:
        return "${" in value
    if kind is dict:
        return any(_holds_reference(item) for item in value.values())
    if kind is list:
        return any(_holds_reference(item) for item in value)
    return False


# The characters a plain scalar that the resolver reads as a number can begin with.
_NUMBER_FIRST = frozenset(
    first
    for first, resolvers in _Resolver.yaml_implicit_resolvers.items()
    if any(tag in (_INT_TAG, _FLOAT_TAG) for tag, _ in resolvers)
)
_AWAITING_KEY, _IN_LIST = object(), object()  # the second slot of an open mapping's or list's frame


def _parse_plain(text: str, name: str) -> list[Document] | None:
    """The documents of a file of plain YAML, built straight from libyaml's events; else None.

    Plain means what almost every manifest is: no anchor, alias or tag, no duplicate or
    non-string key, no merge key, nothing too deep, too large or not finite. Building from
    events skips the node tree (a Python object and a resolver call per value), which was most
    of the time spent loading. Anything else, a YAML syntax error included, answers None, and
    `parse` reads the file again with the composer and `_Builder`, which decide and explain
    every such case: this path only ever accepts what that one accepts, with the same values.
    """
    if not _C_EVENTS:
        return None
    parser = _CParser(text)
    source = _Source(text, name)
    documents: list[Document] = []
    try:
        get = parser.get_event
        get()  # the stream's start
        while type(event := get()) is yaml.DocumentStartEvent:
            built = _plain_document(get)
            if built is None:
                return None
            data, begins, references = built
            documents.append(Document(name, len(documents), data, begins, source, references))
            get()  # the document's end
        return documents if type(event) is yaml.StreamEndEvent else None
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()


def _plain_document(get: Callable[[], Any]) -> tuple[Any, tuple[int, int], bool] | None:
    """(value, where it begins, whether a string holds "${") of the next document's root."""
    resolvers = _Resolver.yaml_implicit_resolvers
    scalar, mapping_start, sequence_start = (
        yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    )  # fmt: skip
    frames: list[list[Any]] = []  # the open collections, each as [collection, awaited key]
    top: list[Any] = []  # frames[-1]
    nodes = 0
    references = False
    begins = None
    while True:
        event = get()
        kind = type(event)
        if kind is scalar:
            if event.anchor is not None or event.tag is not None:  # an anchor, or a tag
                return None
            value = event.value
            if top and top[1] is _AWAITING_KEY:  # a key: kept as written, never typed
                if value in top[0] or value == "<<":
                    return None
                top[1] = value
                continue
            nodes += 1
            if not event.implicit[0]:  # quoted: a string
                references = references or "${" in value
            elif value in _BOOL:
                value = _BOOL[value]
            elif value in _NULL:
                value = None
            elif (first := value[:1]) in _NUMBER_FIRST:
                for tag, pattern in resolvers[first]:
                    if pattern.match(value):
                        value = _typed(tag, value)
                        if value is _NOT_FINITE or value is _UNTYPED:
                            return None
                        break
                else:
                    references = references or "${" in value
            elif "${" in value:
                references = True
        elif kind is mapping_start or kind is sequence_start:
            if (
                event.anchor is not None
                or event.tag is not None
                or (top and top[1] is _AWAITING_KEY)
            ):
                return None  # an anchor, a tag, or a mapping or list as a key
            nodes += 1
            if len(frames) >= MAX_DEPTH or nodes > MAX_NODES:
                return None
            if begins is None:
                begins = (event.start_mark.line + 1, event.start_mark.column + 1)
            top = [{}, _AWAITING_KEY] if kind is mapping_start else [[], _IN_LIST]
            frames.append(top)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value = frames.pop()[0]
            top = frames[-1] if frames else []
        else:  # an alias
            return None
        if not frames:  # the root is complete
            if begins is None:  # a scalar root
                begins = (event.start_mark.line + 1, event.start_mark.column + 1)
            return (value, begins, references) if nodes <= MAX_NODES else None
        if top[1] is _IN_LIST:
            top[0].append(value)
        else:
            top[0][top[1]] = value
            top[1] = _AWAITING_KEY


def _nodes(composer: _Composer) -> Iterator[yaml.Node]:
    while composer.check_node():
        node = composer.get_node()
        if node is not None:
            yield node


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while manifests are loaded and checked.

    Loading allocates millions of small, acyclic objects (nodes, marks, locations); the collector
    would rescan all of them again and again, tripling the time at 10,000 resources. Nothing in
    loading creates reference cycles, so reference counting frees everything anyway.

    Where the pause left many objects (FREEZE_AFTER or more), they are frozen before the collector
    is resumed: its first pass would otherwise scan every one of them (50 ms for 10,000
    resources) to find no garbage, and later passes again. Frozen objects are still freed when
    nothing refers to them; only a cycle among them would wait for the process to end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_count()[0] >= FREEZE_AFTER:
                gc.freeze()
            gc.enable()


FREEZE_AFTER = 50_000  # containers the collector would scan: about 3,000 resources


def load(
    paths: Iterable[str], within: Boundary | None = None
) -> tuple[list[Document], list[ManifestError]]:
    """Discover, read and parse the manifests under `paths`; collect every error."""
    with gc_paused():
        return _load(paths, within)


def _load(
    paths: Iterable[str], within: Boundary | None
) -> tuple[list[Document], list[ManifestError]]:
    files, errors = discover(paths, within)
    documents, file_errors = load_files(files)
    return documents, errors + file_errors


def load_files(
    files: Iterable[FsPath], *, interned: bool = False
) -> tuple[list[Document], list[ManifestError]]:
    """Read and parse the manifest files `discover` found, in order; collect every error.

    `interned`: each string of the documents' values is interned as its file is parsed, for a
    run that keeps them (a plan holds every spec until it is rendered): each scalar parsed is
    a string of its own, and 10,000 jobs held 340,000 strings with 10,000 distinct values
    (18 MB). Interned one file at a time, no more than one file's are held twice.
    """
    documents: list[Document] = []
    errors: list[ManifestError] = []
    for path in files:
        name = str(path)
        try:
            text = read_text(path, name)
        except _Abort as abort:
            errors.append(abort.error)
            continue
        except OSError as exc:
            errors.append(ManifestError(Location(name), f"cannot read file: {exc.strerror}"))
            continue
        found, parse_errors = parse(text, name)
        if interned:
            found = [replace(d, data=_interned(d.data)) for d in found]
        documents.extend(found)
        errors.extend(parse_errors)
    return documents, errors


def _interned(value: Any) -> Any:
    """A copy of a parsed value with its strings interned, every value of the same type as in
    `value` (a key that is not a string stays one: validation says what is wrong with it)."""
    kind = type(value)
    if kind is dict:
        copy = {}
        for key, item in value.items():
            of = type(item)
            copy[sys.intern(key) if type(key) is str else key] = (
                sys.intern(item) if of is str else _interned(item) if of is dict or of is list
                else item
            )  # fmt: skip
        return copy
    if kind is list:
        return [sys.intern(item) if type(item) is str else _interned(item) for item in value]
    return value
