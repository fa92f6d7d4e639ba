"""What a kind may use of the steps that call it: narrow protocols, not the concrete classes.

The kinds (reconciler/kinds) are called by the live read, the planner, apply and import, and
each hands itself to the kind: a `LiveReader`, the `LiveState` it read, a `PolarisProvider`, an
`ImportReader`. Typing the kinds against those classes would make the kinds import the steps
that import the kinds; typing them against these protocols keeps the layers one way (values and
model, then these ports, then the kinds, then the steps). Each protocol lists only what the
kinds use today; a kind that needs more adds it here, where a reviewer sees the seam widen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import Field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from reconciler.identity import OverlapIndex
from reconciler.model import Kind, Resource
from reconciler.values import ApplyOptions, Change, ManifestFile, Outcome, Request

if TYPE_CHECKING:  # for types only: the client loads httpx, which `reconciler validate` never needs
    from reconciler.client import PolarisClient

JobT = TypeVar("JobT")  # the IngestionJob kind's live job (kinds.ingestion_job.LiveJob)


class LiveView(Protocol[JobT]):
    """Live state as the kinds read it (`live.LiveState` is the one)."""

    @property
    def connections(self) -> Mapping[str, Mapping[str, Any]]:
        """Live connections by name."""

    @property
    def tables(self) -> Mapping[str, Mapping[str, Any]]:
        """Live tables by name: full bodies for declared ones, summaries otherwise."""

    @property
    def jobs(self) -> tuple[JobT, ...]:
        """Batch jobs into a table that a manifest job targets."""

    @property
    def active_job_connections(self) -> frozenset[str]:
        """Connections a pending or running job reads from."""

    @property
    def named(self) -> Mapping[Kind, Mapping[str, Mapping[str, Any]]]:
        """Any other kind's live resources by name."""

    @property
    def by_fingerprint(self) -> Mapping[str, list[JobT]]:
        """Live jobs by identity."""

    @property
    def overlaps(self) -> OverlapIndex[JobT]:
        """Live jobs by table and by what they read."""

    @property
    def active_tables(self) -> frozenset[str]:
        """Tables a pending or running job writes into."""


class JobStore(Protocol):
    """The on-disk cache of jobs in a terminal state (`live.JobCache` is the one)."""

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The cached job, if any."""

    def put(self, job: Mapping[str, Any]) -> None:
        """Remember a job whose status is terminal."""


class LiveReading(Protocol[JobT]):
    """What a kind's `read` reads into (`live.LiveReader` is the one)."""

    # Set by the Connection kind's read; the IngestionJob kind's resolves jobs through it.
    listed_connections: Future[dict[str, Mapping[str, Any]]] | None
    jobs: list[JobT]  # set by the IngestionJob kind's read

    @property
    def client(self) -> PolarisClient:
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
    def connections(self) -> dict[str, Mapping[str, Any]]:
        """Live connections, filled by the Connection kind."""

    @property
    def tables(self) -> dict[str, Mapping[str, Any]]:
        """Live tables, filled by the Table kind."""

    @property
    def active_connections(self) -> set[str]:
        """Connections an active job reads from, filled by the IngestionJob kind."""

    @property
    def named(self) -> dict[Kind, dict[str, Mapping[str, Any]]]:
        """Any other kind's live resources by name."""

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The desired resources of one kind."""

    def then(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads."""


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
    def client(self) -> PolarisClient:
        """The API client."""

    @property
    def options(self) -> ApplyOptions:
        """How apply carries changes out."""

    @property
    def fence(self) -> Fence:
        """The project lock."""

    @property
    def live(self) -> LiveView[Any] | None:
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
    """What a kind's `imported` reads from and writes with (`importer.ImportReader`)."""

    @property
    def client(self) -> PolarisClient:
        """The API client."""

    @property
    def pool(self) -> ThreadPoolExecutor:
        """A thread pool for reads."""

    @property
    def connections(self) -> dict[str, Mapping[str, Any]]:
        """Every live connection by name (read once)."""

    @property
    def table_names(self) -> list[str]:
        """Every live table's name (read once)."""

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
