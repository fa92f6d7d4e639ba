"""Listing what new ingestion jobs will read, before apply: each job's selector applied to a
listing of its connection's bucket (reconciler/listing.py says where objects may be listed from,
and bounds each listing).

One listing per job, of the narrowest prefix that holds everything its selector can match, at
most `Access.max_keys` keys, and the jobs listed concurrently, `parallelism` at a time. Objects
are selected with `reconciler.s3.select`, the same function the emulator ingests with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reconciler.globs import GlobError, literal_prefix
from reconciler.listing import EXAMPLES, MAX_KEYS, Access, Listing, source_for
from reconciler.s3 import ObjectSource, S3Error, S3Object, SelectionError, parse_uri, select


def list_prefix(spec: Mapping[str, Any], prefix: str) -> str:
    """The narrowest key prefix that holds every object a job's source can select."""
    stems: list[str] = []
    if spec.get("uris"):
        stems = [parse_uri(str(uri))[1] for uri in spec["uris"]]
    elif spec.get("objects"):
        stems = [str(key) for key in spec["objects"]]
    elif spec.get("prefixes"):
        stems = [str(key) for key in spec["prefixes"]]
    elif spec.get("pattern"):
        stems = [literal_prefix(str(spec["pattern"]))]
    common = stems[0] if stems else ""
    for other in stems[1:]:  # keys are text, not paths: the common prefix character by character
        while not other.startswith(common):
            common = common[:-1]
    # Selection stays within the connection's prefix: list the longer of the two when one holds
    # the other; when neither does, nothing can be selected and the connection's prefix is listed.
    return common if common.startswith(prefix) else prefix


class _Listed:
    """Objects already listed, as an ObjectSource, so that `select` applies to them."""

    def __init__(self, objects: Sequence[S3Object]) -> None:
        self.objects = objects

    def list(self, bucket: str, prefix: str = "", limit: int | None = None) -> list[S3Object]:
        return [o for o in self.objects if o.bucket == bucket and o.key.startswith(prefix)][:limit]

    def read(self, bucket: str, key: str) -> bytes:
        raise S3Error("NotSupported", "a plan never reads objects")


def list_job(
    source: ObjectSource,
    connection: Mapping[str, Any],
    spec: Mapping[str, Any],
    max_keys: int = MAX_KEYS,
) -> Listing:
    """List what one job's source spec selects from its connection's bucket and prefix."""
    bucket, prefix = str(connection.get("bucket") or ""), str(connection.get("prefix") or "")
    try:
        start = list_prefix(spec, prefix)
        objects = source.list(bucket, start, limit=max_keys + 1)
    except (GlobError, SelectionError) as error:
        return Listing.not_listed(f"the selector cannot be applied: {error}")
    except S3Error as error:
        return Listing.not_listed(f"listing s3://{bucket}/{start} failed: {error.message}")
    complete = len(objects) <= max_keys
    objects = objects[:max_keys]
    missing: tuple[str, ...] = ()
    try:
        chosen = select(_Listed(objects), bucket, prefix, spec)
    except SelectionError as error:
        return Listing.not_listed(f"the selector cannot be applied: {error}")
    except S3Error:  # a named object that was not listed
        named = _named_keys(spec)
        listed = {o.key: o for o in objects}
        chosen = [listed[key] for key in dict.fromkeys(named) if key in listed]
        missing = () if not complete else tuple(k for k in named if k not in listed)
    return Listing(
        count=len(chosen),
        bytes=sum(o.size for o in chosen),
        examples=tuple(o.uri for o in chosen[:EXAMPLES]),
        complete=complete,
        keys=tuple(o.key for o in chosen),
        bucket=bucket,
        missing=missing,
    )


def _named_keys(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("uris"):
        return [parse_uri(str(uri))[1] for uri in spec["uris"]]
    return [str(key) for key in spec.get("objects") or ()]


@dataclass(frozen=True)
class Job:
    """A job to list: its name, its source spec and its connection (None: unknown)."""

    name: str
    source: Mapping[str, Any]
    connection: Mapping[str, Any] | None


def list_jobs(jobs: Iterable[Job], access: Access, parallelism: int = 8) -> dict[str, Listing]:
    """List every job's objects, `parallelism` jobs at a time; never raises for S3's answers."""
    jobs = list(jobs)
    if not access.enabled:
        reason = "listing not enabled (plan --list-objects)"
        return {job.name: Listing.not_listed(reason) for job in jobs}

    # One source (one pool of HTTP connections) per connection, shared by its jobs' threads.
    sources: dict[int, tuple[ObjectSource | None, str | None]] = {}
    lock = threading.Lock()

    def source_of(connection: Mapping[str, Any]) -> tuple[ObjectSource | None, str | None]:
        with lock:
            if id(connection) not in sources:
                sources[id(connection)] = source_for(connection, access)
            return sources[id(connection)]

    def one(job: Job) -> Listing:
        if job.connection is None:
            return Listing.not_listed(f"connection {job.source.get('connectionName')} is unknown")
        source, why = source_of(job.connection)
        if source is None:
            return Listing.not_listed(why or "no way to list")
        return list_job(source, job.connection, job.source, access.max_keys)

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            return dict(zip((job.name for job in jobs), pool.map(one, jobs), strict=True))
    finally:
        for source, _ in sources.values():
            close: Callable[[], None] = getattr(source, "close", lambda: None)
            close()
