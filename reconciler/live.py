"""Read live Polaris state with as few requests as possible.

Each kind reads its own part (`ResourceKind.read` in reconciler/kinds) into a state of the type
that kind defines: the reader below gives them one thread pool, so that reads of different kinds
overlap, and the on-disk cache of jobs in a terminal state, which never change (`JobStore`; the
job kind's `JobCache` is the one). This module knows no kind: it holds each kind's state by kind.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler import kinds
from reconciler.client import PolarisClient
from reconciler.model import Kind, Resource
from reconciler.ports import JobStore

__all__ = ["LiveReader", "LiveState", "read_live"]


@dataclass(frozen=True)
class LiveState:
    """What exists in the project, as far as the manifests need to know: each kind's part, of
    the type that kind defines (a named kind's: its resources by name)."""

    states: Mapping[Kind, Any] = field(default_factory=dict)

    def of(self, kind: Kind) -> Any:
        """The live state `kind` read (None: not read)."""
        return self.states.get(kind)

    def by_name(self, kind: Kind) -> Mapping[str, Mapping[str, Any]]:
        """A named kind's live resources by name."""
        return kinds.of(kind).live(self)

    def in_use(self, kind: Kind) -> frozenset[str]:
        """Names of live resources of `kind` that active resources of other kinds use."""
        return self._in_use.get(kind, frozenset())

    @functools.cached_property
    def _in_use(self) -> Mapping[Kind, frozenset[str]]:
        used: dict[Kind, frozenset[str]] = {}
        for kind in kinds.ordered():
            for other, names in kind.uses(self).items():
                used[other] = used.get(other, frozenset()) | names
        return used


class LiveReader:
    """What the kinds read into, in registry order.

    A kind's `read` starts its requests in the shared pool and returns without waiting for them,
    so reads of every kind are in flight together (the connection, table and streaming job lists
    beside the first page of batch jobs); `feed` steps then ask for what those answers lead to
    (the later pages and each job's detail), and `then` steps collect the answers. A worker may
    wait for a read queued before its own (a job resolves through the connections), never for one
    queued after it, so the pool's first-in-first-out order cannot deadlock at any parallelism.
    """

    def __init__(
        self, client: PolarisClient, resources: list[Resource], pool: ThreadPoolExecutor,
        cache: JobStore, full: frozenset[Kind] = frozenset(),
    ) -> None:  # fmt: skip
        self.client, self.resources, self.pool, self.cache = client, resources, pool, cache
        self.full = full  # kinds read for import: every resource, in full
        self.states: dict[Kind, Any] = {}
        self.started: dict[Kind, Future[dict[str, Mapping[str, Any]]]] = {}
        self.reading: Kind | None = None  # the kind whose `read` runs (read_live sets it)
        self.feeding: list[tuple[Kind | None, Callable[[], None]]] = []
        self.finishing: list[tuple[Kind | None, Callable[[], None]]] = []

    def of_kind(self, kind: Kind) -> list[Resource]:
        """The desired resources of one kind."""
        return [r for r in self.resources if r.kind is kind]

    def feed(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads, before any `then` step (for a
        read that asks for more as answers come): no collecting step holds it up."""
        self.feeding.append((self.reading, step))

    def then(self, step: Callable[[], None]) -> None:
        """Run `step` after every kind has started its reads and every `feed` step ran (to
        collect what it started)."""
        self.finishing.append((self.reading, step))

    def finish(self, idle: Callable[[LiveState], None] | None = None) -> None:
        """Once every kind has started its reads: run the `feed` steps, then the `then` steps:
        first those of the kinds that feed none (their reads are over or nearly), then `idle`
        with what they collected, then those of the kinds still reading (the jobs' details)."""
        feeders = {kind for kind, _ in self.feeding}
        for _, step in self.feeding:
            step()
        for kind, step in self.finishing:
            if kind not in feeders:
                step()
        if idle is not None:
            idle(self.state())
        for kind, step in self.finishing:
            if kind in feeders:
                step()
        # The steps' closures refer to this reader, and it to them: let go of them, so that
        # reference counting frees what was read once the caller does, not the collector.
        self.feeding.clear()
        self.finishing.clear()

    def state(self) -> LiveState:
        """What was read."""
        return LiveState(dict(self.states))


def read_live(
    client: PolarisClient,
    resources: Iterable[Resource],
    *,
    parallelism: int = 8,
    cache: JobStore | None = None,
    full: Iterable[Kind] = (),
    meanwhile: Callable[[], Iterable[Resource]] | None = None,
    idle: Callable[[LiveState], None] | None = None,
) -> LiveState:
    """Read the live state the given resources need: every kind's, in the fewest requests
    (`full`: kinds read for import, every live resource in full, as a manifest writes it).

    `meanwhile`: the caller's work while the first answers are on their way, run once every
    kind has started its reads (a plan makes its jobs' compared forms then); the resources it
    returns, the same ones made ready, are those the reads go on with. `idle`: the caller's
    work while the last answers come, run once every request is asked for, with the state of
    the kinds whose reads are over (a plan plans their resources then); see `LiveReader.finish`.
    """
    store = cache or _Forgetful()
    # A failed read must not lose the jobs already read: save the cache whatever happens.
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    with contextlib.closing(store):
        reader = LiveReader(client, list(resources), pool, store, frozenset(full))
        try:
            for kind in kinds.ordered():
                reader.reading = kind.kind
                kind.read(reader)
            reader.reading = None
            if meanwhile is not None:
                reader.resources = list(meanwhile())
            reader.finish(idle)
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM) ends the run now, not when a slow answer in flight comes:
            # nothing more is sent, the workers are not waited for (cli.main exits without
            # joining them), and the store saves while they may still add to it.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        except BaseException:
            pool.shutdown(cancel_futures=True)  # nothing more is sent once a read has failed
            raise
        pool.shutdown()
    return reader.state()


class _Forgetful:
    """A job store that keeps nothing (a read without a cache)."""

    def get(self, job_id: str) -> dict[str, Any] | None:
        return None

    def put(self, job: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass
