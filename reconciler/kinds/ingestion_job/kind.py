"""The IngestionJob kind: the hooks validate, read, plan, apply and import call, each handing the
work to the module of this package that holds it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.kinds import registry
from reconciler.kinds.base import JobReport, Locate, PlanContext
from reconciler.kinds.ingestion_job.cache import JobCache
from reconciler.kinds.ingestion_job.checks import check_job, duplicate_specs
from reconciler.kinds.ingestion_job.fingerprints import spec_fingerprint
from reconciler.kinds.ingestion_job.importing import imported_jobs
from reconciler.kinds.ingestion_job.live_job import SATISFIED_STATUSES
from reconciler.kinds.ingestion_job.overlap import among_submitted
from reconciler.kinds.ingestion_job.payload import planned
from reconciler.kinds.ingestion_job.planning import jobs_to_list, plan_job, with_listing
from reconciler.kinds.ingestion_job.reader import read_jobs
from reconciler.kinds.ingestion_job.spec import JobSpec, compared_form
from reconciler.kinds.ingestion_job.state import jobs_of
from reconciler.kinds.ingestion_job.submissions import Submissions
from reconciler.kinds.registry import register
from reconciler.model import Action, Kind, ManifestError, Path, Resource
from reconciler.names import name_problem
from reconciler.ports import Applying, Importing, LiveReading, LiveView, PlanView
from reconciler.values import Change, FieldChange, ManifestFile, Outcome, PlanOptions, Request

if TYPE_CHECKING:
    from pathlib import Path as PathLike

    from reconciler.kinds.ingestion_job.listing import Job
    from reconciler.listing import Access, Listing


@register
class IngestionJob(JobSpec):
    """A batch ingestion job (`type: batch`, the only type a manifest declares).

    A job is never updated: it is identified by its spec over where its connection points
    (`fingerprints.JobIdentity`), not by its name, and one that has run is never submitted again.
    """

    def identified(self, spec: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None]:
        # The one normalization of a manifest job per run: the plan reads this compared form.
        compared = compared_form(spec)
        return spec_fingerprint(compared), compared

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
        errors = [error for job in resources for error in check_job(job, declared, locate)]
        return errors + duplicate_specs(resources)

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading) -> None:
        read_jobs(reader)

    def store(self, directory: PathLike | None) -> JobCache:
        return JobCache(directory / "jobs.json" if directory is not None else None)

    def digest(self, state: LiveView) -> Any:
        # Statuses reduced to what decides an action; which connections active jobs use (prune).
        jobs = sorted(
            [
                job.id,
                job.identity,
                "satisfied" if job.status in SATISFIED_STATUSES else job.status,
            ]
            for job in jobs_of(state).jobs
        )
        return {"jobs": jobs, "activeConnections": sorted(jobs_of(state).active_connections)}

    def uses(self, state: LiveView) -> Mapping[Kind, frozenset[str]]:
        jobs = jobs_of(state)
        return {Kind.CONNECTION: jobs.active_connections, Kind.TABLE: jobs.active_tables}

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change:
        listing = context.listings.get(resource.name)
        return with_listing(plan_job(self, resource, context, listing), listing)

    def review(self, changes: list[Change], context: PlanContext) -> list[Change]:
        """Warn about two jobs of this plan that would append the same objects into one table."""
        return among_submitted(changes, context)

    def to_list(self, plan: PlanView, resources: Iterable[Resource], live: LiveView) -> list[Job]:
        return jobs_to_list(plan, resources, live)

    def list_objects(
        self, items: Sequence[Job], access: Access, parallelism: int
    ) -> Mapping[str, Listing]:
        from reconciler.kinds.ingestion_job.listing import list_jobs  # deferred: loads httpx

        return list_jobs(items, access, parallelism)

    def listed(self, change: Change, listing: Listing | None) -> Change:
        return with_listing(change, listing)

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

    def unchanged(self, change: Change) -> Outcome:
        return Outcome(change, "unchanged", change.reason, JobReport(planned(change).job_id))

    # Import ---------------------------------------------------------------------------------

    def imported(self, state: LiveView, reader: Importing) -> Iterable[ManifestFile]:
        """Jobs that have run or are running, one per spec (the newest), grouped by table."""
        return imported_jobs(self, state, reader)
