"""How a manifest job is planned: the live jobs with its identity decide (ingested, running,
failed, canceled, unknown), else the live jobs that read its objects warn of double ingestion;
and the notes a reviewer reads about a new job, and the objects a plan lists for it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.kinds.base import Comparison, PlanContext, ResourceKind, fields_of
from reconciler.kinds.ingestion_job.fingerprints import JobIdentity, job_identity
from reconciler.kinds.ingestion_job.identity import Place, reads_of
from reconciler.kinds.ingestion_job.live_job import (
    KNOWN_STATUSES,
    SATISFIED_STATUSES,
    LiveJob,
    newest,
)
from reconciler.kinds.ingestion_job.overlap import double_ingestion, overlapping, plan_places
from reconciler.kinds.ingestion_job.payload import PlannedJob, planned
from reconciler.kinds.ingestion_job.spec import JOB_SPEC, compared_form
from reconciler.kinds.ingestion_job.state import jobs_of
from reconciler.model import Action, Kind, Reason, Resource
from reconciler.normalize import diff, identical
from reconciler.ports import LiveView, PlanView
from reconciler.values import Change, FieldChange

if TYPE_CHECKING:
    from reconciler.kinds.ingestion_job.listing import Job
    from reconciler.listing import Listing

AnyPlan = TypeVar("AnyPlan", bound=PlanView)  # plan.Plan


def compared_spec(resource: Resource) -> Mapping[str, Any]:
    """A manifest job's spec in compared form: as validation made it (once per run), else made
    here for a resource that did not come through validation."""
    return resource.compared if resource.compared is not None else compared_form(resource.spec)


def identity_in_plan(
    resource: Resource, places: Mapping[str, Place],
    identify: Callable[[Mapping[str, Any], Place | None], JobIdentity] = job_identity,
) -> tuple[JobIdentity, Place | None]:  # fmt: skip
    """A manifest job's identity (over its connection's place as the plan leaves it), and that
    place. `identify`: `SharedForms.identity` of the live state, which has it already when a
    live job holds the same form and place."""
    place = places.get(str(resource.spec["source"]["connectionName"]))
    return identify(compared_spec(resource), place), place


def plan_job(
    kind: ResourceKind, resource: Resource, context: PlanContext, listing: Listing | None
) -> Change:
    """The change one manifest job needs."""
    live, options = context.live, context.options
    spec = resource.spec
    table = spec["target"]["tableName"]
    identify = jobs_of(live).forms.identity
    mine, place = identity_in_plan(resource, plan_places(context), identify)
    same = [job for job in jobs_of(live).by_fingerprint.get(mine, ()) if job.table == table]

    def change(
        action: Action, reason: Reason, detail: str, job: LiveJob | None = None,
        changed: tuple[FieldChange, ...] = (), warnings: tuple[str, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> Change:  # fmt: skip
        return kind.change(
            resource, action, reason, detail, job.spec if job else None, changed, options,
            compared=comparison(resource, job) if job else None, warnings=warnings,
            notes=notes, reingest=bool(warnings),
            private=PlannedJob(
                job.id if job else None, job.status if job else None, mine, place=place
            ),
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
    # What it reads is taken only now: a job already ingested (most of a plan) needs none of it.
    reads = reads_of(spec, place)
    others = overlapping(table, reads, live, exclude={job.id for job in same})
    warnings = double_ingestion(spec, table, others, listing)
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
    compared = comparison(resource, previous)
    changed = tuple(diff(compared.actual, compared.desired, kind.key_sets))
    detail = f"spec differs from job {previous.id} ({previous.status}) in {fields_of(changed)}"
    return dataclasses.replace(
        change(Action.CREATE, Reason.SPEC_CHANGED, detail, changed=changed, warnings=warnings,
               notes=notes),
        before=compared.actual, desired=compared.desired,
    )  # fmt: skip


def comparison(resource: Resource, job: LiveJob) -> Comparison:
    """A manifest job's spec and a live job's request, compared: one form of each, and one
    for both where they are equal (a plan of 10,000 jobs in sync holds 10,000, not 30,000)."""
    desired = compared_spec(resource)
    actual = job.compared if job.compared is not None else JOB_SPEC.normalize(job.spec)
    same = desired is actual or identical(desired, actual)  # the one form both hold, mostly
    return Comparison(actual if same else dict(desired), actual, ())


def with_listing(change: Change, listing: Listing | None) -> Change:
    """The change with the objects a new job will read, when the plan listed them."""
    if listing is None or change.action not in (Action.CREATE, Action.RESUBMIT):
        return change
    return dataclasses.replace(
        change,
        notes=(*change.notes, listing.note()),
        warnings=(*change.warnings, *listing.warnings()),
        private=dataclasses.replace(planned(change), objects=listing),
    )


def with_listings(plan: AnyPlan, listings: Mapping[str, Listing]) -> AnyPlan:
    """The plan with each new job's listing added, without planning again (so without listed
    objects in overlap warnings: pass `listings` to make_plan for those)."""
    changes = tuple(
        with_listing(change, listings.get(change.name)) if change.kind is Kind.INGESTION_JOB
        else change
        for change in plan.changes
    )  # fmt: skip
    return dataclasses.replace(plan, changes=changes)


def jobs_to_list(plan: PlanView, resources: Iterable[Resource], live: LiveView) -> list[Job]:
    """The jobs a plan creates or resubmits, each with its connection as apply will leave it:
    as its manifest declares it (secrets included, to list with), else as it is live."""
    by_key = {r.key: r for r in resources}
    jobs = []
    for change in plan.changes:
        if change.kind is not Kind.INGESTION_JOB or change.action not in (
            Action.CREATE,
            Action.RESUBMIT,
        ):
            continue
        # deferred to the first job to list: a plan that submits nothing never loads listing
        from reconciler.kinds.ingestion_job.listing import Job

        source = by_key[(Kind.INGESTION_JOB, change.name)].spec["source"]
        name = str(source.get("connectionName"))
        declared = by_key.get((Kind.CONNECTION, name))
        connection = (
            declared.spec
            if declared is not None and not declared.external and declared.spec
            else live.by_name(Kind.CONNECTION).get(name)
        )
        jobs.append(Job(change.name, source, connection))
    return jobs


def job_notes(spec: Mapping[str, Any], live: LiveView) -> tuple[str, ...]:
    """What a reviewer needs to judge a new job: where it writes, what it reads, and how."""
    source, target = spec["source"], spec["target"]
    table, connection = target["tableName"], source["connectionName"]
    if table in live.by_name(Kind.TABLE):
        where = "exists"
    elif spec.get("createTableIfNotExists"):
        where = "created by this job"
    else:
        where = "created by this apply"
    bucket = live.by_name(Kind.CONNECTION).get(connection, {}).get("bucket")
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
