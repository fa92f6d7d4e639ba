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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from reconciler.model import MAX_DEPTH, MAX_NODES, Location, ManifestError, ManifestErrors, Path

if TYPE_CHECKING:
    from reconciler.yaml_full import Positions

MANIFEST_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 4 * 1024 * 1024  # a thousand jobs fit in well under 1 MiB


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


class _Source:
    """A file's text, and the positions of its documents' values once a message asks for one
    (see `yaml_full.positions`)."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self._positions: list[Positions] | None = None

    def positions(self, index: int) -> Positions:
        """The positions of the values and keys of the file's document number `index`."""
        if self._positions is None:
            from reconciler import yaml_full  # defers PyYAML: only a message needs a position

            self._positions = yaml_full.positions(self.text, self.name)
        return self._positions[index]


class _Abort(Exception):
    """A file refused before it is parsed: too large, binary, or not UTF-8."""

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


def parse(
    text: str, name: str, *, fast: bool = True, interned: bool = False
) -> tuple[list[Document], list[ManifestError]]:
    """Parse every document in `text`; `name` is how the file is shown in messages.

    Three paths give the same documents: yaml-rs for plain files (`fast`; tests turn it off to
    compare), then (in `yaml_full`) libyaml's events for plain files and the composer for the rest.
    `interned`: every string of the values is interned (see `load_files`).
    """
    plain = _parse_fast(text, name, interned) if fast else None
    if plain is not None:
        return plain, []
    from reconciler import yaml_full  # defers PyYAML: yaml-rs reads most files without it

    parsed, errors = yaml_full.parse(text, name)
    source = _Source(text, name)
    documents = [
        Document(name, index, data, begins, source, references)
        for index, data, begins, references in parsed
    ]
    if interned:
        for document in documents:
            intern_strings(document.data)
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
# Only a text that is not ASCII is scanned with the class: `re` compiles it on that first use.
_REFUSED_CHARACTERS = (
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
    elif re.search(_REFUSED_CHARACTERS, text):
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


def _parse_fast(text: str, name: str, interned: bool = False) -> list[Document] | None:
    """The documents of a plain file (see `yaml_full._parse_plain`) parsed by yaml-rs; else None.

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
    for index, (parsed, where) in enumerate(zip(values, begins, strict=True)):
        value = _plain_value(parsed, interned)
        if value is _NOT_PLAIN:
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
    """A value `yaml_full._parse_plain` would not accept: the other paths decide."""


_NOT_PLAIN = object()
_SCALARS = (str, int, bool, type(None))  # by exact type: every value yaml-rs makes but a float


def _plain_value(root: Any, interned: bool) -> Any:
    """`root` if it is plain (see `yaml_full._parse_plain`): string keys, no merge key, nothing
    deeper than MAX_DEPTH, no more than MAX_NODES values, every number finite; else _NOT_PLAIN.
    `interned`: the same value with its strings interned (see `load_files`), in the same walk.

    Recursive, and skipping scalars without a call: every value of 10,000 resources is visited
    here, and an explicit stack of (value, depth) pairs took three times as long.
    """
    try:
        nodes, value = _interning(root, 0) if interned else (_count(root, 0), root)
    except _NotPlain:
        return _NOT_PLAIN
    return value if nodes <= MAX_NODES else _NOT_PLAIN


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


def _interning(value: Any, depth: int) -> tuple[int, Any]:
    """`_count`, and the value with its strings interned: each mapping made again with its keys
    interned (a key cannot be replaced where it is), each list's strings replaced where they are.
    One walk for both took half the time of two over the cold-plan bench's 2,000 documents
    alone (18.3 ms, now 9.5); in a plan's validation, with the collector paused, about 4 ms less."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return _count(value, depth), value
    if depth >= MAX_DEPTH:
        raise _NotPlain
    nodes = len(value) + 1
    if kind is list:
        for at, item in enumerate(value):
            of = type(item)
            if of is str:
                value[at] = sys.intern(item)
            elif of not in _SCALARS:
                inner, value[at] = _interning(item, depth + 1)
                nodes += inner - 1
        return nodes, value
    made: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str or key == "<<":
            raise _NotPlain
        of = type(item)
        if of is str:
            item = sys.intern(item)
        elif of not in _SCALARS:
            inner, item = _interning(item, depth + 1)
            nodes += inner - 1
        made[sys.intern(key)] = item
    return nodes, made


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


@contextlib.contextmanager
def gc_paused(*, resume: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while manifests are loaded and checked, and while a
    plan reads live state and plans (manager.py).

    Loading allocates millions of small, acyclic objects (nodes, marks, locations); the collector
    would rescan all of them again and again, tripling the time at 10,000 resources. Nothing in
    loading creates reference cycles, so reference counting frees everything anyway; a read of
    live state leaves a few dozen objects in cycles (its finished worker threads).

    Where the pause left many objects (FREEZE_AFTER or more), they are frozen before the collector
    is resumed: its first pass would otherwise scan every one of them (50 ms for 10,000
    resources) to find no garbage, and later passes again. Frozen objects are still freed when
    nothing refers to them; only a cycle among them would wait for the process to end.
    `resume=False`: the process ends once the block does (`cli_output.leave`), and is left paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled and resume:
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
    (18 MB). Interned where they are, one file at a time: interned after the whole load, the
    duplicates of 10,000 jobs raised a plan's peak by 7 MB (memory freed, not given back).
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
        found, parse_errors = parse(text, name, interned=interned)
        documents.extend(found)
        errors.extend(parse_errors)
    return documents, errors


def intern_strings(value: Any) -> None:
    """Intern the strings of a parsed value where they are: each dict is filled again with its
    keys and values interned (a key that is not a string stays one: validation says what is
    wrong with it), each list's strings are replaced. The value is equal before and after: only
    which string objects it holds changes."""
    kind = type(value)
    if kind is dict:
        items = list(value.items())
        value.clear()
        for key, item in items:
            of = type(item)
            if of is str:
                item = sys.intern(item)
            elif of is dict or of is list:
                intern_strings(item)
            value[sys.intern(key) if type(key) is str else key] = item
    elif kind is list:
        for at, item in enumerate(value):
            of = type(item)
            if of is str:
                value[at] = sys.intern(item)
            elif of is dict or of is list:
                intern_strings(item)
