"""How a plan reads the jobs it needs: the paged list, then each job into a declared table, read
ahead while later pages arrive, finished ones from the job cache."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reconciler.kinds.ingestion_job.identity import Place, place_of
from reconciler.kinds.ingestion_job.live_job import (
    ACTIVE_STATUSES,
    LiveJob,
    SharedForms,
    essentials,
    job_key,
)
from reconciler.kinds.ingestion_job.state import JobState
from reconciler.model import Kind, Resource
from reconciler.ports import LiveReading

T = TypeVar("T")


def read_jobs(reader: LiveReading) -> None:
    """The paged job list (batch jobs only), and `GET /jobs/{id}` for every job into a table
    a manifest job targets, whatever its connection: the list's summaries name the table and
    the connection but not the objects, and a job on another connection to the same bucket
    may have read the same objects. Finished jobs never change: their details are cached.

    Read for import (`reader.full`), every job is read, and each one's request is also kept as
    Polaris returned it (`JobState.requests`), which a manifest is written from."""
    client, cache = reader.client, reader.cache
    mine = reader.of_kind(Kind.INGESTION_JOB)
    wanted = {str(r.spec["target"]["tableName"]) for r in mine}
    forms = SharedForms()  # the manifest jobs' compared forms, once they are made (below)
    places: dict[str, Place] = {}  # each connection's, for every job through it
    every = Kind.INGESTION_JOB in reader.full
    declared = declared_places(reader.resources)
    listed = reader.started.get(Kind.CONNECTION)
    active: set[str] = set()

    def details(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
        job_id = str(summary["id"])
        cached = cache.get(job_id)
        if cached is not None:
            return cached
        body = client.get_job(job_id)
        if body is not None:
            body = essentials(body)
            cache.put(body)  # as soon as it is read: a failed plan keeps its progress
        return body

    def live_job(summary: Mapping[str, Any]) -> tuple[LiveJob, Mapping[str, Any] | None] | None:
        # Resolved (fingerprinted) in the worker that read it, while other reads are in
        # flight. None when Polaris's retention deleted the job between list and read.
        body = details(summary)
        if body is None:
            return None
        connections = listed.result() if listed is not None else {}
        # Only import keeps the answer (to write a manifest from): a plan of 10,000 jobs that
        # kept every one until the read ended held 45 MB more at its peak.
        job = LiveJob.parse(body, connections, declared, forms.of, places, forms.identity)
        return job, body if every else None

    # Details are fetched as soon as their page arrives, while later pages are still read;
    # pages are read by the same workers, so no more than `parallelism` are in flight. The first
    # page is asked for now, and the pages are gone through once every kind has started its
    # reads (`feed`): the other kinds' lists go out beside it, not behind the details.
    pending: InOrder[tuple[LiveJob, Mapping[str, Any] | None] | None] = InOrder()
    summaries = client.iter_jobs(type="batch", read_ahead=reader.pool)

    def ask_for_details() -> None:
        # By now the caller has made the compared forms (`read_live`'s `meanwhile`), and no
        # worker has read a job: they are shared from here on.
        forms.add(r.compared for r in reader.of_kind(Kind.INGESTION_JOB) if r.compared is not None)
        for summary in summaries:
            table, connection = job_key(summary)
            if summary.get("executionStatus") in ACTIVE_STATUSES and connection:
                active.add(connection)
            if every or table in wanted:
                if listed is not None and listed.done():
                    listed.result()  # a failed read of the connections ends the reading
                pending.add(reader.pool.submit(live_job, summary))

    def resolve() -> None:
        read = [job for job in pending.results() if job is not None]
        jobs = tuple(job for job, _ in read)
        requests = {job.id: body for job, body in read if body is not None}
        reader.states[Kind.INGESTION_JOB] = JobState(jobs, frozenset(active), requests, forms)

    reader.feed(ask_for_details)
    reader.then(resolve)


class InOrder(Generic[T]):
    """The results of tasks submitted to a pool, in the order submitted, each task's Future let
    go as soon as it is done: a Future and its Condition are about 1.3 KB, 13 MB for the details
    of 10,000 jobs at the end of a read, where the job each one returns is about as large."""

    def __init__(self) -> None:
        self.futures: dict[int, Future[T]] = {}  # those not done yet, by position
        self.slots: list[Any] = []  # each task's result (or the exception it raised) once done

    def add(self, future: Future[T]) -> None:
        """Collect `future`'s result (thread-safe against the callbacks, not against another
        `add`: one thread submits)."""
        index = len(self.slots)
        self.slots.append(None)
        self.futures[index] = future
        future.add_done_callback(functools.partial(self._done, index))

    def _done(self, index: int, future: Future[T]) -> None:
        if future.cancelled():
            return  # the read has failed: `results` is never asked for
        error = future.exception()
        self.slots[index] = _Raised(error) if error is not None else future.result()
        del self.futures[index]  # after the slot is filled: `results` reads one or the other

    def results(self) -> Iterator[T]:
        """Each result in order, waiting for those not done; a task's exception is raised
        when its turn comes, as `Future.result` raises it."""
        for index in range(len(self.slots)):
            future = self.futures.get(index)
            if future is not None:
                yield future.result()
                continue
            value = self.slots[index]
            self.slots[index] = None
            if isinstance(value, _Raised):
                raise value.error
            yield value


@dataclass(frozen=True, slots=True)
class _Raised:
    error: BaseException


def declared_places(resources: Iterable[Resource]) -> dict[str, Place]:
    """Where each connection the manifests manage points (external ones are not declared here)."""
    return {
        r.name: place_of(r.spec)
        for r in resources
        if r.kind is Kind.CONNECTION and not r.external and "bucket" in r.spec
    }
