"""Objects in S3 as Polaris selects them: list and read a bucket, and apply a job's selector.

Two sources of objects: a local directory (`ROOT/BUCKET/KEY` is `s3://BUCKET/KEY`) and any
S3-compatible server, spoken to with ListObjectsV2 and GetObject signed with AWS Signature
Version 4 over httpx. httpx is already a dependency and the two calls are all Polaris needs; boto3
would add tens of megabytes and a slow import for them.

The module is pure (no printing, no environment, nothing from the rest of the package but the
shared readings of globs and endpoints in `reconciler.globs` and `reconciler.endpoints`), so the
emulator (which ingests the objects) and the planner (which shows what a job will read) select objects the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx

from reconciler.endpoints import DEFAULT_REGION, parse_endpoint
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.globs import GlobError, compile_glob, path_of

SELECTORS = ("uris", "prefixes", "objects", "pattern")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(ReconcilerError):
    """An S3 request failed; `code` is S3's error code (NoSuchBucket, NoSuchKey, AccessDenied...)."""

    code = ErrorCode.S3

    def __init__(self, s3_code: str, message: str) -> None:
        super().__init__(message)
        self.s3_code, self.message = s3_code, message


class SelectionError(ReconcilerError, ValueError):
    """A job's object selector that cannot be applied (a URI outside the connection, a bad glob)."""

    code = ErrorCode.SELECTOR


@dataclass(frozen=True)
class S3Object:
    """One object: where it is and how many bytes it holds."""

    bucket: str
    key: str
    size: int

    @property
    def uri(self) -> str:
        """The object as an s3:// URI."""
        return f"s3://{self.bucket}/{self.key}"


class ObjectSource(Protocol):
    """Anything that lists and reads objects."""

    def list(self, bucket: str, prefix: str = "", limit: int | None = None) -> list[S3Object]:
        """Every object in the bucket whose key starts with `prefix`, sorted by key (the first
        `limit` of them when a limit is given)."""
        ...

    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes; S3Error NoSuchKey when it does not exist."""
        ...


class DirectorySource:
    """Buckets as directories: `ROOT/BUCKET/KEY` is object `s3://BUCKET/KEY`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _bucket(self, bucket: str) -> Path:
        path = self.root / bucket
        if "/" in bucket or bucket in ("", ".", "..") or not path.is_dir():
            raise S3Error("NoSuchBucket", f"The bucket {bucket} does not exist")
        return path

    def path(self, bucket: str, key: str) -> Path:
        """The file that holds an object (it may not exist)."""
        base = self._bucket(bucket)
        path = base.joinpath(*key.split("/"))
        if ".." in key.split("/") or not path.is_file():
            raise S3Error("NoSuchKey", f"The object s3://{bucket}/{key} does not exist")
        return path

    def list(self, bucket: str, prefix: str = "", limit: int | None = None) -> list[S3Object]:
        """Every object in the bucket whose key starts with `prefix`, sorted by key (the first
        `limit` of them when a limit is given)."""
        base = self._bucket(bucket)
        found = []
        if ".." in prefix.split("/"):
            return []
        start = base.joinpath(*prefix.split("/")[:-1])  # the deepest directory the prefix names
        for path in start.rglob("*") if start.is_dir() else ():
            if path.is_file():
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    found.append(S3Object(bucket, key, path.stat().st_size))
        return sorted(found, key=lambda o: o.key)[:limit]

    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes."""
        return self.path(bucket, key).read_bytes()


@dataclass(frozen=True)
class Credentials:
    """AWS access keys as plain text, which only `sign` reads; `repr` shows neither.

    A manifest's keys are revealed for it by `client.request_body` (`listing.credentials_of`):
    a wrapped Secret here would sign with its text, `(sensitive)`, and fail, never leak."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        # The key id too: a manifest declares it a secret, and so it is shown nowhere else.
        return "Credentials(access_key_id=(sensitive), secret_access_key=(sensitive))"


def region_of(aws_endpoint: str) -> str:
    """The region requests through a connection's `awsEndpoint` are signed for: the one its host
    names in any spelling (s3.dualstack.eu-west-1..., s3-fips-us-gov-west-1...), else us-east-1."""
    return parse_endpoint(aws_endpoint).signing_region


def sign(
    method: str, url: str, headers: Mapping[str, str], credentials: Credentials, region: str,
    moment: datetime, payload_hash: str = _EMPTY_SHA256,
) -> dict[str, str]:  # fmt: skip
    """The headers of an S3 request signed with AWS Signature Version 4 (header form)."""
    parts = urlsplit(url)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    names = sorted(signed)
    query = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~%"),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    result = {k: v for k, v in headers.items()}
    result.update({"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    result["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return result


class S3Api:
    """An S3-compatible server, path-style (`ENDPOINT/BUCKET/KEY`), with optional access keys.

    Without credentials requests go unsigned: a role to assume cannot be assumed outside AWS.
    """

    def __init__(
        self, endpoint: str, credentials: Credentials | None = None, region: str = DEFAULT_REGION,
        transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
        page_size: int = 1000,
    ) -> None:  # fmt: skip
        self.endpoint = endpoint.rstrip("/")
        self.page_size = page_size  # keys per ListObjectsV2 page (S3's maximum is 1,000)
        self.credentials = credentials
        self.region = region
        # Never follow a redirect: it would take the signed request to a host nobody checked.
        self.http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def _get(self, bucket: str, key: str = "", params: Sequence[tuple[str, str]] = ()) -> bytes:
        path = f"/{quote(bucket, safe='')}" + (f"/{quote(key, safe='/-_.~')}" if key else "")
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='-_.~')}" for k, v in params)
        url = f"{self.endpoint}{path}" + (f"?{query}" if query else "")
        headers: dict[str, str] = {}
        if self.credentials is not None:
            headers = sign("GET", url, {}, self.credentials, self.region, datetime.now(UTC))
        try:
            response = self.http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise S3Error("ConnectionFailed", f"Could not reach {self.endpoint}: {error}") from None
        if response.status_code >= 300:
            code, message = _error(response)
            where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
            if response.status_code == 403 and self.credentials is None:
                message += " (the request was unsigned: no access keys to sign it with)"
            raise S3Error(code, f"{where}: {message}")
        return response.content

    def list(self, bucket: str, prefix: str = "", limit: int | None = None) -> list[S3Object]:
        """Every object in the bucket whose key starts with `prefix`, sorted by key (all pages, or
        the pages that hold the first `limit` objects when a limit is given)."""
        found: list[S3Object] = []
        token: str | None = None
        while True:
            wanted = self.page_size if limit is None else limit - len(found)
            page = max(1, min(self.page_size, wanted))
            params = [("list-type", "2"), ("max-keys", str(page)), ("prefix", prefix)]
            if token:
                params.append(("continuation-token", token))
            root = ElementTree.fromstring(self._get(bucket, params=sorted(params)))
            for item in _children(root, "Contents"):
                key, size = _text(item, "Key"), _text(item, "Size")
                if key is not None and not key.endswith("/"):
                    found.append(S3Object(bucket, key, int(size or 0)))
            token = _text(root, "NextContinuationToken")
            done = limit is not None and len(found) >= limit
            if done or _text(root, "IsTruncated") != "true" or not token:
                return sorted(found, key=lambda o: o.key)[:limit]

    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes."""
        return self._get(bucket, key)


def _children(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    for child in element:
        if child.tag.rsplit("}", 1)[-1] == name:
            yield child


def _text(element: ElementTree.Element, name: str) -> str | None:
    for child in _children(element, name):
        return child.text or ""
    return None


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(response.content)
        return (_text(root, "Code") or f"HTTP{response.status_code}"), (
            _text(root, "Message") or response.reason_phrase
        )
    except ElementTree.ParseError:
        code = {403: "AccessDenied", 404: "NoSuchKey"}.get(
            response.status_code, f"HTTP{response.status_code}"
        )
        return code, f"HTTP {response.status_code} {response.reason_phrase}"


def parse_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key); SelectionError for anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise SelectionError(f"{uri} is not an s3://BUCKET/KEY URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise SelectionError(f"{uri} is not an s3://BUCKET/KEY URI")
    return bucket, key


def select(
    source: ObjectSource, bucket: str, prefix: str, spec: Mapping[str, Any]
) -> list[S3Object]:
    """The objects a job's source spec selects from a connection's bucket and prefix.

    As the S3 ingestion guide (tests/reference/polaris-s3-ingestion-guide.txt) documents them:
    `uris` (s3:// URIs), `objects` (keys), `prefixes`
    (key prefixes) or `pattern` (a Java glob over the whole key), always within the connection's
    `prefix`. Keys are full keys, not relative to the connection's prefix (inferred: the guide's
    examples use a connection without a prefix; the reading that keeps `uris` and `objects` equal is
    this one). A URI or key outside the connection is a SelectionError; a named object that does
    not exist is S3Error NoSuchKey, raised by the listing, never skipped.
    """
    chosen = [name for name in SELECTORS if spec.get(name) not in (None, [], "")]
    if len(chosen) != 1:
        raise SelectionError("exactly one of uris, prefixes, objects or pattern is required")
    kind = chosen[0]
    if kind in ("uris", "objects"):
        keys = []
        for entry in spec[kind]:
            if kind == "uris":
                owner, key = parse_uri(entry)
                if owner != bucket:
                    raise SelectionError(
                        f"{entry} is outside the connection's bucket {bucket}: a connection "
                        "reads one bucket"
                    )
            else:
                key = entry
            if not key.startswith(prefix):
                raise SelectionError(
                    f"{entry} is outside the connection's prefix {prefix!r} (s3://{bucket}/{prefix})"
                )
            keys.append(key)
        listed = {o.key: o for o in source.list(bucket, prefix)}
        missing = [k for k in keys if k not in listed]
        if missing:
            raise S3Error("NoSuchKey", f"The object s3://{bucket}/{missing[0]} does not exist")
        return sorted({listed[k] for k in keys}, key=lambda o: o.key)
    available = source.list(bucket, prefix)
    if kind == "prefixes":
        wanted = [p for p in spec["prefixes"]]
        return [o for o in available if any(o.key.startswith(p) for p in wanted)]
    try:
        regex = compile_glob(spec["pattern"])
    except GlobError as error:
        raise SelectionError(f"pattern {spec['pattern']!r}: {error}") from None
    return [o for o in available if regex.fullmatch(path_of(o.key))]  # as Paths.get(key)
