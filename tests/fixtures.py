"""Fixtures for the reconciler's own tests: a client on the in-process emulator, a served emulator."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from tests.connections import CONNECTIONS

ROOT = Path(__file__).resolve().parent.parent
# The in-process emulator's host name: not Polaris, not loopback, so the tests allow it as an
# operator would allow a host (--allow-host), and the client's checks still run on every URL.
IN_PROCESS_HOSTS = frozenset({"polaris.test"})
DEMO_SECRETS = {
    "DEMO_AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST0000",
    "DEMO_AWS_SECRET_ACCESS_KEY": "test-secret-value-must-never-show",
}


# The connection another team manages: manifests/weblogs declares it with policy.manage: external.
SECURITY_AUDIT = {
    "type": "s3",
    "name": "security-audit",
    "bucket": "acme-security-audit",
    "awsEndpoint": "s3.eu-west-1.amazonaws.com",
}


def external_connection_exists(client: PolarisClient) -> None:
    """The security team's connection that manifests/weblogs declares as managed elsewhere."""
    client.create_connection(SECURITY_AUDIT)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[PolarisClient]:
    """A client talking to the in-process emulator, with instant retries."""
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with PolarisClient(config, transport=emulator.transport(), sleep=lambda seconds: None) as c:
        yield c


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry waits of an in-process CLI run, counted instead of slept (the client looks up
    time.sleep at each wait): a run against a host that refuses ends at once, not after 60 s."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


@pytest.fixture
def served(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The emulator on a loopback port, with the environment a user would have exported."""
    yield from _serve(emulator, monkeypatch, tmp_path)


@pytest.fixture
def data_served(
    data_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """The emulator that reads objects from `s3_dir`, served like `served`."""
    yield from _serve(data_emulator, monkeypatch, tmp_path)


def point_the_cli_at(
    monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path,
    secrets: Mapping[str, str] = DEMO_SECRETS,
) -> None:  # fmt: skip
    """The environment a user sets to run the CLI against `url`: the demo project and key, a
    job cache of the test's own, and the variables the manifests' secrets come from."""
    monkeypatch.setenv("POLARIS_URL", url)
    monkeypatch.setenv("POLARIS_PROJECT_ID", DEMO_PROJECT_ID)
    monkeypatch.setenv("POLARIS_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)


def _serve(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    with emulator.serve() as server:
        point_the_cli_at(monkeypatch, server.url, tmp_path)
        monkeypatch.delenv("NO_COLOR", raising=False)
        yield server


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of manifests/ to edit, as the current directory."""
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "manifests"


def seed_project(
    client: PolarisClient,
    emulator: Emulator,
    connections: int = 50,
    tables: int = 10,
    jobs: int = 200,
) -> None:
    """A project made by hand, as `reconciler import` meets one: connections of every type (S3
    ones with a role or keys, prefixes, descriptions), detail and aggregate tables, and batch jobs of every format and object
    selector, including failed ones, a spec submitted twice, and tables created by jobs."""
    streaming = [body for key, body in CONNECTIONS.items() if not key.startswith("s3/")]
    for i in range(connections):
        name = f"Conn.{i:02}" if i % 7 == 0 else f"conn-{i:02}"
        if i % 5 == 4:  # one in five of another type, each type and secrets type in turn
            client.create_connection({**streaming[(i // 5) % len(streaming)], "name": name})
            continue
        body: dict[str, Any] = {
            "type": "s3", "name": name,
            "bucket": f"bucket-{i}", "awsEndpoint": "s3.us-east-1.amazonaws.com",
        }  # fmt: skip
        if i % 3 == 0:
            body["awsAssumedRoleArn"] = f"arn:aws:iam::012345678901:role/reader-{i}"
        else:
            body["secrets"] = {
                "type": "access_key",
                "accessKeyId": f"AKIASEED{i:012}",
                "accessKeySecret": f"seed-secret-{i}-never-shown",
            }
        if i % 3 == 2:
            body |= {"prefix": f"team-{i}/", "description": f"on: {i}, yes"}
        client.create_connection(body)
    names = [c["name"] for c in client.list_connections() if c["type"] == "s3"]
    detail = [f"events_{t}" for t in range(tables - 2)]
    for t, table in enumerate(detail):
        client.create_table(
            {
                "name": table, "type": "detail", "schemaMode": "strict" if t % 2 else "flexible",
                "partitioningGranularity": ["hour", "day", "month"][t % 3],
                "schema": [
                    {"name": "__time", "dataType": "timestamp"},
                    {"name": "city", "dataType": "string"},
                    {"name": "bytes", "dataType": "long"},
                ],
                "clusteringColumns": ["city"] if t % 2 else [],
                "description": "0o17" if t == 1 else f"table {t}",
            }
        )  # fmt: skip
    rollups = [f"rollup_{t}" for t in range(2)]
    for table in rollups:
        client.create_table(
            {
                "name": table, "type": "aggregate",
                "queryGranularity": {"type": "simple", "granularity": "hour"},
                "schema": [
                    {"name": "city", "dataType": "string", "type": "dimension"},
                    {"name": "max_bytes", "dataType": "long", "type": "measure"},
                ],
            }
        )  # fmt: skip
    formats: list[dict[str, Any]] = [
        {"format": "nd-json"},
        {"format": "csv", "columns": ["ts", "city", "bytes"], "skipHeaderRows": 1},
        {"format": "parquet"},
    ]
    ids = []
    for j in range(jobs):
        connection = names[j % len(names)]
        aggregate = j % 10 == 9
        auto = j % 25 == 3
        table = f"auto_{j}" if auto else (rollups[j % 2] if aggregate else detail[j % len(detail)])
        key = f"data/{j:04}/"
        selector: dict[str, Any] = [
            {"uris": [f"s3://bucket/{key}a.json", f"s3://bucket/{key}b.json"]},
            {"prefixes": [key]},
            {"objects": [f"{key}x.json"]},
            {"pattern": f"{key}**.json"},
        ][j % 4]
        mappings = [
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "city", "expression": '"city"'},
            {"columnName": "max_bytes", "expression": 'MAX("bytes")', "isAggregation": True}
            if aggregate
            else {"columnName": "bytes", "expression": '"bytes"'},
        ]
        job: dict[str, Any] = {
            "type": "batch", "target": {"type": "table", "tableName": table},
            "source": {
                "type": "s3", "connectionName": connection, **selector,
                "formatSettings": formats[j % 3],
                "inputSchema": [
                    {"name": "ts", "dataType": "string"}, {"name": "city", "dataType": "string"},
                    {"name": "bytes", "dataType": "long"},
                ],
            },
            "mappings": mappings,
        }  # fmt: skip
        if auto:
            job["createTableIfNotExists"] = True
        if j % 40 == 5:
            job |= {"ingestionMode": "replace", "replaceAll": True}
        if j % 50 == 7:
            job["filterExpression"] = '"bytes" > 0'
        ids.append(client.create_job(job)["id"])
        if j == 11:
            ids.append(client.create_job(job)["id"])  # the same spec twice: one manifest
    for index, job_id in enumerate(ids):
        if 20 <= index < 25:
            emulator.fail_job(job_id)
        else:
            emulator.complete_job(job_id)


@dataclass
class Canned:
    """One answer of a hostile server: status, headers and raw body bytes."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[str, str, bytes], Canned]


@dataclass
class HostileServer:
    """A loopback HTTP server whose every answer a test chooses (`respond(method, path, body)`)."""

    url: str
    respond: Responder
    requests: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HostileServer]:
    """A server on 127.0.0.1 that answers whatever the test says, with the user's environment."""
    state = HostileServer("", lambda method, path, body: Canned(404))

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append((self.command, self.path))
            canned = state.respond(self.command, self.path, body)
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    point_the_cli_at(monkeypatch, state.url, tmp_path)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A proxy that forwards nothing: it records each request it is asked to make."""

    seen: list[str]

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path} {self.headers.get('Authorization', '')}")
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_CONNECT = do_POST = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every request to a host other than loopback goes through a recording proxy."""
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, address)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield seen
    server.shutdown()
    server.server_close()


T = TypeVar("T")


def traced_peak(call: Callable[[], T]) -> tuple[T, int]:
    """What `call` returns, and the most memory it held at once beyond what was held before
    it (tracemalloc: Python's own allocations)."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
