"""The job kind's part of live state (`JobState`): the batch jobs a plan needs, found by
identity and by what they read, and which connections and tables active jobs use."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.kinds.ingestion_job.identity import OverlapIndex
from reconciler.kinds.ingestion_job.live_job import (
    ACTIVE_STATUSES,
    LiveJob,
    SharedForms,
    overlap_index,
)
from reconciler.model import Kind
from reconciler.ports import LiveView


@dataclass(frozen=True)
class JobState:
    """Batch jobs into a table that a manifest job targets, and the connections any pending or
    running batch job reads from (the list names them; their details are not read)."""

    jobs: tuple[LiveJob, ...] = ()
    active_connections: frozenset[str] = frozenset()
    # Read for import only: each job by id as Polaris returned it (a `LiveJob` keeps its request
    # in compared form, sorted and filled, which is not what a manifest writes).
    requests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The manifest jobs' compared forms the live jobs share, with the identities taken of them.
    forms: SharedForms = field(default_factory=SharedForms, compare=False)

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


NO_JOBS = JobState()


def jobs_of(live: LiveView | None) -> JobState:
    """The job kind's part of `live` (no jobs when it was not read)."""
    state = live.of(Kind.INGESTION_JOB) if live is not None else None
    return state if isinstance(state, JobState) else NO_JOBS
