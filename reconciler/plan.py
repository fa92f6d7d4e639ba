"""Compare desired resources with live state and decide, per resource, what apply would do and why."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.client import addressable
from reconciler.identity import Overlap, OverlapIndex, Place, Reads, place_of, reads_of
from reconciler.listing import Job, Listing
from reconciler.live import ACTIVE_STATUSES, KNOWN_STATUSES, LiveJob, LiveState
from reconciler.model import KIND_ORDER, Kind, Resource
from reconciler.model import Action as Action  # defined with the other values that flow
from reconciler.normalize import (
    FieldChange,
    additions,
    comparable,
    diff,
    fingerprint,
    normalize,
)
from reconciler.preflight import ConnectionTest

FORMAT_VERSION = "1"


# Job statuses that mean "this spec has been, or is being, ingested": never submit it again.
SATISFIED_STATUSES = frozenset({"pending", "running", "completed"})


@dataclass(frozen=True)
class PlanOptions:
    """Choices a user makes with flags that change what the plan contains."""

    resubmit_canceled: bool = False
    rotate_secrets: bool = False
    prune: bool = False


@dataclass(frozen=True)
class Change:
    """One resource's planned action, with the reason a reviewer needs."""

    kind: Kind
    name: str
    action: Action
    reason: str
    diff: tuple[FieldChange, ...] = ()
    file: str | None = None
    notes: tuple[str, ...] = ()  # facts worth knowing, e.g. that secrets are not compared
    warnings: tuple[str, ...] = ()  # things a reviewer must not miss, e.g. double ingestion
    job_id: str | None = None  # the live job this change is about
    status: str | None = None  # that job's execution status
    fingerprint: str | None = None
    reingest: bool = False  # apply refuses this change without --allow-reingest
    objects: Listing | None = None  # a new job's objects, when the plan listed (or tried to)

    @property
    def ref(self) -> str:
        """`Kind/name`, as messages show it."""
        return f"{self.kind}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """The change as plan JSON shows it; never holds a secret value."""
        entry: dict[str, Any] = {
            "kind": str(self.kind),
            "name": self.name,
            "action": str(self.action),
            "reason": self.reason,
            "diff": [change.to_json() for change in self.diff],
            "file": self.file,
        }
        for key, value in (
            ("notes", list(self.notes)),
            ("warnings", list(self.warnings)),
            ("jobId", self.job_id),
            ("status", self.status),
            ("fingerprint", self.fingerprint),
        ):
            if value:
                entry[key] = value
        if self.reingest:
            entry["reingest"] = True
        if self.objects is not None:
            entry["objects"] = self.objects.to_json()
        return entry


class PlanErrorCode(StrEnum):
    """What kind of plan error this is: callers switch on it, never on the message's words."""

    FORBIDDEN = "forbidden"  # Polaris does not allow the change (e.g. a table's type)
    MISSING = "missing"  # declared as managed elsewhere, and not in the project


@dataclass(frozen=True)
class PlanError:
    """A change the API forbids, or a resource that must exist and does not; never attempted."""

    kind: Kind
    name: str
    message: str
    file: str | None = None
    code: PlanErrorCode = PlanErrorCode.FORBIDDEN

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.kind}/{self.name}: {self.message}"


@dataclass(frozen=True)
class Plan:
    """Every change, in dependency order, and a checksum of what it was computed from."""

    changes: tuple[Change, ...]
    errors: tuple[PlanError, ...] = ()
    unmanaged: tuple[tuple[Kind, str], ...] = ()
    checksum: str = ""
    preflight: tuple[ConnectionTest, ...] = ()  # plan --preflight: POST /connections/{name}/test

    def summary(self) -> dict[str, int]:
        """How many changes of each action; the five headline actions always appear."""
        counts = Counter(str(change.action) for change in self.changes)
        headline = {
            action: counts.pop(action, 0)
            for action in ("create", "update", "replace", "delete", "noop")
        }
        return headline | dict(sorted(counts.items()))

    @property
    def has_changes(self) -> bool:
        """True when apply would do anything at all."""
        return any(change.action not in (Action.NOOP, Action.SKIP) for change in self.changes)

    def to_json(self) -> dict[str, Any]:
        """The plan in the machine-readable form the README (Commands) documents."""
        return {
            "formatVersion": FORMAT_VERSION,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
            "errors": [
                {
                    "kind": str(e.kind),
                    "name": e.name,
                    "message": e.message,
                    "file": e.file,
                    "code": str(e.code),
                }
                for e in self.errors
            ],
            "unmanaged": [{"kind": str(kind), "name": name} for kind, name in self.unmanaged],
            "checksum": self.checksum,
        } | ({"preflight": [test.to_json() for test in self.preflight]} if self.preflight else {})


def make_plan(
    resources: Iterable[Resource],
    live: LiveState,
    options: PlanOptions = PlanOptions(),
    listings: Mapping[str, Listing] | None = None,
) -> Plan:
    """Decide the change for every resource, plus prunes and unmanaged resources.

    `listings` (job name -> its objects, from `reconciler.listing`) adds to each job to create
    or resubmit what it will read, and lets overlap warnings name a listed object. They are
    not part of the checksum: a saved plan applies whether or not it was listed.
    """
    resources = sorted(resources, key=lambda r: (KIND_ORDER.index(r.kind), r.name))
    changes: list[Change] = []
    errors: list[PlanError] = []
    places = connection_places(resources, live)
    planners: dict[Kind, Callable[[Resource, LiveState, PlanOptions], Change | PlanError]] = {
        Kind.CONNECTION: _connection,
        Kind.TABLE: _table,
        Kind.INGESTION_JOB: functools.partial(_job, places=places, listings=listings or {}),
    }
    for resource in resources:
        outcome = planners[resource.kind](resource, live, options)
        if isinstance(outcome, PlanError):
            errors.append(outcome)
        else:
            changes.append(outcome)
    changes = _among_submitted(changes, resources, places, listings or {})
    declared = {r.key for r in resources}
    # A table a manifest job creates (createTableIfNotExists) is the manifests' doing, not unmanaged.
    declared |= {
        (Kind.TABLE, r.spec["target"]["tableName"])
        for r in resources
        if r.kind == Kind.INGESTION_JOB and r.spec.get("createTableIfNotExists")
    }
    unmanaged = [
        (Kind.CONNECTION, name)
        for name in sorted(live.connections)
        if (Kind.CONNECTION, name) not in declared
    ] + [(Kind.TABLE, name) for name in sorted(live.tables) if (Kind.TABLE, name) not in declared]
    if options.prune:
        changes.extend(_prunes(unmanaged, live))
    return Plan(tuple(changes), tuple(errors), tuple(unmanaged), checksum(resources, live))


def _file(resource: Resource) -> str:
    return resource.location.file


def _connection(resource: Resource, live: LiveState, options: PlanOptions) -> Change | PlanError:
    current = live.connections.get(resource.name)
    if resource.external:
        return _external(resource, current is not None)
    notes = ("secrets: write-only, not compared",) if "secrets" in resource.spec else ()
    if current is None:
        return _create(resource)
    desired, actual = comparable(resource.kind, resource.spec, current)
    if desired.get("type") != actual.get("type"):
        return Change(
            resource.kind,
            resource.name,
            Action.REPLACE,
            f"type cannot change in place ({actual.get('type')} -> {desired.get('type')}): "
            "the connection is deleted and created again (needs --allow-replace)",
            diff=tuple(diff(actual, desired)),
            file=_file(resource),
            notes=notes,
        )
    changes = diff(actual, desired)
    if options.rotate_secrets and "secrets" in resource.spec:
        changes.append(FieldChange("secrets", "(write-only)", "(sensitive, re-sent)"))
        return Change(
            resource.kind,
            resource.name,
            Action.UPDATE,
            "re-sending secrets (--rotate-secrets)"
            + (f"; {_fields(changes[:-1])} differ" if changes[:-1] else ""),
            diff=tuple(changes),
            file=_file(resource),
            notes=notes,
        )
    if changes:
        return _update(resource, changes, notes)
    return Change(
        resource.kind, resource.name, Action.NOOP, "up to date", file=_file(resource), notes=notes
    )


def _table(resource: Resource, live: LiveState, options: PlanOptions) -> Change | PlanError:
    current = live.tables.get(resource.name)
    if resource.external:
        return _external(resource, current is not None)
    if current is None:
        return _create(resource)
    desired, actual = comparable(resource.kind, resource.spec, current)
    if desired.get("type") != actual.get("type"):
        return PlanError(
            resource.kind,
            resource.name,
            f"table type cannot change ({actual.get('type')} -> {desired.get('type')}); "
            "Polaris forbids it: create a new table with another name instead",
            _file(resource),
        )
    changes = diff(actual, desired)
    # Columns are keyed by name: "schema.x" added is allowed, anything else alters a column.
    altered = sorted(
        {
            c.path.split(".")[1]
            for c in changes
            if c.path.startswith("schema.") and (c.op != "add" or c.path.count(".") > 1)
        }
    )
    empty = not current.get("totalRows") and resource.name not in _active_tables(live)
    if altered and not empty:
        return PlanError(
            resource.kind,
            resource.name,
            f"columns {', '.join(altered)} would be changed or removed, but the table holds data "
            "or has active jobs; Polaris only allows adding columns then (add a new column instead)",
            _file(resource),
        )
    if changes:
        return _update(resource, changes)
    return Change(resource.kind, resource.name, Action.NOOP, "up to date", file=_file(resource))


def _update(resource: Resource, changes: list[FieldChange], notes: tuple[str, ...] = ()) -> Change:
    return Change(
        resource.kind, resource.name, Action.UPDATE, f"{_fields(changes)} differ",
        diff=tuple(changes), file=_file(resource), notes=notes,
    )  # fmt: skip


def _create(resource: Resource) -> Change:
    spec = normalize(resource.kind, resource.spec)
    return Change(
        resource.kind, resource.name, Action.CREATE, "not found in project",
        diff=tuple(additions(spec)), file=_file(resource),
    )  # fmt: skip


def _active_tables(live: LiveState) -> set[str]:
    return {job.table for job in live.jobs if job.status in ACTIVE_STATUSES}


def _external(resource: Resource, exists: bool) -> Change | PlanError:
    if not exists:
        return PlanError(
            resource.kind,
            resource.name,
            "declared as managed elsewhere (policy.manage: external) but not found in the project; "
            "ask its owners to create it, or remove the policy to let the reconciler create it",
            _file(resource),
            PlanErrorCode.MISSING,
        )
    return Change(
        resource.kind,
        resource.name,
        Action.NOOP,
        "managed externally; exists",
        file=_file(resource),
    )


def connection_places(resources: Iterable[Resource], live: LiveState) -> dict[str, Place]:
    """Where each connection reads from once the plan is applied: as declared, else as it is live."""
    places = {name: place_of(connection) for name, connection in live.connections.items()}
    places.update(
        {
            r.name: place_of(r.spec)
            for r in resources
            if r.kind == Kind.CONNECTION and not r.external and r.spec
        }
    )
    return places


def job_identity(spec: Mapping[str, Any], places: Mapping[str, Place]) -> tuple[str, Reads]:
    """A manifest job's fingerprint (over its connection's place) and the objects it reads."""
    place = places.get(str(spec["source"]["connectionName"]))
    return fingerprint(spec, place.to_json() if place else None), reads_of(spec, place)


def _job(
    resource: Resource,
    live: LiveState,
    options: PlanOptions,
    places: Mapping[str, Place],
    listings: Mapping[str, Listing],
) -> Change:
    listing = listings.get(resource.name)
    return _with_listing(_job_change(resource, live, options, places, listing), listing)


def _with_listing(change: Change, listing: Listing | None) -> Change:
    if listing is None or change.action not in (Action.CREATE, Action.RESUBMIT):
        return change
    return dataclasses.replace(
        change,
        notes=(*change.notes, listing.note()),
        warnings=(*change.warnings, *listing.warnings()),
        objects=listing,
    )


def with_listings(plan: Plan, listings: Mapping[str, Listing]) -> Plan:
    """The plan with each new job's listing added, without planning again (so without listed
    objects in overlap warnings: pass `listings` to make_plan for those)."""
    changes = tuple(
        _with_listing(change, listings.get(change.name))
        if change.kind == Kind.INGESTION_JOB
        else change
        for change in plan.changes
    )
    return dataclasses.replace(plan, changes=changes)


def _job_change(
    resource: Resource,
    live: LiveState,
    options: PlanOptions,
    places: Mapping[str, Place],
    listing: Listing | None,
) -> Change:
    spec = resource.spec
    table = spec["target"]["tableName"]
    mine, reads = job_identity(spec, places)
    same = [job for job in live.by_fingerprint.get(mine, ()) if job.table == table]

    def change(
        action: Action,
        reason: str,
        job: LiveJob | None = None,
        changed: tuple[FieldChange, ...] = (),
        warnings: tuple[str, ...] = (),
    ) -> Change:
        return Change(
            resource.kind, resource.name, action, reason, diff=changed, file=_file(resource),
            warnings=warnings, job_id=job.id if job else None, status=job.status if job else None,
            fingerprint=mine, reingest=bool(warnings),
        )  # fmt: skip

    # The job's identity is what it reads and how, never metadata.name or the connection's
    # name: a renamed manifest, or a renamed connection, finds its job here.
    satisfied = [job for job in same if job.status in SATISFIED_STATUSES]
    if satisfied:
        job = _newest(satisfied)
        verb = {"completed": "already ingested by", "running": "being ingested by"}
        via = ""
        if job.connection != spec["source"]["connectionName"]:
            via = (
                f" through connection {job.connection} (same endpoint, bucket and prefix "
                f"as {spec['source']['connectionName']})"
            )
        return change(
            Action.NOOP,
            f"{verb.get(job.status, 'queued as')} job {job.id} ({job.status}){via}",
            job,
        )
    undecided = [job for job in same if job.status not in KNOWN_STATUSES]
    if undecided:
        job = _newest(undecided)
        warning = (
            f"UNKNOWN STATUS: job {job.id} with this very spec has execution status "
            f"'{job.status}', so it may have ingested these objects; submitting again could "
            "ingest them twice (apply refuses without --allow-reingest)"
        )
        reason = f"job {job.id} is {job.status}; whether it ingested is not known"
        return change(Action.RESUBMIT, reason, job, warnings=(warning,))
    others = _overlapping(table, reads, live, exclude={job.id for job in same})
    warnings = _warnings(spec, table, others, listing)
    if same:
        job = _newest(same)
        if job.status == "canceled" and not options.resubmit_canceled:
            reason = f"job {job.id} was canceled; pass --resubmit-canceled to submit it again"
            return change(Action.SKIP, reason, job)
        health = job.health
        cause = (
            f"{health.get('code', 'unknown')}: {health.get('message', 'no message')}"
            if job.status == "failed"
            else job.status
        )
        return change(
            Action.RESUBMIT, f"job {job.id} {job.status} ({cause})", job, warnings=warnings
        )
    notes = job_notes(spec, live)
    if not others:
        return dataclasses.replace(
            change(Action.CREATE, "no live job with this spec", warnings=warnings), notes=notes
        )
    previous = _newest([overlap.item for overlap in others])
    before = normalize(Kind.INGESTION_JOB, previous.spec)
    changed = tuple(diff(before, normalize(Kind.INGESTION_JOB, spec)))
    reason = f"spec differs from job {previous.id} ({previous.status}) in {_fields(list(changed))}"
    return dataclasses.replace(
        change(Action.CREATE, reason, changed=changed, warnings=warnings), notes=notes
    )


def _among_submitted(
    changes: list[Change],
    resources: list[Resource],
    places: Mapping[str, Place],
    listings: Mapping[str, Listing],
) -> list[Change]:
    """Warn about two jobs of this plan that would append the same objects into one table."""
    specs = {r.name: r.spec for r in resources if r.kind == Kind.INGESTION_JOB}
    submitted = [
        (
            change.name,
            specs[change.name]["target"]["tableName"],
            job_identity(specs[change.name], places)[1],
        )
        for change in changes
        if change.kind == Kind.INGESTION_JOB
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
            found = _listed_example(listings.get(name), overlap.reads) or overlap.example
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
        if change.kind == Kind.INGESTION_JOB and change.name in extra
        else change
        for change in changes
    ]


def jobs_to_list(plan: Plan, resources: Iterable[Resource], live: LiveState) -> list[Job]:
    """The jobs a plan creates or resubmits, each with its connection as apply will leave it:
    as its manifest declares it (secrets included), else as it is live (without secrets)."""
    by_key = {r.key: r for r in resources}
    jobs = []
    for change in plan.changes:
        if change.kind != Kind.INGESTION_JOB or change.action not in (
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


def job_notes(spec: Mapping[str, Any], live: LiveState) -> tuple[str, ...]:
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


def _newest(jobs: list[LiveJob]) -> LiveJob:
    return max(jobs, key=lambda job: str(job.body.get("createdTimestamp", "")))


def _overlapping(
    table: str, reads: Reads, live: LiveState, exclude: set[str]
) -> list[Overlap[LiveJob]]:
    """Live jobs into the table that read, or may read, an object this job reads."""
    found: dict[str, Overlap[LiveJob]] = {}
    for overlap in live.overlaps.find(table, reads):
        if overlap.item.id not in exclude:
            found.setdefault(overlap.item.id, overlap)  # a job read through two places: once
    return list(found.values())


MAX_WARNINGS = 5  # per change; the rest are counted


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


def _prunes(unmanaged: list[tuple[Kind, str]], live: LiveState) -> list[Change]:
    changes = []
    for kind, name in unmanaged:
        if kind != Kind.CONNECTION:
            continue  # tables are never deleted
        if not addressable(name):
            changes.append(
                Change(
                    kind,
                    name,
                    Action.SKIP,
                    "not declared, but its name cannot be used safely in a request path "
                    "(a proxy or server may resolve it to another endpoint): left alone",
                )
            )
        elif name in live.active_job_connections:
            changes.append(
                Change(
                    kind,
                    name,
                    Action.SKIP,
                    "not declared, but used by a pending or running job: not deleted",
                )
            )
        else:
            changes.append(Change(kind, name, Action.DELETE, "declared by no manifest (--prune)"))
    return changes


def _fields(changes: list[FieldChange]) -> str:
    names = list(dict.fromkeys(change.path.split(".")[0].split("[")[0] for change in changes))
    return ", ".join(names) if names else "no fields"


def _identity(resource: Resource) -> Any:
    # A job's fingerprint already digests its normalized spec; no need to normalize it again.
    if resource.fingerprint:
        return resource.fingerprint
    return normalize(resource.kind, resource.spec) if resource.spec else {}


def checksum(resources: Iterable[Resource], live: LiveState) -> str:
    """A digest of the normalized desired and live state the plan was computed from.

    Job statuses are reduced to what decides an action, so a job moving from pending to
    completed does not invalidate a reviewed plan; secrets are never part of it.
    """
    desired = [
        [str(r.kind), r.name, r.policy.get("manage", "reconciler"), _identity(r)] for r in resources
    ]
    state = {
        "connections": {
            name: normalize(Kind.CONNECTION, c) for name, c in sorted(live.connections.items())
        },
        "tables": {
            name: [normalize(Kind.TABLE, t), t.get("version"), bool(t.get("totalRows"))]
            for name, t in sorted(live.tables.items())
        },
        "jobs": sorted(
            [
                job.id,
                job.fingerprint,
                "satisfied" if job.status in SATISFIED_STATUSES else job.status,
            ]
            for job in live.jobs
        ),
        "activeConnections": sorted(live.active_job_connections),
    }
    canonical = json.dumps([desired, state], sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
