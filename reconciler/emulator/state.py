"""The emulated project's state: what every handler reads and changes, and nothing that calls them.

`Project` holds the store, the clock, the job timing, the data sources and the table storage.
The handlers (connections, tables, jobs, query, files, streaming) and the job lifecycle take a
`Project`; `app.Emulator` extends it with the entry point for requests, the route table and the
test controls. So this module imports no handler, and no handler imports `app`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.emulator.auth import ALL_PERMISSIONS, DEMO_API_KEY
from reconciler.emulator.clock import Clock, SystemClock
from reconciler.emulator.kinesis import KinesisApi
from reconciler.emulator.store import Store

if TYPE_CHECKING:
    from reconciler.emulator.engine import DataSource, Engine

DEMO_PROJECT_ID = "7d9a5b4e-1c2f-4a6b-9e8d-0d3e5f7a9b1c"
TERMINAL = frozenset({"completed", "failed", "canceled"})


@dataclass(frozen=True)
class JobTiming:
    """How long a batch job stays pending, then running; (0, 0) completes it on the next read."""

    pending_seconds: float = 0.0
    running_seconds: float = 0.0

    def started(self, job: Mapping[str, Any]) -> datetime:
        """When a job starts running."""
        return datetime.fromisoformat(job["_created"]) + timedelta(seconds=self.pending_seconds)


INSTANT = JobTiming()  # jobs complete on the first read after they are created


class Project:
    """A Polaris project's state, in memory (or on disk), with its table storage."""

    def __init__(
        self,
        project_id: str = DEMO_PROJECT_ID,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        clock: Clock | None = None,
        timing: JobTiming = INSTANT,
        data_dir: Path | None = None,
        data: DataSource | None = None,
        kinesis_endpoint: str | None = None,
    ) -> None:
        self.project_id = project_id
        self.api_keys = {
            k: frozenset(v) for k, v in (api_keys or {DEMO_API_KEY: ALL_PERMISSIONS}).items()
        }
        self.clock = clock or SystemClock()
        self.timing = timing
        self.store = Store(data_dir)
        # Without a data source no object is read and row counts are invented (lifecycle.py).
        self.data = data
        # Where Kinesis streams are read (kinesis.py); without it Kinesis jobs read nothing.
        self.kinesis_endpoint = kinesis_endpoint
        self._kinesis: dict[str, KinesisApi] = {}  # a client a region, see kinesis()
        self._engine_path = data_dir / f"project-{project_id}.duckdb" if data_dir else None
        self.opened_engine: Engine | None = None  # None until a job or query needs it
        self._files_root: Path | None = None  # see files_root
        self.held = False
        self.list_cache: dict[Any, tuple[int, list[dict[str, Any]]]] = {}  # see jobs.list_jobs
        self.active = {  # ids of the jobs the clock still moves
            job_id
            for job_id, job in self.store.jobs.items()
            if job["executionStatus"] not in TERMINAL
        }
        # The active jobs neither held nor pinned by a test: the only ones the clock can move, so
        # a request does not walk thousands of held jobs. Kept by the store as jobs change.
        self.clocked: set[str] = set()
        for job_id, job in self.store.jobs.items():
            self._track(job_id, job)
        self.store.job_watcher = self._track

    @property
    def engine(self) -> Engine:
        """The project's table storage (DuckDB), opened on first use."""
        if self.opened_engine is None:
            from reconciler.emulator.engine import Engine  # deferred: DuckDB loads on first use

            self.opened_engine = Engine(self._engine_path)
        return self.opened_engine

    def kinesis(self, region: str) -> KinesisApi:
        """The Kinesis endpoint, read for a region (only with a kinesis_endpoint)."""
        assert self.kinesis_endpoint is not None
        if region not in self._kinesis:
            self._kinesis[region] = KinesisApi(self.kinesis_endpoint, region)
        return self._kinesis[region]

    def close_kinesis(self) -> None:
        """Release the Kinesis clients' connections."""
        for client in self._kinesis.values():
            client.close()
        self._kinesis.clear()

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

    def _track(self, job_id: str, job: Mapping[str, Any] | None) -> None:
        moving = job is not None and job["executionStatus"] not in TERMINAL
        if moving and job is not None and not (job.get("held") or job.get("pinned")):
            self.clocked.add(job_id)
        else:
            self.clocked.discard(job_id)

    def clocked_jobs(self) -> list[str]:
        """The ids of the active jobs the clock moves (neither held nor pinned)."""
        return [job_id for job_id in self.clocked if job_id in self.active]

    def active_jobs(self) -> list[dict[str, Any]]:
        """The jobs that are pending, running or suspended."""
        return [self.store.jobs[i] for i in self.active]
