"""What a kind may use of the steps that call it: narrow protocols, not the concrete classes.

The kinds (reconciler/kinds) are called by the live read, the planner, apply and import, and
each hands itself to the kind: a `LiveReader`, the `LiveState` it read, a `PolarisProvider`, an
`ImportWriter`. Typing the kinds against those classes would make the kinds import the steps
that import the kinds; typing them against these protocols keeps the layers one way (values and
model, then these ports, then the kinds, then the steps). Each protocol lists only what the
kinds use today; a kind that needs more adds it here, where a reviewer sees the seam widen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import Field
from typing import Any, ClassVar, Protocol

from reconciler.model import Kind, Resource
from reconciler.values import ApplyOptions, Change, ManifestFile, Outcome, Request


class Api(Protocol):
    """What the kinds use of the API client (`client.PolarisClient` is the one): the operations
    on a collection of named resources, by the collection's name, and the plain verbs on a path
    (`ResourceKind.path`). The client raises its own errors (`client.NotFoundError`, ...)."""

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a project-relative path."""

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body; retried only when Polaris certainly did not process it."""

    def listed(self, collection: str, *, key: str = "name") -> list[dict[str, Any]]:
        """Every resource of a collection that lists in one call."""

    def read(self, collection: str, name: str, *, key: str = "name") -> dict[str, Any] | None:
        """One resource, or None."""

    def create(
        self, collection: str, body: Mapping[str, Any], *, key: str | None = None
    ) -> dict[str, Any]:
        """POST a resource to its collection."""

    def replace(self, collection: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a resource."""

    def modify(self, collection: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a resource."""

    def remove(self, collection: str, name: str) -> None:
        """DELETE a resource; one already gone counts as deleted."""

    def list_tables(self) -> list[dict[str, Any]]:
        """Every table but the project lock's."""


class JobApi(Api, Protocol):
    """The job kinds' own operations on Polaris's jobs, which list in pages and are addressed
    by id (`client.PolarisClient` is the one)."""

    def iter_jobs(
        self, *, read_ahead: Executor | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Job summaries, newest first, every page of them."""

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """One full job, or None."""

    def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a job."""

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Ask Polaris to cancel a pending or running job."""

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The job's overall progress (0..1)."""

    def job_metrics(self, job_id: str) -> dict[str, Any]:
        """The job's totals."""


class LiveView(Protocol):
    """Live state as the kinds read it (`live.LiveState` is the one): each kind's own part, of the
    type that kind defines, and what one kind's live resources hold of another's."""

    def of(self, kind: Kind) -> Any:
        """The live state `kind` read, of the type that kind defines (None: not read)."""

    def by_name(self, kind: Kind) -> Mapping[str, Mapping[str, Any]]:
        """A named kind's live resources by name (`ResourceKind.live`)."""

    def in_use(self, kind: Kind) -> frozenset[str]:
        """Names of live resources of `kind` that active resources of other kinds use (a running
        job's connection and table): never pruned, never treated as idle."""


class JobStore(Protocol):
    """The on-disk cache of jobs in a terminal state (`JobCache` of the job kind is the one)."""

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The cached job, if any."""

    def put(self, job: Mapping[str, Any]) -> None:
        """Remember a job whose status is terminal."""

    def close(self) -> None:
        """Save what was remembered (once the read is over, whether it failed or not)."""


class LiveReading(Protocol):
    """What a kind's `read` reads into (`live.LiveReader` is the one)."""

    # Each kind's live state once read, of the type that kind defines (`LiveView.of`).
    states: dict[Kind, Any]
    # Reads a kind started that another kind may wait for (jobs resolve through the connection
    # list): by kind, the future of its live resources by name.
    started: dict[Kind, Future[dict[str, Mapping[str, Any]]]]

    @property
    def client(self) -> JobApi:
        """The API client."""

    @property
    def resources(self) -> list[Resource]:
        """Every desired resource."""

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The thread pool every kind's reads share."""

    @property
    def cache(self) -> JobStore:
        """The job cache."""

    @property
    def full(self) -> frozenset[Kind]:
        """Kinds read for `reconciler import`: every live resource in full, with what a manifest
        writer needs (a job's request as Polaris returned it); empty for a plan."""

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The desired resources of one kind."""

    def feed(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads, before any `then` step: for a
        read that asks for more as answers come (the job pages, then each job's detail)."""

    def then(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads (and every `feed` step ran)."""


class Listable(Protocol):
    """A resource whose objects a kind lists before apply (`ResourceKind.to_list`): a new job."""

    @property
    def name(self) -> str:
        """The resource's name, which its listing is filed under."""


class Operation(Protocol):
    """A one-off action a kind offers on one live resource, only ever when asked (a streaming
    job's reset): what it will do, for approval, then doing it once."""

    def describe(self) -> str:
        """What it will do, as a reviewer reads it before approving it."""

    def run(self) -> str:
        """Do it once; returns what was done."""


class Fence(Protocol):
    """The project lock as a writer sees it (`ProjectLock` is one)."""

    @property
    def contested(self) -> bool:
        """Whether another writer may post jobs beside this apply (a paused former holder)."""

    def check(self) -> str | None:
        """Why no write may start now, or None."""


class Applying(Protocol):
    """What a kind's `apply` and `session` use of the provider (`apply.PolarisProvider`)."""

    @property
    def client(self) -> JobApi:
        """The API client."""

    @property
    def options(self) -> ApplyOptions:
        """How apply carries changes out."""

    @property
    def fence(self) -> Fence:
        """The project lock."""

    @property
    def live(self) -> LiveView | None:
        """Live state as last read: apply's re-checks start from it."""

    @property
    def progress(self) -> Callable[[str], None]:
        """Where progress lines go."""

    @property
    def stopped(self) -> threading.Event:
        """Set when apply stops following jobs (--wait)."""

    @property
    def sleep(self) -> Callable[[float], None]:
        """A pause between retries."""

    @property
    def pause(self) -> Callable[[float], object]:
        """The pause between polls of a followed job, which ends at once when waiting stops."""

    def session(self, kind: Kind) -> Any:
        """The state a kind keeps while this plan is applied (ResourceKind.session)."""

    def create(
        self, change: Change, request: Request, post: Callable[[dict[str, Any]], Any],
        read: Callable[[str], Mapping[str, Any] | None],
    ) -> Outcome:  # fmt: skip
        """POST a named resource; after a conflict or a lost answer, read before retrying."""


class PlanView(Protocol):
    """A plan as a kind reads it while the plan is applied (`plan.Plan` is the one): a
    dataclass, so that a kind can return it with its changes replaced."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change, in dependency order."""


class Writable(Protocol):
    """A kind as import asks it which fields a manifest may set (`ResourceKind` is one)."""

    def writable(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """The fields of `spec` this tool manages."""


class Importing(Protocol):
    """What a kind's `imported` writes manifests with (`importer.ImportWriter`); what it writes
    them from is the live state the live read left (read with the kind in `LiveReading.full`)."""

    def shown(self, text: str) -> str:
        """A server value inside a message or comment: one line, no control characters."""

    def wants(self, kind: Kind, *names: str) -> bool:
        """Whether the selection (--kind, --name) includes this resource."""

    def skip(self, reason: str) -> None:
        """Leave a resource out, saying why."""

    def nameable(self, kind: Kind, name: str) -> bool:
        """Whether a manifest can declare this live name; if not, say why it is left out."""

    def writable(self, kind: Writable, live: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a manifest may set, as live state has them."""

    def drop_defaults(self, spec: dict[str, Any], defaults: Mapping[str, Any]) -> None:
        """Leave out every field that holds its documented default."""

    def path(self, kind: Kind, name: str, *, folder: tuple[str, ...] | None = None) -> str:
        """A safe, unique file path for a resource."""

    def variable_stem(self, name: str, taken: set[str]) -> str:
        """The start of the environment variable names for a connection's secrets."""

    def manifest(
        self, kind: Kind, name: str, spec: Mapping[str, Any], path: str, comments: list[str],
        variables: tuple[str, ...], *, history: bool = False,
    ) -> ManifestFile:  # fmt: skip
        """The manifest file for one resource (`history`: for the history path)."""
