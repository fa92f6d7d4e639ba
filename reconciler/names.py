"""Which names can be sent to Polaris and shown to a person, and how a name is written into a
request path: the same rule for every kind, and the one path builder (`api_path`) that the
client's calls and each kind's `ResourceKind.path` (the requests a plan shows) both use."""

from __future__ import annotations

import re
from urllib.parse import quote

from reconciler.errors import ErrorCode, ReconcilerError

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


# Path segments that URL normalisation removes or climbs out of: /connections/.. is the project.
DOT_SEGMENTS = frozenset({"", ".", ".."})


class UnaddressableName(ReconcilerError):
    """A name that no request path can address (an empty one)."""

    code = ErrorCode.API


def segment(name: str) -> str:
    """A name as exactly one URL path segment, whatever characters it holds.

    Every reserved character is percent-encoded (table names may hold ? or /), and a name made
    of dots is written as %2E, which httpx and servers keep as data instead of resolving it.
    """
    if name == "":
        raise UnaddressableName("an empty name cannot be addressed through the API")
    if name in DOT_SEGMENTS:
        return "%2E" * len(name)
    return quote(name, safe="")


def api_path(collection: str, name: str | None = None, *under: str) -> str:
    """A project-relative request path: `/connections`, `/connections/NAME`,
    `/jobs/ID/metrics`; the name escaped as one segment (`segment`)."""
    if name is None:
        return f"/{collection}"
    try:
        return "/".join((f"/{collection}", segment(name), *under))
    except UnaddressableName as error:  # say where: a server may have sent the empty name
        raise UnaddressableName(f"{error} (a name under /{collection})") from None


def addressable(name: str) -> bool:
    """Whether a name read from Polaris can be safely used in a request path.

    `.`, `..`, an empty name, a `/` or a control character may be decoded and normalised by a
    proxy or the server into another endpoint (DELETE /connections/.. would delete the project
    path), so the reconciler reports such a resource and never changes or deletes it.
    """
    return name not in DOT_SEGMENTS and "/" not in name and name.isprintable()
