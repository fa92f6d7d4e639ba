"""One output pipeline for every format: redact, then escape or encode for the edge written to.

Terminal text, JSON, Markdown, GitHub workflow annotations, JUnit XML and saved plans all take
what they did not write themselves through an `Output`. It hides every secret value the run
registered first, and only then escapes: escaping first would turn a secret into a form (`%25`,
`&amp;`, `\\"`) that no longer matches it, and the reader (the Actions runner, an XML parser, a
JSON parser) decodes it back. This is the only module that imports `reconciler.escape`, so no
renderer, present or future, can escape text it has not redacted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from reconciler import escape
from reconciler.redact import shorten

Redact = Callable[[str], str]
JSON_BATCH = 4096  # encoded pieces joined at a time (see Output.json)
MEMO = 1024  # strings, and keys, redacted once per Output.json call (see _indented)


def unchanged(text: str) -> str:
    """The redaction of a run that registered no secret."""
    return text


@dataclass(frozen=True)
class Output:
    """Text leaving the program for one edge or another, always through `redact` first."""

    redact: Redact = unchanged

    def plain(self, value: object) -> str:
        """Redacted, not yet escaped: for text a caller escapes through this Output later."""
        return self.redact(str(value))

    def cut(self, value: object, limit: int) -> str:
        """Redacted, then cut to `limit` characters: a cut can never leave a piece of a secret."""
        return shorten(str(value), limit, self.redact)

    def terminal(self, value: object) -> str:
        """One terminal line: control and invisible characters shown as escapes."""
        return escape.terminal(self.redact(str(value)))

    def markdown(self, value: object) -> str:
        """Inline Markdown that shows exactly this text and starts no structure."""
        return escape.markdown(self.redact(str(value)))

    def fence(self, lines: Sequence[str], info: str = "") -> str:
        """A fenced code block the lines cannot close early."""
        return escape.fence([self.redact(line) for line in lines], info)

    def annotation_message(self, value: object) -> str:
        """The message of a GitHub workflow command."""
        return escape.annotation_message(self.redact(str(value)))

    def annotation_property(self, value: object) -> str:
        """A property (file, title) of a GitHub workflow command."""
        return escape.annotation_property(self.redact(str(value)))

    def xml(self, value: object) -> str:
        """Text for an XML element or attribute; the serializer escapes `&`, `<` and quotes."""
        return escape.xml_text(self.redact(str(value)))

    def data(self, value: Any) -> Any:
        """JSON-like data with every string (keys too) redacted and no NaN or Infinity.

        JSON has no NaN or Infinity: a parser that follows the standard refuses a document that
        holds one, so a non-finite number is written as null.
        """
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {self.redact(str(key)): self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.redact(str(value))  # what json.dumps(default=str) would have written

    def json(self, value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
        """`value` as standard JSON, redacted before it is encoded."""
        if indent is None:  # encoded in C, straight into the text
            return json.dumps(
                self.data(value), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False,
                separators=(", ", ": "),
            )  # fmt: skip
        return _indented(value, self.redact, " " * indent, sort_keys)


def _indented(value: Any, redact: Redact, indent: str, sort_keys: bool) -> str:
    """The text `json.dumps(Output(redact).data(value), indent=...)` writes, made without that
    copy: strings (keys too) are redacted one at a time as they are encoded.

    json.dumps keeps every piece it encodes (a key, a comma, an indent) until it joins them: for a
    plan of 10,000 jobs that list outweighed the text four times over. Joined a few thousand at a
    time, only the text is held. A plan's JSON repeats a few dozen strings ("kind", "action",
    "noop", each file name) thousands of times: each is redacted and encoded once per call (the
    redactor may learn a secret between two calls, never during one), at most MEMO of them.
    """
    parts: list[str] = []  # the batches joined so far
    batch: list[str] = []
    append = batch.append
    strings: dict[str, str] = {}  # an exact str -> its redacted JSON form
    newlines = ["\n"]  # a line break and the indent of each level
    # Per level, each exact str key the redactor leaves alone -> its line up to the value:
    # ",", line break, indent, the key in JSON and ": ".
    lines: list[dict[str, str]] = []

    def flush() -> None:
        parts.append("".join(batch))
        batch.clear()

    def string(text: str) -> str:
        """The redacted JSON form of an exact str not yet in `strings`."""
        if len(strings) >= MEMO:  # values are looked up and used at once: safe to forget
            strings.clear()
        encoded = strings[text] = encode_basestring(redact(text))
        return encoded

    def plain_keys(mapping: dict[Any, Any], line: dict[str, str], inner: str) -> bool:
        """Whether every key of `mapping` is an exact str the redactor leaves alone (so none
        collapses into another), learning those not known yet."""
        if len(line) >= MEMO:  # a dict that uses it again makes each line anew
            line.clear()
        plain = True
        for key in mapping:
            if type(key) is not str:  # str(key) or a str subclass's own str may differ
                plain = False
            elif key not in line:
                if redact(key) == key:
                    line[key] = "," + inner + encode_basestring(key) + ": "
                else:
                    plain = False
        return plain

    def write(value: Any, level: int) -> None:
        kind = type(value)
        if kind is str:
            append(strings.get(value) or string(value))
        elif kind is dict:
            write_dict(value, level)
        elif kind is list or kind is tuple:
            write_list(value, level)
        elif value is None:
            append("null")
        elif value is True:
            append("true")
        elif value is False:
            append("false")
        elif isinstance(value, str):
            append(encode_basestring(redact(value)))
        elif isinstance(value, int):
            append(int.__repr__(value))
        elif isinstance(value, float):
            append(float.__repr__(value) if math.isfinite(value) else "null")
        elif isinstance(value, dict):
            write_dict(value, level)
        elif isinstance(value, list | tuple):
            write_list(value, level)
        else:
            append(encode_basestring(redact(str(value))))  # as json.dumps(default=str)

    def deeper(level: int) -> str:
        """The line break and indent of the level below `level` (each made once)."""
        if len(newlines) <= level + 1:
            newlines.append(newlines[-1] + indent)
            lines.append({})
        return newlines[level + 1]

    def write_dict(mapping: dict[Any, Any], level: int) -> None:
        if not mapping:
            append("{}")
            return
        inner = deeper(level)
        line = lines[level]
        plain = type(mapping) is dict  # a subclass may iterate its keys in its own way
        for key in mapping if plain else ():
            if type(key) is not str or key not in line:
                plain = plain_keys(mapping, line, inner)
                break
        first = True  # its line has "{" where the others have ","
        if plain and not sort_keys:
            for key, item in mapping.items():
                # Known: a nested dict is a level deeper, and only empties its own level's lines.
                if first:
                    prefix = "{" + line[key][1:]
                    first = False
                else:
                    prefix = line[key]
                if type(item) is str:
                    append(prefix + (strings.get(item) or string(item)))
                else:
                    append(prefix)
                    write(item, level + 1)
                if len(batch) >= JSON_BATCH:
                    flush()
        else:
            # Redacted keys first, as `data` makes them: two that redact alike are one.
            items: Iterable[tuple[str, Any]] = {
                redact(str(key)): item for key, item in mapping.items()
            }.items()
            if sort_keys:
                items = sorted(items, key=lambda item: item[0])
            for key, item in items:
                append(("{" if first else ",") + inner + encode_basestring(key) + ": ")
                first = False
                write(item, level + 1)
                if len(batch) >= JSON_BATCH:
                    flush()
        append(newlines[level] + "}")

    def write_list(items: list[Any] | tuple[Any, ...], level: int) -> None:
        if not items:
            append("[]")
            return
        inner = deeper(level)
        before = "[" + inner
        for item in items:
            if type(item) is str:
                append(before + (strings.get(item) or string(item)))
            else:
                append(before)
                write(item, level + 1)
            before = "," + inner
            if len(batch) >= JSON_BATCH:
                flush()
        append(newlines[level] + "]")

    write(value, 0)
    flush()
    return "".join(parts)
