"""The run API: every command of the reconciler, from typed options to a result, with its safety.

A `Manager` runs validate, plan, apply, drift, import and unlock for one scope (a reconciler.yaml
target, or none) against one Polaris project. The CLI turns flags into the option dataclasses
below and renders what comes back; a Python caller does the same with its own callbacks:

    manager = Manager(connect=connected(client), load=Loader(os.environ))
    planned = manager.plan(PlanRun(("manifests",)))
    applied = manager.apply(ApplyRun(approve=lambda plan: ask_someone(plan), paths=("manifests",)))

Each run goes in this order, and only here:

1. check what can be checked offline (a saved plan's options and project, drift's history paths,
   import's kinds and directories), then load and validate the manifests (`load`): nothing is
   sent before they pass;
2. connect, take the project lock when applying (SIGTERM then stops the run as Ctrl-C does, and
   the lock is released however the run ends), and read live state through the provider;
3. plan (`plan.make_plan`), with the objects new jobs will read and connection tests if asked;
4. check: a saved plan against the fresh one, part by part (`SavedPlan.differences`), then
   `Plan.raise_if_unsafe`, then approval (a callback: the CLI asks on a terminal);
5. apply (`Applier(provider).run(plan)`), each write fenced by the lock.
Like octoDNS's Manager, which owns the sync of its providers and the safety of their plans.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reconciler import config as configuration
from reconciler import kinds
from reconciler.config import DEFAULT_PATHS
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.manifest import Boundary, discover, gc_paused
from reconciler.model import (
    DEFAULT_FAIL_ON,
    DEFAULT_LOCK_TIMEOUT,
    KIND_ORDER,
    Kind,
    ManifestError,
    ManifestErrors,
)
from reconciler.plan import Early, Plan, make_plan, plan_early
from reconciler.validate import API_KEY_VARIABLE, Manifests, load_manifests
from reconciler.values import Allowances, ApplyOptions, Change, PlanOptions, Request

# The API client (and httpx), the lock and the importer are imported by the runs that talk to
# Polaris, when they run: `reconciler validate` starts without loading any of them.
if TYPE_CHECKING:
    from reconciler.apply import ApplyResult, PolarisProvider
    from reconciler.client import PolarisClient
    from reconciler.drift import DriftReport
    from reconciler.importer import ImportResult
    from reconciler.listing import Access
    from reconciler.live import LiveState
    from reconciler.lock import Holder, LockState
    from reconciler.ports import Fence, JobStore, Operation
    from reconciler.saved_plan import SavedPlan

Progress = Callable[[str], None]
Connect = Callable[[], AbstractContextManager["PolarisClient"]]
PLAN_DEFAULTS = PlanOptions()
# Where CI systems other than GitHub Actions say which run this is (GitLab, Jenkins, CircleCI).
CI_URL_VARIABLES = ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL")


class Refused(ReconcilerError):
    """A run asked for something it cannot do as given; nothing was sent or written."""

    code = ErrorCode.USAGE


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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a canceled CI job): stops a run as Ctrl-C does, and exits 143 (128 + 15)."""


# Options: what each run is asked to do --------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The reconciler.yaml target a run is for (if any), and the variables manifests see."""

    config: configuration.Config | None = None
    target: configuration.Target | None = None
    variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_variables(self) -> frozenset[str]:
        """Variables holding an API key: never interpolated, even into a secret."""
        declared = self.config.key_variables if self.config else frozenset()
        return declared | {API_KEY_VARIABLE}

    @property
    def target_name(self) -> str | None:
        """The chosen target's name, for messages."""
        return self.target.name if self.target else None

    @property
    def paths(self) -> tuple[str, ...]:
        """The manifest paths to read when none are given."""
        return self.target.paths if self.target else DEFAULT_PATHS

    @property
    def within(self) -> Boundary:
        """The repository's directory: a symbolic link in it may not lead out of it."""
        return configuration.boundary(self.config)


@dataclass(frozen=True)
class Destination:
    """A Polaris project: where a saved plan was made for, and where a run connects."""

    url: str | None
    project: str | None


@dataclass(frozen=True)
class ValidateRun:
    """Check manifests offline, for each scope (every target of reconciler.yaml, say)."""

    scopes: tuple[Scope, ...] = (Scope(),)
    paths: tuple[str, ...] = ()  # empty: each scope's own paths


@dataclass(frozen=True)
class PlanRun:
    """Read live state and plan; with `access`, list what new jobs will read; with `preflight`,
    test the connections they read through."""

    paths: tuple[str, ...] = ()  # empty: the scope's paths
    options: PlanOptions = PLAN_DEFAULTS
    access: Access | None = None
    preflight: bool = False


@dataclass(frozen=True)
class LockOptions:
    """How apply holds the project lock."""

    enabled: bool = True  # False (--no-lock): for keys without ManageTables, with a warning
    timeout: float = DEFAULT_LOCK_TIMEOUT  # how long to wait for another apply's lock
    lease: float | None = None  # seconds of the lock's lease; None: the lock's default
    holder: Holder | None = None  # who this apply is; None: user@host and pid


@dataclass(frozen=True)
class ApplyRun:
    """Plan under the lock, check the plan, ask `approve`, then carry it out."""

    approve: Callable[[Plan], bool]  # asked only when there are changes; False: nothing is sent
    paths: tuple[str, ...] = ()  # empty: the scope's paths (or the reviewed plan's)
    options: PlanOptions = PLAN_DEFAULTS
    allowed: Allowances = field(default_factory=Allowances)
    reviewed: SavedPlan | None = None  # a saved plan: applied only if a fresh plan matches it
    wait: bool = False  # follow submitted jobs until they finish
    timeout: float = 3600.0  # how long `wait` follows them
    lock: LockOptions = field(default_factory=LockOptions)


@dataclass(frozen=True)
class DriftRun:
    """Report how live state differs from the manifests; `history` holds finished jobs'."""

    paths: tuple[str, ...] = ()  # empty: the scope's paths
    history: tuple[str, ...] = ()  # added to the scope target's `history:`
    ignore: tuple[str, ...] = ()  # added to the scope target's `ignore:`
    fail_on: frozenset[str] = DEFAULT_FAIL_ON


@dataclass(frozen=True)
class ImportRun:
    """Write manifests for the live project: `kinds` (empty: the default ones), plus jobs."""

    out: str
    history: str  # where finished jobs' manifests go
    kinds: frozenset[Kind] = frozenset()
    jobs: bool = False
    names: tuple[str, ...] = ()  # globs; empty: every name
    force: bool = False  # overwrite manifests that exist


@dataclass(frozen=True)
class OperateRun:
    """A kind's one-off `verb` on one live resource (`reconciler reset TABLE`), under the lock,
    done only if `approve` agrees after seeing what it will do."""

    verb: str  # one of a kind's `operations`
    name: str
    approve: Callable[[Operation], bool]
    lock: LockOptions = field(default_factory=LockOptions)


@dataclass(frozen=True)
class UnlockRun:
    """Remove a lock left by an apply that died, if `confirm` says so after seeing its holder."""

    confirm: Callable[[LockState], bool]


# Results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """Every problem found, and the scopes whose manifests are valid."""

    problems: list[ManifestError]
    valid: list[tuple[Scope, Manifests]]
    ok: bool
    paths: tuple[str, ...]

    @property
    def files(self) -> list[str]:
        """The manifest files read (for a JUnit report)."""
        return [str(path) for path in discover(dict.fromkeys(self.paths))[0]]


@dataclass(frozen=True)
class Planned:
    """A plan, the live state it was made from and the manifests it was made for."""

    live: LiveState
    plan: Plan
    manifests: Manifests


@dataclass(frozen=True)
class Applied:
    """The plan carried out and what happened to each change."""

    manifests: Manifests
    plan: Plan
    result: ApplyResult


@dataclass(frozen=True)
class Drifted:
    """A drift report, and the manifests and plan it was made from."""

    manifests: Manifests
    plan: Plan
    report: DriftReport


@dataclass(frozen=True)
class Imported:
    """What import read and the files it wrote."""

    result: ImportResult
    written: list[Path]
    kept: int  # finished jobs written to the history path


@dataclass(frozen=True)
class Operated:
    """What a one-off operation did (`done` is None: there was nothing to do it to)."""

    operation: Operation | None
    done: str | None


@dataclass(frozen=True)
class Unlocked:
    """The lock found (None: never taken) and whether it was removed."""

    state: LockState | None
    removed: bool


# Collaborators ---------------------------------------------------------------------------------


class Load(Protocol):
    """Load and validate the manifests under `paths` for `scope`; raise ManifestErrors.

    `offline` (validate): an unset environment variable is a warning, not an error."""

    def __call__(self, paths: Sequence[str], scope: Scope, *, offline: bool) -> Manifests: ...


@dataclass(frozen=True)
class Loader:
    """The plain `Load`: `validate.load_manifests` with `environ` for `${env:NAME}`."""

    environ: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, paths: Sequence[str], scope: Scope, *, offline: bool) -> Manifests:
        return load_manifests(
            paths, self.environ, require_env=not offline, variables=scope.variables,
            key_variables=scope.key_variables, target=scope.target_name, within=scope.within,
            keep_compared=not offline,  # an offline run (validate) plans nothing
            identify=False,  # a plan does, while its first reads are in flight
        )  # fmt: skip


def connected(client: PolarisClient) -> Connect:
    """A `connect` for a client the caller opened and closes."""
    return lambda: contextlib.nullcontext(client)


def _not_connected() -> AbstractContextManager[PolarisClient]:
    raise Refused("this Manager has no Polaris project to connect to (pass connect=)")


def holder_of(environ: Mapping[str, str]) -> Holder:
    """Who this process is, for the lock's description: user@host, pid and the CI run if any."""
    from reconciler.lock import Holder  # defers httpx (the lock talks to Polaris)

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    ci = None
    if environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = environ.get("GITHUB_REPOSITORY", "")
        ci = f"{server}/{repository}/actions/runs/{environ['GITHUB_RUN_ID']}"
    else:
        ci = next((environ[n] for n in CI_URL_VARIABLES if environ.get(n)), None)
    return Holder(f"{user}@{socket.gethostname()}", os.getpid(), ci)


# The manager ------------------------------------------------------------------------------------


@dataclass
class Manager:
    """Runs the commands for one scope against one Polaris project (validate needs none)."""

    connect: Connect = _not_connected
    load: Load = field(default_factory=Loader)
    scope: Scope = field(default_factory=Scope)
    parallelism: int = 8
    cache_root: Path | None = None  # the job cache's directory, scoped per project; None: none
    progress: Progress = lambda message: None
    # Where `connect` leads, when known before connecting: a saved plan for another project is
    # then refused before anything is read. Checked against the client's own config as well.
    destination: Destination | None = None

    # validate

    def validate(self, run: ValidateRun) -> Validation:
        """Load the manifests of every scope; each problem once, in file order."""
        problems: dict[tuple[object, str], ManifestError] = {}
        valid: list[tuple[Scope, Manifests]] = []
        for scope in run.scopes:
            try:
                manifests = self.load(run.paths or scope.paths, scope, offline=True)
            except ManifestErrors as failed:
                problems.update(((e.location, e.message), e) for e in failed.errors)
                continue
            problems.update(((e.location, e.message), e) for e in manifests.warnings)
            valid.append((scope, manifests))
        found = sorted(problems.values(), key=lambda e: (e.location, e.message))
        paths = tuple(path for scope in run.scopes for path in (run.paths or scope.paths))
        return Validation(found, valid, len(valid) == len(run.scopes), paths)

    # plan

    def plan(self, run: PlanRun = PlanRun()) -> Planned:
        """Validate, then read live state and plan (validation passes before anything is sent)."""
        manifests = self._load(run.paths)
        with self.connect() as client:
            return self._plan(self._provider(client), manifests, run)

    def _plan(self, provider: PolarisProvider, manifests: Manifests, run: PlanRun) -> Planned:
        self.progress(f"Reading live state of project {provider.client.config.project} ...")
        # Reading and planning make no garbage cycles the collector would have to find, but it
        # scanned the growing heap of a read of 10,000 jobs again and again: 150 ms of a cold
        # plan of 1,000 jobs went to it (gc.callbacks), 90 ms to full collections.
        with gc_paused():
            # The jobs' compared forms are made while the first answers are on their way, and
            # the connections are planned while the jobs' details come.
            early: list[Early] = []
            live = provider.read(
                manifests.resources, meanwhile=lambda: manifests.prepared.resources,
                idle=lambda read: early.append(
                    plan_early(manifests.prepared.resources, read, run.options)
                ),
            )  # fmt: skip
            manifests = manifests.prepared
            plan = make_plan(manifests.resources, live, run.options, early=next(iter(early), None))
        if run.access is not None or run.preflight:
            plan = self._data_aware(provider, plan, manifests, live, run)
        return Planned(live, plan, manifests)

    def _data_aware(
        self, provider: PolarisProvider, plan: Plan, manifests: Manifests, live: LiveState,
        run: PlanRun,
    ) -> Plan:  # fmt: skip
        # Each kind says what its new resources will read (the objects of new jobs), and lists it.
        to_list = [
            (kind, kind.to_list(plan, manifests.resources, live)) for kind in kinds.ordered()
        ]
        access = run.access
        if access is not None:
            count = sum(len(items) for _, items in to_list)
            if access.enabled and count:
                self.progress(f"Listing the objects of {count} new job(s) ...")
            listings = {
                name: listing
                for kind, items in to_list
                if items
                for name, listing in kind.list_objects(items, access, self.parallelism).items()
            }
            if access.enabled:  # plan again, so that overlap warnings can name listed objects
                plan = make_plan(manifests.resources, live, run.options, listings)
            else:
                changes = tuple(
                    kinds.of(change.kind).listed(change, listings.get(change.name))
                    for change in plan.changes
                )
                plan = dataclasses.replace(plan, changes=changes)
        if not run.preflight:
            return plan
        # What they read through (their dependencies), each kind testing its own.
        by_key = {r.key: r for r in manifests.resources}
        needed: dict[Kind, list[str]] = {}
        for kind, items in to_list:
            for item in items:
                for other, name in kind.dependencies(by_key[(kind.kind, item.name)].spec):
                    needed.setdefault(other, []).append(name)
        tests = tuple(
            test
            for kind in kinds.ordered()
            if kind.kind in needed
            for test in kind.preflight(
                needed[kind.kind], plan, live, provider.client, self.parallelism
            )
        )
        return dataclasses.replace(plan, preflight=tests)

    # apply

    def apply(self, run: ApplyRun) -> Applied:
        """Plan under the lock, check the plan, ask, then carry it out; raises Refused (a saved
        plan for other options or another project), StalePlan, UnsafePlan (from
        `Plan.raise_if_unsafe`) or NotApproved before any change."""
        from reconciler.apply import Applier  # defers httpx

        if run.reviewed is not None:
            check_options(run.reviewed, run.options)
            if self.destination is not None:
                check_destination(run.reviewed, self.destination)
            # The saved plan says what was reviewed: plan again with the same paths and options.
            run = dataclasses.replace(
                run, paths=run.reviewed.paths or DEFAULT_PATHS, options=run.reviewed.options
            )
        manifests = self._load(run.paths)
        options = ApplyOptions(
            parallelism=self.parallelism, allow_reingest=run.allowed.allow_reingest,
            wait=run.wait, timeout=run.timeout,
        )  # fmt: skip
        with self.connect() as client:
            if run.reviewed is not None:
                check_destination(
                    run.reviewed, Destination(client.config.url, client.config.project)
                )
            provider = self._provider(client, options)
            # The lock is taken before live state is read: the plan carried out is the holder's.
            with self._locked(client, run.lock) as fence:
                plan = self._plan(provider, manifests, PlanRun(run.paths, run.options)).plan
                differences = run.reviewed.differences(plan) if run.reviewed is not None else []
                if differences:
                    raise StalePlan(plan, differences)
                plan.raise_if_unsafe(run.allowed)
                if plan.has_changes and not run.approve(plan):
                    raise NotApproved("apply canceled; nothing was changed")
                provider.fence = fence
                applier = Applier(provider, parallelism=self.parallelism, halt=fence.check)
                result = applier.run(plan)
        return Applied(manifests, plan, result)

    @contextlib.contextmanager
    def _locked(self, client: PolarisClient, options: LockOptions) -> Iterator[Fence]:
        """Hold the project lock for the block, which gets the lock as a fence (apply asks it
        before each write). SIGTERM (a canceled CI job) stops the block as Ctrl-C does: apply
        says what it did, and the lock is released."""
        from reconciler.apply import Unlocked as NoLock  # defers httpx
        from reconciler.lock import LOCK_TTL, ProjectLock  # deferred: loads httpx

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            if not options.enabled:
                self.progress(
                    "warning: --no-lock: another apply running at the same time may submit the "
                    "same jobs again; make sure no other apply runs against this project"
                )
                yield NoLock()
                return
            lock = ProjectLock(
                client, options.holder or holder_of({}), timeout=options.timeout,
                ttl=options.lease or LOCK_TTL, progress=self.progress,
            )  # fmt: skip
            try:
                lock.acquire()
                yield lock
            finally:
                lock.release()  # also after Ctrl-C or SIGTERM; does nothing when not taken
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    # drift

    def drift(self, run: DriftRun) -> Drifted:
        """Plan, then report each resource's drift; finished jobs in `history` never fail."""
        from reconciler.drift import drift_report  # defers drift.py: only drift needs it

        paths = run.paths or self.scope.paths
        history, ignore = run.history, run.ignore
        if self.scope.target is not None:
            history = (*self.scope.target.history, *history)
            ignore = (*self.scope.target.ignore, *ignore)
        history = _distinct(history)  # the same directory from reconciler.yaml and a flag: once
        for kept_path in history:
            for path in paths:
                if _under(kept_path, path) or _under(path, kept_path):
                    raise Refused(
                        f"history path {kept_path} overlaps the manifest path {path}: plan and "
                        "apply would submit the jobs kept there again; keep history outside the "
                        "manifest paths"
                    )
        # A history path with nothing in it yet is a normal state (no job has finished).
        empty = [path for path in history if not discover([path])[0]]
        for path in empty:
            self.progress(f"note: history path {path} holds no manifests yet")
        history = tuple(path for path in history if path not in empty)
        planned = self.plan(PlanRun((*paths, *history)))
        manifests = planned.manifests
        kept = {
            (str(r.kind), r.name)
            for r in manifests.resources
            if any(_under(r.location.file, root) for root in history)
        }
        report = drift_report(planned.plan, fail_on=run.fail_on, ignore=ignore, history=kept)
        return Drifted(manifests, planned.plan, report)

    # import

    def import_(self, run: ImportRun) -> Imported:
        """Read the live project and write one manifest per chosen resource; refuses to
        overwrite (unless `force`) before writing anything."""
        from reconciler.importer import ImportOptions, import_project, write_files  # defers httpx

        every = list(kinds.ordered())
        by_default = {k.kind for k in every if k.imported_by_default}
        chosen = set(run.kinds) or set(by_default)
        if run.jobs:
            chosen |= {k.kind for k in every if not k.imported_by_default}
        # Only jobs (not imported by default) may finish, and so go to the history path.
        if chosen - by_default and (_under(run.history, run.out) or _under(run.out, run.history)):
            raise Refused(
                f"--history-out {run.history} overlaps --out {run.out}: plan and apply would "
                "submit the finished jobs kept there again; choose a directory outside it"
            )
        with self.connect() as client:
            self.progress(f"Reading project {client.config.project} ...")
            options = ImportOptions(frozenset(chosen), run.names)
            result = import_project(
                client, options, parallelism=self.parallelism, cache=self._cache(client)
            )
        try:
            written = write_files(result, Path(run.out), history=Path(run.history), force=run.force)
        except (OSError, ValueError) as error:  # ValueError: a path leaving `out`
            raise Refused(str(error)) from None
        kept = sum(result.count(kind, history=True) for kind in KIND_ORDER)
        return Imported(result, written, kept)

    # one-off operations

    def operate(self, run: OperateRun) -> Operated:
        """Do a kind's one-off `verb` on one live resource, under the project lock (an apply
        running meanwhile would plan against a read point that moves), once `approve` agrees;
        raises NotApproved if it does not."""
        offering = [kind for kind in kinds.ordered() if run.verb in kind.operations]
        if len(offering) != 1:
            raise Refused(f"{len(offering)} kinds offer {run.verb!r}; exactly one must")
        with self.connect() as client, self._locked(client, run.lock):
            operation = offering[0].operate(run.verb, client, run.name)
            if operation is None:
                return Operated(None, None)
            if not run.approve(operation):
                raise NotApproved(f"{run.verb} canceled; nothing was changed")
            return Operated(operation, operation.run())

    # unlock

    def unlock(self, run: UnlockRun) -> Unlocked:
        """Remove the project lock if `confirm` agrees; raises NotApproved if it does not."""
        from reconciler.lock import read_lock, remove_lock  # defers httpx

        with self.connect() as client:
            state = read_lock(client)
            if state is None or state.free:
                return Unlocked(state, removed=False)
            if not run.confirm(state):
                raise NotApproved("the lock was left in place")
            remove_lock(client, state, datetime.now(UTC))
        return Unlocked(state, removed=True)

    # shared steps

    def _load(self, paths: tuple[str, ...]) -> Manifests:
        return self.load(paths or self.scope.paths, self.scope, offline=False)

    def _provider(
        self, client: PolarisClient, options: ApplyOptions | None = None
    ) -> PolarisProvider:
        from reconciler.apply import PolarisProvider  # defers httpx

        return PolarisProvider(
            client, options or ApplyOptions(parallelism=self.parallelism),
            cache=self._cache(client), progress=self.progress,
        )  # fmt: skip

    def _cache(self, client: PolarisClient) -> JobStore | None:
        """The job cache of this project: one directory per URL and project, never shared; the
        kind that caches what it reads (finished jobs) says what it keeps there."""
        directory = None
        if self.cache_root is not None:
            where = f"{client.config.url.rstrip('/')}|{client.config.project}"
            directory = self.cache_root / hashlib.sha256(where.encode()).hexdigest()[:16]
        stores = (kind.store(directory) for kind in kinds.ordered())
        return next((store for store in stores if store is not None), None)


def check_options(saved: SavedPlan, options: PlanOptions) -> None:
    """Refuse plan options given beside a saved plan: it is applied with those it was made with."""
    if options == PLAN_DEFAULTS:
        return
    given = [
        flag
        for flag, on in (
            ("--resubmit-canceled", options.resubmit_canceled),
            ("--rotate-secrets", options.rotate_secrets),
            ("--prune", options.prune),
        )
        if on
    ]
    raise Refused(
        f"{' '.join(given)} cannot change a saved plan: it is applied with the options it "
        f"was made with; run `reconciler plan {' '.join(given)} --out FILE` and apply that"
    )


def check_destination(saved: SavedPlan, destination: Destination) -> None:
    """Refuse a saved plan made for another project (or the same project at another URL)."""
    if (saved.url, saved.project) != (destination.url, destination.project):
        raise Refused(
            f"the saved plan is for project {saved.project} at {saved.url}, "
            f"not {destination.project} at {destination.url}"
        )


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _distinct(paths: Iterable[str]) -> tuple[str, ...]:
    """Paths in order, each file or directory once however it is spelt."""
    first: dict[str, str] = {}
    for path in paths:
        first.setdefault(str(Path(path).resolve()), path)
    return tuple(first.values())


def _under(file: str, root: str) -> bool:
    """Whether a manifest file was found under the path given on the command line."""
    path, top = Path(file).resolve(), Path(root).resolve()
    return path == top or top in path.parents


def requests_of(plan: Plan) -> list[tuple[Change, list[Request]]]:
    """Each change with the requests apply will send for it (`plan --show-requests`)."""
    return [(change, list(change.requests)) for change in plan.changes if change.requests]
