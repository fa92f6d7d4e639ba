"""One run of the reconciler, from validated manifests to API calls: read, plan, check, apply.

The CLI parses flags, loads and validates the manifests (`validate.load_manifests`, whose errors
it renders: nothing reaches a Manager, so nothing is sent, before they pass) and renders results;
everything between is here, in this order, and only here:

1. read live state through the provider (`Provider.read`), under the project lock when applying;
2. plan (`plan.make_plan`), with the objects new jobs will read and connection tests if asked;
3. check: a saved plan against the fresh one, part by part (`SavedPlan.differences`), then `Plan.raise_if_unsafe`, then
   approval (a callback: the CLI asks on a terminal);
4. apply (`Applier(provider).run(plan)`).
Like octoDNS's Manager, which owns the sync of its providers and the safety of their plans.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.apply import Applier, ApplyResult, PolarisProvider, Unlocked
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.kinds.connection import changing
from reconciler.kinds.ingestion_job import jobs_to_list, with_listings
from reconciler.listing import list_jobs
from reconciler.plan import Plan, make_plan
from reconciler.ports import Fence
from reconciler.preflight import check_connections
from reconciler.validate import Manifests
from reconciler.values import Allowances, Change, PlanOptions, Request

if TYPE_CHECKING:
    from reconciler.listing import Access
    from reconciler.live import LiveState
    from reconciler.saved_plan import SavedPlan

Progress = Callable[[str], None]
PLAN_DEFAULTS = PlanOptions()


class StalePlan(ReconcilerError):
    """A saved plan no longer matches the manifests or the live state; `plan` is the fresh one."""

    code = ErrorCode.STALE_PLAN

    def __init__(self, plan: Plan, differences: list[str]) -> None:
        super().__init__(
            f"the saved plan is stale: {'; '.join(differences)}. Review the current plan above, "
            "then run `reconciler plan --out` again and apply the new file"
        )
        self.plan = plan
        self.differences = differences


class NotApproved(ReconcilerError):
    """The person asked said no, or nobody could be asked."""

    code = ErrorCode.USAGE


@dataclass(frozen=True)
class Planned:
    """A plan and the live state it was made from."""

    live: LiveState
    plan: Plan


@dataclass
class Manager:
    """Plans and applies one set of manifests against one provider."""

    provider: PolarisProvider
    parallelism: int = 8
    progress: Progress = lambda message: None

    def plan(
        self, manifests: Manifests, options: PlanOptions = PLAN_DEFAULTS, *,
        access: Access | None = None, preflight: bool = False,
    ) -> Planned:  # fmt: skip
        """Read live state and plan; with `access`, list what new jobs will read; with
        `preflight`, test the connections they read through."""
        self.progress(f"Reading live state of project {self.provider.client.config.project} ...")
        live = self.provider.read(manifests.resources)
        plan = make_plan(manifests.resources, live, options)
        if access is not None or preflight:
            plan = self._data_aware(plan, manifests, live, options, access, preflight)
        return Planned(live, plan)

    def apply(
        self, manifests: Manifests, options: PlanOptions, allowed: Allowances, *,
        approve: Callable[[Plan], bool], reviewed: SavedPlan | None = None,
        lock: AbstractContextManager[Fence] | None = None,
    ) -> tuple[Plan, ApplyResult]:  # fmt: skip
        """Plan under the lock, check the plan, ask, then carry it out; raises StalePlan,
        UnsafePlan (from `Plan.raise_if_unsafe`) or NotApproved before any change."""
        with lock or _no_lock() as fence:
            planned = self.plan(manifests, options)
            plan = planned.plan
            differences = reviewed.differences(plan) if reviewed is not None else []
            if differences:
                raise StalePlan(plan, differences)
            plan.raise_if_unsafe(allowed)
            if plan.has_changes and not approve(plan):
                raise NotApproved("apply canceled; nothing was changed")
            self.provider.fence = fence
            result = Applier(self.provider, parallelism=self.parallelism, halt=fence.check).run(
                plan
            )
        return plan, result

    def _data_aware(
        self, plan: Plan, manifests: Manifests, live: LiveState, options: PlanOptions,
        access: Access | None, preflight: bool,
    ) -> Plan:  # fmt: skip
        jobs = jobs_to_list(plan, manifests.resources, live)
        if access is not None:
            if access.enabled and jobs:
                self.progress(f"Listing the objects of {len(jobs)} new job(s) ...")
            listings = list_jobs(jobs, access, self.parallelism)
            if access.enabled:  # plan again, so that overlap warnings can name listed objects
                plan = make_plan(manifests.resources, live, options, listings)
            else:
                plan = with_listings(plan, listings)
        if not preflight:
            return plan
        names = [str(job.source.get("connectionName")) for job in jobs]
        tests = check_connections(
            self.provider.client, names, live.connections, changing(plan), self.parallelism
        )
        return dataclasses.replace(plan, preflight=tests)


@contextlib.contextmanager
def _no_lock() -> Iterator[Fence]:
    yield Unlocked()


def requests_of(plan: Plan) -> list[tuple[Change, list[Request]]]:
    """Each change with the requests apply will send for it (`plan --show-requests`)."""
    return [(change, list(change.requests)) for change in plan.changes if change.requests]
