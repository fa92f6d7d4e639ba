"""Read live Polaris state with as few requests as possible.

Each kind reads its own part (`ResourceKind.read` in reconciler/kinds): the reader below gives
them one thread pool, so that reads of different kinds overlap, and the on-disk cache of jobs in
a terminal state, which never change (`JobCache`, reconciler/kinds/ingestion_job/cache.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler import kinds
from reconciler.client import PolarisClient
from reconciler.identity import OverlapIndex
from reconciler.kinds.ingestion_job.cache import JobCache
from reconciler.kinds.ingestion_job.live_job import ACTIVE_STATUSES, LiveJob, overlap_index
from reconciler.model import Kind, Resource

__all__ = ["LiveReader", "LiveState", "read_live"]


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
