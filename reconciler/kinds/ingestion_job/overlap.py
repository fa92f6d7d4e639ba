"""Which jobs read the same objects into one table: live jobs a manifest job overlaps (DOUBLE
INGESTION warnings) and, once every job is planned, two jobs of one plan that overlap (review).
Objects are compared through places (identity.py), so connection names never matter."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from reconciler.kinds.base import PlanContext
from reconciler.kinds.ingestion_job.identity import (
    Overlap,
    OverlapIndex,
    Place,
    Reads,
    place_of,
    reads_of,
)
from reconciler.kinds.ingestion_job.live_job import KNOWN_STATUSES, SATISFIED_STATUSES, LiveJob
from reconciler.kinds.ingestion_job.payload import planned
from reconciler.kinds.ingestion_job.state import jobs_of
from reconciler.model import Action, Kind, Resource
from reconciler.ports import LiveView
from reconciler.values import Change

if TYPE_CHECKING:
    from reconciler.listing import Listing

MAX_WARNINGS = 5  # per change; the rest are counted


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


def plan_places(context: PlanContext) -> Mapping[str, Place]:
    """Connection places once the plan is applied (computed once per plan, then reused)."""
    cached = context.memo.get("places")
    if cached is None:
        cached = connection_places(
            context.resources.values(), context.live.by_name(Kind.CONNECTION)
        )
        context.memo["places"] = cached
    places: Mapping[str, Place] = cached
    return places


def overlapping(
    table: str, reads: Reads, live: LiveView, exclude: set[str]
) -> list[Overlap[LiveJob]]:
    """Live jobs into the table that read, or may read, an object this job reads."""
    found: dict[str, Overlap[LiveJob]] = {}
    for overlap in jobs_of(live).overlaps.find(table, reads):
        if overlap.item.id not in exclude:
            found.setdefault(overlap.item.id, overlap)  # a job read through two places: once
    return list(found.values())


def listed_example(listing: Listing | None, theirs: Reads) -> str | None:
    """An object the listing found that the other job reads too (as s3://bucket/key)."""
    if listing is None or not listing.listed:
        return None
    key = next((key for key in listing.keys if theirs.covers(listing.bucket, key)), None)
    return f"s3://{listing.bucket}/{key}" if key is not None else None


def double_ingestion(
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
        found = listed_example(listing, overlap.reads) or overlap.example
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


def among_submitted(changes: list[Change], context: PlanContext) -> list[Change]:
    """Warn about two jobs of this plan that would append the same objects into one table."""
    specs = {
        name: r.spec for (kind, name), r in context.resources.items() if kind is Kind.INGESTION_JOB
    }
    submitted = [
        (
            change.name,
            specs[change.name]["target"]["tableName"],
            reads_of(specs[change.name], planned(change).place),  # the place the plan resolved
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
            found = listed_example(context.listings.get(name), overlap.reads) or overlap.example
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
