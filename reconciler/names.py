"""Which names can be sent to Polaris and shown to a person: the same rule for every kind."""

from __future__ import annotations

import re

# Characters that a URL path, a terminal or a log would treat as something other than text.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def name_problem(name: str | None, field: str = "metadata.name") -> str | None:
    """Why Polaris would route this name wrongly or output would show it falsely, if it would.

    A kind may reserve names besides (`ResourceKind.reserved`, e.g. the lock's table).
    """
    if name is None:
        return None
    if name in (".", ".."):
        return (
            f"{field} '{name}' cannot be used: '.' and '..' name the collection or the "
            "project in a URL, not a resource; choose another name"
        )
    for character in ("/", "\\"):
        if character in name:
            return (
                f"{field} contains '{character}', which a URL path would split; "
                "use letters, digits, '.', '_' or '-'"
            )
    control = CONTROL.search(name)
    if control:
        return (
            f"{field} contains the control character U+{ord(control.group()):04X}, which "
            "would rewrite terminal and Markdown output; remove it"
        )
    if name != name.strip():
        return f"{field} begins or ends with whitespace, which Polaris does not keep; remove it"
    return None


_SHOWN_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """A server value inside a message or comment: one line, no control characters."""
    return _SHOWN_CONTROL.sub("?", text)[:200]
