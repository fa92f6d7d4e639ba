"""Credentials go only where the operator said (docs/trusted-hosts.md).

The API key is sent only to Polaris (`https://*.api.imply.io`) or loopback, and a connection's
access keys are signed only for AWS S3 service hosts or loopback. Any other host needs the
operator's consent from outside the repository (`--allow-host`, `RECONCILER_ALLOWED_HOSTS`),
because reconciler.yaml and manifests arrive in pull requests.
"""

from __future__ import annotations

import http.server
import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler import hosts
from reconciler.client import ClientConfig, PolarisClient, PolarisError, check_destination
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID
from reconciler.endpoints import parse_endpoint
from reconciler.listing import signing_url
from tests.cli import Result, run
from tests.fixtures import DEMO_SECRETS
from tests.steps import changes_by_name, edit, write

OPENAPI = Path(__file__).resolve().parents[1] / "reference" / "polaris-openapi.json"
HEADER = "apiVersion: reconciler/v1\n"
AWS_SECRET = DEMO_SECRETS["DEMO_AWS_SECRET_ACCESS_KEY"]


def documented_api_hosts() -> list[str]:
    """Every regional API host the OpenAPI's `servers` documents, for an organization `acme`."""
    (server,) = json.loads(OPENAPI.read_text(encoding="utf-8"))["servers"]
    variables = server["variables"]
    return [
        server["url"]
        .replace("{ORGANIZATION_NAME}", "acme")
        .replace("{REGION}", region)
        .replace("{CLOUD_PROVIDER}", cloud)
        for region, cloud in itertools.product(
            variables["REGION"]["enum"], variables["CLOUD_PROVIDER"]["enum"]
        )
    ]


def client_for(url: str, allowed: frozenset[str] = frozenset(), **options: Any) -> list[str]:
    """Make a client for `url` and send one request; return the URLs that reached a transport."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={"values": []})

    config = ClientConfig(url, DEMO_PROJECT_ID, DEMO_API_KEY, allowed_hosts=allowed, **options)
    with PolarisClient(config, transport=httpx.MockTransport(answer)) as client:
        client.list_connections()
    return sent


@pytest.mark.parametrize(
    "url",
    [
        *documented_api_hosts(),
        "https://acme.us-east-1.aws.api.imply.io/",
        "https://ACME.EU-WEST-1.AWS.API.IMPLY.IO",
        "https://acme.us-east-1.aws.api.imply.io.",
        "https://acme.us-east-1.aws.api.imply.io:443",
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:1",
        "https://localhost",
        "http://[::1]:8080",
    ],
)
def test_the_api_key_goes_without_consent_to_polaris_regions_and_loopback(url: str) -> None:
    assert len(client_for(url)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example",
        "https://api.imply.io.attacker.example",
        "https://acme.us-east-1.aws.api.imply.io.attacker.example",
        "https://evilapi.imply.io",
        "https://acme-api.imply.io",
        "https://imply.io",
        "https://api.imply.io",
        "https://acme.us-east-1.aws.api.imply.io@attacker.example",
        "https://attacker.example\\@acme.us-east-1.aws.api.imply.io",
        "https://acme.us-east-1.aws.api.imply.io\\@attacker.example",
        "https://acme.us-east-1.aws.api.imply.io\\.attacker.example",
        "https://acme.us-east-1.aws.api.imply.\u0131o",  # dotless i: not the same domain
        "https://acme.us-east-1.aws.api.imply.io%2e.attacker.example",
        "http://acme.us-east-1.aws.api.imply.io",  # Polaris, but the key would travel in clear
        "http://0.0.0.0:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://localhost.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://169.254.169.254",
        "http://2130706433",  # 127.0.0.1 as one number: not a spelling we trust
    ],
)
def test_any_other_host_is_refused_before_a_request_is_sent(url: str) -> None:
    with pytest.raises(PolarisError):
        client_for(url)


def test_a_refusal_names_the_host_and_both_ways_to_allow_it() -> None:
    with pytest.raises(PolarisError) as refused:
        client_for("https://polaris.corp.example:8443")
    message = str(refused.value)
    assert "polaris.corp.example" in message
    assert "--allow-host polaris.corp.example" in message
    assert "RECONCILER_ALLOWED_HOSTS" in message


def test_an_allowed_host_matches_exactly_whatever_its_case_trailing_dot_or_port() -> None:
    allowed = frozenset({"polaris.corp.example"})
    for url in (
        "https://polaris.corp.example",
        "https://Polaris.CORP.example./",
        "https://polaris.corp.example:8443",
    ):
        assert len(client_for(url, allowed)) == 1
    for url in (
        "https://x.polaris.corp.example",
        "https://polaris.corp.example.attacker.example",
        "https://polaris.corp.exampl",
    ):
        with pytest.raises(PolarisError):
            client_for(url, allowed)
    with pytest.raises(PolarisError, match="--insecure"):  # consent to a host is not to http
        client_for("http://polaris.corp.example", allowed)
    assert len(client_for("http://polaris.corp.example", allowed, insecure=True)) == 1


# The command line: reconciler.yaml comes with the pull request -----------------------------------


@pytest.fixture
def repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Any, proxy: list[str]
) -> Path:
    """A manifests repository whose reconciler.yaml a pull request could have written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLARIS_URL")
    write(
        tmp_path,
        "manifests/conn.yaml",
        f"{HEADER}kind: Connection\nmetadata:\n  name: c1\nspec:\n  type: s3\n  bucket: b\n"
        "  awsEndpoint: s3.us-east-1.amazonaws.com\n",
    )
    return tmp_path


def target(url: str, *, key: str = "POLARIS_API_KEY", extra: str = "") -> str:
    return (
        f"{HEADER}targets:\n  dev:\n    url: {url}\n    project: {DEMO_PROJECT_ID}\n"
        f"    apiKeyEnv: {key}\n{extra}"
    )


def shows_no_secret(result: Result) -> None:
    output = result.stdout + result.stderr
    for secret in [DEMO_API_KEY, *DEMO_SECRETS.values()]:
        assert secret not in output
    assert "Traceback" not in output and "internal error" not in output


@pytest.mark.parametrize("variable", ["POLARIS_API_KEY", "DEMO_AWS_SECRET_ACCESS_KEY"])
def test_a_pull_requests_target_url_receives_neither_the_api_key_nor_any_ci_secret(
    repository: Path, proxy: list[str], variable: str
) -> None:
    write(repository, "reconciler.yaml", target("https://attacker.example:8443", key=variable))
    for command in (
        ["plan"],
        ["apply", "--auto-approve"],
        ["drift"],
        ["unlock", "--yes"],
        ["import", "--out", "imported"],
    ):
        result = run(*command)
        assert result.exit_code == 1, (command, result.stderr)
        assert "attacker.example" in result.stderr
        assert "--allow-host attacker.example" in result.stderr
        assert "RECONCILER_ALLOWED_HOSTS" in result.stderr
        shows_no_secret(result)
    assert proxy == [], "nothing may be sent to the pull request's host"


def test_polaris_url_and_a_different_target_url_are_an_error_naming_both(
    repository: Path, served: Any, proxy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    imply = "https://acme.us-east-1.aws.api.imply.io"
    write(repository, "reconciler.yaml", target(imply))
    monkeypatch.setenv("POLARIS_URL", served.url)
    result = run("plan")
    assert result.exit_code == 1
    assert imply in result.stderr and served.url in result.stderr
    assert "POLARIS_URL" in result.stderr
    shows_no_secret(result)
    assert proxy == []


def test_a_differing_url_with_credentials_in_it_is_named_without_them(
    repository: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repository, "reconciler.yaml", target("https://user:pa55word@acme.api.imply.io"))
    monkeypatch.setenv("POLARIS_URL", "https://other:s3cr3t-in-url@other.api.imply.io/")
    result = run("plan")
    assert result.exit_code == 1
    assert "(credentials hidden)@acme.api.imply.io" in result.stderr
    assert "pa55word" not in result.stderr and "s3cr3t-in-url" not in result.stderr


def test_polaris_url_spelled_otherwise_but_equal_to_the_target_url_is_accepted(
    repository: Path, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repository, "reconciler.yaml", target(served.url))
    monkeypatch.setenv("POLARIS_URL", served.url.upper().replace("HTTP://", "http://") + "/")
    result = run("plan")
    assert result.exit_code == 0, result.stderr


def test_the_operator_allows_a_host_with_a_flag_or_the_environment(
    repository: Path, proxy: list[str], monkeypatch: pytest.MonkeyPatch, backoff: list[float]
) -> None:
    write(repository, "reconciler.yaml", target("https://polaris.corp.example"))
    assert run("plan").exit_code == 1
    assert proxy == []
    # With consent the request leaves (to the recording proxy, which refuses it: no network).
    result = run("plan", "--allow-host", "polaris.corp.example")
    assert "--allow-host" not in result.stderr
    assert proxy and all(
        entry.startswith("CONNECT polaris.corp.example:443 ") for entry in proxy
    ), proxy
    shows_no_secret(result)
    assert backoff, "the refused request is retried (the waits are counted, not slept)"
    proxy.clear()
    monkeypatch.setenv("RECONCILER_ALLOWED_HOSTS", " other.example , Polaris.Corp.Example ")
    run("plan")
    assert proxy and all(entry.startswith("CONNECT polaris.corp.example:443 ") for entry in proxy)


@pytest.mark.parametrize(
    "extra",
    [
        "    allowedHosts: [attacker.example]\n",
        "    allowHost: attacker.example\n",
        "allowedHosts: [attacker.example]\n",
    ],
)
def test_reconciler_yaml_cannot_allow_a_host(
    repository: Path, proxy: list[str], extra: str
) -> None:
    write(repository, "reconciler.yaml", target("https://attacker.example", extra=extra))
    result = run("plan")
    assert result.exit_code == 1
    assert "unknown field" in result.stderr
    assert proxy == []


@pytest.mark.parametrize(
    "entry",
    [
        "https://polaris.corp.example",
        "polaris.corp.example/v1",
        "*.corp.example",
        "a b",
        "x@y",
        "[polaris.corp.example]",  # brackets hold an IPv6 address, nothing else
    ],
)
def test_an_allowed_host_that_is_not_a_host_name_is_a_usage_error(
    repository: Path, proxy: list[str], monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    write(repository, "reconciler.yaml", target("https://polaris.corp.example"))
    flag = run("plan", "--allow-host", entry)
    assert flag.exit_code == 1
    assert "--allow-host" in flag.stderr and "a host name" in flag.stderr
    monkeypatch.setenv("RECONCILER_ALLOWED_HOSTS", entry)
    environment = run("plan")
    assert environment.exit_code == 1
    assert "RECONCILER_ALLOWED_HOSTS" in environment.stderr
    shows_no_secret(environment)
    assert proxy == []


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Answers every request with a redirect to `location`, and records what it was sent."""

    location: str
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(f"{self.path} {self.headers.get('Authorization', '')}")
        self.send_response(307)
        self.send_header("Location", self.location + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str], list[str]]]:
    """Two loopback servers: the first redirects every request to the second."""
    first_seen: list[str] = []
    second_seen: list[str] = []
    second = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Second", (_Redirect,), {"location": "", "seen": second_seen})
    )
    other = f"http://localhost:{second.server_address[1]}"
    first = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("First", (_Redirect,), {"location": other, "seen": first_seen})
    )
    # Polled every 50 ms, not 500: shutdown() returns at the next poll.
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in (first, second)
    ]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{first.server_address[1]}", first_seen, second_seen
    for server in (first, second):
        server.shutdown()
        server.server_close()


def test_a_redirect_never_carries_the_api_key_anywhere(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, redirecting: Any
) -> None:
    url, first, second = redirecting
    monkeypatch.setenv("POLARIS_URL", url)
    result = run("plan")
    assert result.exit_code == 1
    assert "307" in result.stderr
    shows_no_secret(result)
    assert len(first) >= 1 and second == [], "the redirect was followed"


# S3 listing: a connection's keys are signed only for S3 -------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("s3.amazonaws.com", "https://s3.amazonaws.com"),
        ("s3-external-1.amazonaws.com", "https://s3-external-1.amazonaws.com"),
        ("s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com"),
        ("s3-eu-west-1.amazonaws.com", "https://s3-eu-west-1.amazonaws.com"),
        ("s3.dualstack.eu-west-1.amazonaws.com", "https://s3.dualstack.eu-west-1.amazonaws.com"),
        ("s3-fips.us-east-2.amazonaws.com", "https://s3-fips.us-east-2.amazonaws.com"),
        (
            "s3-fips.dualstack.us-gov-west-1.amazonaws.com",
            "https://s3-fips.dualstack.us-gov-west-1.amazonaws.com",
        ),
        ("my-bucket.s3.eu-west-1.amazonaws.com", "https://my-bucket.s3.eu-west-1.amazonaws.com"),
        ("my.dotted.bucket.s3.amazonaws.com", "https://my.dotted.bucket.s3.amazonaws.com"),
        ("s3.cn-northwest-1.amazonaws.com.cn", "https://s3.cn-northwest-1.amazonaws.com.cn"),
        ("s3-fips-us-gov-west-1.amazonaws.com", "https://s3-fips-us-gov-west-1.amazonaws.com"),
        (
            "b.s3-accelerate.dualstack.amazonaws.com",
            "https://b.s3-accelerate.dualstack.amazonaws.com",
        ),
        ("s3-accelerate.evil.amazonaws.com", None),
        ("s3.us-east-1.vpce.amazonaws.com", None),
        ("S3.US-EAST-1.AMAZONAWS.COM.", "https://s3.us-east-1.amazonaws.com"),
        ("https://s3.amazonaws.com:0443/", "https://s3.amazonaws.com"),
        ("s3.amazonaws.com:8443", "https://s3.amazonaws.com:8443"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("localhost:9000", "http://localhost:9000"),
        # Other AWS services, and hosts that only contain the words.
        ("abc123.execute-api.us-east-1.amazonaws.com", None),
        ("sqs.us-east-1.amazonaws.com", None),
        ("ec2.amazonaws.com", None),
        ("sts.amazonaws.com", None),
        ("abc.lambda-url.us-east-1.on.aws", None),
        ("s3.evil.com.amazonaws.com.attacker.net", None),
        ("s3.amazonaws.com.attacker.net", None),
        ("evil-s3.amazonaws.com", None),
        ("s3x.amazonaws.com", None),
        ("s3-evil.amazonaws.com", None),
        ("bucket.s3.evil.amazonaws.com", None),
        ("s3.dualstack.amazonaws.com.attacker.net", None),
        ("https://s3.amazonaws.com@evil.com", None),
        ("s3.amazonaws.com\\@evil.com", None),
        ("s3.amazonaws.com\\evil.com", None),
        ("evil.com\\.s3.amazonaws.com", None),
        ("s3.amazonaws.com%2f@evil.com", None),
        ("\uff533.amazonaws.com", None),  # a full-width s
        ("s3.amazonaws.com:99999", None),
        ("s3.amazonaws.com:0", None),
        ("http://s3.amazonaws.com", None),
        ("[::ffff:127.0.0.1]:9000", None),
        ("0.0.0.0:9000", None),
        ("minio.internal:9000", None),
    ],
)
def test_keys_are_signed_only_for_s3_service_hosts_or_loopback(
    endpoint: str, url: str | None
) -> None:
    assert signing_url(endpoint) == url


@pytest.mark.parametrize(
    "host",
    [
        "s3-fips-external-1.amazonaws.com",  # s3-external-1 has no FIPS twin
        "logs.s3-fips-external-1.amazonaws.com",
        "s3.us-north-eu-10.amazonaws.com",  # not an AWS region name: AREA[-gov]-WORD-N
        "s3-eu-fips-north-2.amazonaws.com",
        "b.s3.cn-website-external-10.amazonaws.com",
        "s3.us-east-100.amazonaws.com",
        "s3.us-iso-east-1.amazonaws.com",  # the ISO partitions have domains of their own
        "s3.cn-north-1.amazonaws.com",  # China's regions are under amazonaws.com.cn ...
        "s3-cn-north-1.amazonaws.com",
        "s3.us-east-1.amazonaws.com.cn",  # ... and only they are
        "s3.dualstack.eu-west-1.amazonaws.com.cn",
        "s3.amazonaws.com.cn",  # China has regional endpoints only
        "s3-external-1.amazonaws.com.cn",
        "b.s3-accelerate.amazonaws.com.cn",
    ],
)
def test_a_host_that_only_looks_like_an_s3_endpoint_is_neither_a_partition_nor_signed_for(
    host: str,
) -> None:
    # Identity (docs/places.md) and signing (docs/trusted-hosts.md) read host names with one
    # parser; these are the spellings on which their two parsers once disagreed, or both erred.
    assert not parse_endpoint(host).aws
    assert not hosts.is_s3_service(host)
    assert signing_url(host) is None


def test_brackets_around_anything_but_an_ipv6_address_are_not_a_host() -> None:
    for text in (
        "[s3.amazonaws.com]", "[acme.api.imply.io]", "[localhost]", "[127.0.0.1]", "[[::1]]",
        "::1%eth0", "[::1%25lo]",  # nor is an address with a zone
    ):  # fmt: skip
        assert hosts.normalize(text) is None, text
    assert not hosts.is_s3_service("[s3.amazonaws.com]")
    assert not hosts.is_polaris_api("[acme.api.imply.io]")
    assert not hosts.is_loopback("[127.0.0.1]")
    assert hosts.normalize("[0:0::1]") == "::1" and hosts.is_loopback("[::1]")


def test_an_s3_compatible_host_is_signed_for_only_with_the_operators_consent() -> None:
    allowed = frozenset({"minio.internal"})
    assert signing_url("minio.internal:9000", allowed) == "https://minio.internal:9000"
    assert signing_url("MINIO.internal.:9000", allowed) == "https://minio.internal:9000"
    assert signing_url("minio.internal.attacker.example", allowed) is None
    assert signing_url("http://minio.internal:9000", allowed) is None
    assert (
        signing_url("http://minio.internal:9000", allowed, insecure=True)
        == "http://minio.internal:9000"
    )


def test_listing_through_a_non_aws_endpoint_needs_the_operators_consent(
    served: Any, workspace: Path, proxy: list[str]
) -> None:
    shutil.rmtree(workspace / "weblogs")  # it needs another team's connection
    conn = workspace / "guide" / "demo-conn.yaml"
    edit(conn, "s3.us-east-1.amazonaws.com", "abc123.execute-api.us-east-1.amazonaws.com")
    result = run("plan", "--list-objects", "--format", "json")
    reason = changes_by_name(result.json())["koalas-demo-file"]["objects"]["reason"]
    assert "abc123.execute-api.us-east-1.amazonaws.com" in reason
    assert "--allow-host" in reason
    assert proxy == []
    edit(conn, "abc123.execute-api.us-east-1.amazonaws.com", "minio.corp.example:9000")
    run("plan", "--list-objects")
    assert proxy == []
    result = run("plan", "--list-objects", "--allow-host", "minio.corp.example")
    assert [entry.split()[:2] for entry in proxy] == [["CONNECT", "minio.corp.example:9000"]]
    shows_no_secret(result)


# Attacked as a stranger would: pieces of hostile spellings, put together at random ------------

PIECES = [
    "s3",
    "s3-external-1",
    "s3-fips",
    "s3-accelerate",
    "s3-eu-west-1",
    "dualstack",
    "us-east-1",
    "eu-west-1",
    "us-gov-west-1",
    "cn-north-1",
    "external-1",
    "amazonaws",
    "com",
    "cn",
    "api",
    "imply",
    "io",
    "acme",
    "attacker",
    "execute-api",
    "evil",
    "localhost",
    "127",
    "0",
    "1",
    "::1",
    "ffff",
    "xn--s3-",
    "S3",
    "AMAZONAWS",
]
GLUE = [".", "-", "..", "@", "\\", "/", ":", "%2e", "%40", "#", "?", "[", "]", " ", "\u3002",
        "\uff0e", "\u0131", ":443", ":0443", ":8080", "https://", "http://", ""]  # fmt: skip


def hostile() -> st.SearchStrategy[str]:
    # lists(...).map draws exactly what a composite drawing the list would, with less overhead.
    return st.lists(st.sampled_from(PIECES + GLUE), min_size=1, max_size=12).map("".join)


def sent_host(url: str) -> str:
    host = httpx.URL(url).host
    return hosts.normalize(host) or f"<{host}>"


@settings(max_examples=3000, deadline=None)
@given(hostile())
def test_a_signed_listing_goes_only_to_the_host_that_was_checked(endpoint: str) -> None:
    url = signing_url(endpoint, frozenset({"minio.internal"}))
    if url is not None:
        host = sent_host(url)
        assert hosts.is_s3_service(host) or hosts.is_loopback(host) or host == "minio.internal"
        assert "@" not in url and "\\" not in url and "%" not in url


@settings(max_examples=3000, deadline=None)
@given(hostile())
@example("[s3.amazonaws.com]")
@example("s3-fips.dualstack.us-gov-west-1.amazonaws.com.")
def test_a_host_is_signed_for_exactly_when_it_names_an_aws_partition(endpoint: str) -> None:
    # A host that is plainly a DNS name is an S3 service for signing exactly when it is one for
    # a job's place; anything else is never signed for, whatever identity makes of it.
    if hosts.normalize(endpoint) is None:
        assert not hosts.is_s3_service(endpoint)
    else:
        assert hosts.is_s3_service(endpoint) == parse_endpoint(endpoint).aws, endpoint


@settings(max_examples=3000, deadline=None)
@given(hostile())
def test_the_api_key_goes_only_to_the_host_that_was_checked(tail: str) -> None:
    for url in (tail, f"https://{tail}", f"http://{tail}"):
        try:
            check_destination(url, frozenset({"polaris.corp.example"}))
        except PolarisError:
            continue
        host = sent_host(url)
        assert (
            hosts.is_polaris_api(host)
            or hosts.is_loopback(host)
            or (host == "polaris.corp.example" and url.startswith("https://"))
        ), url
