"""Compare desired resources with live state and decide, per resource, what apply would do and why."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from reconciler.live import ACTIVE_STATUSES, LiveJob, LiveState
from reconciler.model import KIND_ORDER, Kind, Resource
from reconciler.normalize import (
    FieldChange,
    additions,
    comparable,
    diff,
    fingerprint,
    normalize,
)

FORMAT_VERSION = "1"


class Action(StrEnum):
    """What apply does with one resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"
    RESUBMIT = "resubmit"
    SKIP = "skip"
    CANCEL = "cancel"


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
        return entry


@dataclass(frozen=True)
class PlanError:
    """A change the API forbids; reported instead of attempted."""

    kind: Kind
    name: str
    message: str
    file: str | None = None

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
        """The plan as CONTRACT.md's machine-readable form."""
        return {
            "formatVersion": FORMAT_VERSION,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
            "errors": [
                {"kind": str(e.kind), "name": e.name, "message": e.message, "file": e.file}
                for e in self.errors
            ],
            "unmanaged": [{"kind": str(kind), "name": name} for kind, name in self.unmanaged],
            "checksum": self.checksum,
        }


def make_plan(
    resources: Iterable[Resource], live: LiveState, options: PlanOptions = PlanOptions()
) -> Plan:
    """Decide the change for every resource, plus prunes and unmanaged resources."""
    resources = sorted(resources, key=lambda r: (KIND_ORDER.index(r.kind), r.name))
    changes: list[Change] = []
    errors: list[PlanError] = []
    planners = {Kind.CONNECTION: _connection, Kind.TABLE: _table, Kind.INGESTION_JOB: _job}
    for resource in resources:
        outcome = planners[resource.kind](resource, live, options)
        if isinstance(outcome, PlanError):
            errors.append(outcome)
        else:
            changes.append(outcome)
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
        )
    return Change(
        resource.kind,
        resource.name,
        Action.NOOP,
        "managed externally; exists",
        file=_file(resource),
    )


def _job(resource: Resource, live: LiveState, options: PlanOptions) -> Change:
    spec = resource.spec
    table, connection = spec["target"]["tableName"], spec["source"]["connectionName"]
    mine = resource.fingerprint or fingerprint(spec)
    candidates = live.jobs_for(table, connection)
    same = [job for job in candidates if job.fingerprint == mine]

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

    # The job's identity is its spec, never metadata.name: a renamed manifest finds its job here.
    satisfied = [job for job in same if job.status in SATISFIED_STATUSES]
    if satisfied:
        job = _newest(satisfied)
        verb = {"completed": "already ingested by", "running": "being ingested by"}
        return change(
            Action.NOOP, f"{verb.get(job.status, 'queued as')} job {job.id} ({job.status})", job
        )
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
        return change(Action.RESUBMIT, f"job {job.id} {job.status} ({cause})", job)
    warnings, previous = _reingestion(spec, candidates)
    notes = job_notes(spec, live)
    if previous is None:
        return replace(
            change(Action.CREATE, "no live job with this spec", warnings=tuple(warnings)),
            notes=notes,
        )
    before = normalize(Kind.INGESTION_JOB, previous.spec)
    changed = tuple(diff(before, normalize(Kind.INGESTION_JOB, spec)))
    reason = f"spec differs from job {previous.id} ({previous.status}) in {_fields(list(changed))}"
    return replace(
        change(Action.CREATE, reason, changed=changed, warnings=tuple(warnings)), notes=notes
    )


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
    kind, keys = _selection(source)
    keys = list(source["uris"]) if source.get("uris") else keys  # as written, s3://bucket/key
    if kind == "objects":
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


def _reingestion(
    spec: Mapping[str, Any], candidates: list[LiveJob]
) -> tuple[list[str], LiveJob | None]:
    """Warnings for a new append job that reads objects an earlier job already ingested."""
    overlapping = [
        job for job in candidates if _overlap(spec["source"], job.spec.get("source", {}))
    ]
    previous = _newest(overlapping) if overlapping else None
    if spec.get("ingestionMode", "append") != "append":
        return [], previous
    warnings = [
        f"DOUBLE INGESTION: job {job.id} ({job.status}) already "
        f"{'ingested' if job.status == 'completed' else 'is ingesting'} objects this job selects "
        f"into table {job.table}; applying appends the same rows again "
        "(apply refuses without --allow-reingest)"
        for job in sorted(overlapping, key=lambda j: j.id)
        if job.status in SATISFIED_STATUSES
    ]
    return warnings, previous


def _selection(source: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The object selector as (kind, keys relative to the bucket)."""
    if source.get("uris"):
        # s3://bucket/key -> key, so uris compare with objects and prefixes.
        return "objects", [
            uri.split("/", 3)[3] if uri.count("/") >= 3 else uri for uri in source["uris"]
        ]
    if source.get("objects"):
        return "objects", list(source["objects"])
    if source.get("prefixes"):
        return "prefixes", list(source["prefixes"])
    if source.get("pattern"):
        return "pattern", [str(source["pattern"])]
    return "none", []


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two sources may select a common object; errs towards yes."""
    kind_a, keys_a = _selection(a)
    kind_b, keys_b = _selection(b)
    return any(_may_share(kind_a, x, kind_b, y) for x in keys_a for y in keys_b)


def _may_share(kind_a: str, x: str, kind_b: str, y: str) -> bool:
    if kind_a == "objects" and kind_b == "objects":
        return x == y
    if kind_b == "objects":
        kind_a, x, kind_b, y = kind_b, y, kind_a, x
    if kind_a == "objects":
        # fnmatch's * also crosses "/", so a ** glob is matched generously, as it should be here.
        return x.startswith(y) if kind_b == "prefixes" else fnmatch.fnmatchcase(x, y)
    # Two prefixes or patterns may share objects when one literal stem extends the other.
    stem_x, stem_y = _stem(x), _stem(y)
    return stem_x.startswith(stem_y) or stem_y.startswith(stem_x)


def _stem(selector: str) -> str:
    """The literal part of a prefix or pattern, before its first wildcard."""
    cut = min((i for i, ch in enumerate(selector) if ch in "*?[{"), default=len(selector))
    return selector[:cut]


def _prunes(unmanaged: list[tuple[Kind, str]], live: LiveState) -> list[Change]:
    changes = []
    for kind, name in unmanaged:
        if kind != Kind.CONNECTION:
            continue  # tables are never deleted
        if name in live.active_job_connections:
            changes.append(
                Change(
                    kind,
                    name,
                    Action.SKIP,
                    "not declared, but used by a pending or running job: not deleted",
                )
            )
        else:
            changes.append(
                Change(kind, name, Action.DELETE, "not declared in any manifest (--prune)")
            )
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
