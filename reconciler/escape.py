"""Escape text at the edge it is written to: terminals, Markdown, GitHub annotations, XML.

Names, reasons and messages come from manifests and from the server, and whoever opens a pull
request writes the manifests. Whatever a renderer did not write itself goes through one of these
functions, so it can neither move the cursor of a terminal, open HTML or Markdown structure in
a pull-request comment, nor add a workflow command. Only `reconciler.output` calls them, after
it has redacted the text: an escaped secret no longer looks like the secret to the redactor.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# C0 and C1 controls, DEL, and the Unicode characters that reorder or hide text (bidi overrides
# and isolates, line and paragraph separators, zero-width marks): each can make a terminal or a
# browser show something other than what is there.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}

# Characters Markdown or HTML would read as structure mid-line (tags, entities, table cells, code,
# emphasis, links, mentions, issue references, math), written as numeric character references:
# GitHub shows them as the character and never acts on them. Line-start structure (headings,
# lists, quotes) cannot begin, because escaped text never holds a line break. `_` and `:` stay
# as they are: names are full of them, and at most they italicise a word or show an emoji.
_MARKDOWN_SPECIAL = re.compile(r"[&<>|`*\[\]\\~@#$]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _reference(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"&#{ord(char)};"


def terminal(text: object) -> str:
    """`text` on one line, with every control or invisible character shown as an escape."""
    return _INVISIBLE.sub(_visible, unicodedata.normalize("NFC", str(text)))


def markdown(text: object) -> str:
    """`text` as inline Markdown that shows exactly these characters and starts no structure.

    Safe in a paragraph, a list item, a table cell and inside <summary> or <code>; not inside a
    code span or fence, where character references are shown literally (use `fence` there).
    """
    return _MARKDOWN_SPECIAL.sub(_reference, terminal(text))


def fence(lines: list[str], info: str = "") -> str:
    """A fenced code block around lines of untrusted text that cannot close it early.

    Inside a fence nothing is interpreted except a line of backticks at least as long as the
    opening one, so the fence is made longer than any run of backticks in the text.
    """
    body = [terminal(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return "\n".join([ticks + info, *body, ticks])


# GitHub workflow commands (`CommandExtensions` in actions/runner) --------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def annotation_message(text: str) -> str:
    """A workflow-command message, percent-encoded as GitHub's runner decodes it.

    In the message `%`, CR and LF are percent-encoded. Other control characters (a terminal
    escape in a name from the server) are encoded the same way; the runner leaves them as text,
    so they reach the log visible and harmless.
    """
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _CONTROL.sub(lambda match: f"%{ord(match.group()):02X}", text)


def annotation_property(text: str) -> str:
    """A workflow-command property value (file, title): the message escapes plus `:` and `,`,
    which separate properties."""
    return annotation_message(text).replace(":", "%3A").replace(",", "%2C")


@functools.cache
def _not_xml() -> re.Pattern[str]:
    """The characters XML 1.0 cannot hold at all, escaped or not (names come from the server).

    Compiled on first use: the widest character class here takes 3 ms to compile, a fifth of the
    regex compiling `reconciler validate` did at start-up, and only JUnit output needs it.
    """
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids (even escaped) become U+FFFD.

    `&`, `<`, `>` and quotes are left to the serializer (ElementTree escapes them on writing).
    """
    return _not_xml().sub("\ufffd", text)
