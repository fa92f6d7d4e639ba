"""How apply submits each job of a plan exactly once (`Submissions`), finding jobs by the identity
the plan gave each change (over its connection's place, `fingerprints.JobIdentity`)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler.kinds import registry
from reconciler.kinds.base import JobReport
from reconciler.kinds.ingestion_job.fingerprints import JobIdentity
from reconciler.kinds.ingestion_job.identity import Reads, reads_of
from reconciler.kinds.ingestion_job.live_job import (
    KNOWN_STATUSES,
    SATISFIED_STATUSES,
    TERMINAL_STATUSES,
    LiveJob,
    created_at,
    job_key,
    overlap_index,
)
from reconciler.kinds.ingestion_job.payload import planned
from reconciler.kinds.ingestion_job.state import jobs_of
from reconciler.model import Kind, Reason
from reconciler.ports import Applying, PlanView
from reconciler.values import AMBIGUOUS_WRITE_ATTEMPTS, Change, Outcome

VISIBILITY_TIMEOUT = 30.0


class TableView:
    """The jobs of one table as an apply knows them: listed once, then kept current with what it
    submits. Failed and canceled jobs ingested nothing and are left out."""

    def __init__(self) -> None:
        self.jobs: dict[str, LiveJob] = {}
        self.by_identity: dict[JobIdentity, dict[str, LiveJob]] = {}
        self.appeared: list[LiveJob] = []  # neither in the plan nor posted by this apply

    def add(self, job: LiveJob, appeared: bool = False) -> None:
        """Know `job` (with its current status)."""
        self.jobs[job.id] = job
        for identity, _ in job.readings:
            self.by_identity.setdefault(identity, {})[job.id] = job
        if appeared:
            self.appeared.append(job)

    def same(self, identity: JobIdentity) -> list[LiveJob]:
        """The jobs with this identity that ran, run or wait to run, oldest first: the first one
        is the one kept, the others are duplicates."""
        jobs = [
            j for j in self.by_identity.get(identity, {}).values() if j.status in SATISFIED_STATUSES
        ]
        return sorted(jobs, key=lambda j: (created_at(j.body), j.id))


class Submissions:
    """Submits the jobs of one apply, each exactly once.

    Each target table's jobs are listed once, on its first job, and the view is kept current
    with what this apply submits: under the project lock no other apply posts jobs, and right
    before each POST the lock is asked again (`Fence.check`) in place of a listing. The table
    is listed again only when the answer to a POST was lost (it may have landed), and after a
    POST when another writer may have posted the same job beside this apply (`Fence.contested`,
    a lock taken over from a holder that may only be paused, or a lease that ran out during the
    POST): of two jobs with one identity the later-created one is canceled while it is pending,
    whichever apply posted it, so both sides keep the same one. Jobs resolve to places through
    the connections as this apply leaves them: as live, then as the plan's changes declare them.
    """

    def __init__(self, provider: Applying, plan: PlanView) -> None:
        self.provider = provider
        self.client = provider.client
        self.options = provider.options
        self.fence = provider.fence
        self.lock = threading.Lock()
        live = provider.live
        # Jobs already read (in the plan or during this run): a listing only fetches jobs it
        # has not seen, so it costs one list call, not one read per job.
        self.known: dict[str, LiveJob] = {job.id: job for job in jobs_of(live).jobs}
        self.planned = frozenset(self.known)
        self.submitted: set[str] = set()
        self.views: dict[str, TableView] = {}
        self.listing: dict[str, threading.Lock] = {}  # one listing of a table at a time
        self.claims: dict[JobIdentity, threading.Lock] = {}  # one POST of an identity at a time
        self.connections: dict[str, Mapping[str, Any]] = dict(
            live.by_name(Kind.CONNECTION) if live else {}
        )
        # A connection managed elsewhere is read as it is live, as the plan read it: its
        # manifest's spec (if any) is never applied, so it says nothing about where it points.
        self.connections.update(
            {
                change.name: change.desired
                for change in plan.changes
                if change.kind is Kind.CONNECTION
                and change.desired
                and change.why is not Reason.EXTERNAL
            }
        )
        self.visible: set[tuple[Kind, str]] = set()
        self.looking: dict[tuple[Kind, str], threading.Lock] = {}  # one look at a time

    def submit(self, change: Change) -> Outcome:
        (request,) = change.requests
        spec = request.body or {}
        fingerprint = planned(change).fingerprint
        if not fingerprint:
            # Only the plan's identity finds this job's live twin: the spec's own fingerprint
            # names the connection, not where it points, so it would find none and post again.
            return Outcome(
                change, "failed",
                "not attempted: the change carries no job identity (it did not come from a plan); "
                "run plan again",
            )  # fmt: skip
        mine = JobIdentity(fingerprint)  # the plan's JobIdentity, kept as text on Change
        for key in change.depends_on:
            self.await_visible(*key)
        with self.lock:
            claim = self.claims.setdefault(mine, threading.Lock())
        with claim:  # two changes with one identity (--allow-reingest) never post together
            return self._submit(change, spec, mine, reads_of(spec, planned(change).place))

    def _submit(
        self, change: Change, spec: Mapping[str, Any], mine: JobIdentity, reads: Reads
    ) -> Outcome:
        from reconciler.client import AmbiguousWriteError  # deferred: loads httpx

        table = str(spec["target"]["tableName"])
        stale = False  # list the table again: a POST whose answer was lost may have landed
        suspect = self.fence.contested  # someone else may post this very job beside us
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            existing, refusal = self.find(self.view(table, stale), spec, table, mine, reads)
            if existing is not None and suspect:
                return self.settle(change, table, mine)  # a later one may be a duplicate
            if existing is not None:
                return self.finish(change, existing, "already submitted")
            if refusal is not None:
                return Outcome(change, "failed", refusal)
            stop = self.fence.check()  # right before the POST, not only before the change
            if stop is not None and stale:
                return Outcome(
                    change, "failed",
                    f"not attempted again: {stop}; a POST whose answer was lost may still land, "
                    "run plan to check",
                )  # fmt: skip
            if stop is not None:
                return Outcome(change, "failed", f"not attempted: {stop}")
            try:
                created = self.client.create_job(dict(spec))
            except AmbiguousWriteError:
                stale = suspect = True  # it may also land later, beside the next attempt
                continue
            self.remember(table, created)
            # A lease that ran out while the POST was under way: a new holder may have posted it.
            if suspect or self.fence.check() is not None:
                return self.settle(change, table, mine, created)
            return self.finish(change, created, "submitted")
        existing, _ = self.find(self.view(table, True), spec, table, mine, reads)
        if existing is not None:
            return self.settle(change, table, mine)
        return Outcome(change, "failed", "submitting the job kept failing; run apply again")

    def find(
        self, view: TableView, spec: Mapping[str, Any], table: str, mine: JobIdentity, reads: Reads
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        """(a job with this identity that has run or is running, or why posting is refused).

        Uses the plan's identity: the job's place and selector, not its connection's name. A job
        that reads an object this one reads and appeared since the plan (another apply) refuses
        the post without --allow-reingest, as the plan would have.
        """
        with self.lock:
            same = view.same(mine)
            appeared = list(view.appeared)
        if same:
            return {**same[0].body, "executionStatus": same[0].status}, None
        if self.options.allow_reingest or spec.get("ingestionMode", "append") != "append":
            return None, None
        found = overlap_index(appeared).find(table, reads)
        if not found:
            return None, None
        first = found[0]
        example = f" (for example {first.example})" if first.example else ""
        return None, (
            f"refused: job {first.item.id} ({first.item.status}, connection {first.item.connection}) "
            f"was submitted after the plan was made and reads objects this job reads{example} into "
            f"table {table}; posting would ingest them twice. Run plan again to review, or pass "
            "--allow-reingest"
        )

    def view(self, table: str, again: bool = False) -> TableView:
        """The table's jobs: listed on first use (and `again`), then kept current."""
        with self.lock:
            listing = self.listing.setdefault(table, threading.Lock())
        with listing:
            with self.lock:
                current = self.views.get(table)
            if current is not None and not again:
                return current
            view = TableView()
            for summary in self.client.iter_jobs(type="batch", targetTableName=table):
                status = str(summary.get("executionStatus") or "unknown")
                if status in ("failed", "canceled"):
                    continue  # ingested nothing
                job = self.read(str(summary["id"]))
                if job is not None:
                    fresh = job.id not in self.planned and job.id not in self.submitted
                    view.add(replace(job, status=status), appeared=fresh)
            with self.lock:
                # Our own POSTs stay known even where the list does not show them yet.
                for job_id in self.submitted - view.jobs.keys():
                    ours = self.known.get(job_id)
                    if ours is not None and ours.table == table:
                        view.add(ours)
                self.views[table] = view
            return view

    def remember(self, table: str, created: Mapping[str, Any]) -> None:
        """Keep the table's view current with a job this apply just posted."""
        from reconciler.client import MalformedResponseError  # deferred: loads httpx

        job_id = str(created["id"])
        with self.lock:
            self.submitted.add(job_id)
            try:
                job = LiveJob.parse(created, self.connections)
            except MalformedResponseError:
                # Submitted, but the answer cannot be read: list the table again before the
                # next job into it, so that this one is found there.
                self.views.pop(table, None)
                return
            if job.status not in KNOWN_STATUSES:
                job = replace(job, status="pending")
            self.known[job_id] = job
            view = self.views.get(table)
            if view is not None:
                view.add(job)

    def settle(
        self,
        change: Change,
        table: str,
        mine: JobIdentity,
        created: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """After a POST that another writer may have made too: keep the oldest job with this
        identity, cancel later ones while they are pending, and say so."""
        from reconciler.client import PolarisError  # deferred: loads httpx

        try:
            view = self.view(table, True)
        except PolarisError as error:
            posted = f"submitted as job {created['id']}, but " if created else ""
            return Outcome(
                change, "failed",
                f"{posted}the jobs of table {table} could not be read to look for a duplicate "
                f"posted beside this apply: {error}; run plan to check",
            )  # fmt: skip
        with self.lock:
            same = view.same(mine)
        if not same:
            if created is None:
                return Outcome(change, "failed", "the job is no longer listed; run apply again")
            return self.finish(change, created, "submitted")
        kept, *later = same
        canceled, running = [], []
        for job in later:
            if job.status != "pending":
                running.append(job)
                continue
            try:
                self.client.cancel_job(job.id)
                canceled.append(job.id)
            except PolarisError:
                running.append(job)
        verb = "submitted" if kept.id in self.submitted else "already submitted"
        outcome = self.finish(change, {**kept.body, "executionStatus": kept.status}, verb)
        notes = [
            f"canceled job {job_id}, a later duplicate of it (posted by an apply paused past "
            "its project lock's lease), while it was still pending"
            for job_id in canceled
        ]
        notes += [
            f"DOUBLE INGESTION: job {job.id}, a later duplicate of it (posted by an apply paused "
            f"past its project lock's lease), is {job.status} and could not be canceled"
            for job in running
        ]
        if not notes:
            return outcome
        report = outcome.report if isinstance(outcome.report, JobReport) else JobReport()
        return dataclasses.replace(
            outcome,
            status="failed" if running else outcome.status,
            message="; ".join([outcome.message, *notes]),
            report=dataclasses.replace(report, canceled=tuple(canceled)),
        )

    def read(self, job_id: str) -> LiveJob | None:
        """A job's details, read once per run and resolved through the known connections."""
        with self.lock:
            known = self.known.get(job_id)
        if known is not None:
            return known
        body = self.client.get_job(job_id)
        if body is None:
            return None
        _, connection = job_key(body)
        with self.lock:
            if connection not in self.connections:
                # A connection created since the plan: learn it, so the job resolves to a place.
                self.connections.update({c["name"]: c for c in self.client.listed("connections")})
            # A job the API would never send fails this change with a message, not the run.
            job = LiveJob.parse(body, self.connections)
            self.known[job_id] = job
        return job

    def finish(self, change: Change, job: Mapping[str, Any], verb: str) -> Outcome:
        job_id = str(job["id"])
        if not self.options.wait:
            return Outcome(change, "done", f"{verb} as job {job_id}", JobReport(job_id, job))
        final = self.follow(change, job_id)
        status = final.get("executionStatus")
        if status not in TERMINAL_STATUSES:  # waiting stopped (Ctrl-C): the job goes on
            message = f"{verb} as job {job_id}; still {status} in Polaris (stopped waiting)"
            return Outcome(change, "done", message, JobReport(job_id, final))
        if status == "completed":
            totals = self.client.job_metrics(job_id).get("totals") or {}
            message = f"{verb} as job {job_id}; completed"
            return Outcome(change, "done", message, JobReport(job_id, final, totals))
        health = final.get("health")
        health = health if isinstance(health, Mapping) else {}
        detail = f"{health.get('code', status)}: {health.get('message', '')}".rstrip(": ")
        return Outcome(
            change, "failed", f"job {job_id} {status}: {detail}", JobReport(job_id, final)
        )

    def follow(self, change: Change, job_id: str) -> Mapping[str, Any]:
        """Poll a job until it reaches a terminal state or the timeout passes."""
        from reconciler.client import PolarisError  # deferred: loads httpx

        deadline = time.monotonic() + self.options.timeout
        last = ""
        while True:
            job = self.client.get_job(job_id) or {"executionStatus": "unknown"}
            status = str(job.get("executionStatus"))
            if status in TERMINAL_STATUSES:
                return job
            progress = self.client.job_progress(job_id).get("overallProgress")
            line = f"{change.ref} job {job_id}: {status}" + (
                f", {float(progress):.0%}" if isinstance(progress, int | float) else ""
            )
            if line != last:
                self.provider.progress(line)
                last = line
            if time.monotonic() >= deadline:
                raise PolarisError(
                    f"job {job_id} still {status} after {self.options.timeout:g}s (--timeout)"
                )
            if self.provider.stopped.is_set():
                return job
            self.provider.pause(self.options.poll_interval)

    def await_visible(self, kind: Kind, name: str) -> None:
        """Read-after-write: wait until a dependency is visible through the API."""
        with self.lock:
            if (kind, name) in self.visible:
                return
            # One worker looks; the others wanting the same resource wait for its answer.
            looking = self.looking.setdefault((kind, name), threading.Lock())
        with looking:
            self._await_visible(kind, name)

    def _await_visible(self, kind: Kind, name: str) -> None:
        from reconciler.client import PolarisError  # deferred: loads httpx

        with self.lock:
            if (kind, name) in self.visible:
                return
        resource_kind = registry.of(kind)
        delay, waited = 0.1, 0.0
        while resource_kind.get(self.client, name) is None:
            if waited >= VISIBILITY_TIMEOUT:
                raise PolarisError(
                    f"{kind}/{name} is not visible through the API after {waited:.0f}s"
                )
            self.provider.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
        with self.lock:
            self.visible.add((kind, name))
