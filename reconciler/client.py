"""The Polaris API client: the only module that speaks HTTP to Polaris.

Retry policy, in one place:
- GET, PUT, PATCH and DELETE are retried on 429, 502, 503, 504 and on errors that happen before a
  request is sent (connect errors), with exponential backoff and full jitter, honouring
  `Retry-After`, capped in attempts and total time. PUT and PATCH carry the whole intended state
  (and PUT a table version), so repeating one is harmless.
- POST creates, and Polaris has no idempotency keys: a POST is retried only when the request was
  certainly not processed (429, or a connect error). Any other failure after it may have been sent
  (a timeout, a dropped connection, a 5xx) raises AmbiguousWriteError; the caller reads live state
  before deciding to try again. That is what keeps a job from being submitted twice.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

log = logging.getLogger("reconciler.client")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
CONNECT_ATTEMPTS = 3
PAGE_SIZE = 1000  # the largest page the Jobs v1 list allows
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
# The permission each kind of write needs (polaris-api-notes.md), keyed by the collection.
WRITE_PERMISSIONS = {
    "connections": "ManageConnections",
    "tables": "ManageTables",
    "jobs": "ManageIngestionJobs",
}


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach one Polaris project."""

    url: str
    project: str
    api_key: str = field(repr=False)
    insecure: bool = False
    timeout: float = 30.0
    max_attempts: int = 10  # with the 60 s budget: survives long bursts of throttling
    max_retry_seconds: float = 60.0

    @property
    def base_url(self) -> str:
        """The project-scoped API root."""
        return f"{self.url.rstrip('/')}/v1/projects/{self.project}"


class PolarisError(Exception):
    """A failed API call, as one message a person can act on."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AmbiguousWriteError(PolarisError):
    """A write whose outcome is unknown: read live state before trying again."""


class NotFoundError(PolarisError):
    """404."""


class ConflictError(PolarisError):
    """409: the resource exists already, or a table version is stale."""


def _segment(name: str) -> str:
    """A name as one URL path segment: table names may hold characters such as ? or /."""
    return quote(name, safe="")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), if present."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) from either documented error shape."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, text[:300] or None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if not isinstance(body, Mapping):
        return None, None
    code, message = body.get("code"), body.get("message")
    return (str(code) if code else None), (str(message) if message else None)


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
        if wait is None:  # exponential backoff with full jitter
            wait = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
        # Waits count even when `sleep` does not really sleep (tests), and wall time counts too.
        spent = max(time.monotonic() - self.started, self.slept)
        if spent + wait > self.config.max_retry_seconds:
            return False
        self.sleep(wait)
        self.slept += wait
        return True


class PolarisClient:
    """A thread-safe client for one project's Connections, Tables and Jobs APIs."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
    ) -> None:
        parts = urlsplit(config.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolarisError(f"POLARIS_URL must be an http(s) URL, not {config.url!r}")
        if parts.scheme == "http" and not config.insecure and not _is_loopback(parts.hostname):
            raise PolarisError(
                f"refusing plain http:// to {parts.hostname}: the API key would cross the network "
                "unencrypted; use https:// or pass --insecure"
            )
        self.config = config
        self.sleep = sleep
        self._count = 0
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._http = httpx.Client(
            base_url=config.base_url,
            auth=httpx.BasicAuth(config.api_key, ""),
            timeout=config.timeout,
            limits=limits,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "polaris-reconciler"},
        )

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
        write = method != "GET"
        attempt = 0
        budget = _Budget(self.config, self.sleep)
        while True:
            attempt += 1
            with self._lock:
                self._count += 1
            sent = time.monotonic()
            try:
                response = self._http.request(method, path, params=params, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                # Never sent: safe to retry whatever the method, but only briefly: an unreachable
                # host seldom comes back within seconds, and a mistyped URL should fail fast.
                if attempt < CONNECT_ATTEMPTS and budget.wait(attempt, None):
                    continue
                raise PolarisError(f"cannot reach {self.config.url}: {error}") from None
            except httpx.HTTPError as error:
                if method in ("GET", "PUT", "PATCH", "DELETE") and budget.wait(attempt, None):
                    continue
                message = (
                    f"{method} {path}: no response from {self.config.url} ({type(error).__name__})"
                )
                if method == "POST":
                    raise AmbiguousWriteError(
                        message + "; the request may have been applied"
                    ) from None
                raise PolarisError(message) from None
            elapsed_ms = (time.monotonic() - sent) * 1000
            log.debug("%s %s -> %s (%.0f ms)", method, path, response.status_code, elapsed_ms)
            if response.status_code in RETRYABLE_STATUSES:
                retryable = response.status_code == 429 or method != "POST"
                if retryable and budget.wait(attempt, retry_after(response)):
                    continue
                if method == "POST" and response.status_code != 429:
                    raise AmbiguousWriteError(
                        f"POST {path}: Polaris answered {response.status_code}; "
                        "the request may have been applied",
                        status=response.status_code,
                    )
            if response.status_code >= 500 and method == "POST":
                raise AmbiguousWriteError(
                    f"POST {path}: Polaris answered {response.status_code}; the request may have been applied",
                    status=response.status_code,
                )
            if response.is_success:
                return response.json() if response.content else None
            raise self._error(method, path, response, write)

    def _error(self, method: str, path: str, response: httpx.Response, write: bool) -> PolarisError:
        status = response.status_code
        code, message = error_body(response)
        detail = f": {message}" if message else ""
        if status == 401:
            return PolarisError(
                "Polaris rejected the credentials (401): check POLARIS_API_KEY (or --api-key-file)",
                status=status, code=code,
            )  # fmt: skip
        if status == 403:
            collection = path.strip("/").split("/")[0]
            needed = WRITE_PERMISSIONS.get(collection, "a permission") if write else "read access"
            return PolarisError(
                f"{method} {path} is forbidden (403): the API key needs the {needed} permission{detail}",
                status=status, code=code,
            )  # fmt: skip
        if status == 404:
            if path.strip("/").split("/")[0] in WRITE_PERMISSIONS and path.count("/") <= 1:
                return NotFoundError(
                    f"project {self.config.project} not found at {self.config.url} (404); "
                    "check POLARIS_PROJECT_ID and POLARIS_URL",
                    status=status, code=code,
                )  # fmt: skip
            return NotFoundError(
                f"{method} {path}: not found (404){detail}", status=status, code=code
            )
        if status == 409:
            return ConflictError(
                f"{method} {path}: conflict (409){detail}", status=status, code=code
            )
        return PolarisError(f"{method} {path} failed ({status}){detail}", status=status, code=code)

    # Shorthands --------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a project-relative path."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body."""
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

    def _maybe(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.get(path))
        except NotFoundError as missing:
            if "project" in str(missing) and "not found at" in str(missing):
                raise
            return None

    # Connections v1 ----------------------------------------------------------------------------

    def list_connections(self) -> list[dict[str, Any]]:
        """Every connection in the project (one call; the list is not paginated)."""
        return list(self.get("/connections").get("values", []))

    def get_connection(self, name: str) -> dict[str, Any] | None:
        """One connection, or None."""
        return self._maybe(f"/connections/{_segment(name)}")

    def create_connection(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a connection."""
        return dict(self.post("/connections", dict(body)))

    def update_connection(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a connection (the body must carry its `type`)."""
        return dict(self.patch(f"/connections/{_segment(name)}", dict(body)))

    def delete_connection(self, name: str) -> None:
        """DELETE a connection; one already gone counts as deleted."""
        try:
            self.delete(f"/connections/{_segment(name)}")
        except NotFoundError:
            return

    # Tables v1 ---------------------------------------------------------------------------------

    def list_tables(self) -> list[dict[str, Any]]:
        """Every table in the project."""
        return list(self.get("/tables").get("values", []))

    def get_table(self, name: str) -> dict[str, Any] | None:
        """One table, or None."""
        return self._maybe(f"/tables/{_segment(name)}")

    def create_table(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a table."""
        return dict(self.post("/tables", dict(body)))

    def update_table(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a table; the body carries the version it was read at."""
        return dict(self.put(f"/tables/{_segment(name)}", dict(body)))

    # Jobs v1 -----------------------------------------------------------------------------------

    def iter_jobs(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Job summaries, a page of 1,000 at a time, with server-side filters."""
        offset = 0
        while True:
            params = {**filters, "paginationLimit": PAGE_SIZE, "paginationOffset": offset}
            page = self.get("/jobs", params)
            values = page.get("values", [])
            yield from values
            if not page.get("moreResultsAvailable") or not values:
                return
            offset += len(values)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """One full job, or None (Polaris forgets old completed jobs)."""
        return self._maybe(f"/jobs/{_segment(job_id)}")

    def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a job; raises AmbiguousWriteError when the outcome is unknown."""
        return dict(self.post("/jobs", dict(body)))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Ask Polaris to cancel a pending or running job."""
        return dict(
            self.post(f"/jobs/{_segment(job_id)}/status", {"desiredExecutionStatus": "canceled"})
            or {}
        )

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The job's overall progress (0..1)."""
        return dict(self.get(f"/jobs/{_segment(job_id)}/progress") or {})

    def job_metrics(self, job_id: str) -> dict[str, Any]:
        """The job's totals: rows and bytes processed."""
        return dict(self.get(f"/jobs/{_segment(job_id)}/metrics") or {})
