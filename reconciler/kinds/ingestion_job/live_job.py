"""A batch job as Polaris reports it (`LiveJob`): its status, its identity and what it reads,
resolved through the project's connections once, when it is read."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.kinds.base import TERMINAL_STATUSES as TERMINAL_STATUSES  # the package uses it
from reconciler.kinds.ingestion_job.fingerprints import JobIdentity, job_identity
from reconciler.kinds.ingestion_job.identity import OverlapIndex, Place, Reads, place_of, reads_of
from reconciler.kinds.ingestion_job.spec import JOB_SPEC, SELECTORS, request_of
from reconciler.normalize import identical, plain

ACTIVE_STATUSES = frozenset({"pending", "running"})
# Every status this tool knows what to do with; any other (the API documents `unknown`) may
# have ingested, and is never resubmitted or ingested again without --allow-reingest.
KNOWN_STATUSES = TERMINAL_STATUSES | ACTIVE_STATUSES
# Statuses that mean "this spec has been, or is being, ingested": never submit it again.
SATISFIED_STATUSES = frozenset({"pending", "running", "completed"})
# What the reconciler uses of a job: which one, its state and since when, and the request it was
# created from. When Polaris returns the request under `spec`, the top-level echo of the same
# fields is dropped: every job into a declared table is kept in memory (and finished ones on
# disk), and the echo would double that.
ESSENTIAL_FIELDS = ("id", "executionStatus", "health", "createdTimestamp", "spec")


@dataclass(frozen=True, slots=True)
class LiveJob:
    """A batch job as Polaris reports it, with its identity and what it reads."""

    id: str
    status: str
    identity: JobIdentity  # over its connection's place (its name, when it has none)
    table: str
    connection: str
    body: Mapping[str, Any]  # the job from GET /jobs/{id}; `of` keeps its ESSENTIAL_FIELDS
    reads: Reads | None = None
    # The same job read through the other place its connection may have had when it ran: the
    # place a manifest declares for that connection, when the live one differs (someone moved it
    # behind git's back, and apply is about to move it back). A job matches either reading, so
    # neither a noop is missed nor an overlap: both err towards not ingesting again.
    alternatives: tuple[tuple[JobIdentity, Reads], ...] = ()
    # Its request in compared form (normalized), made once by `of` and shared by every plan
    # change about it; `body` then holds it under `spec`, in place of the request as returned.
    compared: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        body: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]],
        declared: Mapping[str, Place] | None = None,
        forms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        places: dict[str, Place] | None = None,
        identify: Callable[[dict[str, Any], Place | None], JobIdentity] = job_identity,
    ) -> LiveJob:
        """A job read from Polaris, resolved through the project's connections as they are now
        (and as the manifests declare them, where those differ).

        Its identity is taken from the request as Polaris returned it; then only the request's
        compared form is kept (every job into a declared table is held until the plan is
        rendered): a plan compares it, and shares it with the manifest's where they are equal.
        `forms` (`SharedForms.of`) gives the manifest job's own where they are identical, and
        `places` keeps each connection's place for the next job through it: a reader of
        10,000 jobs holds each name and place once, not once a job. `identify` takes its
        identities (`SharedForms.identity`, which keeps those of the manifests' forms).
        """
        table, connection = map(sys.intern, job_key(body))
        current = connections.get(connection)
        place = None
        if current is not None:
            place = places.get(connection) if places is not None else None
            if place is None:
                place = place_of(current)
                if places is not None:
                    place = places.setdefault(connection, place)
        spec = request_of(body)
        other = (declared or {}).get(connection)
        # The one normalization of this job's request, sharing the answer's values until it is
        # known whether a manifest job's form stands for it; else a plain copy (interned).
        compared = JOB_SPEC.normalize(spec, copy=False)
        shared = forms(compared) if forms is not None else compared
        compared = shared if shared is not compared else plain(compared)
        alternatives: tuple[tuple[JobIdentity, Reads], ...] = ()
        if other is not None and other != place:
            alternatives = ((identify(compared, other), reads_of(spec, other)),)
        kept = {key: plain(body[key]) for key in ESSENTIAL_FIELDS if key in body and key != "spec"}
        kept["spec"] = compared
        return cls(
            id=str(body["id"]),
            status=sys.intern(str(body.get("executionStatus") or "unknown")),
            identity=identify(compared, place),
            table=table,
            connection=connection,
            body=kept,
            reads=reads_of(spec, place),
            alternatives=alternatives,
            compared=compared,
        )

    @classmethod
    def parse(
        cls,
        body: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]],
        declared: Mapping[str, Place] | None = None,
        forms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        places: dict[str, Place] | None = None,
        identify: Callable[[dict[str, Any], Place | None], JobIdentity] = job_identity,
    ) -> LiveJob:
        """`of`, for a body from the API: one whose fields have types the API never sends is a
        MalformedResponseError naming the job, never an exception from deep inside `of`."""
        from reconciler.client import MalformedResponseError  # deferred: loads httpx

        try:
            return cls.of(body, connections, declared, forms, places, identify)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            raise MalformedResponseError(
                f"GET /jobs/{body.get('id')}: Polaris answered with a job whose fields do not "
                f"have the documented types ({type(error).__name__}: {error}); is POLARIS_URL "
                "the API?"
            ) from None

    @property
    def readings(self) -> tuple[tuple[JobIdentity, Reads | None], ...]:
        """Every (identity, reads) this job may have: the live reading first."""
        return ((self.identity, self.reads), *self.alternatives)

    @property
    def place(self) -> Place | None:
        """Where the job read from; None when its connection no longer exists."""
        return self.reads.place if self.reads else None

    @property
    def health(self) -> Mapping[str, Any]:
        """The job's health: `{"status": "ok"}` or a code and message."""
        health = self.body.get("health")
        return health if isinstance(health, Mapping) else {"status": "ok"}

    @property
    def spec(self) -> Mapping[str, Any]:
        """The request the job was created from (in compared form, for a job made by `of`)."""
        return self.compared if self.compared is not None else request_of(self.body)


class SharedForms:
    """The compared forms of the manifest jobs, for a live job to hold the one identical to its
    own instead (a plan of 10,000 jobs in sync held 15 MB more with one form per job and side).
    Read by every worker at once: filled before any worker reads a job, never changed after."""

    def __init__(self) -> None:
        self.forms: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.held: set[int] = set()  # their ids: stable, since they are held here
        # The identities taken of them, by (id, place): a live job holding a manifest job's form
        # has the identity the plan then takes of that job, taken once (15 ms for 1,000 jobs).
        self.identities: dict[tuple[int, Place | None], JobIdentity] = {}

    def add(self, forms: Iterable[Mapping[str, Any]]) -> None:
        """Share `forms` as well (before any worker asks for one: `of` takes no lock)."""
        for form in forms:
            if isinstance(form, dict):
                self.forms.setdefault(_form_key(form), []).append(form)
                self.held.add(id(form))

    def identity(self, compared: Mapping[str, Any], place: Place | None) -> JobIdentity:
        """`job_identity(compared, place)`, kept when `compared` is one of these forms. Workers
        may take one at the same time: both take the same value, and a dict's store is atomic."""
        if id(compared) not in self.held:
            return job_identity(compared, place)
        key = (id(compared), place)
        found = self.identities.get(key)
        if found is None:
            found = self.identities[key] = job_identity(compared, place)
        return found

    def of(self, compared: dict[str, Any]) -> dict[str, Any]:
        """The manifest's form identical to `compared` (key order and types included, so that
        it shows the same in every output), else `compared` itself."""
        for form in self.forms.get(_form_key(compared), ()):
            if identical(form, compared):
                return form
        return compared


def _form_key(compared: Mapping[str, Any]) -> tuple[str, ...]:
    """What finds the few forms that may be identical to one: its table, its connection and
    its selectors' first keys (a compared form's are sorted), rather than a digest of all."""
    table, connection = job_key(compared)
    source = compared.get("source")
    source = source if isinstance(source, Mapping) else {}
    firsts = []
    for selector in SELECTORS:
        keys = source.get(selector)
        firsts.append(f"{len(keys)}:{keys[0]}" if isinstance(keys, list) and keys else "")
    return (table, connection, str(source.get("pattern")), *firsts)


def job_key(job: Mapping[str, Any]) -> tuple[str, str]:
    """(target table, connection) of a job, whatever the shape of its body."""
    request = request_of(job)
    target, source = request.get("target"), request.get("source")
    target = target if isinstance(target, Mapping) else {}
    source = source if isinstance(source, Mapping) else {}
    return str(target.get("tableName", "")), str(source.get("connectionName", ""))


def overlap_index(jobs: Iterable[LiveJob]) -> OverlapIndex[LiveJob]:
    """Live jobs by table and by every reading of what they read (an overlap may list a job twice)."""
    return OverlapIndex(
        (job, job.table, reads) for job in jobs for _, reads in job.readings if reads is not None
    )


def essentials(job: dict[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a job read from Polaris."""
    echoed = job.get("spec")
    if not isinstance(echoed, Mapping) or "source" not in echoed:
        return job
    return {key: job[key] for key in ESSENTIAL_FIELDS if key in job}


def newest(jobs: list[LiveJob]) -> LiveJob:
    """The job created last."""
    return max(jobs, key=lambda job: str(job.body.get("createdTimestamp", "")))


def created_at(job: Mapping[str, Any]) -> float:
    """When a job was created, in seconds since the epoch; an unreadable time sorts last (and
    every apply reads it alike, so every apply keeps the same one of two duplicates)."""
    try:
        moment = datetime.fromisoformat(str(job.get("createdTimestamp")).replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        return math.inf
