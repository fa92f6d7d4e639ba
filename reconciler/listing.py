"""What new jobs will read, listed from S3 before apply: objects, bytes and example keys.

Listing is opt-in (`plan --list-objects`, or a listing source given with `--s3-dir` /
`--s3-endpoint`): a plan runs on pull requests, where the manifests are not yet reviewed, so a
manifest must never be able to make the reconciler send a connection's access keys to a host of
its choosing. Even when listing is enabled, requests signed with a connection's keys go only to an
AWS S3 service endpoint over https (`s3.`, `s3-` and `BUCKET.s3.` names under `amazonaws.com` and
`amazonaws.com.cn`: never another AWS service), to a loopback address, or to a host the operator
allows (`--allow-host`, `RECONCILER_ALLOWED_HOSTS`); any other `awsEndpoint` is listed only
through an endpoint the operator names on the command line (`--s3-endpoint`). Requests do not
follow redirects (docs/trusted-hosts.md).

Listing is bounded: one listing per job, of the narrowest prefix that holds everything its
selector can match, at most `MAX_KEYS` keys (then the count is "at least N": ten pages), and the jobs are
listed concurrently, `parallelism` at a time. Objects are selected with `reconciler.s3.select`,
the same function the emulator ingests with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reconciler import hosts
from reconciler.client import request_body
from reconciler.endpoints import DEFAULT_PORTS
from reconciler.globs import GlobError, literal_prefix
from reconciler.s3 import (
    Credentials,
    DirectorySource,
    ObjectSource,
    S3Api,
    S3Error,
    S3Object,
    SelectionError,
    parse_uri,
    region_of,
    select,
)

MAX_KEYS = 10_000  # keys listed per job at most (ten ListObjectsV2 pages)
EXAMPLES = 3  # example keys a plan shows per job
# An endpoint as a manifest may write it: a host (DNS name or bracketed IPv6) with an optional
# scheme and port, and at most a trailing slash. hosts.normalize then decides what the host is.
_ENDPOINT = re.compile(
    r"(?:(https?)://)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?/?", re.I
)


@dataclass(frozen=True)
class Access:
    """Where and whether objects may be listed, as the operator chose on the command line."""

    enabled: bool = False
    directory: Path | None = None  # every bucket is a directory (`DIR/BUCKET/KEY`)
    endpoint: str | None = None  # an S3-compatible server used instead of each connection's
    max_keys: int = MAX_KEYS  # keys listed per job at most
    transport: httpx.BaseTransport | None = None  # tests only
    # Hosts besides AWS S3 and loopback the operator allows keys to be signed for (normalized),
    # and whether plain http:// to them is allowed (--allow-host, --insecure).
    allowed_hosts: frozenset[str] = frozenset()
    insecure: bool = False


@dataclass(frozen=True)
class Listing:
    """The objects one job selects, as listed (or why they were not listed)."""

    count: int = 0
    bytes: int = 0
    examples: tuple[str, ...] = ()  # s3:// URIs
    complete: bool = True  # False: the listing stopped at its cap; counts are lower bounds
    keys: tuple[str, ...] = ()  # every key listed, for naming the object two jobs both read
    bucket: str = ""
    missing: tuple[str, ...] = ()  # objects the job names that do not exist
    reason: str | None = None  # why the objects were not listed; None when they were

    @classmethod
    def not_listed(cls, reason: str) -> Listing:
        """A job whose objects could not be listed, and why."""
        return cls(complete=False, reason=reason)

    @property
    def listed(self) -> bool:
        """True when the objects were listed."""
        return self.reason is None

    def to_json(self) -> dict[str, Any]:
        """`{"count", "bytes", "examples", "complete"}`, or `{"listed": false, "reason"}`."""
        if self.reason is not None:
            return {"listed": False, "reason": self.reason}
        entry: dict[str, Any] = {
            "listed": True,
            "count": self.count,
            "bytes": self.bytes,
            "examples": list(self.examples),
            "complete": self.complete,
        }
        if self.missing:
            entry["missing"] = list(self.missing)
        return entry

    def note(self) -> str:
        """One line for a plan: `objects in S3: 14 objects, 312 MB (s3://..., ...)`."""
        if self.reason is not None:
            return f"objects in S3: not listed: {self.reason}"
        bound = "" if self.complete else "at least "
        noun = "object" if self.count == 1 else "objects"
        text = f"objects in S3: {bound}{self.count:,} {noun}, {bound}{size(self.bytes)}"
        if not self.complete:
            text += " (the listing stopped at its cap of keys)"
        if self.examples:
            more = ", ..." if self.count > len(self.examples) else ""
            text += f": {', '.join(self.examples)}{more}"
        return text

    def warnings(self) -> tuple[str, ...]:
        """What a reviewer must not miss: a selector that matches nothing, a missing object."""
        if self.reason is not None:
            return ()
        if self.missing:
            shown = ", ".join(f"s3://{self.bucket}/{key}" for key in self.missing[:EXAMPLES])
            return (
                f"OBJECTS MISSING: {shown} "
                + ("does" if len(self.missing) == 1 else "do")
                + " not exist; the job would fail (could_not_connect_to_source)",
            )
        if self.count == 0 and self.complete:
            return (
                "NO OBJECTS: the job's selector matches no object in the bucket; the job would "
                "ingest nothing (no_rows_ingested)",
            )
        return ()


def size(count: int) -> str:
    """Bytes as people read them: `312 MB` (powers of 1,000, as S3's console shows them)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "bytes":
                return f"{count:,} byte" + ("" if count == 1 else "s")
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def signing_url(
    aws_endpoint: str, allowed: frozenset[str] = frozenset(), *, insecure: bool = False
) -> str | None:
    """The base URL a connection's keys may be sent to for its `awsEndpoint`, or None.

    The endpoint comes from a manifest, and a manifest on a pull request is not yet reviewed, so
    only an AWS S3 service host over https (docs/trusted-hosts.md), loopback, and a host the
    operator allows qualify; plain http:// only to loopback, or with the operator's --insecure.
    Anything that is not a bare host with an optional scheme and port (a path, user
    information, a query, a backslash) is refused rather than interpreted. The URL returned is
    built from the parts checked, so what was checked is what is sent.
    """
    found = _ENDPOINT.fullmatch(aws_endpoint.strip())
    if found is None:
        return None
    scheme, raw_host, digits = found.groups()
    scheme = scheme.lower() if scheme else None
    host = hosts.normalize(raw_host)
    port = int(digits) if digits else None
    if host is None or port == 0 or (port is not None and port > 65535):
        return None
    shown = f"[{host}]" if ":" in host else host
    if hosts.is_loopback(host):
        scheme = scheme or "http"
    elif hosts.is_s3_service(host) or host in allowed:
        if scheme == "http" and not insecure:
            return None  # the signed request, access key id included, would cross in clear
        scheme = scheme or "https"
    else:
        return None
    default = DEFAULT_PORTS[scheme]
    return f"{scheme}://{shown}" + (f":{port}" if port not in (None, default) else "")


def credentials_of(connection: Mapping[str, Any]) -> Credentials | None:
    """A connection's access keys, when its manifest holds them, revealed for the S3 signer by
    the one seam that reveals secrets (`client.request_body`)."""
    secrets = connection.get("secrets") or {}
    key_id, secret = secrets.get("accessKeyId"), secrets.get("accessKeySecret")
    if secrets.get("type") == "access_key" and key_id and secret:
        return Credentials(*request_body([key_id, secret]))
    return None


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


def source_for(
    connection: Mapping[str, Any], access: Access
) -> tuple[ObjectSource | None, str | None]:
    """Where a connection's objects are listed from, or why they cannot be."""
    if access.directory is not None:
        return DirectorySource(access.directory), None
    keys = credentials_of(connection)
    endpoint = str(connection.get("awsEndpoint") or "s3.amazonaws.com")
    if access.endpoint is not None:  # the operator's choice, for every connection
        region = region_of(endpoint)
        return S3Api(access.endpoint, keys, region, transport=access.transport), None
    if keys is None:
        if connection.get("awsAssumedRoleArn"):
            return None, "the connection assumes a role; the reconciler lists only with access keys"
        return None, "no access-key secrets for the connection in the manifests or environment"
    url = signing_url(endpoint, access.allowed_hosts, insecure=access.insecure)
    if url is None:
        return None, (
            f"the connection's awsEndpoint {endpoint} is neither an AWS S3 endpoint over https nor "
            "loopback, and its keys are signed for nothing else: to list it, name a server you "
            f"trust with --s3-endpoint, or pass {hosts.ALLOW_FLAG} HOST (or add the host to "
            f"{hosts.ALLOWED_HOSTS_VARIABLE}); see {hosts.DOCS}"
        )
    return S3Api(url, keys, region_of(endpoint), transport=access.transport), None


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
