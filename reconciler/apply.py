"""Carry a plan out in dependency order, so that nothing is lost and nothing is done twice.

Connections, then tables, then jobs: each job waits for the changes to its own connection and
table, and nothing else, so independent branches run in parallel and a failure stops only what
depends on it. Every write whose outcome is unknown is followed by a read of live state before
any retry, and a job is re-checked against live state right before it is posted: no duplicates.
Another apply cannot interleave: the CLI holds the project lock (reconciler/lock.py) from before
live state is read until apply ends, and `halt` stops new writes if that lock is ever lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from reconciler.client import AmbiguousWriteError, ConflictError, PolarisClient, PolarisError
from reconciler.identity import Reads
from reconciler.live import TERMINAL_STATUSES, LiveJob, LiveState, overlap_index
from reconciler.model import Kind, Resource
from reconciler.normalize import comparable, diff
from reconciler.plan import (
    SATISFIED_STATUSES,
    Action,
    Change,
    Plan,
    connection_places,
    job_identity,
)

Progress = Callable[[str], None]
PRUNE_MAX_FRACTION = 0.30  # octoDNS's rule: refuse to delete more than this share ...
PRUNE_MIN_EXISTING = 10  # ... of at least this many live connections, unless --force;
PRUNE_SMALL_MAX = 3  # below that, at most this many and at most half of them
AMBIGUOUS_WRITE_ATTEMPTS = 5  # each one is preceded by a read of live state
VISIBILITY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Request:
    """One API call apply would make for a change, as `plan --show-requests` shows it."""

    method: str
    path: str  # relative to the project: /connections/NAME
    body: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request with secret values replaced by `(sensitive)`."""
        entry: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.body is not None:
            entry["body"] = redacted(self.body)
        return entry


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request body without secret values (only the secret's `type` is kept)."""
    secrets = body.get("secrets")
    if not isinstance(secrets, Mapping):
        return dict(body)
    hidden = {k: v if k == "type" else "(sensitive)" for k, v in secrets.items()}
    return {**body, "secrets": hidden}


def create_body(change: Change, resource: Resource) -> dict[str, Any]:
    """The POST body that creates a connection or a table."""
    return {"name": change.name, **resource.spec}


def connection_patch(change: Change, resource: Resource, rotate_secrets: bool) -> dict[str, Any]:
    """The PATCH body of a connection update: its type, each differing field, secrets if rotated."""
    patch: dict[str, Any] = {"type": resource.spec["type"]}
    for item in change.diff:
        field_name = item.path.split(".")[0].split("[")[0]
        if field_name == "secrets":
            continue
        patch[field_name] = resource.spec.get(field_name)  # None clears a removed field
    if rotate_secrets and "secrets" in resource.spec:
        patch["secrets"] = resource.spec["secrets"]
    return patch


def planned_requests(
    plan: Plan,
    resources: Mapping[tuple[Kind, str], Resource],
    live: LiveState,
    rotate_secrets: bool = False,
) -> list[tuple[Change, list[Request]]]:
    """The calls apply would make for each change, in plan order (reads before retries left out)."""
    planned = []
    for change in plan.changes:
        resource = resources.get((change.kind, change.name))
        path = f"/{_COLLECTIONS[change.kind]}"
        named = f"{path}/{quote(change.name, safe='')}"
        calls: list[Request] = []
        if change.action is Action.DELETE or change.action is Action.REPLACE:
            calls.append(Request("DELETE", named))
        if resource is None or change.action in (Action.NOOP, Action.SKIP, Action.DELETE):
            pass
        elif change.kind is Kind.INGESTION_JOB:
            calls.append(Request("POST", path, dict(resource.spec)))
        elif change.action in (Action.CREATE, Action.REPLACE):
            calls.append(Request("POST", path, create_body(change, resource)))
        elif change.kind is Kind.CONNECTION:
            calls.append(
                Request("PATCH", named, connection_patch(change, resource, rotate_secrets))
            )
        else:
            version = live.tables.get(change.name, {}).get("version")
            calls.append(
                Request("PUT", named, {**create_body(change, resource), "version": version})
            )
        if calls:
            planned.append((change, calls))
    return planned


_COLLECTIONS = {Kind.CONNECTION: "connections", Kind.TABLE: "tables", Kind.INGESTION_JOB: "jobs"}


class UnsafePlan(Exception):
    """The plan asks for something the user has not allowed; nothing was changed."""


@dataclass(frozen=True)
class ApplyOptions:
    """The flags that govern how apply may change the project."""

    parallelism: int = 8
    allow_replace: bool = False
    allow_reingest: bool = False
    force: bool = False
    allow_empty: bool = False  # prune may delete every connection (Argo CD's allowEmpty)
    rotate_secrets: bool = False
    wait: bool = False
    timeout: float = 3600.0
    poll_interval: float = 2.0


@dataclass(frozen=True)
class Outcome:
    """What happened to one change."""

    change: Change
    status: str  # done | failed | skipped | unchanged
    message: str
    job_id: str | None = None
    job: Mapping[str, Any] | None = None  # the final job, with --wait
    metrics: Mapping[str, Any] | None = None  # the job's totals, with --wait

    def to_json(self) -> dict[str, Any]:
        """The outcome as apply JSON shows it."""
        entry: dict[str, Any] = {
            "kind": str(self.change.kind),
            "name": self.change.name,
            "action": str(self.change.action),
            "status": self.status,
            "message": self.message,
        }
        if self.job_id:
            entry["jobId"] = self.job_id
        if self.job is not None:
            entry["executionStatus"] = self.job.get("executionStatus")
            health = self.job.get("health") or {}
            if health.get("status") == "error":
                entry["health"] = {"code": health.get("code"), "message": health.get("message")}
        if self.metrics is not None:
            entry["metrics"] = dict(self.metrics)
        return entry


@dataclass
class ApplyResult:
    """Every outcome, in the plan's order."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when anything failed (apply then exits 1)."""
        return any(o.status == "failed" for o in self.outcomes)

    def count(self, status: str) -> int:
        """How many outcomes have `status`."""
        return sum(1 for o in self.outcomes if o.status == status)


def check_safety(plan: Plan, live: LiveState, options: ApplyOptions) -> None:
    """Refuse, before anything is changed, a plan the user has not explicitly allowed."""
    if plan.errors:
        lines = "\n".join(f"  - {error}" for error in plan.errors)
        raise UnsafePlan(f"the plan has {len(plan.errors)} error(s); fix them first:\n{lines}")
    replaces = [c.ref for c in plan.changes if c.action is Action.REPLACE]
    if replaces and not options.allow_replace:
        raise UnsafePlan(
            f"the plan replaces {', '.join(replaces)} (delete, then create); "
            "pass --allow-replace to allow it"
        )
    reingest = [c.ref for c in plan.changes if c.reingest]
    if reingest and not options.allow_reingest:
        raise UnsafePlan(
            f"{', '.join(reingest)} would ingest objects that are, or may already be, ingested into "
            "the same table (double ingestion, an overlap that cannot be decided, or a job whose "
            "status is unknown); review the warnings, then pass --allow-reingest if you mean it"
        )
    _check_prune(plan, live, options)


def _check_prune(plan: Plan, live: LiveState, options: ApplyOptions) -> None:
    """Prune never empties a project, nor deletes a large share of it, without being told to."""
    deletes = sum(1 for c in plan.changes if c.action is Action.DELETE)
    existing = len(live.connections)
    if not deletes:
        return
    if deletes >= existing and not options.allow_empty:
        # An emptied file, a wrong path or a file the loader could not read all look like this.
        raise UnsafePlan(
            f"prune would delete all {existing} connections of the project (no manifest "
            "declares any of them); pass --allow-empty if you mean it"
        )
    if options.force:
        return
    share = f"{deletes} of {existing} connections ({deletes / existing:.0%})"
    if existing >= PRUNE_MIN_EXISTING and deletes / existing > PRUNE_MAX_FRACTION:
        raise UnsafePlan(
            f"too many deletions: {share} is more than {PRUNE_MAX_FRACTION:.0%}; "
            "pass --force if this is intended"
        )
    if existing < PRUNE_MIN_EXISTING and (deletes > PRUNE_SMALL_MAX or deletes * 2 > existing):
        raise UnsafePlan(
            f"too many deletions: {share}; with fewer than {PRUNE_MIN_EXISTING} connections "
            f"prune deletes at most {PRUNE_SMALL_MAX} and at most half of them; "
            "pass --force if this is intended"
        )


class Applier:
    """Executes one plan against one project."""

    def __init__(
        self,
        client: PolarisClient,
        resources: Mapping[tuple[Kind, str], Resource],
        options: ApplyOptions,
        progress: Progress = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
        live: LiveState | None = None,
        halt: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.client = client
        self.halt = halt  # a reason to start no more writes (the project lock was lost), or None
        self.resources = resources
        self.options = options
        self.progress = progress
        self.sleep = sleep
        self.visible: dict[tuple[Kind, str], bool] = {}
        self.lock = threading.Lock()
        # Jobs already read (in the plan or during this run): a re-check only fetches jobs it
        # has not seen, so it costs one list call, not one read per job.
        self.known: dict[str, LiveJob] = {job.id: job for job in (live.jobs if live else ())}
        self.planned = frozenset(self.known)
        self.submitted: set[str] = set()
        # Connections as live, then as the manifests declare them (what this apply makes them):
        # jobs resolve to places through these, exactly as in the plan.
        self.connections: dict[str, Mapping[str, Any]] = dict(live.connections if live else {})
        self.connections.update(
            {
                name: resource.spec
                for (kind, name), resource in resources.items()
                if kind is Kind.CONNECTION and not resource.external and resource.spec
            }
        )
        self.places = connection_places(resources.values(), live or LiveState({}, {}, ()))

    def run(self, plan: Plan) -> ApplyResult:
        """Apply every change, parallel where independent; never raises for one failed change."""
        work = [c for c in plan.changes if c.action not in (Action.NOOP, Action.SKIP)]
        deps = {id(c): self.dependencies(c, work) for c in work}
        outcomes: dict[int, Outcome] = {}
        pending = list(work)
        running: dict[Future[Outcome], Change] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.options.parallelism)) as pool:
            try:
                self._schedule(pool, pending, running, deps, outcomes)
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM: finish the writes in flight (so none is left ambiguous),
                # start no other, and let the caller release the project lock.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        result = ApplyResult()
        for change in plan.changes:
            if id(change) in outcomes:
                result.outcomes.append(outcomes[id(change)])
            else:
                result.outcomes.append(Outcome(change, "unchanged", change.reason, change.job_id))
        return result

    def _schedule(
        self,
        pool: ThreadPoolExecutor,
        pending: list[Change],
        running: dict[Future[Outcome], Change],
        deps: Mapping[int, list[Change]],
        outcomes: dict[int, Outcome],
    ) -> None:
        """Start each change once its dependencies are done; collect outcomes until all are."""
        while pending or running:
            for change in list(pending):
                blockers = [outcomes.get(id(d)) for d in deps[id(change)]]
                if any(o is None for o in blockers):
                    continue
                pending.remove(change)
                failed = [o.change.ref for o in blockers if o and o.status in ("failed", "skipped")]
                if failed:
                    outcomes[id(change)] = Outcome(
                        change, "skipped", f"not attempted: {', '.join(failed)} did not succeed"
                    )
                    continue
                stop = self.halt()
                if stop:
                    outcomes[id(change)] = Outcome(change, "failed", f"not attempted: {stop}")
                    continue
                running[pool.submit(self.execute, change)] = change
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                change = running.pop(future)
                outcomes[id(change)] = future.result()

    def dependencies(self, change: Change, work: list[Change]) -> list[Change]:
        """The changes in this run that `change` must wait for."""
        if change.kind is not Kind.INGESTION_JOB:
            return []
        spec = self.resources[(change.kind, change.name)].spec
        needed = {
            (Kind.CONNECTION, spec["source"]["connectionName"]),
            (Kind.TABLE, spec["target"]["tableName"]),
        }
        return [c for c in work if (c.kind, c.name) in needed]

    def execute(self, change: Change) -> Outcome:
        """Carry out one change; failures become outcomes, not exceptions."""
        self.progress(f"{change.action} {change.ref} ...")
        try:
            if change.kind is Kind.CONNECTION:
                outcome = self.connection(change)
            elif change.kind is Kind.TABLE:
                outcome = self.table(change)
            else:
                outcome = self.job(change)
        except PolarisError as error:
            outcome = Outcome(change, "failed", str(error))
        self.progress(f"{change.action} {change.ref}: {outcome.status}: {outcome.message}")
        return outcome

    # Connections -------------------------------------------------------------------------------

    def connection(self, change: Change) -> Outcome:
        name = change.name
        if change.action is Action.DELETE:
            self.client.delete_connection(name)
            return Outcome(change, "done", "deleted")
        resource = self.resources[(Kind.CONNECTION, name)]
        if change.action in (Action.CREATE, Action.REPLACE):
            if change.action is Action.REPLACE:
                self.client.delete_connection(name)
            return self.create(
                change, resource, self.client.create_connection, self.client.get_connection
            )
        patch = connection_patch(change, resource, self.options.rotate_secrets)
        self.client.update_connection(name, patch)  # PATCH is idempotent: the client may retry it
        return Outcome(change, "done", "updated")

    def create(
        self,
        change: Change,
        resource: Resource,
        post: Callable[[dict[str, Any]], Any],
        read: Callable[[str], dict[str, Any] | None],
    ) -> Outcome:
        """POST a connection or table; after a conflict or a lost answer, read before retrying."""
        body = create_body(change, resource)
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            try:
                post(body)
                return Outcome(change, "done", "created")
            except ConflictError:
                return self.adopt(change, resource, read(change.name))
            except AmbiguousWriteError:
                # The POST may have been applied: look before trying again.
                found = read(change.name)
                if found is not None:
                    return self.adopt(change, resource, found)
        return Outcome(
            change, "failed", f"creating the {change.kind} kept failing; run apply again"
        )

    def adopt(self, change: Change, resource: Resource, found: Mapping[str, Any] | None) -> Outcome:
        """A resource that already exists counts as created when it equals the manifest."""
        if found is None:
            return Outcome(
                change, "failed", "Polaris reported a conflict, but the resource is not there"
            )
        desired, actual = comparable(change.kind, resource.spec, found)
        differing = diff(actual, desired)
        if not differing:
            return Outcome(change, "done", "already exists and matches the manifest")
        fields = ", ".join(sorted({d.path.split(".")[0] for d in differing}))
        return Outcome(
            change, "failed", f"already exists with different {fields}; run plan again to update it"
        )

    # Tables ------------------------------------------------------------------------------------

    def table(self, change: Change) -> Outcome:
        resource = self.resources[(Kind.TABLE, change.name)]
        if change.action is Action.CREATE:
            return self.create(change, resource, self.client.create_table, self.client.get_table)
        body = create_body(change, resource)
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            current = self.client.get_table(change.name)
            if current is None:
                return Outcome(change, "failed", "the table disappeared; run plan again")
            try:
                # PUT carries the version read just now: a concurrent change makes it a 409.
                self.client.update_table(change.name, {**body, "version": current.get("version")})
                return Outcome(change, "done", "updated")
            except (ConflictError, AmbiguousWriteError):
                continue
        return Outcome(change, "failed", "the table kept changing underneath; run plan again")

    # Jobs --------------------------------------------------------------------------------------

    def job(self, change: Change) -> Outcome:
        resource = self.resources[(Kind.INGESTION_JOB, change.name)]
        spec = resource.spec
        self.await_visible(Kind.CONNECTION, spec["source"]["connectionName"])
        if (Kind.TABLE, spec["target"]["tableName"]) in self.resources:
            self.await_visible(Kind.TABLE, spec["target"]["tableName"])
        mine, reads = job_identity(spec, self.places)
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            # Re-check right before posting: another apply, or an earlier attempt whose response
            # was lost, may have submitted this very job, or one that reads the same objects,
            # since the plan was made.
            existing, refusal = self.find_job(spec, mine, reads)
            if existing is not None:
                return self.finish(change, existing, "already submitted")
            if refusal is not None:
                return Outcome(change, "failed", refusal)
            try:
                created = self.client.create_job(dict(spec))
            except AmbiguousWriteError:
                continue
            with self.lock:
                self.known[str(created["id"])] = LiveJob.of(created, self.connections)
                self.submitted.add(str(created["id"]))
            return self.finish(change, created, "submitted")
        existing, _ = self.find_job(spec, mine, reads)
        if existing is not None:
            return self.finish(change, existing, "already submitted")
        return Outcome(change, "failed", "submitting the job kept failing; run apply again")

    def find_job(
        self, spec: Mapping[str, Any], mine: str, reads: Reads
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        """(a live job with this identity that has run or is running, or why posting is refused).

        Uses the plan's identity: the job's place and selector, not its connection's name. A job
        that reads an object this one reads and appeared since the plan (another apply) refuses
        the post without --allow-reingest, as the plan would have.
        """
        table = str(spec["target"]["tableName"])
        appeared: list[LiveJob] = []
        for summary in self.client.iter_jobs(type="batch", targetTableName=table):
            status = str(summary.get("executionStatus") or "unknown")
            if status in ("failed", "canceled"):
                continue  # ingested nothing
            job = self.read_job(str(summary["id"]))
            if job is None:
                continue
            if status in SATISFIED_STATUSES and any(mine == fp for fp, _ in job.readings):
                return {**job.body, "executionStatus": status}, None
            if job.id not in self.planned and job.id not in self.submitted:
                appeared.append(replace(job, status=status))
        if self.options.allow_reingest or spec.get("ingestionMode", "append") != "append":
            return None, None
        overlaps = overlap_index(appeared)
        found = overlaps.find(table, reads)
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

    def read_job(self, job_id: str) -> LiveJob | None:
        """A job's details, read once per run and resolved through the known connections."""
        with self.lock:
            known = self.known.get(job_id)
        if known is not None:
            return known
        body = self.client.get_job(job_id)
        if body is None:
            return None
        connection = str((body.get("source") or {}).get("connectionName", ""))
        with self.lock:
            if connection not in self.connections:
                # A connection created since the plan: learn it, so the job resolves to a place.
                self.connections.update({c["name"]: c for c in self.client.list_connections()})
            job = LiveJob.of(body, self.connections)
            self.known[job_id] = job
        return job

    def finish(self, change: Change, job: Mapping[str, Any], verb: str) -> Outcome:
        job_id = str(job["id"])
        if not self.options.wait:
            return Outcome(change, "done", f"{verb} as job {job_id}", job_id, job)
        final = self.follow(change, job_id)
        status = final.get("executionStatus")
        if status == "completed":
            totals = self.client.job_metrics(job_id).get("totals") or {}
            message = f"{verb} as job {job_id}; completed"
            return Outcome(change, "done", message, job_id, final, totals)
        health = final.get("health") or {}
        detail = f"{health.get('code', status)}: {health.get('message', '')}".rstrip(": ")
        return Outcome(change, "failed", f"job {job_id} {status}: {detail}", job_id, final)

    def follow(self, change: Change, job_id: str) -> Mapping[str, Any]:
        """Poll a job until it reaches a terminal state or the timeout passes."""
        deadline = time.monotonic() + self.options.timeout
        last = ""
        while True:
            job = self.client.get_job(job_id) or {"executionStatus": "unknown"}
            status = str(job.get("executionStatus"))
            if status in TERMINAL_STATUSES:
                return job
            progress = self.client.job_progress(job_id).get("overallProgress")
            line = f"{change.ref} job {job_id}: {status}" + (
                f", {float(progress):.0%}" if progress is not None else ""
            )
            if line != last:
                self.progress(line)
                last = line
            if time.monotonic() >= deadline:
                raise PolarisError(
                    f"job {job_id} still {status} after {self.options.timeout:g}s (--timeout)"
                )
            self.sleep(self.options.poll_interval)

    def await_visible(self, kind: Kind, name: str) -> None:
        """Read-after-write: wait until a dependency is visible through the API."""
        with self.lock:
            if self.visible.get((kind, name)):
                return
        getter = self.client.get_connection if kind is Kind.CONNECTION else self.client.get_table
        delay, waited = 0.1, 0.0
        while getter(name) is None:
            if waited >= VISIBILITY_TIMEOUT:
                raise PolarisError(
                    f"{kind}/{name} is not visible through the API after {waited:.0f}s"
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
        with self.lock:
            self.visible[(kind, name)] = True
