"""StreamingJob: a table's streaming ingestion job, from a Kafka, Confluent, Kinesis or push
streaming connection.

A kind of its own, not an IngestionJob with `type: streaming`, because what makes a kind differs:
- identity: Polaris allows one streaming job per table, so its target table identifies it
  (metadata.name is a handle for people, as a batch job's is); a batch job is identified by
  what it reads (its fingerprint), and is never submitted twice;
- plan: a streaming job's spec cannot change in place. A change is a new job that replaces the
  running one (`replaceRunning: true`), and what it does to the data depends on the checkpoint
  Polaris keeps per (table, topic or stream): a replacement reading the same topic continues from
  it; one reading another topic starts at its `readFromPoint` (skipping data with `latest`,
  re-reading it with `earliest`); a `readFromPoint` change alone does nothing until a reset;
- lifecycle: it runs until suspended, resumed, replaced or canceled; batch jobs end.

The topic or stream is on the connection (Kafka `topicName`, Kinesis `stream`; a push streaming
connection is its own stream), so a Connection change can move a running job to another topic:
the plan compares what the table reads now with what it will read once the plan is applied.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from reconciler import connection_types
from reconciler.kinds import registry
from reconciler.kinds.base import (
    SQL_TOKEN,
    TERMINAL_STATUSES,
    TIME_COLUMN,
    Fields,
    JobReport,
    Locate,
    PlanContext,
    ResourceKind,
    fields_of,
)
from reconciler.kinds.registry import register
from reconciler.model import Action, Kind, ManifestError, Path, Reason, Resource
from reconciler.names import name_problem
from reconciler.ports import Applying, Importing, JobApi, LiveReading, LiveView
from reconciler.values import (
    AMBIGUOUS_WRITE_ATTEMPTS,
    Change,
    FieldChange,
    ManifestFile,
    Outcome,
    PlanError,
    PlanErrorCode,
    PlanOptions,
    Request,
)

DURATION = r"P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?"
# A job in TERMINAL_STATUSES is over; any other (pending, running, idle, suspended, unknown)
# holds the table's one streaming job.
NEW_JOB = "(new job)"  # in the path of a request made to a job the plan cannot name yet


def request_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A manifest's spec as it is, or the request a live job was created from with its status
    (`running` or `suspended`, as the manifest says it): live jobs have an id, specs do not."""
    if "id" not in body:
        return body
    echoed = body.get("spec")
    request = echoed if isinstance(echoed, Mapping) and "source" in echoed else body
    wanted = body.get("desiredExecutionStatus") or body.get("executionStatus")
    return {**request, "status": "suspended" if wanted == "suspended" else "running"}


def streaming(summaries: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The streaming jobs of a job list asked for `type=streaming`: a batch job is never taken
    for a table's streaming job, even from a server that ignores the filter."""
    return (job for job in summaries if job.get("type", "streaming") == "streaming")


def status_of(job: Mapping[str, Any]) -> str:
    """A live job's execution status."""
    return str(job.get("executionStatus") or "unknown")


def table_of(job: Mapping[str, Any]) -> str:
    """The table a live job (or its summary) streams into."""
    target = job.get("target")
    return str(target.get("tableName", "")) if isinstance(target, Mapping) else ""


def connection_of(job: Mapping[str, Any]) -> str:
    """The connection a live job (or its summary) reads."""
    source = request_of(job).get("source")
    return str(source.get("connectionName", "")) if isinstance(source, Mapping) else ""


def stream_of(connection: Mapping[str, Any] | None, name: str) -> str | None:
    """What a table reads through a connection, as Polaris keys its checkpoint: the topic or the
    stream, or the push streaming connection itself. None: not a streaming connection."""
    kind = connection_types.of(connection) if connection is not None else None
    if connection is None or kind is None or kind.stream_field is None:
        return None
    if not kind.stream_field:
        return f"push streaming connection {name}"
    noun = "stream" if kind.stream_field == "stream" else "topic"
    pattern = " (a pattern)" if connection.get("topicNameIsPattern") else ""
    return f"{noun} {connection.get(kind.stream_field)}{pattern}"


def effect(read_from: str) -> str:
    """What starting at `read_from` on a topic does to the data."""
    return "re-reads data" if read_from == "earliest" else "skips data"


@dataclass(frozen=True)
class PlannedStream:
    """A streaming job change's own part (the change's `private`): the live job it replaces,
    suspends or resumes, and that job's status; plan JSON shows them as `jobId` and `status`."""

    job_id: str | None = None
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            key: value for key, value in (("jobId", self.job_id), ("status", self.status)) if value
        }


def planned_stream(change: Change) -> PlannedStream:
    """The streaming job kind's part of `change` (empty for a create)."""
    private = change.private
    return private if isinstance(private, PlannedStream) else PlannedStream()


@register
class StreamingJob(ResourceKind):
    """A streaming ingestion job, one per table, identified by its table."""

    kind = Kind.STREAMING_JOB
    operations = frozenset({"reset"})  # `reconciler reset TABLE`, only ever when asked
    collection = "jobs"
    schema_file = "streaming-job.schema.json"
    fields = Fields(
        writable=(
            "status", "target", "source", "mappings", "filterExpression", "readFromPoint",
            "lateMessageRejectionPeriod", "earlyMessageRejectionPeriod", "maxParseExceptions",
            "createTableIfNotExists", "clusteringColumns", "dimensionExclusions", "partitionedBy",
            "enableUpserts", "upsertKeyColumns", "upsertVersionColumn", "useSchemaDiscovery",
        ),
        # The OpenAPI's defaults (CreateStreamingJobRequest), and `status`, ours: running.
        defaults={
            "status": "running", "readFromPoint": "latest", "lateMessageRejectionPeriod": "P30D",
            "earlyMessageRejectionPeriod": "P2000D", "maxParseExceptions": 2147483647,
            "createTableIfNotExists": False, "clusteringColumns": [], "dimensionExclusions": [],
            "mappings": [], "enableUpserts": False, "useSchemaDiscovery": False,
        },
        read_only=(
            "id", "type", "executionStatus", "desiredExecutionStatus", "health",
            "createdBy", "createdTimestamp", "lastModifiedBy", "lastUpdatedTimestamp", "spec",
        ),
    )  # fmt: skip

    def request_of(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return request_of(body)

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        # Input fields, format defaults and mappings compare as a batch job's do (one place).
        shaped = _batch_shaped(spec.get("source"), spec.get("mappings"))
        spec["source"], spec["mappings"] = shaped["source"], shaped["mappings"]
        for name in ("upsertKeyColumns", "upsertVersionColumn", "filterExpression"):
            if spec.get(name) is None:
                spec.pop(name, None)
        return spec

    # Validation -----------------------------------------------------------------------------

    def document_problems(self, spec: Mapping[str, Any]) -> list[tuple[Path, str]]:

        problems: list[tuple[Path, str]] = []
        problem = name_problem(spec["source"]["connectionName"], "spec.source.connectionName")
        if problem:
            problems.append((("source", "connectionName"), problem))
        table = table_of(spec)
        problem = name_problem(table, "spec.target.tableName") or registry.of(Kind.TABLE).reserved(
            table
        )
        if problem:
            problems.append((("target", "tableName"), problem))
        for field in ("lateMessageRejectionPeriod", "earlyMessageRejectionPeriod"):
            value = spec.get(field)
            if isinstance(value, str) and (
                not re.fullmatch(DURATION, value) or value in ("P", "PT") or value.endswith("T")
            ):
                problems.append(
                    ((field,), f"spec.{field} '{value}' is not an ISO 8601 duration such as P30D")
                )
        # Upserts need their key and version columns, and those mean nothing without upserts.
        upserts = spec.get("enableUpserts") is True
        for field in ("upsertKeyColumns", "upsertVersionColumn"):
            if upserts and field not in spec:
                problems.append(
                    (("enableUpserts",), f"enableUpserts: true needs spec.{field} as well")
                )
            elif not upserts and field in spec:
                problems.append(
                    ((field,), f"spec.{field} applies only with enableUpserts: true; set it or "
                     f"remove {field}")
                )  # fmt: skip
        return problems

    def dependencies(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        return (
            (Kind.CONNECTION, str(spec["source"]["connectionName"])),
            (Kind.TABLE, table_of(spec)),
        )

    def creates(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        # The table's streaming job itself (live jobs are known by their table, not by the
        # manifest's handle), and the table with createTableIfNotExists.
        made = [(Kind.STREAMING_JOB, table_of(spec))]
        if spec.get("createTableIfNotExists"):
            made.append((Kind.TABLE, table_of(spec)))
        return tuple(made)

    def cross_check(
        self, resources: list[Resource], declared: Mapping[tuple[Kind, str], Resource],
        locate: Locate,
    ) -> list[ManifestError]:  # fmt: skip
        errors: list[ManifestError] = []
        for job in resources:
            errors.extend(_check(job, declared, locate))
        # Polaris allows one streaming job per table: two manifests for one table would replace
        # each other's job at every apply.
        first: dict[str, Resource] = {}
        for job in resources:
            other = first.setdefault(table_of(job.spec), job)
            if other is not job:
                errors.append(
                    ManifestError(
                        locate(job, ("target", "tableName")),
                        f"{job.ref} streams into table {table_of(job.spec)}, as {other.ref} does "
                        f"(at {other.location}); Polaris allows one streaming job per table, so "
                        "remove one of them",
                        job.ref,
                    )
                )
        return errors

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading) -> None:
        """The streaming job list, and each table's job: the one not over, else the newest (a
        failed or canceled job is what a plan says it replaces)."""
        client, pool = reader.client, reader.pool

        def listed() -> dict[str, Future[dict[str, Any] | None]]:
            chosen: dict[str, Mapping[str, Any]] = {}
            for summary in streaming(client.iter_jobs(type="streaming")):  # newest first
                table = table_of(summary)
                kept = chosen.get(table)
                if kept is None or (
                    status_of(kept) in TERMINAL_STATUSES
                    and status_of(summary) not in TERMINAL_STATUSES
                ):
                    chosen[table] = summary
            # Each table's job is read in a task of its own, queued behind this one and waited
            # for by `collect`: a worker that waited for a read queued after its own would wait
            # forever with one worker (--parallelism 1).
            return {table: pool.submit(client.get_job, str(s["id"])) for table, s in chosen.items()}

        started = pool.submit(listed)

        def collect() -> None:
            full = started.result()
            jobs = {table: job for table, f in full.items() if (job := f.result()) is not None}
            reader.states.setdefault(self.kind, {}).update(jobs)

        reader.then(collect)

    def uses(self, state: LiveView) -> Mapping[Kind, frozenset[str]]:
        """A running or suspended streaming job's connection and table are in use: prune never
        deletes them, and a table with such a job counts as having active jobs."""
        active = self.live(state).values()
        return {
            Kind.CONNECTION: frozenset(connection_of(job) for job in active),
            Kind.TABLE: frozenset(table_of(job) for job in active),
        }

    def newest(self, state: LiveView) -> Mapping[str, Mapping[str, Any]]:
        """Each table's streaming job: the one not over, else the newest."""
        jobs = state.of(self.kind)
        return jobs if isinstance(jobs, Mapping) else {}

    def live(self, state: LiveView) -> Mapping[str, Mapping[str, Any]]:
        return {
            table: job
            for table, job in self.newest(state).items()
            if status_of(job) not in TERMINAL_STATUSES
        }

    def digest(self, state: LiveView) -> Any:
        # Which job, whether it is over, and its request with the status asked for: a job going
        # from pending to running does not make a reviewed plan stale.
        return {
            table: [job.get("id"), status_of(job) in TERMINAL_STATUSES, self.normalize(job)]
            for table, job in sorted(self.newest(state).items())
        }

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change | PlanError:
        spec = resource.spec
        table = table_of(spec)
        name = str(spec["source"]["connectionName"])
        connection = _connection_after(name, context)
        reads = stream_of(connection, name)
        if reads is None:
            found = (
                "does not exist"
                if connection is None
                else f"is a {connection.get('type')} connection"
            )
            return PlanError(
                self.kind, resource.name,
                f"connection {name} {found}; a streaming job reads a "
                f"{', '.join(connection_types.STREAMING_SOURCE_TYPES)} connection",
                resource.location.file, PlanErrorCode.MISSING if connection is None else
                PlanErrorCode.FORBIDDEN,
            )  # fmt: skip
        read_from = str(spec.get("readFromPoint", "latest"))
        job = self.newest(context.live).get(table)
        if job is None or status_of(job) in TERMINAL_STATUSES:
            return self._create(resource, context, job, reads, read_from)
        status = status_of(job)
        was = _reads_now(job, context) or f"connection {connection_of(job)}, which is gone"
        compared = self.compare(spec, job)
        data = tuple(c for c in compared.changes if c.field != "status")
        wanted = str(compared.desired["status"])
        extra: dict[str, Any] = {"private": PlannedStream(str(job["id"]), status)}

        def update(reason: Reason, detail: str, **more: Any) -> Change:
            return self.change(
                resource, Action.UPDATE, reason, detail, job, compared.changes, context.options,
                compared, **extra, **more,
            )  # fmt: skip

        if was != reads:
            warning = (
                f"CHECKPOINT: table {table} would read {reads} instead of {was}: the new job "
                f"starts at {read_from} ({effect(read_from)}: "
                + ("everything the topic holds is read again" if read_from == "earliest"
                   else "what is sent before the new job starts is never read")
                + "); apply refuses without --allow-checkpoint-change"
            )  # fmt: skip
            return update(
                Reason.CHECKPOINT,
                f"update (CHECKPOINT: starts at {read_from}: {effect(read_from)}): table {table} "
                f"reads {reads}, not {was}",
                warnings=(warning,),
            )
        if data and all(c.field == "readFromPoint" for c in data):
            return update(
                Reason.UNTIL_RESET,
                f"update (no effect until reset): readFromPoint becomes {read_from}; the new job "
                f"continues from the checkpoint, and only `reconciler reset {table}` moves it",
            )
        if data:
            notes = ("readFromPoint takes effect only at a reset",) if any(
                c.field == "readFromPoint" for c in data
            ) else ()  # fmt: skip
            return update(
                Reason.CONTINUES,
                f"update (continues from the checkpoint): {fields_of(data)} differ; a new job "
                f"replaces job {job['id']} on {reads}"
                + ("; then suspended" if wanted == "suspended" else ""),
                notes=notes,
            )
        if wanted != _status_of_request(job):
            action = Action.SUSPEND if wanted == "suspended" else Action.RESUME
            verb = "suspended" if wanted == "suspended" else "resumed"
            detail = (
                f"{action} job {job['id']} ({status}); it is {verb} where it stands: "
                + ("events sent meanwhile wait in the stream" if wanted == "suspended" else
                   "it reads what was sent while it was suspended, from the checkpoint")
            )  # fmt: skip
            return self.change(
                resource, action, Reason.STATUS_DIFFERS, detail, job, compared.changes,
                context.options, compared, **extra,
            )  # fmt: skip
        health = job.get("health")
        health = health if isinstance(health, Mapping) else {}
        if health.get("status") == "error":
            detail = (
                f"up to date, but job {job['id']} is unhealthy: {health.get('code', 'error')}: "
                f"{health.get('message', 'no message')}"
            )
            return self.change(
                resource, Action.NOOP, Reason.UNHEALTHY, detail, job, compared=compared, **extra
            )
        detail = f"up to date: job {job['id']} ({status}) reads {reads}"
        if health.get("status") == "warn":
            detail += f"; health warn: {health.get('code', 'warn')}: {_warned(health)}"
            return self.change(
                resource, Action.NOOP, Reason.HEALTH_WARN, detail, job, compared=compared, **extra
            )
        return self.change(
            resource, Action.NOOP, Reason.UP_TO_DATE, detail, job, compared=compared, **extra
        )

    def review(self, changes: list[Change], context: PlanContext) -> list[Change]:
        """Warn on a Connection change that moves a streaming job no manifest declares to another
        topic or stream (a declared one is planned as a checkpoint change of its own)."""
        declared = {
            table_of(r.spec) for (kind, _), r in context.resources.items() if kind is self.kind
        }
        reading: dict[str, list[str]] = {}
        for table, job in self.live(context.live).items():
            if table not in declared:
                reading.setdefault(connection_of(job), []).append(table)
        if not reading:
            return changes
        reviewed = []
        for change in changes:
            tables = reading.get(change.name, []) if change.kind is Kind.CONNECTION else []
            was = stream_of(context.live.by_name(Kind.CONNECTION).get(change.name), change.name)
            after = stream_of(change.desired, change.name) if change.desired else None
            if tables and change.action is not Action.NOOP and was != after:
                warning = (
                    f"CHECKPOINT: the streaming jobs of tables {', '.join(sorted(tables))}, which "
                    f"no manifest declares, read this connection: they would read "
                    f"{after or 'nothing'} instead of {was}, re-reading or skipping data; declare "
                    "them (reconciler import --kind StreamingJob) to see what each will do"
                )
                change = dataclasses.replace(change, warnings=(*change.warnings, warning))
            reviewed.append(change)
        return reviewed

    def _create(
        self, resource: Resource, context: PlanContext, previous: Mapping[str, Any] | None,
        reads: str, read_from: str,
    ) -> Change:  # fmt: skip
        table = table_of(resource.spec)
        if previous is None:
            why, detail = Reason.NOT_FOUND, f"no streaming job on table {table}"
        else:
            status = status_of(previous)
            health = previous.get("health")
            cause = ""
            if status == "failed" and isinstance(health, Mapping):
                cause = f": {health.get('code', 'failed')}: {health.get('message', '')}"
            why = Reason.FAILED if status == "failed" else Reason.NOT_FOUND
            detail = f"job {previous['id']} {status}{cause}"
        earlier = _reads_now(previous, context) if previous is not None else None
        start = (
            "continues from the checkpoint"
            if earlier == reads
            else f"starts at {read_from} unless the table has read it before"
        )
        detail = f"{detail}; a new job reads {reads} ({start})"
        return self.created(resource, why, detail)

    def requests(
        self, action: Action, name: str, spec: Mapping[str, Any], live: Mapping[str, Any] | None,
        changed: tuple[FieldChange, ...], options: PlanOptions,
    ) -> tuple[Request, ...]:  # fmt: skip
        wanted = spec.get("status", "running")
        if action in (Action.SUSPEND, Action.RESUME) and live is not None:
            status = "suspended" if action is Action.SUSPEND else "running"
            path = self.path(str(live["id"]), "status")
            return (Request("POST", path, {"desiredExecutionStatus": status}),)
        if action not in (Action.CREATE, Action.UPDATE):
            return ()
        body: dict[str, Any] = {
            "type": "streaming",
            **{key: value for key, value in spec.items() if key != "status"},
        }
        # A replacement replaces the running job; a create never replaces one it did not see.
        body["replaceRunning"] = action is Action.UPDATE
        requests = [Request("POST", self.path(), body)]
        if wanted == "suspended":
            suspend = {"desiredExecutionStatus": "suspended"}
            requests.append(Request("POST", f"{self.path()}/{NEW_JOB}/status", suspend))
        return tuple(requests)

    # Applying -------------------------------------------------------------------------------

    def get(self, client: JobApi, name: str) -> Mapping[str, Any] | None:
        """The streaming job of table `name` (a streaming job is known by its table)."""
        return self.current(client, name)

    def operate(self, verb: str, client: JobApi, name: str) -> Reset | None:
        """`reset` (the only verb in `operations`) of table `name`'s streaming job; None when
        the table has none running or suspended."""
        job = self.current(client, name)
        if job is None:
            return None
        connection = connection_of(job)
        reads = stream_of(client.read("connections", connection), connection)
        return Reset(name, job, reads, self.path(str(job["id"]), "reset"), client)

    def current(self, client: JobApi, table: str) -> dict[str, Any] | None:
        """The table's streaming job that is not over, as Polaris has it now."""
        for summary in streaming(client.iter_jobs(type="streaming", targetTableName=table)):
            if status_of(summary) not in TERMINAL_STATUSES and table_of(summary) == table:
                return client.get_job(str(summary["id"]))
        return None

    def apply(self, change: Change, provider: Applying) -> Outcome:
        client = provider.client
        if change.action in (Action.SUSPEND, Action.RESUME):
            wanted = "suspended" if change.action is Action.SUSPEND else "running"
            return self._status(change, client, str(planned_stream(change).job_id), wanted)
        post, *after = change.requests
        body = dict(post.body or {})
        created = self._replace(change, provider, table_of(body), body)
        if isinstance(created, Outcome):
            return created
        job_id = str(created["id"])
        verb = "replaced" if change.action is Action.UPDATE else "created"
        if after:
            suspended = self._status(change, client, job_id, "suspended")
            if suspended.status != "done":
                return dataclasses.replace(
                    suspended, message=f"{verb} as job {job_id}, but {suspended.message}"
                )
            return Outcome(
                change, "done", f"{verb} as job {job_id}, suspended", JobReport(job_id, created)
            )
        return Outcome(change, "done", f"{verb} as job {job_id}", JobReport(job_id, created))

    def _replace(
        self, change: Change, provider: Applying, table: str, body: dict[str, Any]
    ) -> Mapping[str, Any] | Outcome:
        """POST the job; before each attempt, read the table's job: after a POST whose answer
        was lost, a job newer than the plan's with the desired spec is ours, never posted twice."""
        from reconciler.client import AmbiguousWriteError  # deferred: loads httpx

        client = provider.client
        wanted = {key: value for key, value in body.items() if key in self.fields.writable}
        for attempt in range(AMBIGUOUS_WRITE_ATTEMPTS + 1):
            now = self.current(client, table)
            if now is not None and str(now["id"]) != planned_stream(change).job_id:
                spec = {**wanted, "status": request_of(now)["status"]}
                if not self.compare(spec, now).changes:
                    return now  # ours (an answer lost), or someone made the same change
                return Outcome(
                    change, "failed",
                    f"table {table} has another streaming job since the plan (job {now['id']}, "
                    f"{status_of(now)}); run plan again to review it",
                )  # fmt: skip
            if attempt == AMBIGUOUS_WRITE_ATTEMPTS:
                break  # the last read found no job of ours: give up without posting again
            stop = provider.fence.check()  # right before the POST, as for batch jobs
            if stop is not None:
                lost = ", and a POST whose answer was lost may still land" if attempt else ""
                return Outcome(change, "failed", f"not attempted: {stop}{lost}; run plan to check")
            try:
                created: Mapping[str, Any] = client.create_job(body)
                return created
            except AmbiguousWriteError:
                continue
        return Outcome(
            change, "failed",
            f"the streaming job of table {table} could not be confirmed after "
            f"{AMBIGUOUS_WRITE_ATTEMPTS} attempts; run plan to see what Polaris has",
        )  # fmt: skip

    def _status(self, change: Change, client: JobApi, job_id: str, wanted: str) -> Outcome:
        """Suspend or resume a job; a lost answer is read back before asking again."""
        from reconciler.client import AmbiguousWriteError  # deferred: loads httpx

        path = self.path(job_id, "status")
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            job = client.get_job(job_id)
            if job is None or status_of(job) in TERMINAL_STATUSES:
                state = "gone" if job is None else status_of(job)
                return Outcome(change, "failed", f"job {job_id} is {state}; run plan again")
            if request_of(job)["status"] == wanted:
                return Outcome(change, "done", f"job {job_id} {wanted}", JobReport(job_id, job))
            try:
                client.post(path, {"desiredExecutionStatus": wanted})
            except AmbiguousWriteError:
                continue
        return Outcome(
            change, "failed", f"job {job_id} could not be made {wanted}; run apply again"
        )

    # Import ---------------------------------------------------------------------------------

    def imported(self, state: LiveView, reader: Importing) -> Iterable[ManifestFile]:
        """Every table's streaming job that is not over, as a manifest that plans no change (the
        live read keeps each table's job not over, else its newest)."""
        newest = self.newest(state).values()
        chosen = [job for job in newest if status_of(job) not in TERMINAL_STATUSES]
        for job in sorted(chosen, key=table_of):
            table = table_of(job)
            if not reader.wants(self.kind, table) or not reader.nameable(Kind.TABLE, table):
                continue
            spec = reader.writable(self, request_of(job))
            # Polaris's own __count mapping, and the format's defaults, as a batch job's.
            spec["mappings"] = [
                {k: v for k, v in m.items() if v is not None}
                for m in spec.get("mappings", [])
                if _batch_shaped({}, [m])["mappings"]
            ]
            settings = spec.get("source", {}).get("formatSettings", {})
            fills = {"formatSettings": {"format": settings.get("format")}}
            filled = _batch_shaped(fills, [])["source"]["formatSettings"]
            reader.drop_defaults(settings, {k: v for k, v in filled.items() if k != "format"})
            reader.drop_defaults(spec, self.fields.defaults)
            name = table  # the handle: one streaming job per table
            comments = [
                f"Polaris streaming job {reader.shown(str(job['id']))}, "
                f"{reader.shown(status_of(job))}."
            ]
            yield reader.manifest(self.kind, name, spec, reader.path(self.kind, name), comments, ())


def _batch_shaped(source: Any, mappings: Any) -> dict[str, Any]:
    """A job request's source and mappings as the IngestionJob kind compares them: input fields
    by name, format defaults filled, Polaris's __count mapping left out, isAggregation derived.
    A streaming job's compare the same way, so the rule is asked of that kind, in one place."""
    return registry.of(Kind.INGESTION_JOB).shape(
        {
            "source": dict(source) if isinstance(source, Mapping) else {},
            "mappings": list(mappings) if isinstance(mappings, list) else [],
        }
    )


def _warned(health: Mapping[str, Any]) -> str:
    """A warn health's message: Polaris puts it in its log entry."""
    log = health.get("log")
    message = health.get("message") or (log.get("message") if isinstance(log, Mapping) else None)
    return str(message or "no message")


def _status_of_request(job: Mapping[str, Any]) -> str:
    return str(request_of(job)["status"])


def _connection_after(name: str, context: PlanContext) -> Mapping[str, Any] | None:
    """A connection as this plan leaves it: as a manifest manages it, else as it is live."""
    declared = context.resources.get((Kind.CONNECTION, name))
    if declared is not None and not declared.external and declared.spec:
        return declared.spec
    return context.live.by_name(Kind.CONNECTION).get(name)


def _reads_now(job: Mapping[str, Any], context: PlanContext) -> str | None:
    """What a live job reads now: its connection's topic or stream as it is live."""
    name = connection_of(job)
    return stream_of(context.live.by_name(Kind.CONNECTION).get(name), name)


def _check(
    job: Resource, declared: Mapping[tuple[Kind, str], Resource], locate: Locate
) -> list[ManifestError]:
    """The checks a StreamingJob needs other documents for, and those on its mappings."""
    errors: list[ManifestError] = []
    spec, source = job.spec, job.spec["source"]
    name = source["connectionName"]
    connection = declared.get((Kind.CONNECTION, name))
    kind = connection_types.of(connection.spec) if connection is not None else None
    if connection is not None and kind is not None and kind.stream_field is None:
        errors.append(
            ManifestError(
                locate(job, ("source", "connectionName")),
                f"source.connectionName '{name}' is a connection of type {kind.name} (at "
                f"{connection.location}); streaming jobs read "
                f"{', '.join(connection_types.STREAMING_SOURCE_TYPES)} connections",
                job.ref,
            )
        )
    table = declared.get((Kind.TABLE, table_of(spec)))
    if table is None and not spec.get("createTableIfNotExists", False):
        errors.append(
            ManifestError(
                locate(job, ("target", "tableName")),
                f"target.tableName '{table_of(spec)}' names no declared Table and "
                "createTableIfNotExists is false; declare the Table or set "
                "createTableIfNotExists: true",
                job.ref,
            )
        )
    mappings = spec.get("mappings", [])
    if not any(m["columnName"] == TIME_COLUMN for m in mappings):
        errors.append(
            ManifestError(
                locate(job, ("mappings",)) if "mappings" in spec else job.location,
                "no mapping for __time; add one such as "
                "{columnName: __time, expression: 'TIME_PARSE(\"timestamp\")'}",
                job.ref,
            )
        )
    known = {field["name"] for field in source["inputSchema"]}
    for index, mapping in enumerate(mappings):
        for identifier in (m.group(1) for m in SQL_TOKEN.finditer(mapping["expression"])):
            field_name = identifier.replace('""', '"') if identifier else None
            if field_name is None or field_name in known or field_name == TIME_COLUMN:
                continue
            import difflib  # defers difflib: only a mapping with a mistake needs it

            close = difflib.get_close_matches(field_name, sorted(known), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            errors.append(
                ManifestError(
                    locate(job, ("mappings", index, "expression")),
                    f"mapping for '{mapping['columnName']}' refers to \"{field_name}\", which is "
                    f"not in source.inputSchema{hint}",
                    job.ref,
                )
            )
    return errors


# Reset ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reset:
    """What `reconciler reset TABLE` would do: move the table's read point on the topic or stream
    its streaming job reads to the job's readFromPoint (POST /jobs/{id}/reset). An `Operation`
    (reconciler.ports): the manager describes it for approval, then runs it once."""

    table: str
    job: Mapping[str, Any]
    reads: str | None  # the topic or stream, None when its connection is gone
    path: str  # where the reset is posted: POST /jobs/{id}/reset
    client: JobApi = dataclasses.field(repr=False, compare=False)

    @property
    def read_from(self) -> str:
        """Where the read point moves: earliest or latest."""
        return str(request_of(self.job).get("readFromPoint") or "latest")

    def describe(self) -> str:
        """The reset as a reviewer reads it before approving it."""
        what = (
            "everything the source still holds is read again (duplicates in the table)"
            if self.read_from == "earliest"
            else "what was sent and not yet read is skipped (never ingested)"
        )
        return (
            f"reset table {self.table}'s streaming job {self.job['id']} "
            f"({status_of(self.job)}), which reads {self.reads or 'a connection that is gone'}: "
            f"its read point moves to {self.read_from}, so it {effect(self.read_from)}: {what}"
        )

    def run(self) -> str:
        """Reset the job, once: a reset whose answer was lost is never sent again, since a
        second one would re-read (earliest) or skip (latest) what was read since the first."""
        from reconciler.client import AmbiguousWriteError, PolarisError  # deferred: loads httpx

        job_id = str(self.job["id"])
        try:
            self.client.post(self.path, None)
        except AmbiguousWriteError as error:
            raise PolarisError(
                f"the reset of job {job_id} may or may not have happened ({error}); it is not "
                "sent again: check the table before resetting again"
            ) from None
        return f"reset table {self.table}'s streaming job {job_id} to {self.read_from}"
