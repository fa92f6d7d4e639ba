"""Compare desired resources with live state and decide, per resource, what apply would do and why.

A `Plan` is enough to apply: each `Change` carries its action and reason (as enums, with the
text a reviewer reads), the normalized before and desired bodies, and the requests apply will
send. The rules that make a plan unsafe to apply live here too, as in octoDNS: each one an
`UnsafePlan` subclass registered with `@safety_rule`, applied in order by `Plan.raise_if_unsafe`. What a kind's change is decided by its module in reconciler/kinds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from reconciler import kinds
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.kinds.base import PlanContext
from reconciler.model import Action, Kind, Reason, Resource, by_reference
from reconciler.values import Allowances, Change, PlanError, PlanOptions

if TYPE_CHECKING:
    from reconciler.listing import Listing
    from reconciler.live import LiveState
    from reconciler.preflight import ConnectionTest

FORMAT_VERSION = "1"  # keys are only ever added (README, Commands)
PRUNE_MAX_FRACTION = 0.30  # octoDNS's rule: refuse to delete more than this share ...
PRUNE_MIN_EXISTING = 10  # ... of at least this many live resources, unless --force;
PRUNE_SMALL_MAX = 3  # below that, at most this many and at most half of them


class UnsafePlan(ReconcilerError):
    """The plan asks for something the user has not allowed; nothing was changed.

    Each safety rule refuses with its own subclass (`rule` names it), so a caller tells which
    rule refused by type; `except UnsafePlan` catches them all, and the code stays unsafe-plan.
    """

    code = ErrorCode.UNSAFE_PLAN
    rule: ClassVar[str] = ""

    def __init__(self, message: str, plan: Plan | None = None) -> None:
        super().__init__(message)
        self.plan = plan

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        """Why this rule refuses `plan` under `allowed` (the message), or None."""
        raise NotImplementedError


# The rules `Plan.raise_if_unsafe` applies, in order: the first that refuses raises. A rule is
# one subclass of UnsafePlan with a `rule` name and a `check`, registered with @safety_rule.
SAFETY_RULES: list[type[UnsafePlan]] = []

_Rule = TypeVar("_Rule", bound=type[UnsafePlan])


def safety_rule(rule: _Rule) -> _Rule:
    """Add a rule to those every plan is checked against before it is applied."""
    SAFETY_RULES.append(rule)
    return rule


@safety_rule
class HasErrors(UnsafePlan):
    """The plan has errors (a change Polaris forbids, a missing resource): nothing allows it."""

    rule = "errors"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        if not plan.errors:
            return None
        lines = "\n".join(f"  - {error}" for error in plan.errors)
        return f"the plan has {len(plan.errors)} error(s); fix them first:\n{lines}"


@safety_rule
class NeedsAllowReplace(UnsafePlan):
    """A replace (delete, then create) without --allow-replace."""

    rule = "replace"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        replaces = [c.ref for c in plan.changes if c.action is Action.REPLACE]
        if not replaces or allowed.allow_replace:
            return None
        return (
            f"the plan replaces {', '.join(replaces)} (delete, then create); "
            "pass --allow-replace to allow it"
        )


@safety_rule
class NeedsAllowReingest(UnsafePlan):
    """A change that may ingest objects twice (`Change.reingest`) without --allow-reingest."""

    rule = "reingest"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        reingest = [c.ref for c in plan.changes if c.reingest]
        if not reingest or allowed.allow_reingest:
            return None
        return (
            f"{', '.join(reingest)} would ingest objects that are, or may already be, ingested "
            "into the same table (double ingestion, an overlap that cannot be decided, or a job "
            "whose status is unknown); review the warnings, then pass --allow-reingest if you "
            "mean it"
        )


@safety_rule
class NeedsAllowCheckpointChange(UnsafePlan):
    """A streaming job moved to another topic or stream (so its table re-reads or skips data)
    without --allow-checkpoint-change."""

    rule = "checkpoint"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        moved = [c for c in plan.changes if c.why is Reason.CHECKPOINT]
        if not moved or allowed.allow_checkpoint_change:
            return None
        tables = "; ".join(f"{c.ref}: {c.reason}" for c in moved)
        return (
            f"streaming jobs would read another topic or stream, so their tables re-read or skip "
            f"data ({tables}); review the plan, then pass --allow-checkpoint-change if you mean it"
        )


@safety_rule
class EmptiesAKind(UnsafePlan):
    """Prune would delete every live resource of a kind, without --allow-empty (--force is not
    enough: an emptied file, a wrong path or a file the loader could not read all look so)."""

    rule = "prune-all"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        if allowed.allow_empty:
            return None
        for kind, existing, deletes in plan.prunes():
            if deletes >= existing:
                return (
                    f"prune would delete all {existing} {kinds.of(kind).collection} of the "
                    "project (no manifest declares any of them); pass --allow-empty if you mean it"
                )
        return None


@safety_rule
class TooManyDeletions(UnsafePlan):
    """Prune would delete a large share of a kind's live resources, without --force (octoDNS's
    rule: more than PRUNE_MAX_FRACTION of many, more than PRUNE_SMALL_MAX or half of few)."""

    rule = "prune-share"

    @classmethod
    def check(cls, plan: Plan, allowed: Allowances) -> str | None:
        if allowed.force:
            return None
        for kind, existing, deletes in plan.prunes():
            noun = kinds.of(kind).collection
            share = f"{deletes} of {existing} {noun} ({deletes / existing:.0%})"
            if existing >= PRUNE_MIN_EXISTING and deletes / existing > PRUNE_MAX_FRACTION:
                return (
                    f"too many deletions: {share} is more than {PRUNE_MAX_FRACTION:.0%}; "
                    "pass --force if this is intended"
                )
            small = deletes > PRUNE_SMALL_MAX or deletes * 2 > existing
            if existing < PRUNE_MIN_EXISTING and small:
                return (
                    f"too many deletions: {share}; with fewer than {PRUNE_MIN_EXISTING} {noun} "
                    f"prune deletes at most {PRUNE_SMALL_MAX} and at most half of them; "
                    "pass --force if this is intended"
                )
        return None


@dataclass(frozen=True)
class Plan:
    """Every change, in dependency order, and a checksum of what it was computed from."""

    changes: tuple[Change, ...]
    errors: tuple[PlanError, ...] = ()
    unmanaged: tuple[tuple[Kind, str], ...] = ()
    checksum: str = ""  # over `digests`: a saved plan applies only while every part is the same
    digests: Mapping[str, str] = field(default_factory=dict)  # see `digests`
    preflight: tuple[ConnectionTest, ...] = ()  # plan --preflight: POST /connections/{name}/test
    # How many live resources of each prunable kind exist: prune's limits are shares of these.
    population: Mapping[Kind, int] = field(default_factory=dict)

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
        return any(change.action.changes_something for change in self.changes)

    def raise_if_unsafe(self, allowed: Allowances) -> None:
        """Refuse, before anything is changed, a plan the user has not explicitly allowed: the
        first of SAFETY_RULES that refuses raises its own UnsafePlan subclass."""
        for rule in SAFETY_RULES:
            message = rule.check(self, allowed)
            if message is not None:
                raise rule(message, self)

    def prunes(self) -> list[tuple[Kind, int, int]]:
        """(kind, live resources of it, deletions of it) for each kind this plan prunes."""
        found = []
        for kind, existing in self.population.items():
            deletes = sum(1 for c in self.changes if c.kind is kind and c.action is Action.DELETE)
            if deletes:
                found.append((kind, existing, deletes))
        return found

    def to_json(self) -> dict[str, Any]:
        """The plan in the machine-readable form the README (Commands) documents."""
        return {
            "formatVersion": FORMAT_VERSION,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
            "errors": [
                {
                    "kind": str(e.kind),
                    "name": e.name,
                    "message": e.message,
                    "file": e.file,
                    "code": str(e.code),
                }
                for e in self.errors
            ],
            "unmanaged": [{"kind": str(kind), "name": name} for kind, name in self.unmanaged],
            "checksum": self.checksum,
        } | ({"preflight": [test.to_json() for test in self.preflight]} if self.preflight else {})


@dataclass(frozen=True)
class Early:
    """What a plan decides while the last answers of its reads come (`plan_early`), for
    `make_plan` to keep: the resources in order, what the manifests declare and their digest,
    and the outcome and state digest of each kind that plans from the kinds already read
    (`ResourceKind.plans_from`: the connections, beside the jobs' details)."""

    given: tuple[Resource, ...]  # as the caller gave them: make_plan keeps this only for them
    resources: tuple[Resource, ...]
    declared: frozenset[tuple[Kind, str]]
    options: PlanOptions
    manifests: str  # the digest of `_desired`
    outcomes: Mapping[tuple[Kind, str], Change | PlanError]
    states: Mapping[str, Any]  # each such kind's `digest` of its live state

    def fits(self, resources: Sequence[Resource], options: PlanOptions) -> bool:
        """Whether this was made of these very resources, with these options."""
        return (
            self.options == options
            and len(resources) == len(self.given)
            and all(mine is theirs for mine, theirs in zip(self.given, resources, strict=True))
        )


def plan_early(resources: Sequence[Resource], read: LiveState, options: PlanOptions) -> Early:
    """What can be decided with only the kinds in `read` read (see `Early`)."""
    ordered, declared = _ordered(resources)
    ready = [
        kind for kind in kinds.ordered()
        if kind.plans_from is not None and kind.plans_from <= read.states.keys()
    ]  # fmt: skip
    context = PlanContext(read, options, declared, {r.key: r for r in ordered}, {})
    planned = {kind.kind for kind in ready}
    outcomes = {r.key: kinds.of(r.kind).plan(r, context) for r in ordered if r.kind in planned}
    states = {str(kind.kind): kind.digest(read) for kind in ready}
    return Early(
        tuple(resources), tuple(ordered), declared, options, digest(_desired(ordered)), outcomes,
        states,
    )  # fmt: skip


def _ordered(
    resources: Iterable[Resource],
) -> tuple[list[Resource], frozenset[tuple[Kind, str]]]:
    order = kinds.order()
    ordered = sorted(resources, key=lambda r: (order.index(r.kind), r.name))
    declared = {r.key for r in ordered}
    # A resource a manifest creates as a side effect (a job's createTableIfNotExists) is the
    # manifests' doing, not unmanaged.
    declared |= {key for r in ordered for key in kinds.of(r.kind).creates(r.spec)}
    return ordered, frozenset(declared)


def make_plan(
    resources: Sequence[Resource],
    live: LiveState,
    options: PlanOptions = PlanOptions(),
    listings: Mapping[str, Listing] | None = None,
    early: Early | None = None,
) -> Plan:
    """Decide the change for every resource, plus prunes and unmanaged resources.

    `listings` (job name -> its objects, from `reconciler.listing`) adds to each job to create
    or resubmit what it will read, and lets overlap warnings name a listed object. They are
    not part of the checksum: a saved plan applies whether or not it was listed. `early`: what
    `plan_early` decided of these resources while the reads ended (kept unless listings are
    given: it was decided without them).
    """
    if early is not None and (listings or not early.fits(resources, options)):
        early = None
    if early is not None:
        ordered, declared = list(early.resources), early.declared
    else:
        ordered, declared = _ordered(resources)
    context = PlanContext(live, options, declared, {r.key: r for r in ordered}, listings or {})
    changes: list[Change] = []
    errors: list[PlanError] = []
    decided = early.outcomes if early is not None else {}
    for resource in ordered:
        kind = kinds.of(resource.kind)
        known = decided.get(resource.key)
        outcome = known if known is not None else kind.plan(resource, context)
        if isinstance(outcome, PlanError):
            errors.append(outcome)
            continue
        # Apply waits for the changes to what this resource depends on that the plan declares.
        needed = tuple(key for key in kind.dependencies(resource.spec) if key in context.resources)
        changes.append(dataclasses.replace(outcome, depends_on=needed) if needed else outcome)
    for every in kinds.ordered():
        changes = every.review(changes, context)
    unmanaged = [
        (kind.kind, name)
        for kind in kinds.ordered()
        for name in sorted(kind.live(live))
        if (kind.kind, name) not in declared
    ]
    population: dict[Kind, int] = {}
    if options.prune:
        for kind_name, name in unmanaged:
            pruned = kinds.of(kind_name).prune(name, context)
            if pruned is not None:
                changes.append(pruned)
                population[kind_name] = len(kinds.of(kind_name).live(live))
    parts = digests(ordered, live, options, changes, early)
    return Plan(
        tuple(changes), tuple(errors), tuple(unmanaged), digest(parts), parts,
        population=population,
    )  # fmt: skip


def _identity(resource: Resource) -> Any:
    # A job's fingerprint already digests its normalized spec; no need to normalize it again.
    # Taken here if it was not yet (`Manifests.prepared`): a checksum never depends on whether.
    fingerprint = resource.fingerprint
    if fingerprint is None and resource.spec:
        fingerprint = kinds.of(resource.kind).identified(resource.spec)[0]
    if fingerprint:
        return fingerprint
    return kinds.of(resource.kind).normalize(resource.spec) if resource.spec else {}


def _write_only(resource: Resource) -> tuple[str, ...]:
    return kinds.of(resource.kind).fields.write_only


def checksum(resources: Iterable[Resource], live: LiveState) -> str:
    """A digest of the normalized desired and live state the plan was computed from.

    Each kind says what of its live state decides a plan (`ResourceKind.digest`): a job moving
    from pending to completed does not invalidate a reviewed plan; secret values are never part of
    it, only their references.
    """
    return digest([_desired(resources), _state(live)])


def digests(
    resources: Iterable[Resource], live: LiveState, options: PlanOptions,
    changes: Iterable[Change], early: Early | None = None,
) -> dict[str, str]:  # fmt: skip
    """What a plan's checksum covers, each part digested alone so that a stale saved plan can
    say which part moved: the manifests, the live state, the options (--prune and the others)
    and the exact change set (every change's action and the requests it sends). `early`: the
    parts `plan_early` digested already."""
    return {
        "manifests": early.manifests if early is not None else digest(_desired(resources)),
        "live": digest(_state(live, early.states if early is not None else {})),
        "options": digest(options_json(options)),
        "changes": digest([effect(_effect_entry(change)) for change in changes]),
    }


def options_json(options: PlanOptions) -> dict[str, bool]:
    """The options as a saved plan records them."""
    return {
        "resubmitCanceled": options.resubmit_canceled,
        "rotateSecrets": options.rotate_secrets,
        "prune": options.prune,
    }


def effect(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What carrying out a change does, from its JSON (`Change.to_json`, or a saved plan's): its
    kind, name and action and the requests it sends, secrets by reference."""
    requested = entry.get("requests")
    requests = json.loads(json.dumps(requested, default=str)) if requested else []
    return {
        "kind": entry.get("kind"),
        "name": entry.get("name"),
        "action": entry.get("action"),
        "requests": requests,
    }


def _effect_entry(change: Change) -> dict[str, Any]:
    """The keys of `change.to_json()` that `effect` reads, without the rest (its bodies)."""
    return {
        "kind": str(change.kind), "name": change.name, "action": str(change.action),
        "requests": [request.to_json() for request in change.requests],
    }  # fmt: skip


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _desired(resources: Iterable[Resource]) -> list[Any]:
    return [
        [
            str(r.kind), r.name, r.policy.get("manage", "reconciler"), _identity(r),
            # Write-only values are never compared, but the plan shows (and sends) each one by
            # its reference: a manifest that names another variable is not the reviewed plan.
            {name: by_reference(r.spec[name]) for name in _write_only(r) if name in r.spec},
        ]
        for r in resources
    ]  # fmt: skip


def _state(live: LiveState, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    known = known or {}
    return {
        str(kind.kind): known[str(kind.kind)] if str(kind.kind) in known else kind.digest(live)
        for kind in kinds.ordered()
    }
