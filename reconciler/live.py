"""Read live Polaris state with as few requests as possible.

Each kind reads its own part (`ResourceKind.read` in reconciler/kinds): the reader below gives
them one thread pool, so that reads of different kinds overlap, and the on-disk cache of jobs in
a terminal state, which never change.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from reconciler import kinds
from reconciler.client import PolarisClient
from reconciler.identity import OverlapIndex
from reconciler.kinds.ingestion_job import (
    ACTIVE_STATUSES,
    KNOWN_STATUSES,
    SATISFIED_STATUSES,
    TERMINAL_STATUSES,
    LiveJob,
    overlap_index,
)
from reconciler.model import Kind, Resource

__all__ = [
    "ACTIVE_STATUSES", "KNOWN_STATUSES", "SATISFIED_STATUSES", "TERMINAL_STATUSES", "JobCache",
    "LiveJob", "LiveReader", "LiveState", "read_live",
]  # fmt: skip

log = logging.getLogger("reconciler.live")

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
class LiveState:
    """What exists in the project, as far as the manifests need to know."""

    connections: Mapping[str, Mapping[str, Any]]
    tables: Mapping[str, Mapping[str, Any]]  # full tables for declared ones, summaries otherwise
    jobs: tuple[LiveJob, ...]  # batch jobs into a table that a manifest job targets
    active_job_connections: frozenset[str] = field(default_factory=frozenset)
    # Any other kind's live resources by name (ResourceKind's default read and live use it):
    # a new kind needs no attribute here.
    named: Mapping[Kind, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

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

    @functools.cached_property
    def active_tables(self) -> frozenset[str]:
        """Tables a pending or running job writes into."""
        return frozenset(job.table for job in self.jobs if job.status in ACTIVE_STATUSES)


class JobCache:
    """Details of jobs in a terminal state, on disk; safe to delete, never holds secrets.

    A cache that cannot be read or written is a warning, never a failure: the plan reads
    everything from Polaris instead. Each job is held as its JSON text, a tenth of its decoded
    size, and the file has one job a line (still one JSON document), so that a read decodes
    only the jobs it asks for, one at a time.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.loaded: dict[str, str] | None = None  # each job's JSON, read on first use
        self.dirty = False
        self.lock = threading.Lock()

    @property
    def entries(self) -> dict[str, str]:
        """Cached jobs by id, as JSON text."""
        with self.lock:
            if self.loaded is None:
                self.loaded = self._load()
            return self.loaded

    def _load(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            if self.path.is_file():
                with self.path.open(encoding="utf-8") as lines:
                    return _entries(lines)
        except (OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
            pass
        else:
            return {}
        log.warning("ignoring the unreadable job cache %s", self.path)
        return {}

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The cached job, if any (an entry that cannot be read is none: the job is read again)."""
        text = self.entries.get(job_id)
        try:
            job = json.loads(text) if text is not None else None
        except ValueError:
            return None
        return job if isinstance(job, dict) and str(job.get("id")) == job_id else None

    def put(self, job: Mapping[str, Any]) -> None:
        """Remember a job whose status is terminal (and so will never change); thread-safe."""
        if job.get("executionStatus") in TERMINAL_STATUSES:
            text = json.dumps(without_users(job), separators=(",", ":"))
            entries = self.entries
            with self.lock:
                entries[str(job["id"])] = text
                self.dirty = True

    def close(self) -> None:
        """Save what was learnt (the cache is used as a context manager around a read), then let
        go of the entries: a read keeps what it needs of each job, and a later one reads the file
        again. A cache without a file keeps them, having nowhere else to find them."""
        self.save()
        if self.path is not None:
            with self.lock:
                self.loaded = None

    def save(self) -> None:
        """Write the cache atomically, so a killed run never leaves a torn file."""
        if self.path is None or not self.dirty:
            return
        lines = [f"{json.dumps(job_id)}:{text}" for job_id, text in self.entries.items()]
        payload = CACHE_HEADER + "\n" + ",\n".join(lines) + "\n" + CACHE_FOOTER
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


CACHE_HEADER, CACHE_FOOTER = f'{{"format":{CACHE_FORMAT},"jobs":{{', "}}"


def _entries(lines: TextIO) -> dict[str, str]:
    """The jobs of a cache file by id, as JSON text, each checked only when it is asked for.

    JSON text never holds a raw newline, so a file `save` wrote has one job a line, read one at
    a time; any other file of this format (as an older version wrote it) is decoded whole.
    """
    first = lines.readline()
    if first != CACHE_HEADER + "\n":
        data = json.loads(first + lines.read())
        if data.get("format") != CACHE_FORMAT or not isinstance(data["jobs"], dict):
            return {}
        jobs: dict[str, Any] = data["jobs"]
        return {str(k): json.dumps(v, separators=(",", ":")) for k, v in jobs.items()}
    decoder, entries = json.JSONDecoder(), dict[str, str]()
    for line in lines:
        if line == CACHE_FOOTER:
            return entries
        if line == "\n":
            continue
        job_id, end = decoder.raw_decode(line)
        if not isinstance(job_id, str) or line[end] != ":":
            raise ValueError("not a line of the job cache")
        entries[job_id] = line[end + 1 :].rstrip("\n").removesuffix(",")
    raise ValueError("the job cache ends early")  # a torn file


class LiveReader:
    """What the kinds read into, in registry order.

    A kind's `read` starts its requests in the shared pool and returns without waiting for them,
    so reads of every kind are in flight together (the connection and table lists beside the
    first page of jobs); `then` collects the answers once every kind has started. A worker may
    wait for a read queued before its own (a job resolves through the connections), never for one
    queued after it, so the pool's first-in-first-out order cannot deadlock at any parallelism.
    """

    def __init__(
        self, client: PolarisClient, resources: list[Resource], pool: ThreadPoolExecutor,
        cache: JobCache,
    ) -> None:  # fmt: skip
        self.client, self.resources, self.pool, self.cache = client, resources, pool, cache
        self.connections: dict[str, Mapping[str, Any]] = {}
        self.listed_connections: Future[dict[str, Mapping[str, Any]]] | None = None
        self.tables: dict[str, Mapping[str, Any]] = {}
        self.jobs: list[LiveJob] = []
        self.active_connections: set[str] = set()
        self.named: dict[Kind, dict[str, Mapping[str, Any]]] = {}
        self.finishing: list[Callable[[], None]] = []

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The desired resources of one kind."""
        return [r for r in self.resources if r.kind is kind]

    def then(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads (to collect what it started)."""
        self.finishing.append(step)

    def state(self) -> LiveState:
        """What was read."""
        return LiveState(
            self.connections, self.tables, tuple(self.jobs), frozenset(self.active_connections),
            self.named,
        )  # fmt: skip


def read_live(
    client: PolarisClient,
    resources: Iterable[Resource],
    *,
    parallelism: int = 8,
    cache: JobCache | None = None,
) -> LiveState:
    """Read the live state the given resources need: every kind's, in the fewest requests."""
    cache = cache or JobCache(None)
    # A failed read must not lose the jobs already read: save the cache whatever happens.
    with contextlib.closing(cache), ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        reader = LiveReader(client, list(resources), pool, cache)
        try:
            for kind in kinds.ordered():
                kind.read(reader)
            for step in reader.finishing:
                step()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # nothing more is sent once a read has failed
            raise
    return reader.state()
