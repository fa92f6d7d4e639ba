"""The emulated Polaris project: the entry point for requests, the route table, test controls.

The emulator's modules form layers that never loop back (a test checks it): `api`, `clock`,
`auth`, `store` and `state` (the project's state, `Project`) at the bottom; `routing` (routes
and their matching); the collections `connections`, `tables`, `files`, `jobs`, `query` and
`streaming` with the job `lifecycle` and the Kinesis reader `kinesis`, which take a `Project`;
the transports in `server`; and this module on top, where `Emulator` extends `Project` with
the route table and the test controls. Where the S3 ingestion guide (tests/reference/) and the OpenAPI
document differ, the emulator follows the guide's sample responses (they show what Polaris
actually sends) and says so next to the code. Where both are silent, the choice is marked
"inferred".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.emulator import (
    connections,
    files,
    jobs,
    lifecycle,
    query,
    streaming,
    tables,
)
from reconciler.emulator.api import ApiError, DroppedResponse, Request, Response
from reconciler.emulator.auth import ALL_PERMISSIONS, DEMO_API_KEY
from reconciler.emulator.clock import Clock
from reconciler.emulator.faults import FaultPlan, fault_response
from reconciler.emulator.lifecycle import NO_DATA, TERMINAL
from reconciler.emulator.routing import Route, match
from reconciler.emulator.server import EmulatorTransport, RunningEmulator
from reconciler.emulator.state import DEMO_PROJECT_ID, INSTANT, JobTiming, Project

if TYPE_CHECKING:
    from reconciler.emulator.engine import DataSource

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

Observer = Callable[[str, str, int, bytes], None]
# Every operation the emulator serves: each collection module declares its own.
ROUTES: tuple[Route, ...] = (
    *connections.ROUTES, *jobs.ROUTES, *tables.ROUTES, *query.ROUTES, *files.ROUTES,
    *streaming.ROUTES,
)  # fmt: skip


class Emulator(Project):
    """A Polaris project in memory (or on disk), answering Connections, Jobs and Tables v1."""

    def __init__(
        self,
        project_id: str = DEMO_PROJECT_ID,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        clock: Clock | None = None,
        timing: JobTiming = INSTANT,
        faults: FaultPlan | None = None,
        data_dir: Path | None = None,
        response_observer: Observer | None = None,
        data: DataSource | None = None,
        kinesis_endpoint: str | None = None,
    ) -> None:
        super().__init__(project_id, api_keys, clock, timing, data_dir, data, kinesis_endpoint)
        self.faults = faults if faults is not None else FaultPlan()
        self.response_observer = response_observer
        self.requests: list[tuple[str, str, int]] = []
        # Requests being answered now, and the most at once since reset_requests (benchmarks and
        # tests check that a client's --parallelism reaches the server).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.routes = ROUTES

    def advance(self) -> None:
        """Move jobs along as the clock says (call under the store's lock)."""
        lifecycle.advance(self)
        streaming.advance(self)

    def close(self) -> None:
        """Stop ingesting and close the journal, the table storage and the Kinesis clients."""
        self.close_kinesis()
        if self.opened_engine is not None:
            self.opened_engine.close()
            self.opened_engine = None
        self.store.close()

    def transport(self) -> EmulatorTransport:
        """An httpx transport that calls this emulator in-process (no socket)."""
        return EmulatorTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
        """Serve on a loopback port (0 picks a free one) from a background thread."""
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
                template, response = self._dispatch(request)
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

    def _dispatch(self, request: Request) -> tuple[str, Response]:
        route, call = match(self, request, self.routes)
        with self.store.lock:  # handlers run one at a time
            self.advance()
            return route.template, route.handler(self, call)

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
