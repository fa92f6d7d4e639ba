"""Which S3 service a connection's `awsEndpoint` names, whatever its spelling.

S3 bucket names are unique within an AWS partition, so every endpoint of one partition (regional,
legacy global, `s3-REGION` dash form, dual-stack, FIPS, virtual-hosted `BUCKET.s3...`) reaches
the same buckets: the service is the partition (`aws`, `aws-cn`, `aws-us-gov`). Any other host
(MinIO, another S3-compatible store, an AWS host that is not an S3 endpoint) is the service at
that host and port. docs/places.md has the table of spellings; tests/kinds/test_places.py is generated
from it.

Pure: imports nothing from the package (not even `errors`), so listing, the planner, the emulator and the hosts
listing signs for (`reconciler.hosts`) share it: one reading of S3 host names.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
from dataclasses import dataclass

# AWS domains and the partition each belongs to (GovCloud shares amazonaws.com: by region).
# China's regions, and only they, are under amazonaws.com.cn, which has no global endpoint.
AWS_DOMAINS = (("amazonaws.com.cn", "aws-cn"), ("amazonaws.com", "aws"))
CHINA = "aws-cn"
GOVCLOUD = "aws-us-gov"
# A region of these partitions: us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1. The ISO
# partitions (us-iso-east-1...) have domains of their own, so they are not S3 regions here.
_REGION = r"(?:us-gov|[a-z]{2})-[a-z]+-\d{1,2}"
REGION = re.compile(_REGION)
# `s3-REGION` (the dash form), `s3-external-1` (us-east-1) and `s3-fips-REGION` (GovCloud's
# legacy FIPS name): one label that names the service and the region.
DASH_FORM = re.compile(rf"s3-(?:fips-)?(?P<region>{_REGION})|s3-(?P<external>external-1)")
DEFAULT_PORTS = {"http": 80, "https": 443}
# The region SigV4 signs for when the endpoint names none: the legacy global endpoint's, and
# what S3-compatible stores (MinIO, moto) expect.
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Endpoint:
    """Where an `awsEndpoint` points: its service, and the bucket a virtual-hosted name carries.

    `service` is an AWS partition for S3 endpoints of AWS, else `host:port` (normalized: lower
    case, no trailing dot, IPv6 compressed, the scheme's default port written out).
    """

    service: str
    bucket: str | None = None
    region: str | None = None

    @property
    def aws(self) -> bool:
        """Whether this is an S3 endpoint of AWS (so `service` is a partition)."""
        return ":" not in self.service

    @property
    def signing_region(self) -> str:
        """The region requests to this endpoint are signed for (SigV4's credential scope)."""
        return self.region or DEFAULT_REGION


# Every job's place goes through here, and a project's connections share a few endpoints.
@functools.lru_cache(maxsize=1024)
def parse_endpoint(text: str) -> Endpoint:
    """The service an `awsEndpoint` names (an empty one is AWS's default, partition `aws`)."""
    raw = text.strip().lower()
    if not raw:
        return Endpoint("aws")  # what an AWS SDK reaches when no endpoint is given
    scheme, _, rest = raw.rpartition("://")
    rest = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    host, port = _host_port(rest, DEFAULT_PORTS.get(scheme, 443))
    aws = aws_s3_host(host)
    if aws is not None:
        return aws
    return Endpoint(f"{host}:{port}")


def _is_port(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also says yes to `¹` and `٣`, which `int` refuses or reads."""
    return text.isascii() and text.isdigit()


def _host_port(authority: str, default: int) -> tuple[str, int]:
    """`host[:port]` or `[v6]:port`, with the port as a number (`:0443` is 443)."""
    if authority.startswith("["):
        inside, _, after = authority[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
        with contextlib.suppress(ValueError):
            inside = ipaddress.IPv6Address(inside).compressed
        return f"[{inside}]", int(port) if _is_port(port) else default
    host, colon, port = authority.rpartition(":")
    if not colon or not _is_port(port):
        host, port = (host if colon and not port else authority), ""
    host = host.rstrip(".")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    with contextlib.suppress(ValueError):
        host = str(ipaddress.IPv4Address(host))
    return host, int(port) if port else default


def aws_s3_host(host: str) -> Endpoint | None:
    """The partition, region and bucket of an S3 host name of AWS (lower case, without a
    trailing dot); None for any other host, other AWS services included.

    The one reading of S3 host names: a job's place and the hosts listing signs for use it.
    """
    for domain, partition in AWS_DOMAINS:
        if not host.endswith("." + domain):
            continue
        labels = host[: -len(domain) - 1].split(".")
        # The service label is the first one whose following labels are a valid tail; the
        # labels before it are a virtual-hosted bucket (whose name may hold dots, even "s3").
        for index, label in enumerate(labels):
            region = _region(label, labels[index + 1 :])
            if region is None or region.startswith("cn-") != (partition == CHINA):
                continue
            bucket = ".".join(labels[:index]) or None
            if partition == "aws" and (region or "").startswith("us-gov-"):
                partition = GOVCLOUD
            return Endpoint(partition, bucket, region or None)
        return None
    return None


def _region(label: str, tail: list[str]) -> str | None:
    """The region an S3 service label and the labels after it name ("" for the global
    endpoint), or None when they are not an S3 endpoint."""
    if label in ("s3", "s3-fips"):
        if tail and tail[0] == "dualstack":
            tail = tail[1:]
            if not tail:
                return None
        if not tail:
            return "" if label == "s3" else None
        if len(tail) == 1 and REGION.fullmatch(tail[0]):
            return tail[0]
        return None
    if label == "s3-accelerate":  # Transfer Acceleration: global, virtual-hosted only
        return "" if tail in ([], ["dualstack"]) else None
    found = DASH_FORM.fullmatch(label)
    if found is None or tail:
        return None
    return DEFAULT_REGION if found.group("external") else found.group("region")
