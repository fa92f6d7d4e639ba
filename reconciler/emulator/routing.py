"""Routes: method and path pattern bound to a handler function that mypy checks.

Each collection module (connections, tables, jobs, query, files, streaming) declares its own
`ROUTES`, and `app` assembles them into the route table; `match` authenticates, matches the
project, the path and the method and checks the permission; `app.Emulator` calls the handler
under the store's lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from reconciler.emulator.api import ApiError, Call, Request, Response, invalid, not_found
from reconciler.emulator.auth import authenticate, authorize

if TYPE_CHECKING:
    from reconciler.emulator.state import Project

Handler = Callable[["Project", Call], Response]
PROJECT_PREFIX = "/v1/projects/{projectId}"
PROJECT_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)(?P<rest>/.*)$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Route:
    """One operation: `path` is relative to the project, with `{name}` parameters."""

    method: str
    path: str
    handler: Handler
    permission: str | None = None  # what a key needs; reads need nothing
    # False where the OpenAPI defines no request body: whatever is sent is ignored, so a client
    # that sends none (no Content-Type either) is answered.
    takes_body: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def template(self) -> str:
        """The path as the OpenAPI document names the operation."""
        return PROJECT_PREFIX + self.path


def match(project: Project, request: Request, table: tuple[Route, ...]) -> tuple[Route, Call]:
    """The operation a request calls and the call it makes (raises ApiError for error responses)."""
    caller = authenticate(project.api_keys, request.headers.get("authorization", ""))
    matched = PROJECT_PATH.match(request.path)
    if not matched:
        raise not_found(f"No resource at {request.path}")
    if matched["project"] != project.project_id:
        raise not_found(f"Project {matched['project']} not found")
    rest = matched["rest"]
    allowed = []
    for route in table:
        found = route.pattern.match(rest)
        if not found:
            continue
        allowed.append(route.method)
        if route.method != request.method:
            continue
        authorize(project.api_keys, caller, route.permission)
        call = Call(
            params={k: unquote(v) for k, v in found.groupdict().items()},
            query=parse_qs(request.query, keep_blank_values=True),
            body=_body(request) if route.takes_body and request.method in BODY_METHODS else {},
            caller=caller,
            host=request.headers.get("host", ""),
            raw=request.body,
            content_type=request.headers.get("content-type", ""),
        )
        return route, call
    if allowed:
        raise ApiError(
            405,
            "MethodNotAllowed",
            f"{request.method} is not allowed here; use {', '.join(allowed)}",
            {"Allow": ", ".join(allowed)},  # RFC 9110: a 405 lists the methods that are
        )
    raise not_found(f"No resource at {request.path}")


def _body(request: Request) -> dict[str, Any]:
    # On every operation with a body, the same answers, whether or not the OpenAPI lists them
    # for that operation (POST /query/sql lists no 415): 415 for a body that is not JSON, 400
    # for JSON that does not parse or is not an object.
    if "json" not in request.headers.get("content-type", ""):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "The request body must be JSON (Content-Type: application/json)",
        )
    try:
        body = json.loads(request.body or b"null")
    except ValueError as error:
        raise invalid(f"The request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return body
