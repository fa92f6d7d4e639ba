"""`reconciler import --jobs`: a manifest for each job that has run or is running, one per spec
(the newest), grouped by table, written from the jobs the live read kept as Polaris returned
them (`JobState.requests`, read with the kind in `LiveReading.full`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.kinds import registry
from reconciler.kinds.ingestion_job.fingerprints import SpecFingerprint, spec_fingerprint
from reconciler.kinds.ingestion_job.live_job import (
    SATISFIED_STATUSES,
    TERMINAL_STATUSES,
    job_key,
)
from reconciler.kinds.ingestion_job.spec import (
    FORMAT_DEFAULTS,
    SELECTORS,
    SERVER_ADDED_MAPPING,
    JobSpec,
    compared_form,
    request_of,
)
from reconciler.kinds.ingestion_job.state import jobs_of
from reconciler.model import Kind
from reconciler.names import name_problem, shown
from reconciler.ports import Importing, LiveView
from reconciler.values import ManifestFile


def imported_jobs(kind: JobSpec, state: LiveView, reader: Importing) -> Iterable[ManifestFile]:
    """Jobs that have run or are running, one per spec (the newest), grouped by table."""
    bodies = jobs_of(state).requests.values()
    connections = state.by_name(Kind.CONNECTION)
    newest_by_spec: dict[SpecFingerprint, Mapping[str, Any]] = {}
    for body in sorted(bodies, key=lambda b: str(b.get("createdTimestamp", "")), reverse=True):
        job_id, status = str(body["id"]), str(body.get("executionStatus"))
        table, connection = job_key(body)
        name = f"{table}-{job_id[:8]}"
        if not reader.wants(kind.kind, name, table):
            continue
        ref = f"job {shown(job_id)} ({shown(table)})"
        if not table:  # an answer without the job's target: nothing to write a manifest for
            reader.skip(f"{ref}: Polaris answered it without a target table")
        elif name_problem(table) is not None or registry.of(Kind.TABLE).reserved(table):
            reader.skip(f"{ref}: its table's name cannot be written in a manifest")
        elif status not in SATISFIED_STATUSES:
            reader.skip(f"{ref}: {status}; a manifest for it would be planned as resubmit")
        elif connection not in connections:
            reader.skip(f"{ref}: its connection {shown(connection)} no longer exists")
        elif (mine := spec_fingerprint(compared_form(body))) in newest_by_spec:
            other = shown(str(newest_by_spec[mine]["id"]))
            reader.skip(f"{ref}: same spec as the newer job {other}")
        else:
            newest_by_spec[mine] = body
    manifests = []
    names: set[str] = set()
    for kept in newest_by_spec.values():
        job_id = str(kept["id"])
        live_spec = request_of(kept)
        spec = manifest_spec(kind, live_spec, reader)
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
        path = reader.path(kind.kind, job_id, folder=("jobs", table))
        finished = kept.get("executionStatus") in TERMINAL_STATUSES
        manifests.append(
            reader.manifest(kind.kind, name, spec, path, comments, (), history=finished)
        )
    return sorted(manifests, key=lambda m: m.path)


def manifest_spec(kind: JobSpec, live: Mapping[str, Any], reader: Importing) -> dict[str, Any]:
    """A live job's request as a manifest writes it: no server-added mapping, no defaults."""
    spec = reader.writable(kind, live)
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
    reader.drop_defaults(spec, kind.fields.defaults)
    return spec
