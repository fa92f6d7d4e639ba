"""The emulated Polaris project: its state, the entry point for requests, and test controls.

The behaviour lives beside it, one concern a module: `routing` (the route table) and `auth`
(keys, permissions), the collections `connections`, `tables`, `jobs` and `query`, the job
`lifecycle`, and `faults`. Where the S3 ingestion guide (tests/reference/) and the OpenAPI
document differ, the emulator follows the guide's sample responses (they show what Polaris
actually sends) and says so next to the code. Where both are silent, the choice is marked
"inferred".
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.emulator import lifecycle, streaming
from reconciler.emulator.api import ApiError, DroppedResponse, Request, Response
from reconciler.emulator.auth import ALL_PERMISSIONS, DEMO_API_KEY
from reconciler.emulator.clock import Clock, SystemClock
from reconciler.emulator.faults import FaultPlan, fault_response
from reconciler.emulator.lifecycle import NO_DATA, TERMINAL, JobTiming
from reconciler.emulator.routing import dispatch, routes
from reconciler.emulator.store import Store

if TYPE_CHECKING:
    from reconciler.emulator.engine import DataSource, Engine
    from reconciler.emulator.server import EmulatorTransport, RunningEmulator

__all__ = [
    "ALL_PERMISSIONS",
    "DEMO_API_KEY",
    "DEMO_PROJECT_ID",
    "NO_DATA",
    "DroppedResponse",
    "Emulator",
    "JobTiming",
    "Request",
    "Response",
]

DEMO_PROJECT_ID = "7d9a5b4e-1c2f-4a6b-9e8d-0d3e5f7a9b1c"

Observer = Callable[[str, str, int, bytes], None]


class Emulator:
    """A Polaris project in memory (or on disk), answering Connections, Jobs and Tables v1."""

    def __init__(
        self,
        project_id: str = DEMO_PROJECT_ID,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        clock: Clock | None = None,
        timing: JobTiming = lifecycle.INSTANT,
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
        # Without a data source no object is read and row counts are invented (lifecycle.py).
        self.data = data
        self._engine_path = data_dir / f"project-{project_id}.duckdb" if data_dir else None
        self.opened_engine: Engine | None = None  # None until a job or query needs it
        self._files_root: Path | None = None  # see files_root
        self.response_observer = response_observer
        self.requests: list[tuple[str, str, int]] = []
        # Requests being answered now, and the most at once since reset_requests (benchmarks and
        # tests check that a client's --parallelism reaches the server).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.held = False
        self.routes = routes()
        self.list_cache: dict[Any, tuple[int, list[dict[str, Any]]]] = {}  # see jobs.list_jobs
        self.active = {  # ids of the jobs the clock still moves
            job_id
            for job_id, job in self.store.jobs.items()
            if job["executionStatus"] not in TERMINAL
        }

    @property
    def engine(self) -> Engine:
        """The project's table storage (DuckDB), opened on first use."""
        if self.opened_engine is None:
            from reconciler.emulator.engine import Engine

            self.opened_engine = Engine(self._engine_path)
        return self.opened_engine

    @property
    def files_root(self) -> Path:
        """Where uploaded files are kept: ROOT/uploads/NAME (under the data dir when there is one)."""
        if self._files_root is None:
            self._files_root = (
                self.store.data_dir / "files"
                if self.store.data_dir is not None
                else Path(tempfile.mkdtemp(prefix="polaris-files-"))
            )
            (self._files_root / "uploads").mkdir(parents=True, exist_ok=True)
        return self._files_root

    @property
    def reads_data(self) -> bool:
        """Whether jobs read real objects (--s3-dir or --s3-endpoint)."""
        return self.data is not None

    def now(self) -> datetime:
        """The emulator's current time."""
        return self.clock.now()

    def active_jobs(self) -> list[dict[str, Any]]:
        """The jobs that are pending or running."""
        return [self.store.jobs[i] for i in self.active]

    def advance(self) -> None:
        """Move jobs along as the clock says (call under the store's lock)."""
        lifecycle.advance(self)
        streaming.advance(self)

    def close(self) -> None:
        """Stop ingesting and close the journal and the table storage."""
        if self.opened_engine is not None:
            self.opened_engine.close()
            self.opened_engine = None
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
        with self._in_flight_lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return self._handle(request)
        finally:
            with self._in_flight_lock:
                self.in_flight -= 1

    def _handle(self, request: Request) -> Response:
        self.faults.wait_at_gate(request.method, request.path)
        fault, drop = self.faults.draw(request.method, request.path)
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        template = request.path
        if fault is not None:
            response = fault_response(self.faults, fault)
        else:
            try:
                template, response = dispatch(self, request, self.routes)
            except Exception as unexpected:
                error = (
                    unexpected
                    if isinstance(unexpected, ApiError)
                    else ApiError(
                        500, "InternalServerError", f"{type(unexpected).__name__}: {unexpected}"
                    )
                )
                body = {"code": error.code, "message": error.message}
                # Polaris wraps the 401 body: {"error": {...}} (docs/polaris-api-notes.md).
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
        with self._in_flight_lock:
            self.peak_in_flight = self.in_flight

    # Test controls -----------------------------------------------------------------------------

    def hold_jobs(self, hold: bool = True) -> None:
        """While held, new jobs stay pending until completed, failed or released."""
        self.held = hold
        if not hold:
            with self.store.lock:
                for job_id in list(self.active):
                    job = self.store.jobs[job_id]
                    if job.get("held"):
                        self.store.put("jobs", job_id, {**job, "held": False})

    def complete_job(self, job_id: str) -> None:
        """Finish a job now: successfully without data; with data, as its ingestion ends."""
        with self.store.lock:
            lifecycle.finish(self, self.store.jobs[job_id])

    def fail_job(
        self,
        job_id: str,
        code: str = "cannot_parse_source",
        message: str = "The input could not be parsed",
    ) -> None:
        """Fail a job now, with a health code and message as Polaris reports them."""
        health = lifecycle.error_health(code, message, self.now())
        with self.store.lock:
            lifecycle.transition(self, self.store.jobs[job_id], "failed", health=health)

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
            lifecycle.transition(self, job, status)
            if status not in TERMINAL:
                self.active.add(job_id)
