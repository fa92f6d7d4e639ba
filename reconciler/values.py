"""The values the steps and the kinds pass each other: planned changes, their requests, plan
errors, apply outcomes, field-level differences and imported manifests.

A leaf: it imports nothing of the reconciler but `model`, so that the kinds can build these
values and the steps can loop over the kinds without either importing the other. What only one
kind knows about a change travels in the change's `private`, a value that kind defines (as
Terraform's `Private`), and what only it knows about an outcome in the outcome's `report`: the
steps pass them on, and show them only through their own methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from reconciler.model import Action, Kind, Reason, by_reference


class Private(Protocol):
    """A kind's own part of a change (the job kind's `PlannedJob`): opaque to the steps."""

    def to_json(self) -> Mapping[str, Any]:
        """The keys it adds to the change in plan JSON (never a secret value)."""


class Report(Protocol):
    """A kind's own part of an outcome (a job's id, final state and totals): opaque to the steps,
    which show it only through these methods."""

    def to_json(self) -> Mapping[str, Any]:
        """The keys it adds to the outcome in apply JSON."""

    def row(self, failed: bool) -> tuple[str, str, str] | None:
        """(job, status, rows ingested) for apply's text summary of what it followed, or None
        (`failed`: the outcome failed)."""

    def running(self) -> str | None:
        """What still runs in Polaris when apply stops ("job ID"), or None."""


class FieldOp(StrEnum):
    """What a field change does to its field: the `op` of plan JSON."""

    ADD = "add"
    REMOVE = "remove"
    CHANGE = "change"


FieldPath = tuple[str | int, ...]  # keys and list indexes from the spec root


@dataclass(frozen=True)
class FieldChange:
    """One field-level difference between live and desired, as a reviewer reads it."""

    path: FieldPath  # ("source", "formatSettings", "delimiter"), ("mappings", 0, "expression")
    before: Any  # MISSING: the field is added
    after: Any  # MISSING: the field is removed

    @property
    def op(self) -> FieldOp:
        """Whether the field is added, removed or changed."""
        if self.before is MISSING:
            return FieldOp.ADD
        if self.after is MISSING:
            return FieldOp.REMOVE
        return FieldOp.CHANGE

    @property
    def field(self) -> str:
        """The top-level field of the spec this change is in: "mappings" for mappings[0]."""
        return str(self.path[0])

    @property
    def dotted(self) -> str:
        """The path as every output writes it: `source.formatSettings.delimiter`, `mappings[0]`.

        Text for people and plan JSON only: nothing reads it back (a key may hold dots)."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def to_json(self) -> dict[str, Any]:
        """The change as plan JSON shows it."""
        entry: dict[str, Any] = {"path": self.dotted, "op": str(self.op)}
        if self.before is not MISSING:
            entry["before"] = self.before
        if self.after is not MISSING:
            entry["after"] = self.after
        return entry


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Request:
    """One API call apply makes for a change."""

    method: str
    path: str  # relative to the project: /connections/NAME
    body: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request with every secret shown as its `${env:NAME}` reference."""
        entry: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.body is not None:
            entry["body"] = by_reference(self.body)
        return entry


@dataclass(frozen=True)
class Change:
    """One resource's planned action: why, what it changes, and the requests it will send."""

    kind: Kind
    name: str
    action: Action
    reason: str  # the reason as a reviewer reads it
    diff: tuple[FieldChange, ...] = ()
    file: str | None = None
    notes: tuple[str, ...] = ()  # facts worth knowing, e.g. that secrets are not compared
    warnings: tuple[str, ...] = ()  # things a reviewer must not miss, e.g. double ingestion
    reingest: bool = False  # apply refuses this change without --allow-reingest
    why: Reason = Reason.UP_TO_DATE  # the reason as a value
    before: Mapping[str, Any] | None = None  # normalized live body (None: nothing live)
    desired: Mapping[str, Any] | None = None  # normalized declared body, secrets by reference
    requests: tuple[Request, ...] = ()  # what apply sends, in order
    depends_on: tuple[tuple[Kind, str], ...] = ()  # changes of this plan it waits for
    private: Private | None = None  # what only its kind reads (a job's `PlannedJob`)

    @property
    def ref(self) -> str:
        """`Kind/name`, as messages show it."""
        return f"{self.kind}/{self.name}"

    @property
    def key(self) -> tuple[Kind, str]:
        """(kind, name)."""
        return (self.kind, self.name)

    def to_json(self) -> dict[str, Any]:
        """The change as plan JSON (and a saved plan) holds it; never holds a secret value."""
        entry: dict[str, Any] = {
            "kind": str(self.kind),
            "name": self.name,
            "action": str(self.action),
            "why": str(self.why),
            "reason": self.reason,
            "diff": [change.to_json() for change in self.diff],
            "file": self.file,
        }
        for key, value in (("notes", list(self.notes)), ("warnings", list(self.warnings))):
            if value:
                entry[key] = value
        if self.private is not None:
            entry.update(self.private.to_json())  # the kind's own keys (a job's `jobId`, ...)
        if self.reingest:
            entry["reingest"] = True
        # The bodies a change moves between; a noop or a skip moves nothing, and leaving them out
        # keeps the JSON of a large, settled project small (5,000 jobs: 230 MB to render else).
        if self.action.changes_something:
            if self.before is not None:
                entry["before"] = by_reference(self.before)
            if self.desired is not None:
                entry["desired"] = by_reference(self.desired)
        if self.requests:
            entry["requests"] = [request.to_json() for request in self.requests]
        if self.depends_on:
            entry["dependsOn"] = [f"{kind}/{name}" for kind, name in self.depends_on]
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
class PlanOptions:
    """Choices a user makes with flags that change what the plan contains."""

    resubmit_canceled: bool = False
    rotate_secrets: bool = False
    prune: bool = False


@dataclass(frozen=True)
class Allowances:
    """The flags that allow apply to carry out a plan that needs them."""

    allow_replace: bool = False
    allow_reingest: bool = False
    force: bool = False
    allow_empty: bool = False  # prune may delete every resource of a kind (Argo CD's allowEmpty)
    allow_checkpoint_change: bool = False  # a streaming job may re-read or skip data


# How many times a write whose outcome was lost (or that met a conflict) is tried, each after a
# read of live state: PolarisProvider.create and the kinds' own writes (a table's PUT, a job's POST).
AMBIGUOUS_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class ApplyOptions:
    """How apply carries changes out."""

    parallelism: int = 8
    allow_reingest: bool = False  # a job's re-check before its POST refuses overlaps without it
    wait: bool = False
    timeout: float = 3600.0
    poll_interval: float = 2.0


@dataclass(frozen=True)
class Outcome:
    """What happened to one change."""

    change: Change
    status: str  # done | failed | skipped | unchanged
    message: str
    report: Report | None = None  # what only its kind knows (a job's `JobReport`)

    def to_json(self) -> dict[str, Any]:
        """The outcome as apply JSON shows it."""
        entry: dict[str, Any] = {
            "kind": str(self.change.kind),
            "name": self.change.name,
            "action": str(self.change.action),
            "status": self.status,
            "message": self.message,
        }
        if self.report is not None:
            entry.update(self.report.to_json())  # the kind's own keys (a job's `jobId`, ...)
        return entry


@dataclass(frozen=True)
class ManifestFile:
    """One manifest to write: its path under the output directory and its YAML text."""

    path: str  # relative, with "/" separators
    text: str
    kind: Kind
    name: str
    variables: tuple[str, ...] = ()  # environment variables it needs (secrets)
    # A finished job's: written to the history path, which plan and apply never read (a manifest
    # there is never submitted, even after Polaris forgets the job), and drift --history reads.
    history: bool = False
