"""What every part of the emulator speaks: requests, responses, errors and a routed call."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


class ApiError(Exception):
    """An error response: status and the documented `{code, message}` body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def invalid(message: str) -> ApiError:
    """The 400 Polaris answers a request it cannot accept."""
    return ApiError(400, "InvalidRequest", message)


def not_found(message: str) -> ApiError:
    """The 404 of a resource that does not exist."""
    return ApiError(404, "NotFound", message)


class DroppedResponse(Exception):
    """The request was handled and committed, but its response is lost on the way back."""


@dataclass(frozen=True)
class Request:
    """What a transport hands the emulator."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """What the emulator hands back: a JSON body, or `raw` bytes of `media_type`."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = "application/json"

    def content(self) -> bytes:
        """The body as bytes (empty when there is none)."""
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


class Service(Protocol):
    """What a transport hands requests to (`app.Emulator`)."""

    def handle(self, request: Request) -> Response:
        """Answer one request; raises DroppedResponse when the answer is lost."""
        ...


@dataclass(frozen=True)
class Call:
    """A request matched to a route: its path parameters, query, JSON body and caller."""

    params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: dict[str, Any]  # empty for methods without a body
    caller: str  # the API key that authenticated the request
    host: str = ""  # the Host header, for URLs the server hands out
    raw: bytes = b""  # the body as sent, for routes that read it themselves (multipart)
    content_type: str = ""


def integer(
    query: Mapping[str, list[str]], name: str, default: int, low: int, high: int | None
) -> int:
    """An integer query parameter within bounds (400 otherwise)."""
    if name not in query:
        return default
    raw = query[name][-1]
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"{name} must be {bounds}")
    return value


def many(query: Mapping[str, list[str]], name: str) -> list[str]:
    """An array parameter, given repeated (?a=x&a=y) or comma-separated (?a=x,y)."""
    return [part for value in query.get(name, []) for part in value.split(",") if part]


def one_of(value: Any, allowed: Iterable[Any]) -> bool:
    """Membership that is safe for any JSON value (a list or object is never a member)."""
    return isinstance(value, str) and value in allowed


def without_nulls(value: Any) -> Any:
    """A JSON value without the null members of its objects, at any depth.

    Inferred: Polaris reads a member sent as null as one left out (it never echoes a null
    where the OpenAPI does not allow one); a null item of a list stays, for validation to refuse.
    """
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def interval_bounds(text: str) -> tuple[datetime, datetime]:
    """An ISO 8601 interval START/END (400 otherwise), as naive UTC bounds."""
    start, slash, end = text.partition("/")
    try:
        bounds = [datetime.fromisoformat(part) for part in (start, end)] if slash else []
    except ValueError:
        bounds = []
    if len(bounds) != 2:
        raise invalid(f"Interval {text!r} must be START/END in ISO 8601")
    first, last = (b.astimezone(UTC).replace(tzinfo=None) if b.tzinfo else b for b in bounds)
    return first, last
