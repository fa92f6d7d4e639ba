"""The emulated Polaris API: routing, authentication, validation and the resources' behaviour.

Where the S3 ingestion guide and the OpenAPI document differ, the emulator follows the guide's
sample responses (they show what Polaris actually sends) and says so next to the code. Where both
are silent, the choice is marked "inferred".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from reconciler.emulator.clock import Clock, SystemClock, timestamp
from reconciler.emulator.faults import FaultPlan
from reconciler.emulator.store import Store

if TYPE_CHECKING:
    from reconciler.emulator.engine import DataSource, Engine

if TYPE_CHECKING:
    from reconciler.emulator.server import EmulatorTransport, RunningEmulator

DEMO_PROJECT_ID = "7d9a5b4e-1c2f-4a6b-9e8d-0d3e5f7a9b1c"
DEMO_API_KEY = "pok_demo0Emulator0Key0For0Local0Use0Only"
ALL_PERMISSIONS = frozenset({"ManageConnections", "ManageTables", "ManageIngestionJobs"})

CONNECTION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
S3_FIELDS = frozenset(
    {
        "type",
        "name",
        "description",
        "bucket",
        "awsEndpoint",
        "prefix",
        "awsAssumedRoleArn",
        "secrets",
    }
)
OTHER_CONNECTION_TYPES = frozenset(
    {"azure", "confluent", "confluent_schema_registry", "kafka", "kinesis", "push_streaming"}
)
JOB_TYPES = frozenset({"batch", "delete_data", "drop_table", "restore_data", "streaming", "sql"})
EXECUTION_STATUSES = frozenset(
    {"pending", "running", "completed", "idle", "canceled", "failed", "suspended", "unknown"}
)
TERMINAL = frozenset({"completed", "failed", "canceled"})
ACTIVE = frozenset({"pending", "running"})
HEALTH_STATUSES = frozenset({"ok", "warn", "error"})
BATCH_FORMATS = frozenset(
    {"avro_ocf", "avro_stream", "csv", "nd-json", "orc", "parquet", "protobuf", "regex"}
)
SELECTORS = ("uris", "prefixes", "objects", "pattern")
TABLE_TYPES = frozenset({"detail", "aggregate"})
GRANULARITIES = frozenset(
    {
        "second",
        "minute",
        "five_minute",
        "ten_minute",
        "fifteen_minute",
        "thirty_minute",
        "hour",
        "six_hour",
        "eight_hour",
        "day",
        "month",
        "quarter",
        "year",
        "all",
    }
)
TABLE_WRITABLE = (
    "description",
    "partitioningGranularity",
    "schemaMode",
    "schema",
    "clusteringColumns",
    "storagePolicy",
    "queryGranularity",
    "timeResolution",
)
SORT_COLUMNS = {
    "created_by_user_name": lambda j: j["createdBy"]["username"],
    "created_date_time": lambda j: j["createdTimestamp"],
    "execution_status": lambda j: j["executionStatus"],
    "last_updated_date_time": lambda j: j["lastUpdatedTimestamp"],
    "source_name": lambda j: j["source"].get("connectionName", ""),
    "source_type": lambda j: j["source"]["type"],
    "source_connection_name": lambda j: j["source"].get("connectionName", ""),
    "source_table_name": lambda j: j["source"].get("tableName", ""),
    "target_table_name": lambda j: j["target"].get("tableName", ""),
    "type": lambda j: j["type"],
}  # fmt: skip
# The mapping Polaris appends to jobs with aggregations (the S3 guide's sample response).
COUNT_MAPPING = {"columnName": "__count", "expression": "COUNT(*)"}
MAX_PARSE_EXCEPTIONS = 2147483647
NO_DATA = (
    "No data is read: the emulator runs without --s3-dir or --s3-endpoint, so row counts are "
    "invented and queries have nothing to answer"
)

Observer = Callable[[str, str, int, bytes], None]


class ApiError(Exception):
    """An error response: status and the documented `{code, message}` body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


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


@dataclass(frozen=True)
class JobTiming:
    """How long a batch job stays pending, then running; (0, 0) completes it on the next read."""

    pending_seconds: float = 0.0
    running_seconds: float = 0.0


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: str
    permission: str | None


def _routes() -> list[_Route]:
    table = [
        ("GET", "/connections", "list_connections", None),
        ("POST", "/connections", "create_connection", "ManageConnections"),
        ("GET", "/connections/{name}", "get_connection", None),
        ("PATCH", "/connections/{name}", "update_connection", "ManageConnections"),
        ("DELETE", "/connections/{name}", "delete_connection", "ManageConnections"),
        ("POST", "/connections/{name}/test", "test_connection", "ManageConnections"),
        ("GET", "/connectionsMeta", "connections_meta", None),
        ("GET", "/jobs", "list_jobs", None),
        ("POST", "/jobs", "create_job", "ManageIngestionJobs"),
        ("GET", "/jobs/{jobId}", "get_job", None),
        ("PUT", "/jobs/{jobId}", "put_job", "ManageIngestionJobs"),
        ("GET", "/jobs/{jobId}/status", "job_status", None),
        ("POST", "/jobs/{jobId}/status", "update_job_status", "ManageIngestionJobs"),
        ("POST", "/jobs/{jobId}/reset", "reset_job", "ManageIngestionJobs"),
        ("GET", "/jobs/{jobId}/progress", "job_progress", None),
        ("GET", "/jobs/{jobId}/logs", "job_logs", None),
        ("GET", "/jobs/{jobId}/metrics", "job_metrics", None),
        ("GET", "/tables", "list_tables", None),
        ("POST", "/tables", "create_table", "ManageTables"),
        ("GET", "/tables/{tableName}", "get_table", None),
        ("PUT", "/tables/{tableName}", "update_table", "ManageTables"),
        ("GET", "/tables/{tableName}/unusedSegments", "unused_segments", None),
        ("POST", "/query/sql", "query_sql", None),
    ]
    routes = []
    for method, suffix, handler, permission in table:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", suffix)
        routes.append(
            _Route(
                method,
                re.compile(f"^{regex}$"),
                "/v1/projects/{projectId}" + suffix,
                handler,
                permission,
            )
        )
    return routes


ROUTES = _routes()
PROJECT_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)(?P<rest>/.*)$")


def _user(key: str) -> dict[str, str]:
    # Polaris names API-key users after a masked key ("api-key-pok_vipgj...bjjvyo", S3 guide).
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"username": f"api-key-{key[:9]}...{key[-6:]}", "userId": str(uuid.UUID(digest[:32]))}


class Emulator:
    """A Polaris project in memory (or on disk), answering Connections, Jobs and Tables v1."""

    def __init__(
        self,
        project_id: str = DEMO_PROJECT_ID,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        clock: Clock | None = None,
        timing: JobTiming = JobTiming(),
        faults: FaultPlan | None = None,
        data_dir: Path | None = None,
        response_observer: Observer | None = None,
        data: DataSource | None = None,
    ) -> None:
        self.project_id = project_id
        self.api_keys = {
            k: frozenset(v) for k, v in (api_keys or {DEMO_API_KEY: ALL_PERMISSIONS}).items()
        }
        self.clock = clock or SystemClock()
        self.timing = timing
        self.faults = faults if faults is not None else FaultPlan()
        self.store = Store(data_dir)
        # Without a data source no object is read and row counts are invented (`_rows`).
        self.data = data
        self._engine_path = data_dir / f"project-{project_id}.duckdb" if data_dir else None
        self._engine: Engine | None = None
        self.response_observer = response_observer
        self.requests: list[tuple[str, str, int]] = []
        self.held = False
        self._caller = DEMO_API_KEY
        self._list_cache: dict[Any, tuple[int, list[dict[str, Any]]]] = {}
        self._active = {
            job_id
            for job_id, job in self.store.jobs.items()
            if job["executionStatus"] not in TERMINAL
        }

    @property
    def engine(self) -> Engine:
        """The project's table storage (DuckDB), opened on first use."""
        if self._engine is None:
            from reconciler.emulator.engine import Engine

            self._engine = Engine(self._engine_path)
        return self._engine

    @property
    def reads_data(self) -> bool:
        """Whether jobs read real objects (--s3-dir or --s3-endpoint)."""
        return self.data is not None

    def close(self) -> None:
        """Stop ingesting and close the journal and the table storage."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.store.close()

    def transport(self) -> EmulatorTransport:
        """An httpx transport that calls this emulator in-process (no socket)."""
        from reconciler.emulator.server import EmulatorTransport

        return EmulatorTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
        """Serve on a loopback port (0 picks a free one) from a background thread."""
        from reconciler.emulator.server import RunningEmulator

        return RunningEmulator(self, host, port)

    # Transport-independent entry point ---------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request; raises DroppedResponse when the fault plan loses the answer."""
        fault, drop = self.faults.draw(request.method, request.path)
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        template = request.path
        if fault is not None:
            response = self._fault(fault)
        else:
            try:
                template, response = self._dispatch(request)
            except Exception as unexpected:
                if not isinstance(unexpected, ApiError):
                    unexpected = ApiError(
                        500, "InternalServerError", f"{type(unexpected).__name__}: {unexpected}"
                    )
                error = unexpected
                body = {"code": error.code, "message": error.message}
                # Polaris wraps the 401 body: {"error": {...}} (polaris-api-notes.md).
                response = Response(
                    error.status, {"error": body} if error.status == 401 else body, error.headers
                )
        path = request.path + (f"?{request.query}" if request.query else "")
        with self.store.lock:
            self.requests.append((request.method, path, response.status))
        if self.response_observer is not None:
            self.response_observer(request.method, template, response.status, response.content())
        if drop:
            raise DroppedResponse(f"{request.method} {request.path}")
        return response

    def reset_requests(self) -> None:
        """Forget the request log (benchmarks and tests count from here)."""
        with self.store.lock:
            self.requests.clear()

    def _fault(self, kind: str) -> Response:
        if kind == "429":
            headers = {"Retry-After": f"{self.faults.retry_after_seconds:g}"}
            return Response(
                429,
                {"code": "TooManyRequests", "message": "Rate limit exceeded; retry later"},
                headers,
            )
        status = int(kind)
        return Response(
            status,
            {
                "code": "ServiceUnavailable" if status == 503 else "InternalServerError",
                "message": "Injected fault",
            },
        )

    def _dispatch(self, request: Request) -> tuple[str, Response]:
        caller = self._authenticate(request.headers.get("authorization", ""))
        permissions = self.api_keys[caller]
        matched = PROJECT_PATH.match(request.path)
        if not matched:
            raise ApiError(404, "NotFound", f"No resource at {request.path}")
        if matched["project"] != self.project_id:
            raise ApiError(404, "NotFound", f"Project {matched['project']} not found")
        rest = matched["rest"]
        allowed = []
        for route in ROUTES:
            found = route.pattern.match(rest)
            if not found:
                continue
            allowed.append(route.method)
            if route.method != request.method:
                continue
            if route.permission and route.permission not in permissions:
                raise ApiError(
                    403, "Forbidden", f"The API key lacks the {route.permission} permission"
                )
            body = self._body(request) if request.method in ("POST", "PUT", "PATCH") else None
            query = parse_qs(request.query, keep_blank_values=True)
            with self.store.lock:
                self._caller = caller  # handlers run one at a time under the lock
                self._advance()
                response: Response = getattr(self, route.handler)(
                    body=body, query=query, **{k: unquote(v) for k, v in found.groupdict().items()}
                )
            return route.template, response
        if allowed:
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
            )
        raise ApiError(404, "NotFound", f"No resource at {request.path}")

    def _authenticate(self, header: str) -> str:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        key: str | None = None
        if scheme.lower() == "basic":
            # The docs show both the raw key and base64("KEY:"); Polaris accepts both.
            if credential in self.api_keys:
                key = credential
            else:
                try:
                    key = base64.b64decode(credential, validate=True).decode().partition(":")[0]
                except ValueError:
                    key = None
        elif scheme.lower() == "bearer":
            key = credential  # inferred: the emulator accepts its API keys as OAuth tokens
        if key is None or key not in self.api_keys:
            # Polaris wraps this one error: {"error": {...}} (polaris-api-notes.md).
            raise ApiError(401, "Unauthorized", "Missing or invalid credentials")
        return key

    def _body(self, request: Request) -> Any:
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "The request body must be JSON (Content-Type: application/json)",
            )
        try:
            body = json.loads(request.body or b"null")
        except ValueError as error:
            raise ApiError(
                400, "InvalidRequest", f"The request body is not valid JSON: {error}"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequest", "The request body must be a JSON object")
        return body

    # Time and lifecycle ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The emulator's current time."""
        return self.clock.now()

    def _advance(self) -> None:
        """Move jobs along pending -> running -> completed as the clock says (call under the lock)."""
        if not self._active:
            return
        now = self.now()
        for job_id in list(self._active):
            job = self.store.jobs[job_id]
            if job.get("held") or job.get("pinned"):
                continue
            created = datetime.fromisoformat(job["_created"])
            started = created + timedelta(seconds=self.timing.pending_seconds)
            finished = started + timedelta(seconds=self.timing.running_seconds)
            if now >= finished:
                self._finish(job, started=started, finished=finished)
            elif now >= started and job["executionStatus"] == "pending":
                self._transition(job, "running", started=started)

    def _transition(
        self, job: dict[str, Any], status: str, *, started: datetime | None = None,
        finished: datetime | None = None, health: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        job = dict(job)
        now = self.now()
        if status != "pending" and "startedTimestamp" not in job:
            job["startedTimestamp"] = timestamp(started or now)
        if status in TERMINAL:
            job["completedTimestamp"] = timestamp(finished or now)
        job["executionStatus"] = status
        job["lastUpdatedTimestamp"] = timestamp(finished or started or now)
        if health is not None:
            job["health"] = health
        if status == "completed" and not self.reads_data:
            table = self.store.tables.get(job["target"]["tableName"])
            if table is not None:  # completed jobs fill their table, so "non-empty" is real
                rows = _rows(job["id"])
                self.store.put("tables", table["name"], {
                    **table, "totalRows": table["totalRows"] + rows, "segmentCount": table["segmentCount"] + 1,
                    "totalDataSizeBytes": table["totalDataSizeBytes"] + rows * 120,
                })  # fmt: skip
        if status in TERMINAL:
            self._active.discard(job["id"])
        if status in ("failed", "canceled") and self._engine is not None:
            self._engine.cancel(job["id"])  # whatever it read is dropped, nothing lands
        self.store.put("jobs", job["id"], job)

    def _finish(
        self,
        job: dict[str, Any],
        *,
        started: datetime | None = None,
        finished: datetime | None = None,
    ) -> None:
        """Complete a due job: with data, only once its rows are in its table (or fail it)."""
        if not self.reads_data:
            self._transition(job, "completed", started=started, finished=finished)
            return
        from reconciler.emulator.ingest import Failure

        job_id, table_name = job["id"], job["target"]["tableName"]
        metrics = self.engine.committed(job_id)  # ingested before a restart: never twice
        warning = None
        if metrics is None:
            if not self.engine.tracking(job_id):
                self._submit(job)
            try:
                staged = self.engine.outcome(job_id)  # waits while the rows are still coming
                self.engine.commit(job_id, staged)
            except Failure as failure:
                log = {"timestamp": timestamp(finished or self.now()), "healthStatus": "error",
                       "code": failure.code, "message": failure.message}  # fmt: skip
                error = {
                    "status": "error",
                    "code": failure.code,
                    "message": failure.message,
                    "log": log,
                }
                self._transition(job, "failed", started=started, finished=finished, health=error)
                return
            metrics, warning = staged.metrics, staged.warning
        stats = self.engine.stats(table_name)
        table = self.store.tables.get(table_name)
        if table is not None:
            self.store.put("tables", table_name, {
                **table, "totalRows": stats.rows, "segmentCount": stats.segments,
                "totalDataSizeBytes": stats.bytes, "segmentTotalBytes": stats.bytes,
            })  # fmt: skip
        health: dict[str, Any] | None = None
        if warning is not None:
            log = {"timestamp": timestamp(finished or self.now()), "healthStatus": "warn",
                   "code": "invalid_rows_found", "message": warning}  # fmt: skip
            health = {"status": "warn", "code": "invalid_rows_found", "log": log}
        job = {**job, "_metrics": metrics}
        self._transition(job, "completed", started=started, finished=finished, health=health)

    def _submit(self, job: Mapping[str, Any]) -> None:
        """Start reading a job's objects (call under the lock)."""
        assert self.data is not None
        connection = self.store.connections.get(job["source"]["connectionName"], {})
        table = self.store.tables.get(job["target"]["tableName"], {})
        source = self.data.for_connection(connection)
        self.engine.submit(job, job.get("spec", job), connection, table, source)

    # Test controls -----------------------------------------------------------------------------

    def hold_jobs(self, hold: bool = True) -> None:
        """While held, new jobs stay pending until completed, failed or released."""
        self.held = hold
        if not hold:
            with self.store.lock:
                for job_id in list(self._active):
                    job = self.store.jobs[job_id]
                    if job.get("held"):
                        self.store.put("jobs", job_id, {**job, "held": False})

    def complete_job(self, job_id: str) -> None:
        """Finish a job now: successfully without data; with data, as its ingestion ends."""
        with self.store.lock:
            self._finish(self.store.jobs[job_id])

    def fail_job(
        self,
        job_id: str,
        code: str = "cannot_parse_source",
        message: str = "The input could not be parsed",
    ) -> None:
        """Fail a job now, with a health code and message as Polaris reports them."""
        log = {
            "timestamp": timestamp(self.now()),
            "healthStatus": "error",
            "code": code,
            "message": message,
        }
        with self.store.lock:
            self._transition(
                self.store.jobs[job_id],
                "failed",
                health={"status": "error", "code": code, "message": message, "log": log},
            )

    def expire_job(self, job_id: str) -> None:
        """Forget a finished job, as Polaris's retention does with old completed batch jobs."""
        with self.store.lock:
            if self.store.jobs[job_id]["executionStatus"] not in TERMINAL:
                raise ValueError(f"job {job_id} is not finished; only finished jobs expire")
            self.store.delete("jobs", job_id)

    def set_job_status(self, job_id: str, status: str) -> None:
        """Pin a job to a status (for example running) until the test changes it."""
        with self.store.lock:
            job = {**self.store.jobs[job_id], "pinned": status not in TERMINAL}
            self._transition(job, status)
            if status not in TERMINAL:
                self._active.add(job_id)

    # Connections -------------------------------------------------------------------------------

    def _connection_view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        # Secret values are write-only: stored, never returned (not even their type).
        return {k: v for k, v in record.items() if k != "secrets"}

    def list_connections(self, **_: Any) -> Response:
        values = [
            self._connection_view(c)
            for c in sorted(self.store.connections.values(), key=lambda c: c["name"])
        ]
        return Response(200, {"values": values})

    def _existing_connection(self, name: str) -> dict[str, Any]:
        if name not in self.store.connections:
            raise ApiError(404, "NotFound", f"Connection {name} not found")
        return self.store.connections[name]

    def get_connection(self, name: str, **_: Any) -> Response:
        return Response(200, self._connection_view(self._existing_connection(name)))

    def create_connection(self, body: dict[str, Any], **_: Any) -> Response:
        name = body.get("name")
        if not isinstance(name, str) or not CONNECTION_NAME.fullmatch(name):
            raise ApiError(
                400, "InvalidRequest", "name must be 1-64 ASCII letters, digits, '.', '_' or '-'"
            )
        self._check_s3_connection(body, creating=True)
        if name in self.store.connections:
            raise ApiError(409, "Conflict", f"Connection with name {name} already exists")
        user, now = _user(self._caller), timestamp(self.now())
        record = {
            **body,
            "submittedByUser": user,
            "submittedOnTimestamp": now,
            "modifiedByUser": user,
            "modifiedOnTimestamp": now,
        }
        self.store.put("connections", name, record)
        location = f"/v1/projects/{self.project_id}/connections/{name}"
        return Response(201, self._connection_view(record), {"Location": quote(location)})

    def _check_s3_connection(self, body: Mapping[str, Any], *, creating: bool) -> None:
        kind = body.get("type")
        if _one_of(kind, OTHER_CONNECTION_TYPES):
            raise ApiError(
                400,
                "InvalidRequest",
                f"Connection type {kind} is not supported by the emulator (only s3)",
            )
        if kind != "s3":
            raise ApiError(
                400, "InvalidRequest", "type is required and must be a known connection type"
            )
        unknown = sorted(set(body) - S3_FIELDS)
        if unknown:
            raise ApiError(
                400,
                "InvalidRequest",
                f"Unrecognized field(s) for an s3 connection: {', '.join(unknown)}",
            )
        for field_name in ("bucket", "awsEndpoint"):
            value = body.get(field_name)
            if (creating or field_name in body) and not (isinstance(value, str) and value):
                raise ApiError(
                    400, "InvalidRequest", f"{field_name} is required for an s3 connection"
                )
        for field_name in ("description", "prefix", "awsAssumedRoleArn"):
            if body.get(field_name) is not None and not isinstance(body[field_name], str):
                raise ApiError(400, "InvalidRequest", f"{field_name} must be a string")
        secrets = body.get("secrets")
        if secrets is not None:
            if not isinstance(secrets, dict) or secrets.get("type") != "access_key":
                raise ApiError(
                    400, "InvalidRequest", "secrets.type must be access_key for an s3 connection"
                )
            for field_name in ("accessKeyId", "accessKeySecret"):
                if not isinstance(secrets.get(field_name), str) or not secrets[field_name]:
                    raise ApiError(400, "InvalidRequest", f"secrets.{field_name} is required")

    def update_connection(self, name: str, body: dict[str, Any], **_: Any) -> Response:
        current = self._existing_connection(name)
        if "type" not in body:
            raise ApiError(400, "InvalidRequest", "type is required when updating a connection")
        if body["type"] != current["type"]:
            raise ApiError(
                400,
                "InvalidRequest",
                f"The type of a connection cannot change (it is {current['type']})",
            )
        if "name" in body and body["name"] != name:
            raise ApiError(400, "InvalidRequest", "The name of a connection cannot change")
        self._check_s3_connection({k: v for k, v in body.items() if v is not None}, creating=False)
        # Inferred: a field sent as null is removed (JSON merge-patch semantics).
        record = {k: v for k, v in {**current, **body}.items() if v is not None}
        record.update(modifiedByUser=_user(self._caller), modifiedOnTimestamp=timestamp(self.now()))
        self.store.put("connections", name, record)
        return Response(200, self._connection_view(record))

    def delete_connection(self, name: str, **_: Any) -> Response:
        self._existing_connection(name)
        if any(j["source"].get("connectionName") == name for j in self._active_jobs()):
            raise ApiError(400, "InvalidRequest", "Connection is in use by ingestion jobs")
        self.store.delete("connections", name)
        return Response(200, None)

    def test_connection(self, name: str, **_: Any) -> Response:
        connection = self._existing_connection(name)
        if self.data is not None:
            from reconciler.s3 import S3Error

            bucket, prefix = connection["bucket"], connection.get("prefix") or ""
            source = self.data.for_connection(connection)
            try:
                found = source.list(bucket, prefix)
            except S3Error as error:
                raise ApiError(
                    400, "ConnectionTestFailed", f"Connection test failed: {error.message}"
                ) from None
            finally:
                getattr(source, "close", lambda: None)()
            if not found:
                raise ApiError(
                    400,
                    "ConnectionTestFailed",
                    f"Connection test failed: no objects under s3://{bucket}/{prefix}",
                )
            return Response(200, None)
        # Inferred, for tests of failure paths: buckets named unreachable-* cannot be reached.
        if connection.get("bucket", "").startswith("unreachable-"):
            raise ApiError(400, "ConnectionTestFailed", "Connection test failed")
        return Response(200, None)

    def connections_meta(self, **_: Any) -> Response:
        digest = hashlib.sha256(self.project_id.encode()).hexdigest()
        return Response(
            200,
            {
                "externalId": str(uuid.UUID(digest[:32])),
                "implyArn": "arn:aws:iam::000000000000:role/imply-emulator",
            },
        )

    # Tables ------------------------------------------------------------------------------------

    def _table_summary(self, table: Mapping[str, Any]) -> dict[str, Any]:
        # The list returns summaries (OpenAPI TableSummaryPayload): no schema, no clustering.
        keys = ("availability", "createdByUser", "createdOnTimestamp", "id", "modifiedByUser", "modifiedOnTimestamp", "name",
                "partitioningGranularity", "schemaMode", "segmentCount", "storagePolicy", "precachedDataSizeBytes",
                "totalDataSizeBytes", "totalRows", "type", "version", "description")  # fmt: skip
        return {k: table[k] for k in keys if k in table}

    def list_tables(self, **_: Any) -> Response:
        return Response(
            200,
            {
                "values": [
                    self._table_summary(t)
                    for t in sorted(self.store.tables.values(), key=lambda t: t["name"])
                ]
            },
        )

    def _existing_table(self, name: str) -> dict[str, Any]:
        if name not in self.store.tables:
            raise ApiError(404, "NotFound", f"Table {name} not found")
        return self.store.tables[name]

    def get_table(self, tableName: str, **_: Any) -> Response:
        return Response(200, self._existing_table(tableName))

    def unused_segments(self, tableName: str, **_: Any) -> Response:
        self._existing_table(tableName)
        return Response(200, {"values": []})

    def _check_table(self, body: Mapping[str, Any]) -> None:
        if not _one_of(body.get("type"), TABLE_TYPES):
            raise ApiError(
                400, "InvalidRequest", "type is required and must be detail or aggregate"
            )
        if "partitioningGranularity" in body and not _one_of(
            body["partitioningGranularity"], GRANULARITIES
        ):
            raise ApiError(
                400,
                "InvalidRequest",
                f"Unknown partitioningGranularity {body['partitioningGranularity']}",
            )
        if "schemaMode" in body and not _one_of(body["schemaMode"], {"flexible", "strict"}):
            raise ApiError(400, "InvalidRequest", "schemaMode must be flexible or strict")
        schema = body.get("schema", [])
        if not isinstance(schema, list) or not all(
            isinstance(c, dict) and c.get("name") and c.get("dataType") for c in schema
        ):
            raise ApiError(
                400, "InvalidRequest", "schema must be a list of columns with name and dataType"
            )
        names = {c["name"] for c in schema}
        missing = [c for c in body.get("clusteringColumns", []) if c not in names]
        if missing and body.get("schemaMode") == "strict":
            raise ApiError(
                400,
                "InvalidRequest",
                f"Clustering column(s) not in the schema: {', '.join(missing)}",
            )

    def create_table(self, body: dict[str, Any], **_: Any) -> Response:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise ApiError(400, "InvalidRequest", "name must be 1-255 characters")
        self._check_table(body)
        if name in self.store.tables:
            raise ApiError(409, "Conflict", f"Table {name} already exists")
        record = self._new_table(name, body)
        self.store.put("tables", name, record)
        return Response(
            201, record, {"Location": quote(f"/v1/projects/{self.project_id}/tables/{name}")}
        )

    def _new_table(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        user, now = _user(self._caller), timestamp(self.now())
        record: dict[str, Any] = {
            "name": name, "type": body["type"], "version": 0, "id": str(uuid.uuid4()),
            "availability": "available", "partitioningGranularity": "day",
            # Inferred: the OpenAPI gives no default; tables created by jobs are flexible (notes).
            "schemaMode": "flexible", "schema": [], "clusteringColumns": [],
            "totalRows": 0, "segmentCount": 0, "segmentTotalBytes": 0, "segmentCompactedBytes": 0,
            "totalDataSizeBytes": 0, "precachedDataSizeBytes": 0,
            "createdByUser": user, "createdOnTimestamp": now, "modifiedByUser": user, "modifiedOnTimestamp": now,
        }  # fmt: skip
        if body["type"] == "aggregate":
            record["timeResolution"] = "millisecond"  # the OpenAPI default
        record.update({k: body[k] for k in TABLE_WRITABLE if k in body})
        return record

    def update_table(self, tableName: str, body: dict[str, Any], **_: Any) -> Response:
        current = self._existing_table(tableName)
        if body.get("version") != current["version"]:
            raise ApiError(
                409,
                "Conflict",
                f"Table version {body.get('version')} is stale; the current version is {current['version']}",
            )
        body = {**body, "type": body.get("type", current["type"])}
        if body["type"] != current["type"]:
            raise ApiError(400, "InvalidRequest", "The type of a table cannot change")
        self._check_table(body)
        old = {c["name"]: c for c in current.get("schema", [])}
        new = {c["name"]: c for c in body.get("schema", current.get("schema", []))}
        altered = [n for n, c in old.items() if new.get(n) != c]
        busy = current["totalRows"] > 0 or any(
            j["target"].get("tableName") == tableName for j in self._active_jobs()
        )
        if altered and busy:
            raise ApiError(
                400,
                "InvalidRequest",
                f"Columns {', '.join(altered)} can only be changed or removed while the table is empty and has no active jobs",
            )
        record = {**current, **{k: body[k] for k in TABLE_WRITABLE if k in body}}
        record.update(
            version=current["version"] + 1,
            modifiedByUser=_user(self._caller),
            modifiedOnTimestamp=timestamp(self.now()),
        )
        self.store.put("tables", tableName, record)
        return Response(200, record)

    # Jobs --------------------------------------------------------------------------------------

    def _active_jobs(self) -> list[dict[str, Any]]:
        return [self.store.jobs[i] for i in self._active]

    def _existing_job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.store.jobs:
            raise ApiError(404, "NotFound", f"Job {job_id} not found")
        return self.store.jobs[job_id]

    def _job_view(self, job: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v for k, v in job.items() if not k.startswith("_") and k not in ("held", "pinned")
        }

    def create_job(self, body: dict[str, Any], **_: Any) -> Response:
        self._check_batch_job(body)
        source, target = body["source"], body["target"]
        aggregates = any(m.get("isAggregation") for m in body.get("mappings", []))
        table_name = target["tableName"]
        if table_name not in self.store.tables:
            if not body.get("createTableIfNotExists", False):
                raise ApiError(
                    400,
                    "InvalidRequest",
                    f"Table {table_name} does not exist; create it or set createTableIfNotExists",
                )
            # Inferred (notes): aggregate when the job aggregates, else detail; flexible; day.
            self.store.put(
                "tables",
                table_name,
                self._new_table(table_name, {"type": "aggregate" if aggregates else "detail"}),
            )
        elif aggregates and self.store.tables[table_name]["type"] == "detail":
            raise ApiError(
                400,
                "InvalidRequest",
                f"Table {table_name} is a detail table; aggregations need an aggregate table",
            )
        user, moment = _user(self._caller), self.now()
        now = timestamp(moment)
        # The guide's sample response echoes the mappings without isAggregation and appends a
        # __count mapping to rollups; it fills ingestionMode. It does not show maxParseExceptions,
        # so neither does the emulator (the OpenAPI lists a default but the guide is what Polaris sends).
        mappings = [
            {k: v for k, v in m.items() if k != "isAggregation"} for m in body.get("mappings", [])
        ]
        if aggregates and COUNT_MAPPING not in mappings:
            mappings.append(dict(COUNT_MAPPING))
        job_id = str(uuid.uuid4())
        job = {
            **{k: v for k, v in body.items() if k not in ("mappings",)},
            "id": job_id, "source": source, "target": target,
            "ingestionMode": body.get("ingestionMode", "append"), "mappings": mappings,
            "desiredExecutionStatus": "running", "executionStatus": "pending", "health": {"status": "ok"},
            "createdBy": user, "lastModifiedBy": user, "createdTimestamp": now, "lastUpdatedTimestamp": now,
            "spec": body,  # the reference returns the request under `spec` (polaris-api-notes.md)
            "_created": moment.isoformat(), "held": self.held,
        }  # fmt: skip
        self.store.put("jobs", job_id, job)
        self._active.add(job_id)
        if self.reads_data:
            self._submit(job)  # reading starts now, off this thread; rows land on completion
        return Response(
            201, self._job_view(job), {"Location": f"/v1/projects/{self.project_id}/jobs/{job_id}"}
        )

    def _check_batch_job(self, body: Mapping[str, Any]) -> None:
        kind = body.get("type")
        if kind != "batch":
            if _one_of(kind, JOB_TYPES):
                raise ApiError(
                    400,
                    "InvalidRequest",
                    f"Jobs of type {kind} are not supported by the emulator (only batch)",
                )
            raise ApiError(
                400, "InvalidRequest", "type is required and must be a job type such as batch"
            )
        target, source = body.get("target"), body.get("source")
        if (
            not isinstance(target, dict)
            or target.get("type") != "table"
            or not isinstance(target.get("tableName"), str)
        ):
            raise ApiError(400, "InvalidRequest", "target must be {type: table, tableName}")
        if not isinstance(source, dict) or source.get("type") != "s3":
            raise ApiError(
                400, "InvalidRequest", "source.type must be s3 for a batch job from Amazon S3"
            )
        connection = source.get("connectionName")
        if not _one_of(connection, self.store.connections):
            raise ApiError(400, "InvalidRequest", f"Connection {connection} does not exist")
        chosen = [s for s in SELECTORS if source.get(s) not in (None, [], "")]
        if len(chosen) != 1:
            raise ApiError(
                400,
                "InvalidRequest",
                f"Exactly one of uris, prefixes, objects or pattern is required (got {len(chosen)})",
            )
        schema = source.get("inputSchema")
        if (
            not isinstance(schema, list)
            or not schema
            or not all(isinstance(f, dict) and f.get("name") and f.get("dataType") for f in schema)
        ):
            raise ApiError(
                400,
                "InvalidRequest",
                "source.inputSchema must list the input fields with name and dataType",
            )
        fmt = (source.get("formatSettings") or {}).get("format")
        if "formatSettings" in source and not _one_of(fmt, BATCH_FORMATS):
            raise ApiError(400, "InvalidRequest", f"Unsupported formatSettings.format {fmt}")
        mappings = body.get("mappings", [])
        if not isinstance(mappings, list) or not all(
            isinstance(m, dict) and m.get("columnName") and m.get("expression") for m in mappings
        ):
            raise ApiError(
                400, "InvalidRequest", "mappings must be a list of {columnName, expression}"
            )
        if not any(m["columnName"] == "__time" for m in mappings):
            raise ApiError(400, "InvalidRequest", "A mapping for the __time column is required")
        mode = body.get("ingestionMode", "append")
        if not _one_of(mode, {"append", "replace"}):
            raise ApiError(400, "InvalidRequest", "ingestionMode must be append or replace")
        if target.get("intervals") and mode == "append":
            raise ApiError(
                400, "InvalidRequest", "target.intervals are not allowed with ingestionMode append"
            )
        if mode == "replace" and not target.get("intervals") and not body.get("replaceAll"):
            raise ApiError(
                400,
                "InvalidRequest",
                "ingestionMode replace needs target.intervals or replaceAll: true",
            )

    def get_job(self, jobId: str, **_: Any) -> Response:
        return Response(200, self._job_view(self._existing_job(jobId)))

    def job_status(self, jobId: str, **_: Any) -> Response:
        return Response(200, {"executionStatus": self._existing_job(jobId)["executionStatus"]})

    def put_job(self, jobId: str, body: dict[str, Any], **_: Any) -> Response:
        return Response(200, self._job_view(self._desire(jobId, body)))

    def update_job_status(self, jobId: str, body: dict[str, Any], **_: Any) -> Response:
        # The preferred way to cancel (polaris-api-notes.md); PUT /jobs/{id} does the same.
        return Response(200, {"executionStatus": self._desire(jobId, body)["executionStatus"]})

    def _desire(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        job = self._existing_job(job_id)
        desired = body.get("desiredExecutionStatus")
        if not _one_of(desired, {"running", "canceled", "suspended"}):
            raise ApiError(
                400,
                "InvalidRequest",
                "desiredExecutionStatus must be running, canceled or suspended",
            )
        if desired == "suspended":
            raise ApiError(400, "InvalidRequest", "Only streaming jobs can be suspended")
        if desired == "canceled":
            if job["executionStatus"] in TERMINAL:
                # Inferred: a finished job cannot be canceled; Polaris reports the conflict as 400.
                raise ApiError(
                    400, "InvalidRequest", f"Job {job_id} is already {job['executionStatus']}"
                )
            canceled = {"status": "error", "code": "canceled", "message": "The job was canceled"}
            self._transition(
                {**job, "desiredExecutionStatus": "canceled"}, "canceled", health=canceled
            )
        return self.store.jobs[job_id]

    def reset_job(self, jobId: str, **_: Any) -> Response:
        self._existing_job(jobId)
        raise ApiError(400, "InvalidRequest", "Only streaming jobs can be reset")

    def job_progress(self, jobId: str, **_: Any) -> Response:
        job = self._existing_job(jobId)
        progress = {"pending": 0.0, "running": 0.5, "completed": 1.0}.get(
            job["executionStatus"], 0.0
        )
        if job["executionStatus"] == "running" and self.timing.running_seconds:
            started = datetime.fromisoformat(job["_created"]) + timedelta(
                seconds=self.timing.pending_seconds
            )
            elapsed = (self.now() - started).total_seconds()
            progress = max(0.0, min(0.99, elapsed / self.timing.running_seconds))
        if job["executionStatus"] == "running" and self._engine is not None:
            read = self._engine.progress(jobId)  # the share of the selected bytes read so far
            if read is not None:
                progress = min(progress, 0.99 * read)  # never ahead of the clock or of the data
        return Response(200, {"overallProgress": progress})

    def job_logs(self, jobId: str, **_: Any) -> Response:
        job = self._existing_job(jobId)
        logs = [
            {
                "timestamp": job["createdTimestamp"],
                "healthStatus": "ok",
                "code": "submitted",
                "message": "Job submitted",
            }
        ]
        if not self.reads_data:
            logs.append({"timestamp": job["createdTimestamp"], "healthStatus": "ok", "code": "no_data_read",
                         "message": NO_DATA})  # fmt: skip
        elif "_metrics" in job:
            m = job["_metrics"]
            logs.append({"timestamp": job.get("completedTimestamp", job["createdTimestamp"]),
                         "healthStatus": "ok", "code": "ingested",
                         "message": f"Read {m['numBytesProcessed']} bytes: {m['numRowsProcessed']} rows "
                                    f"processed, {m['numRowsPersisted']} persisted"})  # fmt: skip
        if "log" in job["health"]:
            logs.append(job["health"]["log"])
        return Response(200, {"logs": logs})

    def job_metrics(self, jobId: str, **_: Any) -> Response:
        job = self._existing_job(jobId)
        if self.reads_data:
            zero = dict.fromkeys(("numRowsProcessed", "numRowsPersisted", "numRowsProcessedWithWarning",
                                  "numRowsSkippedByFilter", "numRowsSkippedByError", "numBytesProcessed"), 0)  # fmt: skip
            return Response(200, {"totals": job.get("_metrics", zero)})
        rows = _rows(jobId) if job["executionStatus"] == "completed" else 0
        totals = {"numRowsProcessed": rows, "numRowsPersisted": rows, "numRowsProcessedWithWarning": 0,
                  "numRowsSkippedByFilter": 0, "numRowsSkippedByError": 0, "numBytesProcessed": rows * 240}  # fmt: skip
        return Response(200, {"totals": totals})

    def list_jobs(self, query: Mapping[str, list[str]], **_: Any) -> Response:
        limit = _integer(query, "paginationLimit", 100, 1, 1000)
        offset = _integer(query, "paginationOffset", 0, 0, None)
        filters = {
            name: _many(query, name)
            for name in ("type", "executionStatus", "healthStatus", "connectionName")
        }
        for name, allowed in (
            ("type", JOB_TYPES),
            ("executionStatus", EXECUTION_STATUSES),
            ("healthStatus", HEALTH_STATUSES),
        ):
            bad = [v for v in filters[name] if v not in allowed]
            if bad:
                raise ApiError(400, "InvalidRequest", f"Unknown {name} value(s): {', '.join(bad)}")
        table = query.get("targetTableName", [None])[-1]
        table_id = query.get("targetTableId", [None])[-1]
        search = (query.get("searchString", [""])[-1] or "").lower()
        column = query.get("sortColumn", ["last_updated_date_time"])[-1]
        order = query.get("sortOrder", ["DESC"])[-1]
        if column not in SORT_COLUMNS or order not in ("ASC", "DESC"):
            raise ApiError(400, "InvalidRequest", "sortColumn or sortOrder has an unknown value")
        key = (
            tuple((k, tuple(v)) for k, v in filters.items()),
            table,
            table_id,
            search,
            column,
            order,
        )
        cached = self._list_cache.get(key)
        if cached is None or cached[0] != self.store.version:
            # Built once per state version: paging through N jobs costs O(N), not O(N) a page.
            selected = [
                self._summary(j)
                for j in self.store.jobs.values()
                if self._matches(j, filters, table, table_id, search)
            ]
            selected.reverse()  # newest first breaks ties in the (stable) sort below
            selected.sort(key=SORT_COLUMNS[column], reverse=order == "DESC")
            self._list_cache[key] = cached = (self.store.version, selected)
        page = cached[1][offset : offset + limit]
        return Response(
            200, {"values": page, "moreResultsAvailable": offset + limit < len(cached[1])}
        )

    def _matches(
        self,
        job: Mapping[str, Any],
        filters: Mapping[str, list[str]],
        table: str | None,
        table_id: str | None,
        search: str,
    ) -> bool:
        if filters["type"] and job["type"] not in filters["type"]:
            return False
        if filters["executionStatus"] and job["executionStatus"] not in filters["executionStatus"]:
            return False
        if filters["healthStatus"] and job["health"]["status"] not in filters["healthStatus"]:
            return False
        if (
            filters["connectionName"]
            and job["source"].get("connectionName") not in filters["connectionName"]
        ):
            return False
        if table is not None and job["target"].get("tableName") != table:
            return False
        if (
            table_id is not None
            and self.store.tables.get(job["target"].get("tableName"), {}).get("id") != table_id
        ):
            return False
        return (
            not search
            or search
            in json.dumps([job["id"], job["target"], job["source"].get("connectionName")]).lower()
        )

    def _summary(self, job: Mapping[str, Any]) -> dict[str, Any]:
        # Summaries carry no mappings and no object selectors (polaris-api-notes.md).
        keys = ("id", "type", "target", "desiredExecutionStatus", "executionStatus", "health", "createdBy",
                "lastModifiedBy", "createdTimestamp", "lastUpdatedTimestamp", "startedTimestamp", "completedTimestamp")  # fmt: skip
        summary = {k: job[k] for k in keys if k in job}
        summary["source"] = {
            "type": job["source"]["type"],
            "connectionName": job["source"].get("connectionName"),
        }
        return summary

    # Query API ---------------------------------------------------------------------------------

    def query_sql(self, body: dict[str, Any], **_: Any) -> Response:
        """Druid SQL over the project's tables (tests/reference/polaris-query-api.md)."""
        from reconciler.emulator import query

        request = query.parse_request(body)
        if isinstance(request, Response):
            return request
        if not self.reads_data:
            return query.error("invalidInput", "INVALID_INPUT", NO_DATA)
        return query.answer(self.engine, request, sorted(self.store.tables))


def _rows(job_id: str) -> int:
    """A deterministic row count for a completed job."""
    return 1000 + int(hashlib.sha256(job_id.encode()).hexdigest()[:6], 16) % 9000


def _integer(
    query: Mapping[str, list[str]], name: str, default: int, low: int, high: int | None
) -> int:
    if name not in query:
        return default
    raw = query[name][-1]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "InvalidRequest", f"{name} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, "InvalidRequest", f"{name} must be {bounds}")
    return value


def _many(query: Mapping[str, list[str]], name: str) -> list[str]:
    """An array parameter, given repeated (?a=x&a=y) or comma-separated (?a=x,y)."""
    return [part for value in query.get(name, []) for part in value.split(",") if part]


def _one_of(value: Any, allowed: Iterable[Any]) -> bool:
    """Membership that is safe for any JSON value (a list or object is never a member)."""
    return isinstance(value, str) and value in allowed
