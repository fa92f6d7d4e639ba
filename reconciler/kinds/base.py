"""What a resource kind declares, and the parts every kind shares.

A kind (Connection, Table, IngestionJob) is one module in this package holding one subclass of
`ResourceKind`: its JSON Schema, its fields (writable, write-only, read-only, server-defaulted),
how a spec is normalized, the checks that need more than its own document, what it depends on,
how its live state is read, how a change to it is planned and applied, and how a live resource
becomes a manifest. validate, plan, apply, drift and import loop over the registry
(`reconciler.kinds.registry`); what a kind is handed by them is typed by `reconciler.ports`, and
what it builds lives in `reconciler.values`, so a kind imports none of the steps. The design
follows octoDNS's record types (one type per module, registered with `Record.register_type`)
and Terraform's provider schemas (each attribute declared Optional, Computed or Sensitive).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from reconciler.model import Action, Kind, Location, ManifestError, Path, Reason, Resource
from reconciler.names import api_path
from reconciler.normalize import additions, diff, plain
from reconciler.ports import (
    Applying,
    Importing,
    JobApi,
    JobStore,
    Listable,
    LiveReading,
    LiveView,
    Operation,
    PlanView,
)
from reconciler.values import (
    Change,
    FieldChange,
    ManifestFile,
    Outcome,
    PlanError,
    PlanErrorCode,
    PlanOptions,
    Request,
)  # fmt: skip

if TYPE_CHECKING:
    from pathlib import Path as PathLike

    from reconciler.listing import Access, Listing
    from reconciler.preflight import ConnectionTest


@dataclass(frozen=True)
class Fields:
    """A kind's fields, as Terraform's provider schemas declare attributes.

    - `writable`: the fields of a create request this tool manages (Optional/Required);
    - `defaults`: documented defaults (OpenAPI `default`), filled on both sides before comparing;
    - `server_chosen`: filled by Polaris without a documented default (Computed): managed only
      when a manifest sets them, so leaving one out is no perpetual diff;
    - `write_only`: sent, never returned (Sensitive): compared only where Polaris returns them;
    - `read_only`: returned, never sent (ids, versions, timestamps): never compared nor imported.
    """

    writable: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    server_chosen: frozenset[str] = frozenset()
    write_only: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()


# Every table has the primary timestamp column; Polaris lists it whether or not it was declared,
# and every job maps into it.
TIME_COLUMN = "__time"
# A job in one of these statuses is over, batch or streaming.
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
# A Druid SQL expression, as a job's mapping holds one: string literals ('' escapes a quote) are
# skipped, so a " inside one is text; double-quoted identifiers ("" escapes a quote) are the
# input fields it reads.
SQL_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"((?:[^\"]|\"\")+)\"")


@dataclass(frozen=True)
class JobReport:
    """What apply learned of a job it submitted or changed (an outcome's `report`), for both job
    kinds: its id and, with --wait, its final state and totals."""

    job_id: str | None = None
    job: Mapping[str, Any] | None = None  # the final job, with --wait
    metrics: Mapping[str, Any] | None = None  # the job's totals, with --wait
    canceled: tuple[str, ...] = ()  # ids of late duplicates of this job that apply canceled

    def to_json(self) -> dict[str, Any]:
        """`jobId`, `executionStatus`, `health` (when in error), `metrics`, `canceledDuplicates`."""
        entry: dict[str, Any] = {}
        if self.job_id:
            entry["jobId"] = self.job_id
        if self.job is not None:
            entry["executionStatus"] = self.job.get("executionStatus")
            health = self.job.get("health")
            if isinstance(health, Mapping) and health.get("status") == "error":
                entry["health"] = {"code": health.get("code"), "message": health.get("message")}
        if self.metrics is not None:
            entry["metrics"] = dict(self.metrics)
        if self.canceled:
            entry["canceledDuplicates"] = list(self.canceled)
        return entry

    def row(self, failed: bool) -> tuple[str, str, str] | None:
        """(id, status, rows ingested) once followed to its end, or when it failed."""
        if not ((self.job is not None and self.metrics is not None) or (self.job and failed)):
            return None
        metrics = self.metrics or {}
        rows = metrics.get("numRowsPersisted", metrics.get("numRowsProcessed", "-"))
        status = (self.job or {}).get("executionStatus")
        return str(self.job_id or "-"), str(status), str(rows)

    def running(self) -> str | None:
        """`job ID` while it is pending or running."""
        status = self.job.get("executionStatus") if self.job is not None else None
        return f"job {self.job_id}" if self.job_id and status in ("pending", "running") else None


Locate = Callable[[Resource, Path], Location]  # where a field of a resource's spec is written


@dataclass(frozen=True)
class SecretsField:
    """Where a kind's manifests hold secrets: one mapping in the spec whose values are
    `${env:NAME}` references, the only place a manifest may write one (validate.py)."""

    field: str  # spec.FIELD
    plain: frozenset[str] = frozenset()  # its keys that hold no secret (a connection's `type`)

    def holds(self, path: Path) -> bool:
        """Whether `path` (from the document's root) is a secret value."""
        return len(path) == 3 and path[:2] == ("spec", self.field) and path[2] not in self.plain


@dataclass(frozen=True)
class Comparison:
    """A desired spec and a live body in their compared form, and the changes between them."""

    desired: dict[str, Any]
    actual: dict[str, Any]
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PlanContext:
    """What a kind's planner may look at besides the resource itself."""

    live: LiveView
    options: PlanOptions
    declared: frozenset[tuple[Kind, str]]  # every (kind, name) the manifests declare or create
    resources: Mapping[tuple[Kind, str], Resource]
    listings: Mapping[str, Listing]
    memo: dict[str, Any] = field(default_factory=dict)  # what a kind computes once per plan


class ResourceKind:
    """The contract a kind implements; the defaults suit a named resource that is never pruned."""

    kind: ClassVar[Kind]
    collection: ClassVar[str]  # the API collection: /v1/projects/{id}/{collection}
    schema_file: ClassVar[str]  # in schemas/
    fields: ClassVar[Fields]
    imported_by_default: ClassVar[bool] = True  # `reconciler import` without --jobs
    operations: ClassVar[frozenset[str]] = frozenset()  # one-off verbs, e.g. a stream's reset
    # Fields that hold sets of keys, by path in the spec: compared as sets, a long one summarised.
    key_sets: ClassVar[tuple[tuple[str, ...], ...]] = ()
    secrets_at: ClassVar[SecretsField | None] = None  # where its secrets are, if it has any
    # The kinds whose live state its `plan` and `digest` read, when not every kind's: its
    # resources are then planned as soon as those are read (`plan.plan_early`).
    plans_from: ClassVar[frozenset[Kind] | None] = None

    # Normalization --------------------------------------------------------------------------

    def writable(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """The fields of `spec` this tool manages."""
        return self.fields.writable

    def request_of(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The part of a live body that holds the fields of its create request."""
        return body

    def normalize(
        self, spec: Mapping[str, Any], *, manage: frozenset[str] | None = None, copy: bool = True
    ) -> dict[str, Any]:
        """The comparable form of a desired or live spec: the same function on both sides, so a
        value the server adds never shows up as a difference. `manage` limits server-chosen
        fields to those a manifest sets. `copy=False` shares the spec's values with the result,
        for a caller that only reads the result once and drops it (a fingerprint): `shape`
        copies what it changes, so the spec is never changed either way."""
        source = self.request_of(spec)
        copied = plain if copy else _as_is
        result = {name: copied(source[name]) for name in self.writable(source) if name in source}
        for name, default in self.fields.defaults.items():
            result.setdefault(name, copied(default))
        result = self.shape(result)
        if manage is not None:
            for name in self.fields.server_chosen - manage:
                result.pop(name, None)
        return result

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The kind's own normalization, after writable fields are picked and defaults filled."""
        return spec

    def comparable(
        self, desired: Mapping[str, Any], live: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(desired, actual) normalized for comparison: server-chosen fields only where the
        manifest sets them, write-only fields only where the server returns them."""
        manage = frozenset(name for name in self.fields.server_chosen if name in desired)
        wanted, actual = self.normalize(desired, manage=manage), self.normalize(live, manage=manage)
        for name in self.fields.write_only:
            if name not in live:
                wanted.pop(name, None)
                actual.pop(name, None)
        return wanted, actual

    def identity(self, spec: Mapping[str, Any]) -> str | None:
        """What identifies a resource besides its name (a job's fingerprint); None for most."""
        return self.identified(spec)[0]

    def identified(self, spec: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None]:
        """(`identity`, and the spec in compared form if taking the identity made it, for the
        plan to reuse); (None, None) for most kinds."""
        return None, None

    # Validation -----------------------------------------------------------------------------

    def document_problems(self, spec: Mapping[str, Any]) -> list[tuple[Path, str]]:
        """Problems a valid document of this kind can still have: (path in spec, message)."""
        return []

    def reserved(self, name: str) -> str | None:
        """Why this kind cannot use `name`, if it cannot (a name the tool keeps for itself)."""
        return None

    def cross_check(
        self, resources: list[Resource], declared: Mapping[tuple[Kind, str], Resource],
        locate: Locate,
    ) -> list[ManifestError]:  # fmt: skip
        """Checks of this kind's resources that need other documents."""
        return []

    def dependencies(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        """The resources this one needs to exist first."""
        return ()

    def creates(self, spec: Mapping[str, Any]) -> tuple[tuple[Kind, str], ...]:
        """Resources that applying this one creates as a side effect (so they are not unmanaged)."""
        return ()

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading) -> None:
        """Start reading this kind's live state into `reader`, without waiting for it.

        The default lists the collection (`GET /{collection}`, answered `{"values": [...]}`) into
        `reader.states[kind]`, its resources by name; a kind whose list is paged or holds
        summaries reads otherwise, and a kind not addressed by name keeps a state of its own type.
        With the kind in `reader.full` (import), it reads every live resource in full, with all
        its `imported` writes manifests from (the default's list already is that).
        """
        client, kind = reader.client, self.kind

        def listed() -> dict[str, Mapping[str, Any]]:
            return {str(item["name"]): item for item in client.listed(self.collection)}

        started = reader.pool.submit(listed)
        reader.started[kind] = started
        reader.then(lambda: reader.states.setdefault(kind, {}).update(started.result()))

    def operate(self, verb: str, client: JobApi, name: str) -> Operation | None:
        """The one-off `verb` (one of `operations`) on the live resource `name`, ready to be
        described and run; None when there is nothing to do it to."""
        raise NotImplementedError(f"{self.kind} offers no {verb}")

    def store(self, directory: PathLike | None) -> JobStore | None:
        """The on-disk cache this kind's reads keep under `directory` (None: no disk, or no
        cache); the first kind with one is handed to every read (`LiveReading.cache`)."""
        return None

    def live(self, state: LiveView) -> Mapping[str, Mapping[str, Any]]:
        """This kind's live resources by name ({} for a kind not addressed by name)."""
        named = state.of(self.kind)
        return named if isinstance(named, Mapping) else {}

    def uses(self, state: LiveView) -> Mapping[Kind, frozenset[str]]:
        """Names of live resources of other kinds that this kind's active live resources use
        (a running job's connection and table), which `LiveView.in_use` gathers."""
        return {}

    def digest(self, state: LiveView) -> Any:
        """What of this kind's live state decides a plan, as JSON (part of the plan checksum)."""
        return {name: self.normalize(body) for name, body in sorted(self.live(state).items())}

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change | PlanError:
        """The change one declared resource needs."""
        raise NotImplementedError

    def review(self, changes: list[Change], context: PlanContext) -> list[Change]:
        """The plan's changes once every resource is planned: a kind may add what it sees across
        them (two new jobs that read the same objects)."""
        return changes

    def prune(self, name: str, context: PlanContext) -> Change | None:
        """The change for a live resource no manifest declares, with --prune (None: kept)."""
        return None

    def to_list(
        self, plan: PlanView, resources: Iterable[Resource], live: LiveView
    ) -> Sequence[Listable]:
        """This plan's new resources of this kind whose objects `list_objects` lists before apply
        (`plan --list-objects`), and whose dependencies `plan --preflight` tests."""
        return []

    def list_objects(
        self, items: Sequence[Any], access: Access, parallelism: int
    ) -> Mapping[str, Listing]:
        """The objects each of `items` (what `to_list` gave) will read, by name, listed as
        `access` allows (or each not listed, and why); never raises for S3's answers."""
        return {}

    def listed(self, change: Change, listing: Listing | None) -> Change:
        """`change` with what was listed for it (`to_list`) shown."""
        return change

    def preflight(
        self, names: Iterable[str], plan: PlanView, live: LiveView, client: JobApi,
        parallelism: int,
    ) -> tuple[ConnectionTest, ...]:  # fmt: skip
        """`plan --preflight`: test these resources of this kind, which the resources listed
        before apply depend on (a connection new jobs read through)."""
        return ()

    def requests(
        self, action: Action, name: str, spec: Mapping[str, Any], live: Mapping[str, Any] | None,
        changed: tuple[FieldChange, ...], options: PlanOptions,
    ) -> tuple[Request, ...]:  # fmt: skip
        """The API calls apply makes for this change, in order (reads before retries left out)."""
        return ()

    # Applying -------------------------------------------------------------------------------

    def get(self, client: JobApi, name: str) -> Mapping[str, Any] | None:
        """One live resource by name, or None (read-after-write checks use it)."""
        raise NotImplementedError

    def session(self, provider: Applying, plan: PlanView) -> Any:
        """State this kind keeps while one plan is applied (None: it needs none)."""
        return None

    def apply(self, change: Change, provider: Applying) -> Outcome:
        """Carry out one change; raise PolarisError for a failure."""
        raise NotImplementedError

    def unchanged(self, change: Change) -> Outcome:
        """The outcome of a change apply had nothing to do for (a noop, a skip)."""
        return Outcome(change, "unchanged", change.reason)

    # Import ---------------------------------------------------------------------------------

    def imported(self, state: LiveView, reader: Importing) -> Iterable[ManifestFile]:
        """Manifests for this kind's live resources in `state` (read with this kind in
        `LiveReading.full`) that `reader` selects."""
        return ()

    # Shared helpers -------------------------------------------------------------------------

    def path(self, name: str | None = None, *under: str) -> str:
        """The request path of the collection, of one resource in it (name escaped), or of a
        sub-resource of that one (`path(job_id, "status")`)."""
        return api_path(self.collection, name, *under)

    def created(self, resource: Resource, reason: Reason, detail: str, **extra: Any) -> Change:
        """A create of `resource`, sending its spec."""
        return self.change(
            resource, Action.CREATE, reason, detail, None, additions(self.normalize(resource.spec)),
            **extra,
        )  # fmt: skip

    def change(
        self, resource: Resource, action: Action, reason: Reason, detail: str,
        live: Mapping[str, Any] | None, changed: Iterable[FieldChange] = (),
        options: PlanOptions | None = None, compared: Comparison | None = None, **extra: Any,
    ) -> Change:  # fmt: skip
        """A planned change carrying its before and desired bodies and the requests it sends."""

        changed = tuple(changed)
        # Both sides as they are compared (server-chosen fields only where declared, write-only
        # ones only where returned), so they differ exactly where `diff` says they do; a planner
        # that compared them already passes its `compared`, so nothing is normalized twice.
        desired: Mapping[str, Any] | None = None
        before: Mapping[str, Any] | None = None
        if compared is not None:
            desired, before = compared.desired, compared.actual
        elif live is not None and resource.spec:
            desired, before = self.comparable(resource.spec, live)
        elif resource.compared is not None:  # made once a run (Manifests.prepared): kept
            desired = resource.compared
        elif resource.spec:
            desired = self.normalize(resource.spec)
        elif live is not None:
            before = self.normalize(live)
        requests = self.requests(
            action, resource.name, resource.spec, live, changed, options or PlanOptions()
        )
        return Change(
            kind=self.kind, name=resource.name, action=action, why=reason, reason=detail,
            diff=changed, file=resource.location.file, before=before, desired=desired,
            requests=requests, **extra,
        )  # fmt: skip

    def external(self, resource: Resource, current: Mapping[str, Any] | None) -> Change | PlanError:
        """A resource another team manages (policy.manage: external): it must exist, that is all."""

        if current is None:
            return PlanError(
                self.kind, resource.name,
                "declared as managed elsewhere (policy.manage: external) but not found in the "
                "project; ask its owners to create it, or remove the policy to let the reconciler "
                "create it",
                resource.location.file, PlanErrorCode.MISSING,
            )  # fmt: skip
        return self.change(
            resource, Action.NOOP, Reason.EXTERNAL, "managed externally; exists", current
        )

    def compare(self, spec: Mapping[str, Any], live: Mapping[str, Any]) -> Comparison:
        """`spec` and `live` compared: the field changes that would make `live` what `spec` says."""
        desired, actual = self.comparable(spec, live)
        return Comparison(desired, actual, tuple(diff(actual, desired, self.key_sets)))


def fields_of(changes: Iterable[FieldChange]) -> str:
    """The top-level fields a list of changes touches, for a reason: "bucket, prefix"."""
    names = list(dict.fromkeys(change.field for change in changes))
    return ", ".join(names) if names else "no fields"


def _as_is(value: Any) -> Any:
    return value
