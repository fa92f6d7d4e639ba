"""Never an internal error: hostile server responses and hostile command lines end in a message.

Each case runs through the real entry point (`reconciler.cli.main`) and must exit 1 (or succeed
where the input is harmless) with a message naming what was wrong, never "internal error".
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.client import ClientConfig, PolarisClient, PolarisError
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID
from reconciler.kinds.ingestion_job import JobCache
from reconciler.live import read_live
from reconciler.validate import load_manifests
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, IN_PROCESS_HOSTS, ROOT, Canned, HostileServer

JSON = {"Content-Type": "application/json"}
HTML_PAGE = b"<!doctype html><html><head><title>Imply Polaris</title></head><body></body></html>"
CONNECTION = {"name": "demo-conn", "type": "s3", "bucket": "demo-bucket", "awsEndpoint": "e"}
JOB_ID = "0b5e3c1a-0000-4000-8000-000000000001"


def answers(
    connections: Canned | None = None,
    tables: Canned | None = None,
    jobs: Canned | None = None,
    job: Canned | None = None,
    create: Canned | None = None,
) -> Callable[[str, str, bytes], Canned]:
    """A server that is a good Polaris except for the answers given."""

    def ok(value: Any, status: int = 200) -> Canned:
        return Canned(status, json.dumps(value).encode(), JSON)

    def respond(method: str, path: str, body: bytes) -> Canned:
        path = path.split("?")[0]
        if method == "POST":
            return create or ok({**json.loads(body or b"{}"), "id": JOB_ID}, 201)
        if path.endswith("/connections"):
            return connections or ok({"values": []})
        if path.endswith("/tables"):
            return tables or ok({"values": []})
        if path.endswith("/jobs"):
            return jobs or ok({"values": [], "moreResultsAvailable": False})
        if "/jobs/" in path:
            return job or ok({"id": JOB_ID})
        if "/connections/" in path:  # a connection apply created, read back
            return ok({**CONNECTION, "name": path.rsplit("/", 1)[-1]})
        return Canned(404, b'{"code": "NotFound", "message": "not found"}', JSON)

    return respond


def json_body(value: Any, status: int = 200) -> Canned:
    return Canned(status, json.dumps(value).encode(), JSON)


KOALAS_SUMMARY = {
    "id": JOB_ID,
    "type": "batch",
    "executionStatus": "completed",
    "target": {"type": "table", "tableName": "Koalas"},
    "source": {"type": "s3", "connectionName": "demo-conn"},
}


@dataclass(frozen=True)
class Case:
    """One hostile input: what the server answers, what the user types, what must be said."""

    name: str
    args: tuple[str, ...] = ("plan", "manifests/guide")
    server: Callable[[str, str, bytes], Canned] | None = None
    env: dict[str, str] = field(default_factory=dict)
    says: tuple[str, ...] = ()  # each must appear in stderr (or stdout)
    exit_code: int = 1
    files: dict[str, bytes] = field(default_factory=dict)


SERVER_CASES = [
    Case(
        "200 with the UI's HTML page",
        server=lambda m, p, b: Canned(200, HTML_PAGE, {"Content-Type": "text/html"}),
        says=("answered 200 (text/html) with a body that is not JSON", "POLARIS_URL"),
    ),
    Case(
        "a JSON list where an object is expected",
        server=answers(connections=json_body([CONNECTION])),
        says=("/connections", "a JSON list", "not a JSON object"),
    ),
    Case(
        "an object without values",
        server=answers(connections=json_body({"items": []})),
        says=("'values' is an empty body",),
    ),
    Case(
        "values that is a string",
        server=answers(tables=json_body({"values": "none"})),
        says=("/tables", "'values' is a JSON string"),
    ),
    Case(
        "values holding numbers",
        server=answers(connections=json_body({"values": [1, 2]})),
        says=("a value that is not an object with a 'name'",),
    ),
    Case(
        "a connection without a name",
        server=answers(connections=json_body({"values": [{"type": "s3"}]})),
        says=("'name'",),
    ),
    Case(
        "a name that is a number",
        server=answers(tables=json_body({"values": [{"name": 7}]})),
        says=("'name'",),
    ),
    Case(
        "200 with an empty body",
        server=answers(connections=Canned(200, b"", JSON)),
        says=("an empty body",),
    ),
    Case(
        "200 with JSON null",
        server=answers(jobs=Canned(200, b"null", JSON)),
        says=("/jobs", "an empty body"),
    ),
    Case(
        "invalid UTF-8 declared as JSON",
        server=answers(connections=Canned(200, b'{"values": ["\xff\xfe"]}', JSON)),
        says=("not JSON",),
    ),
    Case(
        "an unknown charset",
        server=answers(
            connections=Canned(200, b"\xff<html>", {"Content-Type": "text/html; charset=klingon"})
        ),
        says=("text/html",),
    ),
    Case(
        "JSON nested 100,000 deep",
        server=answers(connections=Canned(200, b"[" * 100_000 + b"]" * 100_000, JSON)),
        says=("not JSON",),
    ),
    Case(
        "a job summary without an id",
        server=answers(jobs=json_body({"values": [{"executionStatus": "completed"}]})),
        says=("'id'",),
    ),
    Case(
        "a job page that always says there is more",
        server=answers(jobs=json_body({"values": [KOALAS_SUMMARY], "moreResultsAvailable": True})),
        args=("plan", "--format", "json", "manifests/guide"),
        says=(),
        exit_code=0,
    ),
    Case(
        "job details that are a list",
        server=answers(jobs=json_body({"values": [KOALAS_SUMMARY]}), job=json_body([1])),
        says=(JOB_ID, "a JSON list"),
    ),
    Case(
        "job details whose source and mappings have the wrong types",
        server=answers(
            jobs=json_body({"values": [KOALAS_SUMMARY]}),
            job=json_body({**KOALAS_SUMMARY, "source": "s3", "mappings": {"a": 1}, "target": 5}),
        ),
        says=(f"/jobs/{JOB_ID}: answered 200", "the field target holding a JSON number"),
    ),
    Case(
        "500 with an HTML error page",
        server=lambda m, p, b: Canned(500, HTML_PAGE, {"Content-Type": "text/html"}),
        says=("failed (500)",),
    ),
    Case(
        "404 everywhere",
        server=lambda m, p, b: Canned(404, b"Not Found", {"Content-Type": "text/plain"}),
        says=("not found", "POLARIS_PROJECT_ID"),
    ),
    Case(
        "401 as HTML",
        server=lambda m, p, b: Canned(401, HTML_PAGE, {"Content-Type": "text/html"}),
        says=("rejected the API key (401)",),
    ),
    Case(
        "a redirect to a login page",
        server=lambda m, p, b: Canned(302, b"", {"Location": "https://login.example/"}),
        says=("failed (302)",),
    ),
    Case(
        "a JSON body cut short",
        server=lambda m, p, b: Canned(200, b'{"val', {**JSON, "X-Pad": "1"}),
        says=("not JSON",),
    ),
    Case(
        "201 with an empty body to a create",
        args=("apply", "--auto-approve", "--no-lock", "manifests/guide"),
        server=answers(create=Canned(201, b"", JSON)),
        says=("answered 201 with an empty body", "cannot be confirmed", "not attempted"),
    ),
    Case(
        "201 with a job that has no id",
        args=("apply", "--auto-approve", "--no-lock", "manifests/guide"),
        server=answers(
            create=Canned(201, b'{"name": "demo-conn"}', JSON),
            tables=json_body({"values": []}),
        ),
        says=(),
    ),
]

CLI_CASES = [
    Case(
        "a trailing carriage return in POLARIS_URL",
        env={"POLARIS_URL": "https://acme.us-east-1.aws.api.imply.io\r"},
        says=("POLARIS_URL", "\\r"),
    ),
    Case(
        "a trailing space in POLARIS_URL",
        env={"POLARIS_URL": "https://acme.us-east-1.aws.api.imply.io "},
        says=("POLARIS_URL", "whitespace"),
    ),
    Case(
        "a URL that is not one",
        env={"POLARIS_URL": "https://[::1"},
        says=("POLARIS_URL",),
    ),
    Case(
        "a project id with a line break",
        env={"POLARIS_PROJECT_ID": "abc\ndef"},
        says=("POLARIS_PROJECT_ID",),
    ),
    Case(
        "a non-UTF-8 API key file",
        args=("plan", "--api-key-file", "key.bin", "manifests/guide"),
        files={"key.bin": b"\xff\xfe\x00k"},
        says=("key.bin is not UTF-8",),
    ),
    Case(
        "an API key file that is missing",
        args=("plan", "--api-key-file", "nowhere.txt", "manifests/guide"),
        says=("cannot read --api-key-file nowhere.txt",),
    ),
    Case("a negative timeout", args=("apply", "--timeout", "-5"), says=("--timeout",)),
    Case("a timeout of nan", args=("apply", "--timeout", "nan"), says=("--timeout", "nan")),
    Case("an infinite timeout", args=("apply", "--timeout", "inf"), says=("--timeout",)),
    Case("parallelism 0", args=("plan", "--parallelism", "0"), says=("--parallelism",)),
    Case("an unknown flag", args=("plan", "--colour"), says=("No such option",)),
    Case(
        "a saved plan that is not JSON",
        args=("apply", "plan.json"),
        files={"plan.json": b"{not json"},
        says=("plan.json is not a saved plan",),
    ),
    Case(
        "a saved plan that is a list",
        args=("apply", "plan.json"),
        files={"plan.json": b"[1, 2]"},
        says=("not a plan saved by",),
    ),
    Case(
        "a negative emulator fault rate",
        args=("emulator", "--fault-500-rate", "-1"),
        says=("--fault-500-rate",),
    ),
    Case(
        "a fault rate of nan",
        args=("emulator", "--fault-drop-rate", "nan"),
        says=("--fault-drop-rate", "finite"),
    ),
    Case("negative latency", args=("emulator", "--latency-ms", "-5"), says=("--latency-ms",)),
    Case("a port out of range", args=("emulator", "--port", "70000"), says=("--port",)),
    Case(
        "a keys file that is not YAML",
        args=("emulator", "--keys-file", "keys.yaml"),
        files={"keys.yaml": b"a: [b\n"},
        says=("--keys-file",),
    ),
]


def good_polaris(method: str, path: str, body: bytes) -> Canned:
    return answers()(method, path, body)


@pytest.mark.parametrize("case", SERVER_CASES + CLI_CASES, ids=lambda case: case.name)
def test_hostile_input_ends_in_a_message_never_an_internal_error(
    case: Case, hostile: HostileServer, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile.respond = case.server or good_polaris
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # retry backoff is counted, not slept
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    for name, content in case.files.items():
        Path(name).write_bytes(content)
    result = run(*case.args)
    said = result.stdout + result.stderr
    assert "internal error" not in said and "Traceback" not in said, said
    assert result.exit_code == case.exit_code, said
    for words in case.says:
        assert words in said, said


def test_the_emulator_says_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("emulator", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0" in result.stderr and "internal error" not in result.stderr


def test_an_unwritable_cache_directory_is_a_warning_and_the_plan_still_runs(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert run("apply", "--auto-approve", "manifests/guide").exit_code == 0
    result = run("plan", "manifests/guide")
    assert result.exit_code == 0, result.stderr
    assert "cannot write the job cache" in result.stderr and "running without it" in result.stderr


def test_a_create_answered_without_a_body_fails_only_what_depends_on_it(
    hostile: HostileServer, workspace: Path
) -> None:
    def polaris(method: str, path: str, body: bytes) -> Canned:
        if method == "POST" and path.endswith("/connections"):
            name = json.loads(body)["name"]
            if name == "demo-conn":
                return Canned(201, b"", JSON)
        return answers()(method, path, body)

    hostile.respond = polaris
    result = run("apply", "--auto-approve", "--no-lock", "--format", "json", "manifests/weblogs/tables.yaml",
                 "manifests/guide")  # fmt: skip
    assert result.stdout, result.stderr
    outcomes = {(o["kind"], o["name"]): o for o in result.json()["results"]}
    assert result.exit_code == 1
    assert outcomes[("Connection", "demo-conn")]["status"] == "failed"
    assert "cannot be confirmed" in outcomes[("Connection", "demo-conn")]["message"]
    assert outcomes[("IngestionJob", "koalas-demo-file")]["status"] == "skipped"
    assert outcomes[("Table", "web_requests")]["status"] == "done"


def test_a_malformed_job_met_by_the_check_before_a_post_fails_that_job_with_a_message(
    hostile: HostileServer, workspace: Path
) -> None:
    listed = []

    def polaris(method: str, path: str, body: bytes) -> Canned:
        bare = path.split("?")[0]
        if method == "GET" and bare.endswith("/jobs") and "type=streaming" not in path:
            listed.append(path)
            if len(listed) > 1:  # after the plan, a job into the same table appears
                running = {**KOALAS_SUMMARY, "executionStatus": "running"}
                return json_body({"values": [running], "moreResultsAvailable": False})
        if method == "GET" and "/jobs/" in bare:
            return json_body({"id": JOB_ID, "executionStatus": "running", "source": "s3"})
        return answers()(method, path, body)

    hostile.respond = polaris
    result = run("apply", "--auto-approve", "--no-lock", "manifests/guide")
    said = result.stdout + result.stderr
    assert "internal error" not in said and "Traceback" not in said, said
    assert result.exit_code == 1, said
    (line,) = [line for line in result.stdout.splitlines() if "IngestionJob/" in line]
    assert line.startswith("failed") and f"/jobs/{JOB_ID}: answered 200" in line, said
    assert "the field source holding a JSON string, not a JSON object" in line, said


def test_a_job_post_answered_with_a_malformed_job_is_submitted_and_said_so(
    hostile: HostileServer, workspace: Path
) -> None:
    def polaris(method: str, path: str, body: bytes) -> Canned:
        if method == "POST" and path.split("?")[0].endswith("/jobs"):
            return json_body({"id": JOB_ID, "source": "s3", "health": "ok"}, 201)
        return answers()(method, path, body)

    hostile.respond = polaris
    result = run("apply", "--auto-approve", "--no-lock", "--format", "json", "manifests/guide")
    said = result.stdout + result.stderr
    assert "internal error" not in said and "Traceback" not in said, said
    outcomes = {o["name"]: o for o in result.json()["results"]}
    assert outcomes["koalas-demo-file"]["status"] == "done", said
    assert outcomes["koalas-demo-file"]["jobId"] == JOB_ID


def test_apply_wait_on_a_job_with_malformed_progress_and_health_fails_it_with_a_message(
    hostile: HostileServer, workspace: Path
) -> None:
    reads = []

    def polaris(method: str, path: str, body: bytes) -> Canned:
        bare = path.split("?")[0]
        if method == "GET" and bare.endswith("/progress"):
            return json_body({"overallProgress": "half"})
        if method == "GET" and bare.endswith(f"/jobs/{JOB_ID}"):
            reads.append(path)
            status = "running" if len(reads) == 1 else "failed"
            return json_body({"id": JOB_ID, "executionStatus": status, "health": "broken"})
        return answers()(method, path, body)

    hostile.respond = polaris
    result = run("apply", "--auto-approve", "--no-lock", "--wait", "manifests/guide")
    said = result.stdout + result.stderr
    assert "internal error" not in said and "Traceback" not in said, said
    assert result.exit_code == 1, said
    assert any(
        line.startswith("failed")
        and f"/jobs/{JOB_ID}: answered 200" in line
        and "the field health holding a JSON string" in line
        for line in result.stdout.splitlines()
    ), said


# The client and read_live under generated malformed answers -----------------------------------

STATUSES = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503])
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/html", "text/plain", "", "application/json; charset=latin-1"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["values", "id", "name", "source", "target", "executionStatus", "spec", "mappings",
             "moreResultsAvailable", "error", "code", "message", "health", "type", "schema"]
        ),
        children,
        max_size=5,
    ),
    max_leaves=12,
)  # fmt: skip
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"<html>", b"{", b"\xff\xfe", b"null", b"[" * 5000]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=st.lists(st.tuples(STATUSES, CONTENT_TYPES, BODIES), min_size=1, max_size=6))
def test_the_client_and_read_live_raise_only_polaris_errors_on_malformed_answers(
    answers: list[tuple[int, str, bytes]],
) -> None:
    calls = iter(answers * 50)

    def handler(request: httpx.Request) -> httpx.Response:
        status, content_type, body = next(calls)
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.Response(status, content=body, headers=headers)

    config = ClientConfig(
        "https://polaris.test", DEMO_PROJECT_ID, DEMO_API_KEY, max_attempts=2, max_retry_seconds=0,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    manifests = load_manifests([str(ROOT / "manifests")], DEMO_SECRETS).resources
    client = PolarisClient(config, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    operations: list[Callable[[], Any]] = [
        lambda: read_live(client, manifests, parallelism=1, cache=JobCache(None)),
        client.list_connections,
        lambda: client.get_connection("demo-conn"),
        lambda: client.get_job(JOB_ID),
        lambda: client.create_job({"type": "batch"}),
        lambda: client.create_connection(CONNECTION),
        lambda: client.update_table("t", {"version": 1}),
        lambda: client.delete_connection("demo-conn"),
        lambda: client.job_metrics(JOB_ID),
        lambda: client.cancel_job(JOB_ID),
    ]
    with client:
        for operation in operations:
            with contextlib.suppress(PolarisError):  # anything else fails the test
                operation()
