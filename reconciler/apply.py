"""Carry a plan out in dependency order, so that nothing is lost and nothing is done twice.

`Applier(provider).run(plan)` needs nothing but the plan: each change carries the requests it
sends and the changes it waits for. Each change waits for the changes to what it depends on, and
nothing else, so independent branches run in parallel and a failure stops only what depends on
it. The provider carries a change out (each kind's module in reconciler/kinds says how): every
write whose outcome is unknown is followed by a read of live state before any retry, and a job is
checked against a view of its table's jobs (read once, kept current) right before it is posted:
no duplicates. Another apply cannot interleave: the manager holds the project lock
(reconciler/lock.py) from before live state is read until apply ends; its `Fence` is asked before
each change and again right before each job POST, and tells apply when another writer may have
posted beside it (then each job POST is followed by a read that cancels a late duplicate).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler import kinds
from reconciler.client import AmbiguousWriteError, ConflictError, PolarisClient, PolarisError
from reconciler.live import LiveState, read_live
from reconciler.model import Kind, Resource
from reconciler.plan import Plan
from reconciler.ports import Fence, JobStore
from reconciler.values import AMBIGUOUS_WRITE_ATTEMPTS, ApplyOptions, Change, Outcome, Request

Progress = Callable[[str], None]


class Unlocked:
    """No project lock (--no-lock, or a plan applied directly): nothing stops a write, and any
    other apply may post beside this one, so every job POST is checked for a duplicate after."""

    contested = True

    def check(self) -> str | None:
        """Never a reason: without a lock there is nothing to lose."""
        return None


@dataclass
class ApplyResult:
    """Every outcome, in the plan's order."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped it (ApplyInterrupted)

    @property
    def failed(self) -> bool:
        """True when anything failed (apply then exits 1)."""
        return any(o.status == "failed" for o in self.outcomes)

    def count(self, status: str) -> int:
        """How many outcomes have `status`."""
        return sum(1 for o in self.outcomes if o.status == status)


class ApplyInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped apply: `result` holds what was done (jobs keep running in
    Polaris), `cause` the interrupt itself (the CLI's exit status tells the two signals apart)."""

    def __init__(self, result: ApplyResult, cause: KeyboardInterrupt) -> None:
        super().__init__()
        self.result = result
        self.cause = cause


class Provider(Protocol):
    """A backend the reconciler manages: reads live state and carries out one change.

    Its normalization facts are the kinds' (reconciler/kinds): Polaris's defaults, read-only and
    write-only fields. `PolarisProvider` is the one for the Polaris API and the emulator.
    """

    def read(
        self, resources: Iterable[Resource],
        meanwhile: Callable[[], Iterable[Resource]] | None = None,
        idle: Callable[[LiveState], None] | None = None,
    ) -> LiveState:  # fmt: skip
        """Live state for a set of desired resources (`meanwhile`, `idle`: as `read_live`'s)."""

    def prepare(self, plan: Plan) -> None:
        """Learn what the plan will make of the project, before its first change."""

    def apply(self, change: Change) -> Outcome:
        """Carry out one change; a failure is an outcome, never an exception."""

    def stop_waiting(self) -> None:
        """Stop following jobs (--wait) at once: changes being followed end as they stand."""


class PolarisProvider:
    """The Polaris API (or the emulator) behind `PolarisClient`."""

    def __init__(
        self,
        client: PolarisClient,
        options: ApplyOptions = ApplyOptions(),
        *,
        cache: JobStore | None = None,
        progress: Progress = lambda message: None,
        sleep: Callable[[float], None] | None = None,
        live: LiveState | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.client = client
        self.fence: Fence = fence or Unlocked()  # the manager sets the project lock's
        self.options = options
        self.cache = cache
        self.progress = progress
        self.stopped = threading.Event()  # set by stop_waiting: no more following jobs
        self.sleep = sleep or time.sleep
        # The pause between polls of a followed job, which ends at once when waiting stops.
        self.pause = sleep or self.stopped.wait
        self.live = live  # as last read: apply's re-checks start from it
        self.sessions: dict[Kind, Any] = {}

    def read(
        self, resources: Iterable[Resource],
        meanwhile: Callable[[], Iterable[Resource]] | None = None,
        idle: Callable[[LiveState], None] | None = None,
    ) -> LiveState:  # fmt: skip
        self.live = read_live(
            self.client, resources, parallelism=self.options.parallelism, cache=self.cache,
            meanwhile=meanwhile, idle=idle,
        )  # fmt: skip
        return self.live

    def prepare(self, plan: Plan) -> None:
        self.sessions = {kind.kind: kind.session(self, plan) for kind in kinds.ordered()}

    def stop_waiting(self) -> None:
        self.stopped.set()

    def session(self, kind: Kind) -> Any:
        """The state a kind keeps while this plan is applied (ResourceKind.session)."""
        return self.sessions[kind]

    def apply(self, change: Change) -> Outcome:
        self.progress(f"{change.action} {change.ref} ...")
        try:
            outcome = kinds.of(change.kind).apply(change, self)
        except PolarisError as error:
            outcome = Outcome(change, "failed", str(error))
        self.progress(f"{change.action} {change.ref}: {outcome.status}: {outcome.message}")
        return outcome

    def create(
        self, change: Change, request: Request, post: Callable[[dict[str, Any]], Any],
        read: Callable[[str], Mapping[str, Any] | None],
    ) -> Outcome:  # fmt: skip
        """POST a named resource; after a conflict or a lost answer, read before retrying."""
        body = dict(request.body or {})
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            try:
                post(body)
                return Outcome(change, "done", "created")
            except ConflictError:
                return self.adopt(change, body, read(change.name))
            except AmbiguousWriteError:
                # The POST may have been applied: look before trying again.
                found = read(change.name)
                if found is not None:
                    return self.adopt(change, body, found)
        return Outcome(
            change, "failed", f"creating the {change.kind} kept failing; run apply again"
        )

    def adopt(
        self, change: Change, body: Mapping[str, Any], found: Mapping[str, Any] | None
    ) -> Outcome:
        """A resource that already exists counts as created when it equals the manifest."""
        if found is None:
            return Outcome(
                change, "failed", "Polaris reported a conflict, but the resource is not there"
            )
        spec = {key: value for key, value in body.items() if key != "name"}
        differing = kinds.of(change.kind).compare(spec, found).changes
        if not differing:
            return Outcome(change, "done", "already exists and matches the manifest")
        fields = ", ".join(sorted({d.field for d in differing}))
        return Outcome(
            change, "failed", f"already exists with different {fields}; run plan again to update it"
        )


class Applier:
    """Executes one plan through one provider."""

    def __init__(
        self,
        provider: Provider,
        *,
        parallelism: int = 8,
        halt: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.provider = provider
        self.parallelism = parallelism
        self.halt = halt  # a reason to start no more writes (the project lock was lost), or None

    def run(self, plan: Plan) -> ApplyResult:
        """Apply every change, parallel where independent; never raises for one failed change."""
        self.provider.prepare(plan)
        work = [c for c in plan.changes if c.action.changes_something]
        by_key = {c.key: c for c in work}
        deps = {id(c): [by_key[key] for key in c.depends_on if key in by_key] for c in work}
        outcomes: dict[int, Outcome] = {}
        pending = list(work)
        running: dict[Future[Outcome], Change] = {}
        interrupted: KeyboardInterrupt | None = None
        with ThreadPoolExecutor(max_workers=max(1, self.parallelism)) as pool:
            try:
                self._schedule(pool, pending, running, deps, outcomes)
            except KeyboardInterrupt as stop:
                # Ctrl-C or SIGTERM: stop following jobs (they keep running in Polaris), finish
                # the writes in flight (so none is left ambiguous), start no other, and let the
                # caller say what was done and release the project lock.
                interrupted = stop
                self.provider.stop_waiting()
                pool.shutdown(wait=True, cancel_futures=True)
                for future, change in running.items():
                    if not future.cancelled() and future.exception() is None:
                        outcomes[id(change)] = future.result()
        result = ApplyResult(interrupted=interrupted is not None)
        for change in plan.changes:
            if id(change) in outcomes:
                result.outcomes.append(outcomes[id(change)])
            elif interrupted is not None and change.action.changes_something:
                result.outcomes.append(Outcome(change, "skipped", "not attempted: interrupted"))
            else:
                result.outcomes.append(kinds.of(change.kind).unchanged(change))
        if interrupted is not None:
            raise ApplyInterrupted(result, interrupted)
        return result

    def _schedule(
        self,
        pool: ThreadPoolExecutor,
        pending: list[Change],
        running: dict[Future[Outcome], Change],
        deps: Mapping[int, list[Change]],
        outcomes: dict[int, Outcome],
    ) -> None:
        """Start each change once its dependencies are done; collect outcomes until all are."""
        done: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        while pending or running:
            for change in list(pending):
                blockers = [outcomes.get(id(d)) for d in deps[id(change)]]
                if any(o is None for o in blockers):
                    continue
                pending.remove(change)
                failed = [o.change.ref for o in blockers if o and o.status in ("failed", "skipped")]
                if failed:
                    outcomes[id(change)] = Outcome(
                        change, "skipped", f"not attempted: {', '.join(failed)} did not succeed"
                    )
                    continue
                stop = self.halt()
                if stop:
                    outcomes[id(change)] = Outcome(change, "failed", f"not attempted: {stop}")
                    continue
                future = pool.submit(self.provider.apply, change)
                future.add_done_callback(done.put)
                running[future] = change
            if not running:
                continue
            # Not concurrent.futures.wait: Ctrl-C or SIGTERM raised while it holds some of the
            # futures' locks leaves them held (it takes them one by one, with no cleanup), every
            # worker then blocks setting its result, and shutting the pool down never returns.
            # A queue's get is interrupted with no lock left behind.
            finished = done.get()
            change = running.pop(finished)
            outcomes[id(change)] = finished.result()
