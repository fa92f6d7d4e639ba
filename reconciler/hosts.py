"""Which hosts may receive credentials: Polaris, AWS S3, loopback, and the hosts the operator allows.

reconciler.yaml and manifests arrive in pull requests, so a host is trusted for what it is, never
because a file names it. The Polaris API key goes only to the Polaris API domain (`*.api.imply.io`,
the domain of the OpenAPI's servers, `https://ORG.REGION.CLOUD.api.imply.io`) and a connection's
access keys only to AWS S3 service hosts; both also go to loopback (the emulator, moto, a local
proxy). Any other host needs the operator's consent from outside the repository: `--allow-host
HOST` or `RECONCILER_ALLOWED_HOSTS` (docs/trusted-hosts.md).

Host names are compared in one spelling: lower case, without a trailing dot, IPv6 without
brackets. Anything that is not plainly a DNS name or an IP address (non-ASCII, `%`, `\\`, `@`,
an empty label) is never trusted: there would be two readings of it, ours and the sender's.
The module is pure: no environment, no network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from reconciler.endpoints import DEFAULT_PORTS, aws_s3_host

ALLOW_FLAG = "--allow-host"
ALLOWED_HOSTS_VARIABLE = "RECONCILER_ALLOWED_HOSTS"
POLARIS_API_DOMAIN = "api.imply.io"
DOCS = "docs/trusted-hosts.md"

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class HostError(ValueError):
    """A value given as a host name that is not one."""


def normalize(host: str) -> str | None:
    """`host` in the one spelling hosts are compared in, or None when it is not plainly a host.

    `Acme.Example.` is `acme.example`; `[::1]` is `::1`. A DNS name must be ASCII letters, digits
    and hyphens in labels of 1 to 63 characters; brackets hold an IPv6 address and nothing else,
    and an address with a zone (`::1%eth0`) is not plainly a host.
    """
    bracketed = host.startswith("[") and host.endswith("]")
    text = host[1:-1] if bracketed else host
    if "%" in text:  # a zone, or an escape: either way a second reading
        return None
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if bracketed:
        return str(address) if isinstance(address, ipaddress.IPv6Address) else None
    if address is not None:
        return str(address)
    text = text.lower()
    if text.endswith("."):
        text = text[:-1]
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return text


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1).

    An IPv4 address written inside IPv6 (`::ffff:127.0.0.1`) is not trusted: Python versions
    disagree on whether it is loopback, and no one needs that spelling.
    """
    name = normalize(host)
    if name is None:
        return False
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_loopback


def is_polaris_api(host: str) -> bool:
    """True for a host in the Polaris API domain: `ORG.REGION.CLOUD.api.imply.io` and any other
    name under `api.imply.io` (all of it is Imply's)."""
    name = normalize(host)
    return name is not None and name.endswith(f".{POLARIS_API_DOMAIN}")


def is_s3_service(host: str) -> bool:
    """True for an AWS S3 endpoint, in any of its spellings (regional, legacy global, dual-stack,
    FIPS, virtual-hosted), and for nothing else under amazonaws.com.

    The host must first be plainly a host name; then it is read as a job's place reads it
    (`reconciler.endpoints`, docs/places.md), so what is signed for and what is one bucket
    never disagree.
    """
    name = normalize(host)
    return name is not None and aws_s3_host(name) is not None


def allowed_hosts(entries: Iterable[str], source: str) -> frozenset[str]:
    """The host names the operator allows, normalized; HostError names `source` for a bad one.

    An entry is a host name or an IP address, nothing more: no scheme, port, path or wildcard,
    so that what is allowed is exactly what the operator read.
    """
    found: set[str] = set()
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        name = normalize(text)
        if name is None:
            raise HostError(
                f"{source} {text!r} is not a host name: give a host name or IP address such as "
                "polaris.corp.example, with no scheme, port, path or wildcard"
            )
        found.add(name)
    return frozenset(found)


def how_to_allow(host: str) -> str:
    """The sentence that says how the operator can allow `host`, and why a file cannot."""
    name = normalize(host) or host
    return (
        f"if you trust {name}, pass {ALLOW_FLAG} {name} or add it to {ALLOWED_HOSTS_VARIABLE} "
        f"(comma-separated); a host named in reconciler.yaml or a manifest is never trusted on "
        f"its own (see {DOCS})"
    )


def same_url(first: str, second: str) -> bool:
    """Whether two API base URLs are one: scheme and host in any case, a trailing dot or slash,
    and the default port written or not make no difference."""
    return _comparable(first) == _comparable(second)


def _comparable(url: str) -> tuple[str, str, int | None, str] | str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = normalize(parts.hostname or "") or url
    port = None if port == DEFAULT_PORTS.get(scheme) else port
    return (scheme, host, port, parts.path.rstrip("/"))


def shown(url: str) -> str:
    """`url` as a message may show it: whatever sits before an `@` in it may be a key."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "(credentials hidden)@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{separator}{authority}{slash}{path}"
