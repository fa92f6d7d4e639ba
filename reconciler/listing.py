"""Where objects may be listed from before apply, and what a listing found: objects, bytes and
example keys. A kind lists what its new resources will read (the job kind: `listing` in its
package); this module holds what every listing shares.

Listing is opt-in (`plan --list-objects`, or a listing source given with `--s3-dir` /
`--s3-endpoint`): a plan runs on pull requests, where the manifests are not yet reviewed, so a
manifest must never be able to make the reconciler send a connection's access keys to a host of
its choosing. Even when listing is enabled, requests signed with a connection's keys go only to an
AWS S3 service endpoint over https (`s3.`, `s3-` and `BUCKET.s3.` names under `amazonaws.com` and
`amazonaws.com.cn`: never another AWS service), to a loopback address, or to a host the operator
allows (`--allow-host`, `RECONCILER_ALLOWED_HOSTS`); any other `awsEndpoint` is listed only
through an endpoint the operator names on the command line (`--s3-endpoint`). Requests do not
follow redirects (docs/trusted-hosts.md).

Listing is bounded: at most `MAX_KEYS` keys a listing (then the count is "at least N": ten pages).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from reconciler import hosts
from reconciler.client import request_body
from reconciler.endpoints import DEFAULT_PORTS

if TYPE_CHECKING:  # every plan builds an Access; only a plan that lists needs S3 (and hmac, XML)
    from reconciler.s3 import Credentials, ObjectSource

MAX_KEYS = 10_000  # keys listed per job at most (ten ListObjectsV2 pages)
EXAMPLES = 3  # example keys a plan shows per job
# An endpoint as a manifest may write it: a host (DNS name or bracketed IPv6) with an optional
# scheme and port, and at most a trailing slash. hosts.normalize then decides what the host is.
# Few plans name an endpoint: `re` compiles the pattern (case-insensitive) on its first use.
_ENDPOINT = r"(?:(https?)://)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?/?"


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
    found = re.fullmatch(_ENDPOINT, aws_endpoint.strip(), re.IGNORECASE)
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
        from reconciler.s3 import Credentials  # deferred: see the imports

        return Credentials(*request_body([key_id, secret]))
    return None


def source_for(
    connection: Mapping[str, Any], access: Access
) -> tuple[ObjectSource | None, str | None]:
    """Where a connection's objects are listed from, or why they cannot be."""
    from reconciler.s3 import DirectorySource, S3Api, region_of  # deferred: see the imports

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
