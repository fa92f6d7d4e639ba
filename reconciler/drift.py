"""Read-only drift report: how live state differs from the manifests, derived from the plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.live import KNOWN_STATUSES
from reconciler.model import Kind
from reconciler.plan import Action, Change, Plan

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
    Action.CANCEL: "changed",
}
CANCELED_NOTE = "canceled, and not resubmitted unless asked (--resubmit-canceled)"


def status_of(change: Change) -> tuple[str, str]:
    """The drift status and detail of one planned change."""
    if change.kind is Kind.INGESTION_JOB and change.status is not None:
        if change.action is Action.SKIP and change.status == "canceled":
            # Nothing to do unless asked, so nothing drifted; the note keeps it visible.
            return "in-sync", f"{change.reason} ({CANCELED_NOTE})"
        if change.action is Action.RESUBMIT and change.status not in KNOWN_STATUSES:
            return "unknown", change.reason
    return STATUS_OF_ACTION[change.action], change.reason


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


def drift_report(plan: Plan) -> list[DriftEntry]:
    """Every declared resource's status, then plan errors, then live resources nobody declares."""
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
        DriftEntry(str(error.kind), error.name, "changed", error.message, (), error.file)
        for error in plan.errors
        if "not found" not in error.message
    ] + [
        DriftEntry(str(error.kind), error.name, "missing", error.message, (), error.file)
        for error in plan.errors
        if "not found" in error.message
    ]
    entries += [
        DriftEntry(str(kind), name, "unmanaged", "exists in the project; no manifest declares it")
        for kind, name in plan.unmanaged
        if not any(e.kind == str(kind) and e.name == name for e in entries)
    ]
    return entries


def has_drift(entries: list[DriftEntry]) -> bool:
    """True when anything is not in sync."""
    return any(entry.status != "in-sync" for entry in entries)


def render_drift(entries: list[DriftEntry], fmt: str) -> str:
    """The report as text, JSON or Markdown."""
    if fmt == "json":
        import json

        payload = {"formatVersion": FORMAT_VERSION, "drift": [e.to_json() for e in entries]}
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    drifted = [e for e in entries if e.status != "in-sync"]
    if fmt == "markdown":
        lines = ["### Polaris drift report", "", "| resource | status | detail |", "|---|---|---|"]
        lines += [f"| `{e.kind}/{e.name}` | {e.status} | {e.detail} |" for e in drifted]
        if not drifted:
            lines.append("| (all) | in-sync | live state matches the manifests |")
        return "\n".join(lines)
    width = max((len(f"{e.kind}/{e.name}") for e in entries), default=0)
    lines = [f"{e.status:<9}  {f'{e.kind}/{e.name}':<{width}}  {e.detail}" for e in entries]
    in_sync = len(entries) - len(drifted)
    lines.append(f"Drift: {len(drifted)} drifted, {in_sync} in sync.")
    return "\n".join(lines)
