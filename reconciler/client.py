"""The Polaris API client: the only module that speaks HTTP to Polaris.

Retry policy, in one place, with the reason each rule is safe:

- Retried: 429, 500, 502, 503, 504, and failures that happen before a request leaves the
  machine (httpx.ConnectError, ConnectTimeout, PoolTimeout). Waits are exponential backoff with
  full jitter (uniform in 0..min(30, 0.5 * 2**n) s), or exactly the server's `Retry-After`
  (seconds or an HTTP date) when it sends one. One call makes at most `max_attempts` attempts and waits at
  most `max_retry_seconds` in all; a `Retry-After` beyond what is left ends the retries at once.
  Connect errors get at most CONNECT_ATTEMPTS attempts: an unreachable host seldom comes back
  within seconds, and a mistyped POLARIS_URL should fail fast.
- GET is also retried after a timeout, a reset or a dropped connection: reading twice is
  harmless, so every read survives a passing server error (a 500 included) within the budget.
- PUT, PATCH and DELETE are retried like GET. Repeating one converges on the same state: PATCH
  and PUT carry the intended values, and a DELETE of something gone is a 404 the caller treats
  as done. One catch: a PUT repeated after an attempt that may have been applied meets the
  table version its own first attempt bumped, so a 409 after such an attempt is reported as
  AmbiguousWriteError (read and decide), not as a genuine conflict.
- POST creates, and Polaris has no idempotency keys (every POST /jobs makes another job). A
  POST is retried only when it was certainly not processed: a 429 ("too many requests, not
  handled") or a connect error (never sent). Any other failure after it may have been sent
  raises AmbiguousWriteError at once, with no retry: a timeout, a dropped connection, and any
  5xx (500 included). A 503 may come from a load balancer before the service saw the request or
  from the service after it acted; a client cannot tell which, so a 503 on a POST is ambiguous
  too. apply then reads live state (is the connection, table or job there?) before it posts
  again (reconciler/apply.py).
- Each attempt has one deadline, `timeout` seconds for the whole answer, body included (httpx's
  own timeouts bound each read, which a server sending a byte at a time never trips); passing it
  is a timeout like any other.
- A write of any method whose last attempt failed while an attempt may have been applied (a
  5xx, a timeout, a dropped connection) raises AmbiguousWriteError: the caller reads live state
  before it tries again. Every AmbiguousWriteError is a PolarisError.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler import hosts
from reconciler.answers import (
    NotFinite,
    Shape,
    compiled,
    describe,
    finite,
    fit,
    misfit,
    not_finite,
    type_name,
)
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.hosts import is_loopback
from reconciler.model import LOCK_TABLE, Secret
from reconciler.names import api_path
from reconciler.redact import Redactor, shorten
from reconciler.transport import DIRECT_PATH, Deadline, Direct, tls_context

log = logging.getLogger("reconciler.client")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_PROCESSED_STATUSES = frozenset({429})  # the only answers that prove a POST did nothing
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE"})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
CONNECT_ATTEMPTS = 3
PAGE_SIZE = 1000  # the largest page the Jobs v1 list allows
READ_AHEAD_PAGES = 4  # the most pages of jobs iter_jobs asks for at once
# Creation time never changes, so paging in that order cannot skip a job that is updated while
# the pages are read (the default order, last update first, can); newest first keeps the recent
# jobs that apply looks for on the first page.
JOB_ORDER = {"sortColumn": "created_date_time", "sortOrder": "DESC"}
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MAY_HAVE_APPLIED = "; the change may have been applied: read the live state before trying again"
MESSAGE_LIMIT = 500  # characters of an API error message quoted in ours
# The permission a write needs, by the collection its path starts with (docs/polaris-api-notes.md).
# A 404 on one of these collections themselves can only mean the project is missing.
WRITE_PERMISSIONS = {
    "connections": "ManageConnections",
    "tables": "ManageTables",
    "jobs": "ManageIngestionJobs",
}


# The types of the fields the reconciler reads from each answer (the OpenAPI's response schemas,
# as far as they are read). A field may be absent or null; when present it has this type, or the
# answer is a MalformedResponseError that names the URL and the field. `a[]` is each item of the
# list `a`; a parent comes before its children.
NUMBER = (int, float)
CONNECTION_SHAPE: Shape = {
    "name": str, "type": str, "description": str, "bucket": str, "prefix": str,
    "awsEndpoint": str, "awsAssumedRoleArn": str, "secrets": dict,
}  # fmt: skip
TABLE_SHAPE: Shape = {
    "name": str, "type": str, "description": str, "version": int, "totalRows": NUMBER,
    "partitioningGranularity": str, "schemaMode": str, "schema": list, "schema[]": dict,
    "schema[].name": str, "schema[].dataType": str, "clusteringColumns": list,
    "clusteringColumns[]": str,
}  # fmt: skip
_JOB_REQUEST: Shape = {
    "type": str, "target": dict, "target.type": str, "target.tableName": str, "source": dict,
    "source.type": str, "source.connectionName": str, "source.pattern": str,
    "source.uris": list, "source.uris[]": str, "source.prefixes": list, "source.prefixes[]": str,
    "source.objects": list, "source.objects[]": str, "source.formatSettings": dict,
    "source.formatSettings.format": str, "source.inputSchema": list,
    "source.inputSchema[]": dict, "source.inputSchema[].name": str,
    "source.inputSchema[].dataType": str, "mappings": list, "mappings[]": dict,
    "mappings[].columnName": str, "mappings[].expression": str,
    "mappings[].isAggregation": bool, "clusteringColumns": list, "context": dict,
}  # fmt: skip
JOB_SHAPE: Shape = {
    "id": (str, int), "executionStatus": str, "health": dict, "health.code": str,
    "health.message": str, **_JOB_REQUEST, "spec": dict,
    **{f"spec.{path}": kind for path, kind in _JOB_REQUEST.items()},
}  # fmt: skip
PROGRESS_SHAPE: Shape = {"overallProgress": NUMBER}
METRICS_SHAPE: Shape = {"totals": dict}
# The shape of one resource of each collection, which the collection operations check every
# answer of that collection against (`listed`, `read`); a collection not here is checked for its
# key alone.
ANSWER_SHAPES: Mapping[str, Shape] = {
    "connections": CONNECTION_SHAPE, "tables": TABLE_SHAPE, "jobs": JOB_SHAPE,
}  # fmt: skip


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach one Polaris project (cli.py builds it from flags and environment)."""

    url: str  # the regional API base, e.g. https://ORG.REGION.CLOUD.api.imply.io
    project: str
    api_key: str = field(repr=False)
    insecure: bool = False  # allow plain http:// to a host that is not loopback
    # Hosts other than Polaris and loopback the operator allows the key to go to (normalized).
    allowed_hosts: frozenset[str] = frozenset()
    timeout: float = 30.0  # seconds for one whole answer, body included (not per read)
    max_attempts: int = 10  # with the 60 s budget: survives long bursts of throttling
    max_retry_seconds: float = 60.0

    @property
    def base_url(self) -> str:
        """The project-scoped API root."""
        return f"{self.url.rstrip('/')}/v1{api_path('projects', self.project)}"


class PolarisError(ReconcilerError):
    """A failed API call, as one message a person can act on; `api_code` is Polaris's own code."""

    code = ErrorCode.API

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_code: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.api_code = api_code
        self.method = method
        self.url = url  # scheme, host and path: never credentials


class AmbiguousWriteError(PolarisError):
    """A write whose outcome is unknown: read live state before trying again."""

    code = ErrorCode.AMBIGUOUS_WRITE


class NotFoundError(PolarisError):
    """404 on a resource in a project that exists."""

    code = ErrorCode.NOT_FOUND


class ConflictError(PolarisError):
    """409: the resource exists already, or a table version is stale."""

    code = ErrorCode.CONFLICT


class ProjectNotFoundError(PolarisError):
    """404 for the project itself: a configuration mistake, not a missing resource."""

    code = ErrorCode.PROJECT_NOT_FOUND


def request_body(value: Any, redact: Redactor | None = None) -> Any:
    """`value` as it is sent, every Secret revealed: the one place a secret value leaves its
    wrapper. It builds the body of each request to Polaris (`PolarisClient`, which passes its
    redactor: each value revealed is registered with it first, so an answer that echoes the
    request cannot show it), and gives the S3 signer its keys (`listing.credentials_of`)."""
    revealed: list[str] = []

    def reveal(secret: Secret) -> str:
        revealed.append(secret.reveal())
        return revealed[-1]

    body = _sent(value, reveal)
    if revealed and redact is not None:
        redact.add(revealed)
    return body


def _sent(part: Any, reveal: Callable[[Secret], str]) -> Any:
    """`part` as sent, each Secret given by `reveal`. Not a closure of request_body's: a nested
    function that calls itself is a reference cycle, which a plan (it pauses the cyclic
    collector while it reads) would keep for each of its requests."""
    if isinstance(part, Secret):
        return reveal(part)
    if isinstance(part, Mapping):
        return {key: _sent(item, reveal) for key, item in part.items()}
    if isinstance(part, list | tuple):
        return [_sent(item, reveal) for item in part]
    return part


class MalformedResponseError(PolarisError):
    """A success whose body is not what the API documents: not JSON, or JSON of another shape."""

    code = ErrorCode.MALFORMED_RESPONSE


class UnconfirmedWriteError(PolarisError):
    """A write answered with success but without the resource it should return.

    The change was probably made, but nothing confirms what was made: the caller records the
    change as failed (not done), and the next plan reads what is really there.
    """

    code = ErrorCode.UNCONFIRMED_WRITE


def check_url(config: ClientConfig) -> None:
    """Refuse a POLARIS_URL that would leak the key or cannot be the API base."""
    check_destination(config.url, config.allowed_hosts, insecure=config.insecure)
    if not config.project.strip() or not config.project.isprintable():
        raise PolarisError(
            f"POLARIS_PROJECT_ID {config.project!r} is empty or holds whitespace or a control "
            "character; it should be the project's id"
        )
    try:
        httpx.URL(config.base_url)
    except (httpx.InvalidURL, ValueError) as error:
        raise PolarisError(f"POLARIS_URL {config.url!r} is not a valid URL: {error}") from None


def check_destination(url: str, allowed: frozenset[str], *, insecure: bool = False) -> None:
    """Refuse an API base URL that the key must not be sent to (docs/trusted-hosts.md).

    The key goes to https://*.api.imply.io, to loopback, and to the hosts the operator allows;
    the host is read by both urllib and httpx, and a URL they read differently is refused.
    """
    if url != url.strip() or not url.isprintable():
        raise PolarisError(
            f"POLARIS_URL {url.strip()!r} has whitespace or a control character around or "
            f"in it ({url!r}); remove it (a value copied from a file with CRLF line endings "
            "ends with \\r)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- parsing the port is what raises for a bad one
        sent_to = httpx.URL(url).host
    except (ValueError, httpx.InvalidURL) as error:
        raise PolarisError(f"POLARIS_URL {url!r} is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolarisError(
            f"POLARIS_URL must be an http(s) URL such as "
            f"https://ORG.REGION.CLOUD.api.imply.io, not {url!r}"
        )
    if parts.username is not None or parts.password is not None or "\\" in url:
        # Not echoed: whatever sits before the @ may be a key.
        raise PolarisError(
            "POLARIS_URL must not hold credentials (or a backslash); give the API key in "
            "POLARIS_API_KEY"
        )
    if "v1" in parts.path.split("/"):
        raise PolarisError(
            f"POLARIS_URL should be the API base without /v1/..., e.g. "
            f"{parts.scheme}://{parts.netloc} (the project comes from POLARIS_PROJECT_ID)"
        )
    if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
        raise PolarisError(f"POLARIS_URL {url!r} must not hold a query or a fragment")
    host = hosts.normalize(parts.hostname)
    if host is None or host != hosts.normalize(sent_to):
        raise PolarisError(
            f"POLARIS_URL {url!r} does not name its host plainly (ASCII letters, digits, "
            "hyphens and dots, or an IP address); refusing to send the API key to it"
        )
    if not (is_loopback(host) or hosts.is_polaris_api(host) or host in allowed):
        raise PolarisError(
            f"refusing to send the API key to {host}: it is neither a Polaris API host "
            f"(https://*.{hosts.POLARIS_API_DOMAIN}) nor loopback; {hosts.how_to_allow(host)}"
        )
    if parts.scheme == "http" and not insecure and not is_loopback(host):
        raise PolarisError(
            f"refusing plain http:// to {host}: the API key would cross the network "
            "unencrypted; use https:// or pass --insecure"
        )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), if present."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_body(
    response: httpx.Response, redact: Redactor | None = None
) -> tuple[str | None, str | None]:
    """(code, message) from either documented error shape: flat, or wrapped in "error".

    Redacted before it is cut: a proxy that echoes the request must not leave a piece of a
    secret at the cut, where the redactor could no longer recognise it.
    """
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to read
        text = _text(response).strip()
        return None, shorten(text, MESSAGE_LIMIT, redact) or None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if not isinstance(body, Mapping):
        return None, None
    code, message = body.get("code"), body.get("message")
    return (
        shorten(str(code), MESSAGE_LIMIT, redact) if code else None,
        shorten(str(message), MESSAGE_LIMIT, redact) if message else None,
    )


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (LookupError, ValueError):  # an unknown or lying charset
        return response.content.decode("utf-8", errors="replace")


def _names_project(code: str | None, message: str | None, project: str) -> bool:
    """Whether a 404 body says the project, rather than a resource in it, is unknown."""
    text = f"{code or ''} {message or ''}".lower()
    if "projectnotfound" in text.replace("_", "").replace(" ", ""):
        return True
    return "project" in text and (
        f"project {project.lower()}" in text or "project not found" in text
    )


class _Budget:
    """The attempts and time one call may still spend on retries."""

    def __init__(self, config: ClientConfig, sleep: Callable[[float], None]) -> None:
        self.config = config
        self.sleep = sleep
        self.started = time.monotonic()
        self.slept = 0.0

    def wait(self, attempt: int, wait: float | None) -> bool:
        """Sleep before the next attempt, or say there is none left."""
        if attempt >= self.config.max_attempts:
            return False
        if wait is None:  # exponential backoff with full jitter: retrying clients spread out
            wait = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
        # Waits count even when `sleep` does not really sleep (tests), and wall time counts too.
        spent = max(time.monotonic() - self.started, self.slept)
        if spent + wait > self.config.max_retry_seconds:
            return False
        log.debug(
            "retrying in %.2f s (attempt %d of %d)", wait, attempt + 1, self.config.max_attempts
        )
        self.sleep(wait)
        self.slept += wait
        return True


class PolarisClient:
    """A thread-safe client for one project's Connections, Tables and Jobs APIs.

    The http:// check applies to the URL even when a transport is given: a transport may be a
    real network one (a proxy, a mounted HTTPTransport), so in-process tests pass https:// or
    insecure=True rather than being exempt.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        pool_size: int = 16,
        redact: Redactor | None = None,
    ) -> None:
        check_url(config)
        self.config = config
        if redact is None:
            redact = Redactor()
            redact.add_api_key(config.api_key)
        self.redact = redact
        # time.sleep looked up at each wait, so a test of the whole CLI can fake the clock.
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self._origin = config.url.rstrip("/")
        self._count = 0
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        # httpx.Client is safe to share between threads; the pool bounds concurrent connections.
        self._http = httpx.Client(
            base_url=config.base_url,
            verify=tls_context(),
            auth=httpx.BasicAuth(config.api_key, ""),  # base64("KEY:"), as the official SDK
            timeout=config.timeout,
            limits=limits,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "polaris-reconciler"},
            # A redirect is an answer to report, never a request to make: following one would
            # send the key to whatever host the answer names.
            follow_redirects=False,
        )
        # GETs (every read of a plan) skip httpx's client layers when it talks to the network.
        self._direct = Direct.of(self._http, config.api_key)

    def __enter__(self) -> PolarisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PolarisClient(url={self.config.url!r}, project={self.config.project!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._count

    # The one request loop ----------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """Send one call with the retry policy in the module docstring; return the JSON body."""
        method = method.upper()
        return self._json(method, path, self._send(method, path, params=params, body=body))

    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> httpx.Response:
        """The request loop: the successful response, or the PolarisError that ends the call."""
        url = f"{self.config.base_url}{path}"
        # What -v logs: the URL exactly as sent, query string included (never holds the key).
        # Building it costs a third of the client's own time per request, so only for -v.
        sent_url = (
            str(self._http.build_request(method, path, params=params).url)
            if log.isEnabledFor(logging.DEBUG)
            else path
        )
        budget = _Budget(self.config, self.sleep)
        wire = request_body(body, self.redact)  # built once, used by every attempt
        maybe_applied = False  # a write attempt so far may have changed live state
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self._count += 1
            sent = time.monotonic()
            try:
                response = self._whole(
                    method, path, params, None if body is None else wire, sent + self.config.timeout
                )
            except httpx.InvalidURL as error:
                raise PolarisError(f"{method} {path}: not a valid URL: {error}") from None
            except NEVER_SENT as error:
                log.debug("%s %s -> %s", method, sent_url, type(error).__name__)
                if attempt < CONNECT_ATTEMPTS and budget.wait(attempt, None):
                    continue
                fail = AmbiguousWriteError if maybe_applied else PolarisError
                raise fail(
                    f"cannot reach {self._origin}: {str(error) or type(error).__name__}"
                    + (MAY_HAVE_APPLIED if maybe_applied else ""),
                    method=method,
                    url=url,
                ) from None
            except httpx.HTTPError as error:
                elapsed_ms = (time.monotonic() - sent) * 1000
                log.debug(
                    "%s %s -> %s after %.0f ms", method, sent_url, type(error).__name__, elapsed_ms
                )
                maybe_applied = maybe_applied or method != "GET"
                if method in IDEMPOTENT_METHODS and budget.wait(attempt, None):
                    continue
                what = f"{method} {path}: {self._no_answer(error)} from {self._origin}"
                if maybe_applied:
                    raise AmbiguousWriteError(
                        what + MAY_HAVE_APPLIED, method=method, url=url
                    ) from None
                raise PolarisError(what, method=method, url=url) from None
            elapsed_ms = (time.monotonic() - sent) * 1000
            status = response.status_code
            log.debug("%s %s -> %d in %.0f ms", method, sent_url, status, elapsed_ms)
            if status in RETRYABLE_STATUSES:
                processed = status not in NOT_PROCESSED_STATUSES
                if not (method == "POST" and processed) and budget.wait(
                    attempt, retry_after(response)
                ):
                    maybe_applied = maybe_applied or (processed and method != "GET")
                    continue
            if response.is_success:
                return response
            # After an attempt that may have been applied, a 409 may be our own earlier write
            # and a 429 leaves that attempt unresolved; a 404 stays one (a DELETE is then done).
            if method != "GET" and (status >= 500 or (maybe_applied and status in (409, 429))):
                code, message = error_body(response, self.redact)
                raise AmbiguousWriteError(
                    f"{method} {path}: Polaris answered {status}"
                    + (f" ({message})" if message and status < 500 else "")
                    + MAY_HAVE_APPLIED,
                    status=status,
                    api_code=code,
                    method=method,
                    url=url,
                )
            raise self._error(method, path, url, response, attempt)

    def _whole(
        self, method: str, path: str, params: Mapping[str, Any] | None, wire: Any, deadline: float
    ) -> httpx.Response:
        """One attempt, read to its last byte before `deadline` (a monotonic time).

        httpx's timeouts bound each network operation, so a server that sends a byte every few
        seconds would never time out; the deadline bounds the whole answer, body included.
        """
        if (
            method == "GET"
            and self._direct is not None
            and DIRECT_PATH.fullmatch(path)
            and "/." not in path  # dot segments: httpx removes them, the direct path would not
        ):
            return self._direct.get(path, params, deadline)
        request = self._http.build_request(method, path, params=params, json=wire)
        response = self._http.send(request, stream=True)
        try:
            if isinstance(response.stream, httpx.SyncByteStream):
                response.stream = Deadline(response.stream, deadline, request)
            Deadline.check(deadline, request)  # the headers alone may have taken too long
            response.read()
        finally:
            response.close()
            # httpx's stream refers back to its response: once closed it is let go, so that
            # reference counting frees the pair (a plan pauses the cyclic collector).
            response.stream = httpx.ByteStream(b"")
        return response

    def _no_answer(self, error: httpx.HTTPError) -> str:
        if isinstance(error, httpx.TimeoutException):
            return f"no answer within {self.config.timeout:g} s"
        if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
            return "the connection closed before an answer came"
        return f"no answer ({type(error).__name__})"

    def _json(self, method: str, path: str, response: httpx.Response) -> Any:
        if not response.content:
            return None
        made: list[NotFinite] = []  # the numbers JSON has not: the body is searched only then

        def constant(text: str) -> NotFinite:
            made.append(NotFinite(text))
            return made[-1]

        def number(text: str) -> float | NotFinite:
            parsed = finite(text)
            if isinstance(parsed, NotFinite):
                made.append(parsed)
            return parsed

        try:
            value = response.json(parse_constant=constant, parse_float=number)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to read
            # An HTML page with 200 usually means POLARIS_URL points at a website, not the API.
            raise self._malformed(method, path, response, "a body that is not JSON") from None
        # Walking every body (ten pages of 1,000 jobs in a plan) took a twentieth of a plan's CPU.
        where = not_finite(value) if made else None
        if where is not None:  # NaN and Infinity are not JSON, and would end up in ours
            field, found = where
            got = f"{found} in the field {field}" if field else str(found)
            raise self._malformed(method, path, response, got, "a finite number", not_the_api=False)
        return value

    def _malformed(
        self, method: str, path: str, response: httpx.Response, got: str, expected: str = "",
        *, not_the_api: bool = True,
    ) -> MalformedResponseError:  # fmt: skip
        kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip()
        wanted = f", not {expected}" if expected else ""
        # A body that is not JSON, or not the object asked for, is usually another website.
        hint = "; is POLARIS_URL the API base URL (https://ORG.REGION.CLOUD.api.imply.io)?"
        return MalformedResponseError(
            f"{method} {self._origin}{response.request.url.raw_path.decode('ascii', 'replace')}: "
            f"answered {response.status_code} ({self.redact(kind)[:80]}) with {got}{wanted}"
            + (hint if not_the_api else ""),
            status=response.status_code,
            method=method,
            url=f"{self.config.base_url}{path}",
        )

    def _object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        keys: Mapping[str, type | tuple[type, ...]] | None = None,
        listing: str | None = None,
        shape: Shape | None = None,
    ) -> dict[str, Any]:
        """Call, and check the answer has the documented shape: an object with these keys,
        or (`listing`) an object whose `values` are objects that each have that key; and the
        fields in `shape` (of the object, or of each value) have their types."""
        response = self._send(method, path, params=params, body=body)
        value = self._json(method, path, response)
        unconfirmed = method == "POST"  # a create whose answer is unreadable is unconfirmed

        def fail(got: str, expected: str, not_the_api: bool = True) -> PolarisError:
            if unconfirmed:
                return UnconfirmedWriteError(
                    f"{method} {path}: Polaris answered {response.status_code} with {got} "
                    "instead of the created resource, so the change cannot be confirmed; "
                    "it may have been made: run plan to see what exists",
                    status=response.status_code,
                    method=method,
                    url=f"{self.config.base_url}{path}",
                )
            return self._malformed(method, path, response, got, expected, not_the_api=not_the_api)

        if not isinstance(value, dict):
            raise fail(describe(value), "a JSON object")
        for key, kind in (keys or {}).items():
            if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool):
                raise fail(f"an object whose {key!r} is {describe(value.get(key))}",
                           f"an object with {key!r}")  # fmt: skip
        if listing is not None:
            values = value.get("values")
            if not isinstance(values, list):
                raise fail(f"an object whose 'values' is {describe(values)}", "a list of values")
            kind = (str, int) if listing == "id" else str
            for item in values:
                if not isinstance(item, dict) or not isinstance(item.get(listing), kind):
                    raise fail(
                        f"a value that is not an object with a {listing!r}: {describe(item)}",
                        f"objects with a {listing!r}",
                    )
        if shape is not None:
            each = enumerate(value["values"]) if listing is not None else [(None, value)]
            fields = compiled(tuple(shape.items()))  # once, not for each of a page's 1,000
            for index, item in each:
                if fit(item, fields):
                    continue
                wrong = misfit(item, shape)
                if wrong is not None:
                    where, found, kind = wrong
                    at = f"values[{index}].{where}" if index is not None else where
                    got = f"the field {at} holding {describe(found)}"
                    raise fail(got, type_name(kind), not_the_api=False)
        return value

    def _error(
        self, method: str, path: str, url: str, response: httpx.Response, attempts: int
    ) -> PolarisError:
        status = response.status_code
        code, message = error_body(response, self.redact)
        detail = f": {message}" if message else ""
        facts: dict[str, Any] = {"status": status, "api_code": code, "method": method, "url": url}
        collection = path.strip("/").split("/")[0]
        if status == 401:
            return PolarisError(
                f"Polaris rejected the API key (401) for {self._origin}: "
                "check POLARIS_API_KEY (or --api-key-file)",
                **facts,
            )
        if status == 403:
            needed = WRITE_PERMISSIONS.get(collection) if method != "GET" else None
            reason = f"the API key needs the {needed} permission" if needed else "access denied"
            return PolarisError(f"{method} {path} is forbidden (403): {reason}{detail}", **facts)
        if status == 404:
            on_collection = collection in WRITE_PERMISSIONS and path.strip("/") == collection
            if on_collection or _names_project(code, message, self.config.project):
                return ProjectNotFoundError(
                    f"project {self.config.project} not found at {self._origin} (404); "
                    "check POLARIS_PROJECT_ID and POLARIS_URL",
                    **facts,
                )
            return NotFoundError(f"{method} {path}: not found (404){detail}", **facts)
        if status == 409:
            return ConflictError(f"{method} {path}: conflict (409){detail}", **facts)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return PolarisError(f"{method} {path} failed ({status}){tries}{detail}", **facts)

    # Shorthands --------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a project-relative path such as "/connections"."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body; retried only when Polaris certainly did not process it."""
        return self.request("POST", path, body=body)

    def put(self, path: str, body: Any) -> Any:
        """PUT a JSON body."""
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH a JSON body."""
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        """DELETE a project-relative path."""
        return self.request("DELETE", path)

    # Collections: one logic for every collection of named resources ---------------------------

    def listed(self, collection: str, *, key: str = "name") -> list[dict[str, Any]]:
        """Every resource of a collection that lists in one call (`{"values": [...]}`), each
        checked for its `key` and the collection's shape (`ANSWER_SHAPES`)."""
        path = api_path(collection)
        shape = ANSWER_SHAPES.get(collection)
        return list(self._object("GET", path, listing=key, shape=shape)["values"])

    def read(self, collection: str, name: str, *, key: str = "name") -> dict[str, Any] | None:
        """One resource, or None when Polaris has none by that name (a missing project is a
        ProjectNotFoundError and still raised)."""
        kind = (str, int) if key == "id" else str
        shape = ANSWER_SHAPES.get(collection)
        try:
            return self._object("GET", api_path(collection, name), keys={key: kind}, shape=shape)
        except NotFoundError:
            return None

    def create(
        self, collection: str, body: Mapping[str, Any], *, key: str | None = None
    ) -> dict[str, Any]:
        """POST a resource to its collection; raises ConflictError when the name is taken, and
        (with `key`) UnconfirmedWriteError when Polaris answers without it."""
        keys = {key: (str, int) if key == "id" else str} if key else None
        return self._object("POST", api_path(collection), body=dict(body), keys=keys)

    def replace(self, collection: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a resource (a table's body carries the version it was read at: 409 when stale)."""
        return self._object("PUT", api_path(collection, name), body=dict(body))

    def modify(self, collection: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a resource (a connection's body must carry its `type`)."""
        return self._object("PATCH", api_path(collection, name), body=dict(body))

    def remove(self, collection: str, name: str) -> None:
        """DELETE a resource; one already gone counts as deleted."""
        try:
            self.delete(api_path(collection, name))
        except NotFoundError:
            return

    # Connections v1 and Tables v1: the collection operations, by name -------------------------

    def list_connections(self) -> list[dict[str, Any]]:
        """Every connection in the project (one call; the list is not paginated)."""
        return self.listed("connections")

    def get_connection(self, name: str) -> dict[str, Any] | None:
        """One connection, or None."""
        return self.read("connections", name)

    def create_connection(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a connection; raises ConflictError when the name is taken."""
        return self.create("connections", body)

    def update_connection(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a connection (the body must carry its `type`)."""
        return self.modify("connections", name, body)

    def delete_connection(self, name: str) -> None:
        """DELETE a connection; one already gone counts as deleted."""
        self.remove("connections", name)

    def test_connection(self, name: str) -> None:
        """Ask Polaris to check a connection (its bucket, prefix and credentials); PolarisError
        (400 ConnectionTestFailed, with Polaris's message) when the check fails."""
        self.post(api_path("connections", name, "test"), {})  # no body is defined; send {}

    def list_tables(self) -> list[dict[str, Any]]:
        """Every table in the project but the lock's: plan, drift and prune never see the lock."""
        return [t for t in self.listed("tables") if t["name"] != LOCK_TABLE]

    def get_table(self, name: str) -> dict[str, Any] | None:
        """One table, or None."""
        return self.read("tables", name)

    def create_table(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a table; raises ConflictError when the name is taken."""
        return self.create("tables", body)

    def update_table(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a table; the body carries the version it was read at (409 when stale)."""
        return self.replace("tables", name, body)

    # Jobs v1: the job kinds' own operations (paged summaries, a job by id, progress, metrics) --

    def iter_jobs(
        self, *, read_ahead: Executor | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Job summaries, newest first, 1,000 a page; keyword filters become query parameters.

        With `read_ahead`, the pages are read in that executor (so within its concurrency): the
        first is asked for at once, before the first summary is, so that a caller can start
        other reads before it waits for any. Once a page says there are more, the next ones are
        read together, twice as many each time up to READ_AHEAD_PAGES (1, 2, 4, 4, ...): ten
        pages take five round trips instead of ten. The list has no total, so the last group
        may ask for up to three pages past the end (two, for ten pages). Pages read together may
        be answered in any order: a job created between two answers would move a job across
        their boundary unseen, so each page read ahead starts with the last job of the page
        before it, and one that does not is read again in order.
        """
        params = {**JOB_ORDER, **filters, "paginationLimit": PAGE_SIZE}

        def page_at(offset: int) -> dict[str, Any]:
            query = {**params, "paginationOffset": offset}
            return self._object(
                "GET", api_path("jobs"), params=query, listing="id", shape=JOB_SHAPE
            )

        # Pages asked for, in order, by offset (the first one starts with no job before it).
        ahead: deque[tuple[int, Future[dict[str, Any]]]] = deque()
        if read_ahead is not None:
            ahead.append((0, read_ahead.submit(page_at, 0)))
        return self._pages(page_at, ahead, read_ahead)

    @staticmethod
    def _pages(
        page_at: Callable[[int], dict[str, Any]],
        ahead: deque[tuple[int, Future[dict[str, Any]]]],
        read_ahead: Executor | None,
    ) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        width = 0
        offset = 0
        last: str | None = None  # the id of the last job of the page before
        try:
            while True:
                page = ahead.popleft()[1].result() if ahead and ahead[0][0] == offset else None
                values = page["values"] if page is not None else []
                if page is not None and offset == 0:
                    pass  # the first page, asked for before the iteration began
                elif page is not None and values and str(values[0]["id"]) == last:
                    values = values[1:]  # the job the page was asked to start with
                else:  # not read ahead, a page came back short, or the list moved between reads
                    for _, future in ahead:
                        future.cancel()
                    ahead.clear()
                    page = (
                        read_ahead.submit(page_at, offset).result()
                        if read_ahead
                        else page_at(offset)
                    )
                    values = page["values"]
                if page["values"]:
                    last = str(page["values"][-1]["id"])
                fresh = []
                for summary in values:
                    # A job created while paging shifts the rest down a place: skip the repeat.
                    if str(summary["id"]) not in seen:
                        seen.add(str(summary["id"]))
                        fresh.append(summary)
                # A page with nothing new cannot lead anywhere: stop rather than page forever.
                more = bool(page.get("moreResultsAvailable")) and bool(fresh)
                offset += len(values)
                full = len(page["values"]) == PAGE_SIZE
                if more and read_ahead is not None and not ahead and full:
                    # Asked for before this page's jobs are handed out, so that work the caller
                    # queues for them comes after these reads. Each starts one job early.
                    width = min(max(1, width * 2), READ_AHEAD_PAGES)
                    stride = PAGE_SIZE - 1
                    ahead.extend(
                        (at, read_ahead.submit(page_at, at - 1))
                        for at in range(offset, offset + width * stride, stride)
                    )
                yield from fresh
                if not more:
                    return
        finally:
            for _, future in ahead:  # the caller stopped early, or a read failed
                future.cancel()

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """One full job, or None (Polaris forgets old completed jobs)."""
        return self.read("jobs", job_id, key="id")

    def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a job; raises AmbiguousWriteError when the outcome is unknown, and
        UnconfirmedWriteError when Polaris answers without the job."""
        return self.create("jobs", body, key="id")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Ask Polaris to cancel a pending or running job."""
        body = self.post(api_path("jobs", job_id, "status"), {"desiredExecutionStatus": "canceled"})
        return body if isinstance(body, dict) else {}

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The job's overall progress (0..1)."""
        return self._object("GET", api_path("jobs", job_id, "progress"), shape=PROGRESS_SHAPE)

    def job_metrics(self, job_id: str) -> dict[str, Any]:
        """The job's totals: rows and bytes processed."""
        return self._object("GET", api_path("jobs", job_id, "metrics"), shape=METRICS_SHAPE)
