"""The full path of reading YAML: libyaml's events for plain text, its composer for the rest.

`manifest.parse` reads most files with yaml-rs and leaves to this module only what that fast path
cannot vouch for (anchors, tags, duplicate keys, mistakes, ...), and every message that needs the
position of a value: PyYAML is imported when a run first needs one of them, not at start. The
rule both paths follow is in `manifest.py`'s docstring: scalars are resolved with the YAML 1.2
core schema, and every document is held to MAX_DEPTH and MAX_NODES.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from reconciler.model import MAX_DEPTH, MAX_NODES, Location, ManifestError, Path

# One document as read: its position in the file (from 0), its plain data, the (line, column)
# where its value begins, and whether some string of it holds "${".
Parsed = tuple[int, Any, tuple[int, int], bool]
Positions = tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}


def reads_as_string(text: str) -> bool:
    """Whether `text`, written as a plain (unquoted) scalar, reads back as a string here."""
    return not (text in _BOOL or text in _NULL or _INT.fullmatch(text) or _FLOAT.fullmatch(text))


# Tags the resolver gives to untagged nodes. They are private, so that a node still carrying a
# standard tag (`!!str`, `!!map`) is known to have been tagged explicitly in the file.
_IMPLICIT = "tag:polaris-reconciler,implicit:"
_STR, _BOOL_TAG, _INT_TAG, _FLOAT_TAG, _NULL_TAG, _SEQ, _MAP = (
    _IMPLICIT + kind for kind in ("str", "bool", "int", "float", "null", "seq", "map")
)


class _Resolver(yaml.resolver.BaseResolver):
    """Tags plain scalars by the YAML 1.2 core schema; see manifest.py's docstring."""

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


def parse(text: str, name: str) -> tuple[list[Parsed], list[ManifestError]]:
    """Every document of `text`, and every mistake in it; `name` is how messages show the file."""
    plain = _parse_plain(text)
    if plain is not None:
        return plain, []
    documents: list[Parsed] = []
    errors: list[ManifestError] = []
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
            documents.append((index, data, builder.mark(node), builder.has_references))
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


def positions(text: str, name: str) -> list[Positions]:
    """The positions of the values and keys of each document of `text`, in order.

    Valid manifests never need a position but the document's start, so reading records none:
    a table of every value's (line, column) cost more than the rest of loading put together.
    The first message that needs one reads the file again, recording them all.
    """
    found: list[Positions] = []
    composer = _Composer(text)
    try:
        for node in _nodes(composer):
            builder = _Builder(name, record=True)
            with contextlib.suppress(_Abort):
                builder.build(node, ())
            found.append((builder.locations, builder.key_locations))
    except (yaml.YAMLError, RecursionError):
        pass  # a later document's mistake, which `parse` reported: the ones before it are in
    finally:
        composer.dispose()
    return found


class _Builder:
    """Turns one node tree into plain Python values, refusing abuse (and, if asked, locating)."""

    def __init__(self, file: str, *, record: bool = False) -> None:
        self.file = file
        self.record = record  # keep the position of every value and key (see `positions`)
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


# The characters a plain scalar that the resolver reads as a number can begin with.
_NUMBER_FIRST = frozenset(
    first
    for first, resolvers in _Resolver.yaml_implicit_resolvers.items()
    if any(tag in (_INT_TAG, _FLOAT_TAG) for tag, _ in resolvers)
)
_AWAITING_KEY, _IN_LIST = object(), object()  # the second slot of an open mapping's or list's frame


def _parse_plain(text: str) -> list[Parsed] | None:
    """The documents of a file of plain YAML, built straight from libyaml's events; else None.

    Plain means what almost every manifest is: no anchor, alias or tag, no duplicate or
    non-string key, no merge key, nothing too deep, too large or not finite. Building from
    events skips the node tree (a Python object and a resolver call per value), which was most
    of the time spent loading. Anything else, a YAML syntax error included, answers None, and
    `parse` reads the text again with the composer and `_Builder`, which decide and explain
    every such case: this path only ever accepts what that one accepts, with the same values.
    """
    if not _C_EVENTS:
        return None
    parser = _CParser(text)
    documents: list[Parsed] = []
    try:
        get = parser.get_event
        get()  # the stream's start
        while type(event := get()) is yaml.DocumentStartEvent:
            built = _plain_document(get)
            if built is None:
                return None
            data, begins, references = built
            documents.append((len(documents), data, begins, references))
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
