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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from reconciler import escape
from reconciler.redact import shorten

Redact = Callable[[str], str]
JSON_BATCH = 4096  # encoded pieces joined at a time (see Output.json)


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
        # json.dumps keeps every piece it encodes (a key, a comma, an indent) until it joins
        # them: for a plan of 10,000 jobs that list outweighed the text four times over. Joined
        # a few thousand at a time, only the text is held; and each string is redacted as it is
        # encoded, so no redacted copy of the whole value is made first.
        parts: list[str] = []
        batch: list[str] = []
        for piece in self._pieces(value, " " * indent, 0, sort_keys):
            batch.append(piece)
            if len(batch) == JSON_BATCH:
                parts.append("".join(batch))
                batch.clear()
        parts.append("".join(batch))
        return "".join(parts)

    def _pieces(self, value: Any, indent: str, level: int, sort_keys: bool) -> Iterator[str]:
        """The text `json.dumps(self.data(value), indent=...)` writes, in pieces, made without
        that copy: strings (keys too) are redacted one at a time as they are encoded."""
        if isinstance(value, str):
            yield encode_basestring(self.redact(value))
        elif value is None or (isinstance(value, float) and not math.isfinite(value)):
            yield "null"
        elif value is True:
            yield "true"
        elif value is False:
            yield "false"
        elif isinstance(value, int):
            yield int.__repr__(value)
        elif isinstance(value, float):
            yield float.__repr__(value)
        elif isinstance(value, dict | list | tuple):
            if not value:
                yield "{}" if isinstance(value, dict) else "[]"
                return
            inner = "\n" + indent * (level + 1)
            if isinstance(value, dict):
                # Redacted keys first, as `data` makes them: two that redact alike are one.
                items: Iterable[tuple[str, Any]] = {
                    self.redact(str(key)): item for key, item in value.items()
                }.items()
                if sort_keys:
                    items = sorted(items, key=lambda item: item[0])
                yield "{"
                for at, (key, item) in enumerate(items):
                    yield ("," if at else "") + inner + encode_basestring(key) + ": "
                    yield from self._pieces(item, indent, level + 1, sort_keys)
                yield "\n" + indent * level + "}"
            else:
                yield "["
                for at, item in enumerate(value):
                    yield ("," if at else "") + inner
                    yield from self._pieces(item, indent, level + 1, sort_keys)
                yield "\n" + indent * level + "]"
        else:
            yield encode_basestring(self.redact(str(value)))  # as json.dumps(default=str)
