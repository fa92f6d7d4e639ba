"""Read live Polaris state with as few requests as possible.

One list call each for connections and tables, the paged job list (1,000 a page, batch jobs only),
`GET /tables/{name}` for declared tables that exist (the list returns summaries without schema or
clustering), and `GET /jobs/{id}` for every batch job into a table a manifest job targets, whatever
its connection: the list's summaries name the table and the connection but not the objects, and a
job on another connection to the same bucket may have read the same objects. Jobs in a terminal
state never change, so their details are cached on disk.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.client import MalformedResponseError, PolarisClient
from reconciler.identity import OverlapIndex, Place, Reads, place_of, reads_of
from reconciler.model import Kind, Resource
from reconciler.normalize import fingerprint

log = logging.getLogger("reconciler.live")

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
ACTIVE_STATUSES = frozenset({"pending", "running"})
# Every status this tool knows what to do with; any other (the API documents `unknown`) may
# have ingested, and is never resubmitted or ingested again without --allow-reingest.
KNOWN_STATUSES = TERMINAL_STATUSES | ACTIVE_STATUSES
CACHE_FORMAT = 2  # 2: user fields dropped (format 1 files may hold pieces of the API key)
# Who created or changed a resource. Polaris names an API key's user after the key itself
# (`api-key-pok_vipgj...bjjvyo` holds 15 of its characters), so these are never cached.
USER_FIELDS = frozenset({"createdBy", "lastModifiedBy", "createdByUser", "modifiedByUser"})


def without_users(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job without its user fields, also in the `spec` it echoes."""
    kept = {key: value for key, value in job.items() if key not in USER_FIELDS}
    if isinstance(kept.get("spec"), Mapping):
        kept["spec"] = {k: v for k, v in kept["spec"].items() if k not in USER_FIELDS}
    return kept


@dataclass(frozen=True)
class LiveJob:
    """A batch job as Polaris reports it, with the fingerprint of its spec and what it reads."""

    id: str
    status: str
    fingerprint: str  # over its place when its connection exists, else over the connection name
    table: str
    connection: str
    body: Mapping[str, Any]  # the full job from GET /jobs/{id}
    reads: Reads | None = None
    # The same job read through the other place its connection may have had when it ran: the
    # place a manifest declares for that connection, when the live one differs (someone moved it
    # behind git's back, and apply is about to move it back). A job matches either reading, so
    # neither a noop is missed nor an overlap: both err towards not ingesting again.
    alternatives: tuple[tuple[str, Reads], ...] = ()

    @classmethod
    def of(
        cls,
        body: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]],
        declared: Mapping[str, Place] | None = None,
    ) -> LiveJob:
        """A job read from Polaris, resolved through the project's connections as they are now
        (and as the manifests declare them, where those differ)."""
        table, connection = _job_key(body)
        current = connections.get(connection)
        place = place_of(current) if current is not None else None
        spec = _request(body)
        other = (declared or {}).get(connection)
        alternatives: tuple[tuple[str, Reads], ...] = ()
        if other is not None and other != place:
            alternatives = ((fingerprint(spec, other.to_json()), reads_of(spec, other)),)
        return cls(
            id=str(body["id"]),
            status=str(body.get("executionStatus") or "unknown"),
            fingerprint=fingerprint(spec, place.to_json() if place else None),
            table=table,
            connection=connection,
            body=body,
            reads=reads_of(spec, place),
            alternatives=alternatives,
        )

    @property
    def readings(self) -> tuple[tuple[str, Reads | None], ...]:
        """Every (fingerprint, reads) this job may have: the live reading first."""
        return ((self.fingerprint, self.reads), *self.alternatives)

    @property
    def place(self) -> Place | None:
        """Where the job read from; None when its connection no longer exists."""
        return self.reads.place if self.reads else None

    @property
    def health(self) -> Mapping[str, Any]:
        """The job's health: `{"status": "ok"}` or a code and message."""
        health = self.body.get("health")
        return health if isinstance(health, Mapping) else {"status": "ok"}

    @property
    def spec(self) -> Mapping[str, Any]:
        """The request the job was created from."""
        return _request(self.body)


@dataclass(frozen=True)
class LiveState:
    """What exists in the project, as far as the manifests need to know."""

    connections: Mapping[str, Mapping[str, Any]]
    tables: Mapping[str, Mapping[str, Any]]  # full tables for declared ones, summaries otherwise
    jobs: tuple[LiveJob, ...]  # batch jobs into a table that a manifest job targets
    active_job_connections: frozenset[str] = field(default_factory=frozenset)

    @functools.cached_property
    def by_fingerprint(self) -> Mapping[str, list[LiveJob]]:
        """Live jobs by identity, to find the one that satisfies a manifest job in one look-up."""
        jobs: dict[str, list[LiveJob]] = {}
        for job in self.jobs:
            for identity, _ in job.readings:
                jobs.setdefault(identity, []).append(job)
        return jobs

    @functools.cached_property
    def overlaps(self) -> OverlapIndex[LiveJob]:
        """Live jobs by table and by what they read, to find double ingestion."""
        return overlap_index(self.jobs)


class JobCache:
    """Details of jobs in a terminal state, on disk; safe to delete, never holds secrets.

    A cache that cannot be read or written is a warning, never a failure: the plan reads
    everything from Polaris instead.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self.lock = threading.Lock()
        if path is None:
            return
        try:
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("format") == CACHE_FORMAT and isinstance(data["jobs"], dict):
                    self.entries = {
                        str(k): v for k, v in data["jobs"].items() if isinstance(v, dict)
                    }
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            log.warning("ignoring the unreadable job cache %s", path)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The cached job, if any."""
        return self.entries.get(job_id)

    def put(self, job: Mapping[str, Any]) -> None:
        """Remember a job whose status is terminal (and so will never change); thread-safe."""
        if job.get("executionStatus") in TERMINAL_STATUSES:
            with self.lock:
                self.entries[str(job["id"])] = without_users(job)
                self.dirty = True

    def close(self) -> None:
        """Save what was learnt (the cache is used as a context manager around a read)."""
        self.save()

    def save(self) -> None:
        """Write the cache atomically, so a killed run never leaves a torn file."""
        if self.path is None or not self.dirty:
            return
        payload = json.dumps({"format": CACHE_FORMAT, "jobs": self.entries}, separators=(",", ":"))
        temp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".jobs-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(temp, self.path)
        except OSError as error:
            log.warning(
                "cannot write the job cache %s (%s); running without it (or pass --no-cache)",
                self.path,
                error.strerror or error,
            )
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.remove(temp)
            self.path = None
        self.dirty = False


def read_live(
    client: PolarisClient,
    resources: Iterable[Resource],
    *,
    parallelism: int = 8,
    cache: JobCache | None = None,
) -> LiveState:
    """Read the connections, tables and candidate jobs that the given resources need."""
    cache = cache or JobCache(None)
    resources = list(resources)
    wanted = {r.spec["target"]["tableName"] for r in resources if r.kind == Kind.INGESTION_JOB}
    declared_tables = {r.name for r in resources if r.kind == Kind.TABLE and not r.external}
    declared = declared_places(resources)
    active_connections: set[str] = set()

    def details(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
        job_id = str(summary["id"])
        cached = cache.get(job_id)
        if cached is not None:
            return cached
        body = client.get_job(job_id)
        if body is not None:
            body = _essentials(body)
            cache.put(body)  # as soon as it is read: a plan that fails later keeps its progress
        return body

    # A failed read must not lose the jobs already read: save the cache whatever happens.
    with contextlib.closing(cache), ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        # The lists of connections and tables are read beside the first page of jobs, not
        # before it: none of the three needs another. They are queued first, so a worker has
        # taken the connections by the time a job needs them.
        listed = pool.submit(lambda: {c["name"]: c for c in client.list_connections()})
        listed_tables = pool.submit(client.list_tables)

        def live_job(summary: Mapping[str, Any]) -> LiveJob | None:
            # Resolved (fingerprinted) in the worker that read it, while other reads are in
            # flight, rather than all at once after the last answer.
            body = details(summary)
            # None when Polaris's retention deleted the job between the list and the read.
            return None if body is None else _live_job(body, listed.result(), declared)

        tables: dict[str, Mapping[str, Any]] = {}
        full_tables: list[Future[dict[str, Any] | None]] | None = None

        def read_full_tables() -> list[Future[dict[str, Any] | None]]:
            # The list returns summaries without schema or clustering: read declared tables.
            tables.update({t["name"]: t for t in listed_tables.result()})
            return [pool.submit(client.get_table, n) for n in sorted(declared_tables & set(tables))]

        try:
            # Candidates are fetched as soon as their page arrives, while later pages are still
            # being read: the detail reads overlap the paging instead of following it. Pages are
            # read by the same workers, so no more than `parallelism` requests are in flight.
            pending = []
            for summary in client.iter_jobs(type="batch", read_ahead=pool):
                table, connection = _job_key(summary)
                if summary.get("executionStatus") in ACTIVE_STATUSES and connection:
                    active_connections.add(connection)
                if full_tables is None and listed_tables.done():
                    full_tables = read_full_tables()
                if table in wanted:
                    if listed.done():
                        listed.result()  # a failed read of the connections ends the reading
                    pending.append(pool.submit(live_job, summary))
            if full_tables is None:
                full_tables = read_full_tables()
            connections = listed.result()
            jobs = tuple(job for future in pending if (job := future.result()) is not None)
            read = [future.result() for future in full_tables]
            tables.update({t["name"]: t for t in read if t is not None})
        except BaseException:
            pool.shutdown(cancel_futures=True)  # nothing more is sent once a read has failed
            raise
    return LiveState(connections, tables, jobs, frozenset(active_connections))


def declared_places(resources: Iterable[Resource]) -> dict[str, Place]:
    """Where each connection the manifests manage points (external ones are not declared here)."""
    return {
        r.name: place_of(r.spec)
        for r in resources
        if r.kind == Kind.CONNECTION and not r.external and "bucket" in r.spec
    }


def overlap_index(jobs: Iterable[LiveJob]) -> OverlapIndex[LiveJob]:
    """Live jobs by table and by every reading of what they read (an overlap may list a job twice)."""
    return OverlapIndex(
        (job, job.table, reads) for job in jobs for _, reads in job.readings if reads is not None
    )


# What the reconciler uses of a job. When Polaris returns the request under `spec`, the top-level
# echo of the same fields is dropped: every job into a declared table is kept in memory (and
# finished ones on disk), and the echo would double that.
ESSENTIAL_FIELDS = (
    "id", "type", "executionStatus", "health", "createdTimestamp", "lastUpdatedTimestamp", "spec",
)  # fmt: skip


def _essentials(job: dict[str, Any]) -> dict[str, Any]:
    echoed = job.get("spec")
    if not isinstance(echoed, Mapping) or "source" not in echoed:
        return job
    return {key: job[key] for key in ESSENTIAL_FIELDS if key in job}


def _request(job: Mapping[str, Any]) -> Mapping[str, Any]:
    echoed = job.get("spec")
    return echoed if isinstance(echoed, Mapping) and "source" in echoed else job


def _live_job(
    body: Mapping[str, Any],
    connections: Mapping[str, Mapping[str, Any]],
    declared: Mapping[str, Place],
) -> LiveJob:
    """A job read from Polaris; one whose fields have types the API never sends is an error."""
    try:
        return LiveJob.of(body, connections, declared)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
        raise MalformedResponseError(
            f"GET /jobs/{body.get('id')}: Polaris answered with a job whose fields do not have "
            f"the documented types ({type(error).__name__}: {error}); is POLARIS_URL the API?"
        ) from None


def _job_key(job: Mapping[str, Any]) -> tuple[str, str]:
    request = _request(job)
    target, source = request.get("target"), request.get("source")
    target = target if isinstance(target, Mapping) else {}
    source = source if isinstance(source, Mapping) else {}
    return str(target.get("tableName", "")), str(source.get("connectionName", ""))
