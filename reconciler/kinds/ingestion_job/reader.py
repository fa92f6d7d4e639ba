"""How a plan reads the jobs it needs: the paged list, then each job into a declared table, read
ahead while later pages arrive, finished ones from the job cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.kinds.ingestion_job.identity import Place, place_of
from reconciler.kinds.ingestion_job.live_job import ACTIVE_STATUSES, LiveJob, essentials, job_key
from reconciler.kinds.ingestion_job.state import JobState
from reconciler.model import Kind, Resource
from reconciler.ports import LiveReading


def read_jobs(reader: LiveReading) -> None:
    """The paged job list (batch jobs only), and `GET /jobs/{id}` for every job into a table
    a manifest job targets, whatever its connection: the list's summaries name the table and
    the connection but not the objects, and a job on another connection to the same bucket
    may have read the same objects. Finished jobs never change: their details are cached.

    Read for import (`reader.full`), every job is read, and each one's request is also kept as
    Polaris returned it (`JobState.requests`), which a manifest is written from."""
    client, cache = reader.client, reader.cache
    wanted = {str(r.spec["target"]["tableName"]) for r in reader.of_kind(Kind.INGESTION_JOB)}
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

    def live_job(summary: Mapping[str, Any]) -> tuple[LiveJob, Mapping[str, Any]] | None:
        # Resolved (fingerprinted) in the worker that read it, while other reads are in
        # flight. None when Polaris's retention deleted the job between list and read.
        body = details(summary)
        if body is None:
            return None
        connections = listed.result() if listed is not None else {}
        return LiveJob.parse(body, connections, declared), body

    # Details are fetched as soon as their page arrives, while later pages are still read;
    # pages are read by the same workers, so no more than `parallelism` are in flight.
    pending = []
    for summary in client.iter_jobs(type="batch", read_ahead=reader.pool):
        table, connection = job_key(summary)
        if summary.get("executionStatus") in ACTIVE_STATUSES and connection:
            active.add(connection)
        if every or table in wanted:
            if listed is not None and listed.done():
                listed.result()  # a failed read of the connections ends the reading
            pending.append(reader.pool.submit(live_job, summary))

    def resolve() -> None:
        read = [job for future in pending if (job := future.result()) is not None]
        jobs = tuple(job for job, _ in read)
        requests = {job.id: body for job, body in read} if every else {}
        reader.states[Kind.INGESTION_JOB] = JobState(jobs, frozenset(active), requests)

    reader.then(resolve)


def declared_places(resources: Iterable[Resource]) -> dict[str, Place]:
    """Where each connection the manifests manage points (external ones are not declared here)."""
    return {
        r.name: place_of(r.spec)
        for r in resources
        if r.kind is Kind.CONNECTION and not r.external and "bucket" in r.spec
    }
