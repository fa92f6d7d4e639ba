"""IngestionJob: a batch job that reads objects through an S3 connection into a table.

A job is never updated: it is identified by its spec (its fingerprint), not by its name, and one
that has run is never submitted again. Everything that decides "has this been ingested?" is here:
what identifies a job (`fingerprint`, over where its connection points: reconciler/identity.py),
which live jobs satisfy or overlap a manifest job, and how apply submits each job once
(`Submissions`: a view of each table's jobs, the lock's fence before each POST, and a check for a
late duplicate after one when another writer may have posted beside it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler import connection_types
from reconciler.globs import GlobError, GlobTooLarge, JavaGlobError, compile_glob, sequences
from reconciler.identity import Overlap, OverlapIndex, Place, Reads, place_of, reads_of
from reconciler.kinds import registry
from reconciler.kinds.base import Comparison, Fields, Locate, PlanContext, ResourceKind, fields_of
from reconciler.kinds.registry import register
from reconciler.model import Action, Kind, ManifestError, Path, Reason, Resource
from reconciler.names import name_problem, shown
from reconciler.normalize import diff, identical, plain
from reconciler.ports import Applying, Importing, LiveReading, LiveView, PlanView
from reconciler.values import Change, FieldChange, ManifestFile, Outcome, PlanOptions, Request

if TYPE_CHECKING:
    from reconciler.listing import Job, Listing

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
ACTIVE_STATUSES = frozenset({"pending", "running"})
# Every status this tool knows what to do with; any other (the API documents `unknown`) may
# have ingested, and is never resubmitted or ingested again without --allow-reingest.
KNOWN_STATUSES = TERMINAL_STATUSES | ACTIVE_STATUSES
# Statuses that mean "this spec has been, or is being, ingested": never submit it again.
SATISFIED_STATUSES = frozenset({"pending", "running", "completed"})

FORMAT_DEFAULTS: dict[str, dict[str, Any]] = {
    "csv": {"columns": [], "skipHeaderRows": 0, "delimiter": ","},
    "parquet": {"binaryAsString": False},
}
# Polaris appends this mapping to every job with aggregations (the S3 guide's sample response,
# tests/reference/polaris-s3-ingestion-guide.txt).
SERVER_ADDED_MAPPING = {"columnName": "__count", "expression": "COUNT(*)"}
SELECTORS = ("uris", "prefixes", "objects")  # sets of keys: order carries no meaning
TIME_COLUMN = "__time"
# A Druid SQL expression: string literals ('' escapes a quote) are skipped, so a " inside one
# is text; double-quoted identifiers ("" escapes a quote) are the input fields it reads.
SQL_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"((?:[^\"]|\"\")+)\"")
# Functions that aggregate rows (Polaris SQL, the Druid aggregators it exposes); a mapping whose
# expression calls one is a rollup. Quoted identifiers and string literals are removed first, so
# a column named "max" or a literal 'SUM(' is not mistaken for one.
AGGREGATE_CALL = re.compile(
    r"\b(SUM|MIN|MAX|COUNT|AVG|LATEST|EARLIEST|LATEST_BY|EARLIEST_BY|ANY_VALUE|APPROX_\w+|"
    r"DS_\w+|HLL_SKETCH_\w+|THETA_SKETCH\w*|TUPLE_\w+|STDDEV\w*|VARIANCE\w*|VAR_\w+|"
    r"BIT_AND|BIT_OR|BIT_XOR|ARRAY_AGG|STRING_AGG|LISTAGG|GROUPING)\s*\(",
    re.IGNORECASE,
)
QUOTED = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'')
MAX_WARNINGS = 5  # per change; the rest are counted
AMBIGUOUS_WRITE_ATTEMPTS = 5  # each one is preceded by a read of live state
VISIBILITY_TIMEOUT = 30.0
# What the reconciler uses of a job: which one, its state and since when, and the request it was
# created from. When Polaris returns the request under `spec`, the top-level echo of the same
# fields is dropped: every job into a declared table is kept in memory (and finished ones on
# disk), and the echo would double that.
ESSENTIAL_FIELDS = ("id", "executionStatus", "health", "createdTimestamp", "spec")


def aggregates(expression: str) -> bool:
    """Whether a mapping expression aggregates (and so the mapping is `isAggregation: true`)."""
    return AGGREGATE_CALL.search(QUOTED.sub(" ", expression)) is not None


def request_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request a job was created from: a live job carries it under `spec` (the OpenAPI's
    BatchJobResponse), the most faithful record, so it is preferred to the top-level echo."""
    echoed = job.get("spec")
    return echoed if isinstance(echoed, Mapping) and "source" in echoed else job


def fingerprint(job_spec: Mapping[str, Any], place: Mapping[str, str] | None = None) -> str:
    """The identity of a batch job: sha256 of the canonical JSON of its normalized spec.

    With `place` (the connection's endpoint, bucket and prefix, see identity.Place), the
    connection's name is replaced by where it reads from: a renamed connection, or another
    connection on the same bucket and prefix, reads the same objects, so the job is the same.
    """
    spec = INGESTION_JOB.normalize(job_spec, copy=False)  # read once, below, then dropped
    if place is not None:
        source = spec["source"]
        source.pop("connectionName", None)
        source["location"] = dict(place)
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class LiveJob:
    """A batch job as Polaris reports it, with the fingerprint of its spec and what it reads."""

    id: str
    status: str
    fingerprint: str  # over its place when its connection exists, else over the connection name
    table: str
    connection: str
    body: Mapping[str, Any]  # the job from GET /jobs/{id}; `of` keeps its ESSENTIAL_FIELDS
    reads: Reads | None = None
    # The same job read through the other place its connection may have had when it ran: the
    # place a manifest declares for that connection, when the live one differs (someone moved it
    # behind git's back, and apply is about to move it back). A job matches either reading, so
    # neither a noop is missed nor an overlap: both err towards not ingesting again.
    alternatives: tuple[tuple[str, Reads], ...] = ()
    # Its request in compared form (normalized), made once by `of` and shared by every plan
    # change about it; `body` then holds it under `spec`, in place of the request as returned.
    compared: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        body: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]],
        declared: Mapping[str, Place] | None = None,
    ) -> LiveJob:
        """A job read from Polaris, resolved through the project's connections as they are now
        (and as the manifests declare them, where those differ).

        Its identity is taken from the request as Polaris returned it; then only the request's
        compared form is kept (every job into a declared table is held until the plan is
        rendered): a plan compares it, and shares it with the manifest's where they are equal.
        """
        table, connection = job_key(body)
        current = connections.get(connection)
        place = place_of(current) if current is not None else None
        spec = request_of(body)
        other = (declared or {}).get(connection)
        alternatives: tuple[tuple[str, Reads], ...] = ()
        if other is not None and other != place:
            alternatives = ((fingerprint(spec, other.to_json()), reads_of(spec, other)),)
        compared = INGESTION_JOB.normalize(spec)
        kept = {key: plain(body[key]) for key in ESSENTIAL_FIELDS if key in body and key != "spec"}
        kept["spec"] = compared
        return cls(
            id=str(body["id"]),
            status=str(body.get("executionStatus") or "unknown"),
            fingerprint=fingerprint(spec, place.to_json() if place else None),
            table=table,
            connection=connection,
            body=kept,
            reads=reads_of(spec, place),
            alternatives=alternatives,
            compared=compared,
        )

    @classmethod
    def parse(
        cls,
        body: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]],
        declared: Mapping[str, Place] | None = None,
    ) -> LiveJob:
        """`of`, for a body from the API: one whose fields have types the API never sends is a
        MalformedResponseError naming the job, never an exception from deep inside `of`."""
        from reconciler.client import MalformedResponseError  # deferred: loads httpx

        try:
            return cls.of(body, connections, declared)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            raise MalformedResponseError(
                f"GET /jobs/{body.get('id')}: Polaris answered with a job whose fields do not "
                f"have the documented types ({type(error).__name__}: {error}); is POLARIS_URL "
                "the API?"
            ) from None

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
        """The request the job was created from (in compared form, for a job made by `of`)."""
        return self.compared if self.compared is not None else request_of(self.body)


def job_key(job: Mapping[str, Any]) -> tuple[str, str]:
    """(target table, connection) of a job, whatever the shape of its body."""
    request = request_of(job)
    target, source = request.get("target"), request.get("source")
    target = target if isinstance(target, Mapping) else {}
    source = source if isinstance(source, Mapping) else {}
    return str(target.get("tableName", "")), str(source.get("connectionName", ""))


def overlap_index(jobs: Iterable[LiveJob]) -> OverlapIndex[LiveJob]:
    """Live jobs by table and by every reading of what they read (an overlap may list a job twice)."""
    return OverlapIndex(
        (job, job.table, reads) for job in jobs for _, reads in job.readings if reads is not None
    )


def essentials(job: dict[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a job read from Polaris."""
    echoed = job.get("spec")
    if not isinstance(echoed, Mapping) or "source" not in echoed:
        return job
    return {key: job[key] for key in ESSENTIAL_FIELDS if key in job}


def declared_places(resources: Iterable[Resource]) -> dict[str, Place]:
    """Where each connection the manifests manage points (external ones are not declared here)."""
    return {
        r.name: place_of(r.spec)
        for r in resources
        if r.kind is Kind.CONNECTION and not r.external and "bucket" in r.spec
    }


def connection_places(
    resources: Iterable[Resource], connections: Mapping[str, Mapping[str, Any]]
) -> dict[str, Place]:
    """Where each connection reads from once the plan is applied: as declared, else as it is live."""
    places = {name: place_of(connection) for name, connection in connections.items()}
    places.update(
        {
            r.name: place_of(r.spec)
            for r in resources
            if r.kind is Kind.CONNECTION and not r.external and r.spec
        }
    )
    return places


def job_identity(spec: Mapping[str, Any], places: Mapping[str, Place]) -> tuple[str, Reads]:
    """A manifest job's fingerprint (over its connection's place) and the objects it reads."""
    place = places.get(str(spec["source"]["connectionName"]))
    return fingerprint(spec, place.to_json() if place else None), reads_of(spec, place)


@register
class IngestionJob(ResourceKind):
    """A batch ingestion job (`type: batch`, the only type a manifest declares)."""

    kind = Kind.INGESTION_JOB
    collection = "jobs"
    imported_by_default = False  # only with `reconciler import --jobs`
    schema_file = "ingestionjob.schema.json"
    fields = Fields(
        writable=(
            "type", "target", "createTableIfNotExists", "source", "mappings", "ingestionMode",
            "filterExpression", "maxParseExceptions", "partitionedBy", "clusteringColumns",
            "replaceAll", "context",
        ),
        defaults={
            "createTableIfNotExists": False, "ingestionMode": "append",
            "maxParseExceptions": 2147483647, "replaceAll": False, "mappings": [], "context": {},
            "clusteringColumns": [],
        },
        read_only=(
            "id", "executionStatus", "health", "createdBy", "createdTimestamp",
            "lastModifiedBy", "lastUpdatedTimestamp", "desiredExecutionStatus", "spec",
        ),
    )  # fmt: skip

    def request_of(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return request_of(body)

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        source = dict(spec.get("source", {}))
        settings = dict(source.get("formatSettings", {}))
        for name, default in FORMAT_DEFAULTS.get(settings.get("format", ""), {}).items():
            settings.setdefault(name, default)
        if settings:
            source["formatSettings"] = settings
        for selector in SELECTORS:
            if isinstance(source.get(selector), list):
                source[selector] = sorted(source[selector])
            elif selector in source and source[selector] is None:
                del source[selector]
        if source.get("pattern") is None:
            source.pop("pattern", None)
        source["inputSchema"] = sorted(
            source.get("inputSchema", []), key=lambda f: str(f.get("name"))
        )
        spec["source"] = source
        # Polaris appends a __count mapping to rollups, so it is not part of a job's identity; it
        # does not echo isAggregation, which changes what lands in the table: where a spec leaves
        # it out, it is derived from the expression (an aggregate call means aggregation).
        mappings = [
            {k: v for k, v in mapping.items() if k != "isAggregation"}
            for mapping in spec.get("mappings", [])
        ]
        explicit = [mapping.get("isAggregation") for mapping in spec.get("mappings", [])]
        spec["mappings"] = sorted(
            (
                {
                    **m,
                    "isAggregation": bool(
                        aggregates(str(m.get("expression", ""))) if flag is None else flag
                    ),
                }
                for m, flag in zip(mappings, explicit, strict=True)
                if m != SERVER_ADDED_MAPPING
            ),
            key=lambda m: str(m.get("columnName")),
        )
        target = dict(spec.get("target", {}))
        if not target.get("intervals"):
            target.pop("intervals", None)
        spec["target"] = target
        return spec

    def identity(self, spec: Mapping[str, Any]) -> str | None:
        return fingerprint(spec)

    # Validation -----------------------------------------------------------------------------

    def document_problems(self, spec: Mapping[str, Any]) -> list[tuple[Path, str]]:
        # The names a job sends in paths and query parameters.
        problems: list[tuple[Path, str]] = []
        for path, reserved in (
            (("source", "connectionName"), False),
            (("target", "tableName"), True),
        ):
            value = spec[str(path[0])][str(path[1])]
            field = ".".join(("spec", *map(str, path)))
            problem = name_problem(value, field)
            if problem is None and reserved:
                problem = registry.of(Kind.TABLE).reserved(value)
            if problem:
                problems.append((path, problem))
        return problems

    def dependencies(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        return (
            (Kind.CONNECTION, str(spec["source"]["connectionName"])),
            (Kind.TABLE, str(spec["target"]["tableName"])),
        )

    def creates(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        if spec.get("createTableIfNotExists"):
            return ((Kind.TABLE, str(spec["target"]["tableName"])),)
        return ()

    def cross_check(
        self, resources: list[Resource], declared: Mapping[tuple[Kind, str], Resource],
        locate: Locate,
    ) -> list[ManifestError]:  # fmt: skip
        errors: list[ManifestError] = []
        for job in resources:
            errors.extend(_check_job(job, declared, locate))
        # A job's identity is its spec: two manifests with one spec would be one job in Polaris,
        # and the first apply would submit it twice.
        first_with: dict[str, Resource] = {}
        for job in resources:
            other = first_with.setdefault(job.fingerprint or fingerprint(job.spec), job)
            if other is not job:
                errors.append(
                    ManifestError(
                        job.location,
                        f"{job.ref} has the same spec as {other.ref} (at {other.location}); "
                        "a job is identified by its spec, so remove one of them",
                        job.ref,
                    )
                )
        return errors

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading[LiveJob]) -> None:
        """The paged job list (batch jobs only), and `GET /jobs/{id}` for every job into a table
        a manifest job targets, whatever its connection: the list's summaries name the table and
        the connection but not the objects, and a job on another connection to the same bucket
        may have read the same objects. Finished jobs never change: their details are cached."""
        client, cache = reader.client, reader.cache
        wanted = {str(r.spec["target"]["tableName"]) for r in reader.of_kind(self.kind)}
        declared = declared_places(reader.resources)
        listed = reader.listed_connections

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

        def live_job(summary: Mapping[str, Any]) -> LiveJob | None:
            # Resolved (fingerprinted) in the worker that read it, while other reads are in
            # flight. None when Polaris's retention deleted the job between list and read.
            body = details(summary)
            connections = listed.result() if listed is not None else {}
            return None if body is None else LiveJob.parse(body, connections, declared)

        # Details are fetched as soon as their page arrives, while later pages are still read;
        # pages are read by the same workers, so no more than `parallelism` are in flight.
        pending = []
        for summary in client.iter_jobs(type="batch", read_ahead=reader.pool):
            table, connection = job_key(summary)
            if summary.get("executionStatus") in ACTIVE_STATUSES and connection:
                reader.active_connections.add(connection)
            if table in wanted:
                if listed is not None and listed.done():
                    listed.result()  # a failed read of the connections ends the reading
                pending.append(reader.pool.submit(live_job, summary))

        def resolve() -> None:
            reader.jobs = [job for future in pending if (job := future.result()) is not None]

        reader.then(resolve)

    def digest(self, state: LiveView[LiveJob]) -> Any:
        # Statuses reduced to what decides an action; which connections active jobs use (prune).
        jobs = sorted(
            [
                job.id,
                job.fingerprint,
                "satisfied" if job.status in SATISFIED_STATUSES else job.status,
            ]
            for job in state.jobs
        )
        return {"jobs": jobs, "activeConnections": sorted(state.active_job_connections)}

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change:
        listing = context.listings.get(resource.name)
        return with_listing(self._plan(resource, context, listing), listing)

    def _plan(self, resource: Resource, context: PlanContext, listing: Listing | None) -> Change:
        live, options = context.live, context.options
        spec = resource.spec
        table = spec["target"]["tableName"]
        places = plan_places(context)
        mine, reads = job_identity(spec, places)
        same = [job for job in live.by_fingerprint.get(mine, ()) if job.table == table]
        place = places.get(str(spec["source"]["connectionName"]))

        def change(
            action: Action, reason: Reason, detail: str, job: LiveJob | None = None,
            changed: tuple[FieldChange, ...] = (), warnings: tuple[str, ...] = (),
            notes: tuple[str, ...] = (),
        ) -> Change:  # fmt: skip
            return self.change(
                resource, action, reason, detail, job.spec if job else None, changed, options,
                compared=self.compared(spec, job) if job else None, warnings=warnings,
                notes=notes, job_id=job.id if job else None, status=job.status if job else None,
                fingerprint=mine, reingest=bool(warnings), place=place,
            )  # fmt: skip

        # The job's identity is what it reads and how, never metadata.name or the connection's
        # name: a renamed manifest, or a renamed connection, finds its job here.
        satisfied = [job for job in same if job.status in SATISFIED_STATUSES]
        if satisfied:
            job = newest(satisfied)
            verb = {"completed": "already ingested by", "running": "being ingested by"}
            via = ""
            if job.connection != spec["source"]["connectionName"]:
                via = (
                    f" through connection {job.connection} (same endpoint, bucket and prefix "
                    f"as {spec['source']['connectionName']})"
                )
            detail = f"{verb.get(job.status, 'queued as')} job {job.id} ({job.status}){via}"
            return change(Action.NOOP, Reason.INGESTED, detail, job)
        undecided = [job for job in same if job.status not in KNOWN_STATUSES]
        if undecided:
            job = newest(undecided)
            warning = (
                f"UNKNOWN STATUS: job {job.id} with this very spec has execution status "
                f"'{job.status}', so it may have ingested these objects; submitting again could "
                "ingest them twice (apply refuses without --allow-reingest)"
            )
            detail = f"job {job.id} is {job.status}; whether it ingested is not known"
            return change(Action.RESUBMIT, Reason.UNKNOWN_STATUS, detail, job, warnings=(warning,))
        others = _overlapping(table, reads, live, exclude={job.id for job in same})
        warnings = _warnings(spec, table, others, listing)
        if same:
            job = newest(same)
            if job.status == "canceled" and not options.resubmit_canceled:
                detail = f"job {job.id} was canceled; pass --resubmit-canceled to submit it again"
                return change(Action.SKIP, Reason.CANCELED, detail, job)
            health = job.health
            cause = (
                f"{health.get('code', 'unknown')}: {health.get('message', 'no message')}"
                if job.status == "failed"
                else job.status
            )
            detail = f"job {job.id} {job.status} ({cause})"
            return change(Action.RESUBMIT, Reason.FAILED, detail, job, warnings=warnings)
        notes = job_notes(spec, live)
        if not others:
            return change(
                Action.CREATE, Reason.NOT_FOUND, "no live job with this spec", warnings=warnings,
                notes=notes,
            )  # fmt: skip
        previous = newest([overlap.item for overlap in others])
        compared = self.compared(spec, previous)
        changed = tuple(diff(compared.actual, compared.desired))
        detail = f"spec differs from job {previous.id} ({previous.status}) in {fields_of(changed)}"
        return dataclasses.replace(
            change(Action.CREATE, Reason.SPEC_CHANGED, detail, changed=changed, warnings=warnings,
                   notes=notes),
            before=compared.actual, desired=compared.desired,
        )  # fmt: skip

    def compared(self, spec: Mapping[str, Any], job: LiveJob) -> Comparison:
        """A manifest job's spec and a live job's request, compared: one form of each, and one
        for both where they are equal (a plan of 10,000 jobs in sync holds 10,000, not 30,000)."""
        actual = job.compared if job.compared is not None else self.normalize(job.spec)
        desired = self.normalize(spec, copy=False)  # shares values with `spec`: compared only
        desired = actual if identical(desired, actual) else self.normalize(spec)
        return Comparison(desired, actual, ())

    def review(self, changes: list[Change], context: PlanContext) -> list[Change]:
        """Warn about two jobs of this plan that would append the same objects into one table."""
        return _among_submitted(changes, context)

    def requests(
        self, action: Action, name: str, spec: Mapping[str, Any], live: Mapping[str, Any] | None,
        changed: tuple[FieldChange, ...], options: PlanOptions,
    ) -> tuple[Request, ...]:  # fmt: skip

        if action in (Action.CREATE, Action.RESUBMIT):
            return (Request("POST", self.path(), dict(spec)),)
        return ()

    # Applying -------------------------------------------------------------------------------

    def session(self, provider: Applying, plan: PlanView) -> Submissions:
        return Submissions(provider, plan)

    def apply(self, change: Change, provider: Applying) -> Outcome:
        submissions: Submissions = provider.session(self.kind)
        return submissions.submit(change)

    # Import ---------------------------------------------------------------------------------

    def imported(self, reader: Importing) -> Iterable[ManifestFile]:
        """Jobs that have run or are running, one per spec (the newest), grouped by table."""

        ids = [str(s["id"]) for s in reader.client.iter_jobs(type="batch")]
        bodies = [j for j in reader.pool.map(reader.client.get_job, ids) if j is not None]
        newest_by_spec: dict[str, Mapping[str, Any]] = {}
        for body in sorted(bodies, key=lambda b: str(b.get("createdTimestamp", "")), reverse=True):
            job = LiveJob(str(body["id"]), str(body.get("executionStatus")), "", "", "", body)
            table, connection = job_key(body)
            name = f"{table}-{job.id[:8]}"
            if not reader.wants(self.kind, name, table):
                continue
            ref = f"job {shown(job.id)} ({shown(table)})"
            if not table:  # an answer without the job's target: nothing to write a manifest for
                reader.skip(f"{ref}: Polaris answered it without a target table")
            elif name_problem(table) is not None or registry.of(Kind.TABLE).reserved(table):
                reader.skip(f"{ref}: its table's name cannot be written in a manifest")
            elif job.status not in SATISFIED_STATUSES:
                reader.skip(f"{ref}: {job.status}; a manifest for it would be planned as resubmit")
            elif connection not in reader.connections:
                reader.skip(f"{ref}: its connection {shown(connection)} no longer exists")
            elif (mine := fingerprint(body)) in newest_by_spec:
                other = shown(str(newest_by_spec[mine]["id"]))
                reader.skip(f"{ref}: same spec as the newer job {other}")
            else:
                newest_by_spec[mine] = body
        manifests = []
        names: set[str] = set()
        for kept in newest_by_spec.values():
            job_id = str(kept["id"])
            live_spec = request_of(kept)
            spec = self._manifest_spec(live_spec, reader)
            table = str(spec["target"]["tableName"])
            # A handle only (a job is identified by its spec): short, unique, within 255.
            name = f"{table[:200]}-{job_id[:8]}"
            if name in names:
                name = f"{table[:200]}-{job_id[:50]}"
            names.add(name)
            status = shown(str(kept.get("executionStatus")))
            comments = [f"Polaris job {shown(job_id)}, {status}."]
            if any(
                m.get("columnName") == SERVER_ADDED_MAPPING["columnName"]
                for m in live_spec.get("mappings", [])
            ):
                comments.append(
                    "Polaris does not return isAggregation: mark the aggregating mappings "
                    "(isAggregation: true) before reusing this spec for a new job."
                )
            path = reader.path(self.kind, job_id, folder=("jobs", table))
            finished = kept.get("executionStatus") in TERMINAL_STATUSES
            manifests.append(
                reader.manifest(self.kind, name, spec, path, comments, (), history=finished)
            )
        return sorted(manifests, key=lambda m: m.path)

    def _manifest_spec(self, live: Mapping[str, Any], reader: Importing) -> dict[str, Any]:
        spec = reader.writable(self, live)
        spec["mappings"] = [
            {k: v for k, v in m.items() if v is not None}
            for m in spec.get("mappings", [])
            if m != SERVER_ADDED_MAPPING
        ]
        source = spec.get("source", {})
        for selector in (*SELECTORS, "pattern"):
            if source.get(selector) is None:
                source.pop(selector, None)
        settings = source.get("formatSettings", {})
        reader.drop_defaults(settings, FORMAT_DEFAULTS.get(str(settings.get("format")), {}))
        target = spec.get("target", {})
        if not target.get("intervals"):
            target.pop("intervals", None)
        reader.drop_defaults(spec, self.fields.defaults)
        return spec


INGESTION_JOB = IngestionJob()  # for fingerprint(), which runs before the registry is asked


# Validation helpers ---------------------------------------------------------------------------


def _check_job(
    job: Resource, declared: Mapping[tuple[Kind, str], Resource], locate: Locate
) -> list[ManifestError]:
    import difflib  # deferred: only a job with a mistake needs it

    def at(*path: str | int) -> Any:
        return locate(job, path)

    errors: list[ManifestError] = []
    spec = job.spec
    source, target = spec["source"], spec["target"]
    connection = source["connectionName"]
    source_connection = declared.get((Kind.CONNECTION, connection))
    if source_connection is None:
        errors.append(
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' names no declared Connection; "
                "declare it (use policy: {manage: external} if it is managed elsewhere)",
                job.ref,
            )
        )
    elif (
        kind := connection_types.of(source_connection.spec)
    ) is not None and not kind.batch_source:
        errors.append(
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' is a connection of type {kind.name} "
                f"(at {source_connection.location}); batch jobs read only from "
                f"{' or '.join(connection_types.BATCH_SOURCE_TYPES)} connections, so name one",
                job.ref,
            )
        )
    table_name = target["tableName"]
    table = declared.get((Kind.TABLE, table_name))
    if table is None and not spec.get("createTableIfNotExists", False):
        errors.append(
            ManifestError(
                at("target", "tableName"),
                f"target.tableName '{table_name}' names no declared Table and "
                "createTableIfNotExists is false; declare the Table or set createTableIfNotExists: true",
                job.ref,
            )
        )
    mappings = spec.get("mappings", [])
    if not any(m["columnName"] == TIME_COLUMN for m in mappings):
        errors.append(
            ManifestError(
                at("mappings"),
                "no mapping for __time; add one such as "
                "{columnName: __time, expression: 'TIME_PARSE(\"timestamp\")'}",
                job.ref,
            )
        )
    aggregations = [m["columnName"] for m in mappings if m.get("isAggregation")]
    if aggregations and table is not None and table.spec.get("type") == "detail":
        errors.append(
            ManifestError(
                at("mappings"),
                f"mappings {', '.join(aggregations)} aggregate, but Table/{table_name} is a detail "
                "table; make the table aggregate or remove isAggregation",
                job.ref,
            )
        )
    for index, mapping in enumerate(mappings):
        explicit = mapping.get("isAggregation")
        if isinstance(explicit, bool) and explicit != aggregates(mapping["expression"]):
            # Polaris does not echo isAggregation, so a live job's is derived from its expression;
            # a manifest that says otherwise may never match the job it submitted.
            errors.append(
                ManifestError(
                    at("mappings", index, "isAggregation"),
                    f"mapping for '{mapping['columnName']}' sets isAggregation: "
                    f"{str(explicit).lower()}, but its expression "
                    f"{'does not aggregate' if explicit else 'aggregates'}; Polaris does not return "
                    "isAggregation, so the plan derives it from the expression: make them agree "
                    "(or leave isAggregation out)",
                    job.ref,
                    severity="warning",
                )
            )
    if isinstance(source.get("pattern"), str):
        problem = pattern_problem(source["pattern"])
        if problem is not None:
            errors.append(ManifestError(at("source", "pattern"), problem, job.ref))
        elif (too_large := pattern_too_large(source["pattern"])) is not None:
            errors.append(
                ManifestError(at("source", "pattern"), too_large, job.ref, severity="warning")
            )
    known = {field["name"] for field in source["inputSchema"]}
    for index, mapping in enumerate(mappings):
        identifiers = [m.group(1) for m in SQL_TOKEN.finditer(mapping["expression"]) if m.group(1)]
        for identifier in identifiers:
            name = identifier.replace('""', '"')
            if name not in known and name != TIME_COLUMN:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = (
                    f'; did you mean "{close[0]}"?'
                    if close
                    else f" (declared: {', '.join(sorted(known))})"
                )
                errors.append(
                    ManifestError(
                        at("mappings", index, "expression"),
                        f"mapping for '{mapping['columnName']}' refers to \"{name}\", which is "
                        f"not in source.inputSchema{hint}",
                        job.ref,
                    )
                )
    if target.get("intervals") and spec.get("ingestionMode", "append") != "replace":
        errors.append(
            ManifestError(
                at("target", "intervals"),
                "target.intervals is only allowed with ingestionMode: replace; "
                "remove intervals or set ingestionMode: replace",
                job.ref,
            )
        )
    return errors


# What to write instead, for each PatternSyntaxException description Java gives for a glob.
GLOB_FIXES = {
    "No character to escape": "a trailing \\ escapes nothing: write \\\\ for a backslash",
    "Explicit 'name separator' in class": "a [...] class never matches /: write / outside it",
    "Invalid range": (
        "a range runs from a lower to a higher character (a-z), and a - that is not a range "
        "goes right after [ or [!, or last"
    ),
    "Missing ']": "close the [ with ], or write \\[ for a literal [",
    "Cannot nest groups": "{...} groups cannot nest: write the alternatives out ({a,b,c})",
    "Missing '}": "close the { with }, or write \\{ for a literal {",
    "Unclosed character class": (
        "Java reads a ] right after [ or [! as a literal, and a range that ends in [ as a new "
        "class, so the class never closes: put a character in [...] and end ranges otherwise"
    ),
}


def pattern_problem(pattern: str) -> str | None:
    """Why `reconciler validate` refuses a `source.pattern` (Polaris's Java glob matcher would
    refuse it, or this tool cannot follow how Java reads it), with the fix; None when it reads."""
    try:
        compile_glob(pattern)
    except JavaGlobError as error:
        fix = GLOB_FIXES.get(str(error), "see docs/globs.md")
        return (
            f"source.pattern {pattern!r} is refused by Polaris's Java glob matcher "
            f"(PatternSyntaxException: {error}); {fix}"
        )
    except GlobError as error:
        return f"source.pattern {pattern!r} is not a glob this tool can read: {error}"
    return None


def pattern_too_large(pattern: str) -> str | None:
    """A warning for a valid pattern whose overlap with other jobs cannot be analysed."""
    try:
        sequences(pattern)
    except GlobTooLarge as error:
        return (
            f"source.pattern {pattern!r} cannot be compared with other jobs' selectors ({error}); "
            "plans report POSSIBLE DOUBLE INGESTION for it, which apply refuses without "
            "--allow-reingest: split it into jobs with fewer {...} groups"
        )
    except GlobError:
        return None
    return None


# Planning helpers -----------------------------------------------------------------------------


def plan_places(context: PlanContext) -> Mapping[str, Place]:
    """Connection places once the plan is applied (computed once per plan, then reused)."""
    cached = context.memo.get("places")
    if cached is None:
        cached = connection_places(context.resources.values(), context.live.connections)
        context.memo["places"] = cached
    places: Mapping[str, Place] = cached
    return places


def with_listing(change: Change, listing: Listing | None) -> Change:
    """The change with the objects a new job will read, when the plan listed them."""
    if listing is None or change.action not in (Action.CREATE, Action.RESUBMIT):
        return change
    return dataclasses.replace(
        change,
        notes=(*change.notes, listing.note()),
        warnings=(*change.warnings, *listing.warnings()),
        objects=listing,
    )


AnyPlan = TypeVar("AnyPlan", bound=PlanView)  # plan.Plan


def with_listings(plan: AnyPlan, listings: Mapping[str, Listing]) -> AnyPlan:
    """The plan with each new job's listing added, without planning again (so without listed
    objects in overlap warnings: pass `listings` to make_plan for those)."""
    changes = tuple(
        with_listing(change, listings.get(change.name)) if change.kind is Kind.INGESTION_JOB
        else change
        for change in plan.changes
    )  # fmt: skip
    return dataclasses.replace(plan, changes=changes)


def newest(jobs: list[LiveJob]) -> LiveJob:
    """The job created last."""
    return max(jobs, key=lambda job: str(job.body.get("createdTimestamp", "")))


def _overlapping(
    table: str, reads: Reads, live: LiveView[LiveJob], exclude: set[str]
) -> list[Overlap[LiveJob]]:
    """Live jobs into the table that read, or may read, an object this job reads."""
    found: dict[str, Overlap[LiveJob]] = {}
    for overlap in live.overlaps.find(table, reads):
        if overlap.item.id not in exclude:
            found.setdefault(overlap.item.id, overlap)  # a job read through two places: once
    return list(found.values())


def _listed_example(listing: Listing | None, theirs: Reads) -> str | None:
    """An object the listing found that the other job reads too (as s3://bucket/key)."""
    if listing is None or not listing.listed:
        return None
    key = next((key for key in listing.keys if theirs.covers(listing.bucket, key)), None)
    return f"s3://{listing.bucket}/{key}" if key is not None else None


def _warnings(
    spec: Mapping[str, Any],
    table: str,
    overlaps: list[Overlap[LiveJob]],
    listing: Listing | None = None,
) -> tuple[str, ...]:
    """DOUBLE INGESTION (and undecidable overlap) warnings for a job that appends into `table`.

    Only jobs that have ingested, are ingesting or may have (an unknown status) count; a failed
    or canceled job added nothing. A replace job overwrites, so it never ingests twice.
    """
    if spec.get("ingestionMode", "append") != "append":
        return ()
    warnings = []
    relevant = [
        o
        for o in overlaps
        if o.item.status in SATISFIED_STATUSES or o.item.status not in KNOWN_STATUSES
    ]
    for overlap in sorted(relevant, key=lambda o: o.item.id)[:MAX_WARNINGS]:
        job = overlap.item
        done = {"completed": "already ingested", "pending": "is about to ingest"}.get(
            job.status,
            "is ingesting" if job.status == "running" else f"may have ingested ({job.status})",
        )
        found = _listed_example(listing, overlap.reads) or overlap.example
        example = f" (for example {found})" if found else ""
        if overlap.uncertain:
            warnings.append(
                f"POSSIBLE DOUBLE INGESTION: job {job.id} ({job.status}, connection "
                f"{job.connection}) may read objects this job selects{example} into table "
                f"{table}; it cannot be decided: {overlap.uncertain}. Uncertainty is never read "
                "as safe (apply refuses without --allow-reingest)"
            )
        else:
            warnings.append(
                f"DOUBLE INGESTION: job {job.id} ({job.status}, connection {job.connection}) "
                f"{done} objects this job selects{example} into table {table}; applying "
                "appends the same rows again (apply refuses without --allow-reingest)"
            )
    if len(relevant) > MAX_WARNINGS:
        warnings.append(
            f"... and {len(relevant) - MAX_WARNINGS} more live jobs that read the same objects"
        )
    return tuple(warnings)


def _among_submitted(changes: list[Change], context: PlanContext) -> list[Change]:
    """Warn about two jobs of this plan that would append the same objects into one table."""
    specs = {
        name: r.spec for (kind, name), r in context.resources.items() if kind is Kind.INGESTION_JOB
    }
    submitted = [
        (
            change.name,
            specs[change.name]["target"]["tableName"],
            reads_of(specs[change.name], change.place),  # the place the plan resolved
        )
        for change in changes
        if change.kind is Kind.INGESTION_JOB
        and change.action in (Action.CREATE, Action.RESUBMIT)
        and specs[change.name].get("ingestionMode", "append") == "append"
    ]
    if len(submitted) < 2:
        return changes
    index = OverlapIndex(submitted)
    extra: dict[str, list[str]] = {}
    for name, table, reads in submitted:
        for overlap in index.find(table, reads):
            if overlap.item == name:
                continue
            found = _listed_example(context.listings.get(name), overlap.reads) or overlap.example
            example = f" (for example {found})" if found else ""
            why = f": {overlap.uncertain}" if overlap.uncertain else ""
            kind = "POSSIBLE DOUBLE INGESTION" if overlap.uncertain else "DOUBLE INGESTION"
            extra.setdefault(name, []).append(
                f"{kind}: {Kind.INGESTION_JOB}/{overlap.item}, also submitted by this plan, reads "
                f"objects this job selects{example} into table {table}{why}; applying both appends "
                "the same rows twice (apply refuses without --allow-reingest)"
            )
    return [
        dataclasses.replace(
            change, warnings=(*change.warnings, *extra[change.name][:MAX_WARNINGS]), reingest=True
        )
        if change.kind is Kind.INGESTION_JOB and change.name in extra
        else change
        for change in changes
    ]


def jobs_to_list(
    plan: PlanView, resources: Iterable[Resource], live: LiveView[LiveJob]
) -> list[Job]:
    """The jobs a plan creates or resubmits, each with its connection as apply will leave it:
    as its manifest declares it (secrets included, to list with), else as it is live."""
    from reconciler.listing import Job  # deferred: loads httpx

    by_key = {r.key: r for r in resources}
    jobs = []
    for change in plan.changes:
        if change.kind is not Kind.INGESTION_JOB or change.action not in (
            Action.CREATE,
            Action.RESUBMIT,
        ):
            continue
        source = by_key[(Kind.INGESTION_JOB, change.name)].spec["source"]
        name = str(source.get("connectionName"))
        declared = by_key.get((Kind.CONNECTION, name))
        connection = (
            declared.spec
            if declared is not None and not declared.external and declared.spec
            else live.connections.get(name)
        )
        jobs.append(Job(change.name, source, connection))
    return jobs


def job_notes(spec: Mapping[str, Any], live: LiveView[LiveJob]) -> tuple[str, ...]:
    """What a reviewer needs to judge a new job: where it writes, what it reads, and how."""
    source, target = spec["source"], spec["target"]
    table, connection = target["tableName"], source["connectionName"]
    if table in live.tables:
        where = "exists"
    elif spec.get("createTableIfNotExists"):
        where = "created by this job"
    else:
        where = "created by this apply"
    bucket = live.connections.get(connection, {}).get("bucket")
    settings = source.get("formatSettings") or {}
    kind = next((k for k in ("uris", "objects", "prefixes") if source.get(k)), "pattern")
    keys = [str(key) for key in source[kind]] if kind != "pattern" else [str(source.get("pattern"))]
    if kind in ("uris", "objects"):
        objects = f"{len(keys)} object(s): {', '.join(keys[:5])}" + (
            " ..." if len(keys) > 5 else ""
        )
    elif kind == "prefixes":
        objects = (
            f"every object under {len(keys)} prefix(es): {', '.join(keys[:5])}"
            + (" ..." if len(keys) > 5 else "")
            + " (listed by Polaris when the job runs)"
        )
    else:
        objects = f"every object matching {', '.join(keys)} (matched by Polaris when the job runs)"
    mode = spec.get("ingestionMode", "append")
    intervals = target.get("intervals")
    return (
        f"target table: {table} ({where}); mode: {mode}"
        + (f", intervals {', '.join(map(str, intervals))}" if intervals else "")
        + (", replaces all data" if spec.get("replaceAll") else ""),
        f"connection: {connection}" + (f" (bucket {bucket})" if bucket else ""),
        f"format: {settings.get('format', 'unspecified')}"
        + "".join(f", {k} {json.dumps(v)}" for k, v in sorted(settings.items()) if k != "format"),
        f"objects: {objects}",
    )


# Applying -------------------------------------------------------------------------------------


class TableView:
    """The jobs of one table as an apply knows them: listed once, then kept current with what it
    submits. Failed and canceled jobs ingested nothing and are left out."""

    def __init__(self) -> None:
        self.jobs: dict[str, LiveJob] = {}
        self.by_identity: dict[str, dict[str, LiveJob]] = {}
        self.appeared: list[LiveJob] = []  # neither in the plan nor posted by this apply

    def add(self, job: LiveJob, appeared: bool = False) -> None:
        """Know `job` (with its current status)."""
        self.jobs[job.id] = job
        for identity, _ in job.readings:
            self.by_identity.setdefault(identity, {})[job.id] = job
        if appeared:
            self.appeared.append(job)

    def same(self, identity: str) -> list[LiveJob]:
        """The jobs with this identity that ran, run or wait to run, oldest first: the first one
        is the one kept, the others are duplicates."""
        jobs = [
            j for j in self.by_identity.get(identity, {}).values() if j.status in SATISFIED_STATUSES
        ]
        return sorted(jobs, key=lambda j: (created_at(j.body), j.id))


def created_at(job: Mapping[str, Any]) -> float:
    """When a job was created, in seconds since the epoch; an unreadable time sorts last (and
    every apply reads it alike, so every apply keeps the same one of two duplicates)."""
    try:
        moment = datetime.fromisoformat(str(job.get("createdTimestamp")).replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        return math.inf


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
        self.known: dict[str, LiveJob] = {job.id: job for job in (live.jobs if live else ())}
        self.planned = frozenset(self.known)
        self.submitted: set[str] = set()
        self.views: dict[str, TableView] = {}
        self.listing: dict[str, threading.Lock] = {}  # one listing of a table at a time
        self.claims: dict[str, threading.Lock] = {}  # one POST of an identity at a time
        self.connections: dict[str, Mapping[str, Any]] = dict(live.connections if live else {})
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
        for key in change.depends_on:
            self.await_visible(*key)
        mine = change.fingerprint or fingerprint(spec)
        with self.lock:
            claim = self.claims.setdefault(mine, threading.Lock())
        with claim:  # two changes with one identity (--allow-reingest) never post together
            return self._submit(change, spec, mine, reads_of(spec, change.place))

    def _submit(self, change: Change, spec: Mapping[str, Any], mine: str, reads: Reads) -> Outcome:
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
        self, view: TableView, spec: Mapping[str, Any], table: str, mine: str, reads: Reads
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
        self, change: Change, table: str, mine: str, created: Mapping[str, Any] | None = None
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
        return dataclasses.replace(
            outcome,
            status="failed" if running else outcome.status,
            message="; ".join([outcome.message, *notes]),
            canceled=tuple(canceled),
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
                self.connections.update({c["name"]: c for c in self.client.list_connections()})
            # A job the API would never send fails this change with a message, not the run.
            job = LiveJob.parse(body, self.connections)
            self.known[job_id] = job
        return job

    def finish(self, change: Change, job: Mapping[str, Any], verb: str) -> Outcome:

        job_id = str(job["id"])
        if not self.options.wait:
            return Outcome(change, "done", f"{verb} as job {job_id}", job_id, job)
        final = self.follow(change, job_id)
        status = final.get("executionStatus")
        if status not in TERMINAL_STATUSES:  # waiting stopped (Ctrl-C): the job goes on
            message = f"{verb} as job {job_id}; still {status} in Polaris (stopped waiting)"
            return Outcome(change, "done", message, job_id, final)
        if status == "completed":
            totals = self.client.job_metrics(job_id).get("totals") or {}
            message = f"{verb} as job {job_id}; completed"
            return Outcome(change, "done", message, job_id, final, totals)
        health = final.get("health")
        health = health if isinstance(health, Mapping) else {}
        detail = f"{health.get('code', status)}: {health.get('message', '')}".rstrip(": ")
        return Outcome(change, "failed", f"job {job_id} {status}: {detail}", job_id, final)

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
