"""Read-only drift report: how live state differs from the manifests, derived from the plan.

This module decides each resource's status; render.py writes the report out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.model import DEFAULT_FAIL_ON, DRIFT_STATUSES, Action, Reason
from reconciler.plan import Plan
from reconciler.values import Change, PlanErrorCode

FORMAT_VERSION = "1"

# Plan action -> drift status. A plan and a drift report never disagree, because one is read
# off the other: every change apply would make is drift, and nothing else is (see `status_of`).
STATUS_OF_ACTION = {
    Action.NOOP: "in-sync",
    Action.CREATE: "missing",
    Action.UPDATE: "changed",
    Action.REPLACE: "changed",
    Action.RESUBMIT: "failed",
    Action.SKIP: "unmanaged",  # only prune skips a connection; a canceled job: see status_of
    Action.DELETE: "unmanaged",
    Action.SUSPEND: "changed",  # a streaming job running against the manifest
    Action.RESUME: "changed",  # a streaming job suspended behind git's back
}
CANCELED_NOTE = "canceled, and not resubmitted unless asked (--resubmit-canceled)"


def status_of(change: Change) -> tuple[str, str]:
    """The drift status and detail of one planned change, decided by its action and reason."""
    if change.why is Reason.CANCELED:
        # Nothing to do unless asked, so nothing drifted; the note keeps it visible.
        return "in-sync", f"{change.reason} ({CANCELED_NOTE})"
    if change.why is Reason.UNKNOWN_STATUS:
        return "unknown", change.reason
    if change.why in (Reason.FAILED, Reason.UNHEALTHY):
        return "failed", change.reason  # a streaming job that failed, or whose health is error
    if change.why is Reason.HEALTH_WARN:
        return "unhealthy", change.reason  # fails a run only with --fail-on unhealthy
    return STATUS_OF_ACTION[change.action], change.reason


# The statuses (and which fail a run by default) are in model.py: the CLI's options name them.
STATUSES = DRIFT_STATUSES


@dataclass(frozen=True)
class DriftEntry:
    """One resource's drift status, with the detail that explains it."""

    kind: str
    name: str
    status: str
    detail: str
    diff: tuple[dict[str, Any], ...] = ()
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as drift JSON shows it."""
        entry: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
        }
        if self.diff:
            entry["diff"] = list(self.diff)
        if self.file:
            entry["file"] = self.file
        return entry


@dataclass(frozen=True)
class DriftReport:
    """The entries, and which statuses make the run fail (`--fail-on`)."""

    entries: tuple[DriftEntry, ...]
    fail_on: frozenset[str] = DEFAULT_FAIL_ON

    def fails(self, entry: DriftEntry) -> bool:
        """Whether this entry's status is one that fails the run."""
        return entry.status in self.fail_on

    @property
    def failed(self) -> bool:
        """True when any entry has a failing status: the run exits 2."""
        return any(self.fails(entry) for entry in self.entries)

    def count(self, status: str) -> int:
        """How many entries have this status."""
        return sum(entry.status == status for entry in self.entries)


def drift_report(
    plan: Plan,
    *,
    fail_on: Collection[str] = DEFAULT_FAIL_ON,
    ignore: Iterable[str] = (),
    history: Collection[tuple[str, str]] = (),
) -> DriftReport:
    """Every declared resource's status, then plan errors, then live resources nobody declares.

    `ignore` holds name globs (matched against `name` and `Kind/name`) of resources another tool
    owns; `history` the (kind, name) of finished jobs kept for the record, which never fail.
    """
    entries = [
        DriftEntry(
            str(change.kind),
            change.name,
            *status_of(change),
            tuple(item.to_json() for item in change.diff),
            change.file,
        )
        for change in plan.changes
    ]
    entries += [
        DriftEntry(
            str(error.kind),
            error.name,
            "missing" if error.code is PlanErrorCode.MISSING else "changed",
            error.message,
            (),
            error.file,
        )
        for error in plan.errors
    ]
    entries += [
        DriftEntry(str(kind), name, "unmanaged", "exists in the project; no manifest declares it")
        for kind, name in plan.unmanaged
        if not any(e.kind == str(kind) and e.name == name for e in entries)
    ]
    globs = tuple(ignore)
    return DriftReport(
        tuple(_reclassify(entry, globs, history) for entry in entries), frozenset(fail_on)
    )


def _reclassify(
    entry: DriftEntry, globs: tuple[str, ...], history: Collection[tuple[str, str]]
) -> DriftEntry:
    if any(
        fnmatch.fnmatchcase(entry.name, glob)
        or fnmatch.fnmatchcase(f"{entry.kind}/{entry.name}", glob)
        for glob in globs
    ):
        return DriftEntry(
            entry.kind, entry.name, "ignored", f"ignored (--ignore); was {entry.status}: "
            f"{entry.detail}", (), entry.file,
        )  # fmt: skip
    if (entry.kind, entry.name) in history and entry.status != "in-sync":
        return DriftEntry(
            entry.kind, entry.name, "history",
            "finished job kept in a history path; Polaris no longer reports it as ingested "
            f"({entry.detail}); it is never submitted again", (), entry.file,
        )  # fmt: skip
    return entry
