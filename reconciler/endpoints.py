"""Which S3 service a connection's `awsEndpoint` names, whatever its spelling.

S3 bucket names are unique within an AWS partition, so every endpoint of one partition (regional,
legacy global, `s3-REGION` dash form, dual-stack, FIPS, virtual-hosted `BUCKET.s3...`) reaches
the same buckets: the service is the partition (`aws`, `aws-cn`, `aws-us-gov`). Any other host
(MinIO, another S3-compatible store, an AWS host that is not an S3 endpoint) is the service at
that host and port. docs/places.md has the table of spellings; tests/test_places.py is generated
from it.

Pure: imports nothing from the package, so listing, the planner and the emulator can share it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass

# AWS domains and the partition each belongs to (GovCloud shares amazonaws.com: by region).
AWS_DOMAINS = (("amazonaws.com.cn", "aws-cn"), ("amazonaws.com", "aws"))
GOVCLOUD = "aws-us-gov"
# An AWS region name: us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1, il-central-1.
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
# `s3-REGION` (the dash form), `s3-external-1` (us-east-1) and `s3-fips-REGION` (GovCloud's
# legacy FIPS name): one label that names the service and the region.
DASH_FORM = re.compile(r"s3-(?:fips-)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+|external-1)")
DEFAULT_PORTS = {"http": 80, "https": 443}


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


def parse_endpoint(text: str) -> Endpoint:
    """The service an `awsEndpoint` names (an empty one is AWS's default, partition `aws`)."""
    raw = text.strip().lower()
    if not raw:
        return Endpoint("aws")  # what an AWS SDK reaches when no endpoint is given
    scheme, _, rest = raw.rpartition("://")
    rest = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    host, port = _host_port(rest, DEFAULT_PORTS.get(scheme, 443))
    aws = _aws(host)
    if aws is not None:
        return aws
    return Endpoint(f"{host}:{port}")


def _host_port(authority: str, default: int) -> tuple[str, int]:
    """`host[:port]` or `[v6]:port`, with the port as a number (`:0443` is 443)."""
    if authority.startswith("["):
        inside, _, after = authority[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
        with contextlib.suppress(ValueError):
            inside = ipaddress.IPv6Address(inside).compressed
        return f"[{inside}]", int(port) if port.isdigit() else default
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit():
        host, port = (host if colon and not port else authority), ""
    host = host.rstrip(".")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    with contextlib.suppress(ValueError):
        host = str(ipaddress.IPv4Address(host))
    return host, int(port) if port else default


def _aws(host: str) -> Endpoint | None:
    """The partition, region and bucket of an S3 host of AWS; None for any other host."""
    for domain, partition in AWS_DOMAINS:
        if not host.endswith("." + domain):
            continue
        labels = host[: -len(domain) - 1].split(".")
        # The service label is the first one whose following labels are a valid tail; the
        # labels before it are a virtual-hosted bucket (whose name may hold dots, even "s3").
        for index, label in enumerate(labels):
            region = _region(label, labels[index + 1 :])
            if region is None:
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
    region = found.group("region")
    return "us-east-1" if region == "external-1" else region
