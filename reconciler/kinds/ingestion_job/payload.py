"""What a job's planned change carries for the job kind alone (`PlannedJob`, the change's
`private`, as Terraform's providers keep `Private` data on a planned change): the live job it
is about, the identity the plan found it by, the place its connection will point, and the
objects the plan listed. The steps never read these fields; plan JSON shows them through
`PlannedJob.to_json`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.values import Change

if TYPE_CHECKING:
    from reconciler.kinds.ingestion_job.identity import Place
    from reconciler.listing import Listing


@dataclass(frozen=True)
class PlannedJob:
    """A job change's own part."""

    job_id: str | None = None  # the live job this change is about
    status: str | None = None  # that job's execution status
    fingerprint: str | None = None  # the plan's JobIdentity, as text
    objects: Listing | None = None  # a new job's objects, when the plan listed (or tried to)
    place: Place | None = None  # where its connection will point once the plan is applied

    def to_json(self) -> dict[str, Any]:
        """The keys plan JSON (and a saved plan) has always shown for a job."""
        entry: dict[str, Any] = {}
        for key, value in (
            ("jobId", self.job_id),
            ("status", self.status),
            ("fingerprint", self.fingerprint),
        ):
            if value:
                entry[key] = value
        if self.objects is not None:
            entry["objects"] = self.objects.to_json()
        return entry


NOTHING_PLANNED = PlannedJob()


def planned(change: Change) -> PlannedJob:
    """The job kind's part of `change` (empty for a change that did not come from its plan)."""
    private = change.private
    return private if isinstance(private, PlannedJob) else NOTHING_PLANNED
