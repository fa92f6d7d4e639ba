"""Whatever a server answers, and however slowly, the reconciler ends with a message in bounded time.

The timeout covers a whole response, body included, not each read of it: a server that trickles
a byte at a time cannot hold a plan for ever.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.client import ClientConfig, PolarisClient, PolarisError
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.ingestion_job import JobCache
from reconciler.live import read_live
from reconciler.validate import load_manifests
from tests.cli import Result, run
from tests.fixtures import DEMO_SECRETS, IN_PROCESS_HOSTS, Canned, HostileServer

TRICKLE_GAP = 0.05  # seconds between two bytes: far below the timeout of one read
TRICKLE_BYTES = 200  # ten seconds of trickling in all: the test ends long before


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """A loopback server that sends headers, then its JSON body one byte every TRICKLE_GAP s.

    It stops by itself when the body is sent, when the client hangs up, or when the test ends.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()
    body = b'{"values": [' + b" " * (TRICKLE_BYTES - 14) + b"]}"

    def trickle(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(1)
            received = b""
            while b"\r\n\r\n" not in received and not done.is_set():
                received += connection.recv(4096) or b"\r\n\r\n"
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            try:
                connection.sendall(head)
                for byte in body:
                    if done.wait(TRICKLE_GAP):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:  # the client gave up and closed the connection
                return

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        server.join()
        listener.close()


def test_a_server_that_trickles_its_answer_is_cut_off_when_the_timeout_has_passed(
    trickling_server: str,
) -> None:
    config = ClientConfig(
        trickling_server, DEMO_PROJECT_ID, DEMO_API_KEY, timeout=0.5, max_attempts=1
    )
    started = time.monotonic()
    with PolarisClient(config) as client, pytest.raises(PolarisError) as raised:
        client.list_connections()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the answer was read for {elapsed:.1f} s with a 0.5 s timeout"
    assert "no answer within 0.5 s" in str(raised.value)
    assert raised.value.url is not None and raised.value.url.endswith("/connections")


# Mutated answers of a real Polaris --------------------------------------------------------------
#
# A proxy in front of the in-process emulator changes one field (or the whole body) of chosen
# answers: wrong types, NaN, Infinity, numbers JSON parsers turn into infinity, deep nesting,
# a missing field, an empty or non-JSON body. Whatever it does, the client raises a PolarisError
# and the CLI ends with a message and exit 1, never "internal error"; JSON it prints is standard.

DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's json reads
NESTED = '{"a": ' * 400 + "1" + "}" * 400  # deep, and still readable
# Raw JSON text that replaces the chosen value. NaN and Infinity are what Python's json writes
# for float('nan') and float('inf'); 1e400 is a finite literal that parses to infinity.
REPLACEMENTS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 40, "-1", "0.5", "true",
    "null", '""', '"x"', '"NaN"', "[]", "{}", '[{"a": []}]', '{"name": 7}', DEEP, NESTED,
]  # fmt: skip
MISSING = "(missing)"  # the field is removed
WHOLE_BODIES = [b"", b"not json", b"NaN", b"Infinity", b"[", b"<html></html>", DEEP.encode()]
MUTATION = st.one_of(
    st.tuples(st.just("field"), st.integers(0, 10_000), st.sampled_from([*REPLACEMENTS, MISSING])),
    st.tuples(st.just("body"), st.just(0), st.sampled_from(WHOLE_BODIES)),
)
# Which answers of a run to change (by order: the runs use --parallelism 1), and how.
MUTATIONS = st.dictionaries(st.integers(0, 8), MUTATION, min_size=1, max_size=3)
FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=False,
)  # fmt: skip
THOROUGH = settings(FAST, max_examples=400)
SENTINEL = "\x00mutated\x00"


@pytest.fixture(autouse=True)
def counted_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry backoff is counted, not slept: a run of the CLI takes milliseconds."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where every value inside a JSON document is, the document itself first."""
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


def mutate(body: bytes, mutation: tuple[str, int, Any]) -> bytes:
    """`body` with one value replaced (or removed), or replaced as a whole."""
    how, choice, replacement = mutation
    if how == "body":
        return bytes(replacement)
    try:
        document = json.loads(body)
    except ValueError:
        return body
    paths = list(_paths(document))[1:] or [()]
    path = paths[choice % len(paths)]
    if not path:
        return b"" if replacement == MISSING else str(replacement).encode()
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if replacement == MISSING:
        del parent[path[-1]]
        return json.dumps(document).encode()
    parent[path[-1]] = SENTINEL
    return json.dumps(document).replace(json.dumps(SENTINEL), str(replacement)).encode()


class Mutator:
    """Forwards each request to the emulator and changes the answers a test chose."""

    def __init__(self, emulator: Emulator, mutations: Mapping[int, tuple[str, int, Any]]) -> None:
        self.emulator = emulator
        self.mutations = mutations
        self.seen: list[str] = []
        self.changed: list[str] = []
        self.lock = threading.Lock()

    def answer(self, request: httpx.Request) -> httpx.Response:
        """An httpx MockTransport handler."""
        real = self.emulator.transport().handle_request(request)
        body = self.change(request.method, request.url.raw_path.decode(), real.read())
        headers = {"Content-Type": real.headers.get("Content-Type", "application/json")}
        return httpx.Response(real.status_code, content=body, headers=headers)

    def respond(self, method: str, path: str, body: bytes) -> Canned:
        """A HostileServer responder."""
        key = base64.b64encode(f"{DEMO_API_KEY}:".encode()).decode()
        headers = {"Content-Type": "application/json", "Authorization": f"Basic {key}"}
        request = httpx.Request(method, f"http://polaris.test{path}", content=body, headers=headers)
        answered = self.answer(request)
        kind = answered.headers.get("Content-Type", "application/json")
        return Canned(answered.status_code, answered.content, {"Content-Type": kind})

    def change(self, method: str, path: str, body: bytes) -> bytes:
        with self.lock:
            index = len(self.seen)
            self.seen.append(f"{method} {path}")
        mutation = self.mutations.get(index)
        if mutation is None:
            return body
        self.changed.append(f"{method} {path}")
        return mutate(body, mutation)


def strict_json(text: str) -> Any:
    """Parse JSON as the standard defines it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def seeded(hostile: HostileServer, workspace: Path) -> Iterator[Emulator]:
    """An emulator behind `hostile` that holds what manifests/guide declares, a finished job too."""
    emulator = Emulator()
    hostile.respond = Mutator(emulator, {}).respond
    applied = run("apply", "--auto-approve", "--wait", "--no-lock", "manifests/guide")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    yield emulator
    emulator.store.close()


def assert_a_message(result: Result, mutator: Mutator, exit_codes: tuple[int, ...]) -> None:
    said = result.stdout + result.stderr
    context = f"changed {mutator.changed} of {mutator.seen}:\n{said}"
    assert "internal error" not in said and "Traceback" not in said, context
    assert result.exit_code in exit_codes, context
    if result.exit_code == 1 and mutator.changed:
        assert any(word in said for word in ("/connections", "/tables", "/jobs")), context


def client_operations(seeded: Emulator, mutations: dict[int, tuple[str, int, Any]]) -> None:
    """Every read of the client, and read_live, with these answers changed."""
    mutator = Mutator(seeded, mutations)
    config = ClientConfig(
        "https://polaris.test", DEMO_PROJECT_ID, DEMO_API_KEY, max_attempts=2,
        max_retry_seconds=0, allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    manifests = load_manifests(["manifests/guide"], DEMO_SECRETS).resources
    transport = httpx.MockTransport(mutator.answer)
    with PolarisClient(config, transport=transport, sleep=lambda s: None) as client:
        (job_id,) = [job["id"] for job in PolarisClient(
            config, transport=seeded.transport()).iter_jobs()]  # fmt: skip
        operations: list[Callable[[], Any]] = [
            client.list_connections,
            lambda: client.get_connection("demo-conn"),
            client.list_tables,
            lambda: client.get_table("Koalas"),
            lambda: list(client.iter_jobs()),
            lambda: client.get_job(job_id),
            lambda: client.job_progress(job_id),
            lambda: client.job_metrics(job_id),
            lambda: read_live(client, manifests, parallelism=1, cache=JobCache(None)),
        ]
        for operation in operations:
            try:
                operation()
            except PolarisError as error:  # anything else fails the test
                assert error.url, f"{error} names no URL"


def read_only_command(
    seeded: Emulator, hostile: HostileServer, command: tuple[str, ...],
    mutations: dict[int, tuple[str, int, Any]],
) -> None:  # fmt: skip
    """plan, drift or import with these answers changed."""
    mutator = Mutator(seeded, mutations)
    hostile.respond = mutator.respond
    args = [*command, "--parallelism", "1", "--no-cache"]
    result = run(*args, *(["manifests/guide"] if command[0] != "import" else []))
    assert_a_message(result, mutator, (0, 1, 2) if command[0] == "drift" else (0, 1))
    if "json" in command and result.stdout:
        strict_json(result.stdout)


def apply_wait(hostile: HostileServer, mutations: dict[int, tuple[str, int, Any]]) -> None:
    """apply --wait into an empty project with these answers changed."""
    emulator = Emulator()
    mutator = Mutator(emulator, mutations)
    hostile.respond = mutator.respond
    result = run("apply", "--auto-approve", "--wait", "--no-lock", "--parallelism", "1",
                 "--no-cache", "--format", "json", "manifests/guide")  # fmt: skip
    emulator.store.close()
    assert_a_message(result, mutator, (0, 1))
    if result.stdout:
        strict_json(result.stdout)


READ_ONLY = st.sampled_from(
    [("plan",), ("plan", "--format", "json"), ("drift", "--format", "json"),
     ("import", "--out", "imported", "--force", "--jobs")]
)  # fmt: skip


@FAST
@given(mutations=MUTATIONS)
def test_the_client_raises_only_polaris_errors_that_name_the_url_whatever_an_answer_becomes(
    seeded: Emulator, mutations: dict[int, tuple[str, int, Any]]
) -> None:
    client_operations(seeded, mutations)


@FAST
@given(command=READ_ONLY, mutations=MUTATIONS)
def test_plan_drift_and_import_end_in_a_message_whatever_an_answer_becomes(
    seeded: Emulator, hostile: HostileServer, command: tuple[str, ...],
    mutations: dict[int, tuple[str, int, Any]],
) -> None:  # fmt: skip
    read_only_command(seeded, hostile, command, mutations)


@FAST
@given(mutations=MUTATIONS)
def test_apply_wait_ends_in_a_message_whatever_an_answer_becomes(
    hostile: HostileServer, workspace: Path, mutations: dict[int, tuple[str, int, Any]]
) -> None:
    apply_wait(hostile, mutations)


@pytest.mark.slow
@THOROUGH
@given(command=READ_ONLY, mutations=MUTATIONS)
def test_many_more_changed_answers_end_in_a_message_in_every_command(
    seeded: Emulator, hostile: HostileServer, command: tuple[str, ...],
    mutations: dict[int, tuple[str, int, Any]],
) -> None:  # fmt: skip
    client_operations(seeded, mutations)
    read_only_command(seeded, hostile, command, mutations)
    apply_wait(hostile, mutations)


def applied_tables(hostile: HostileServer, workspace: Path) -> tuple[Emulator, Path]:
    """The weblogs tables applied through the hostile server, answering as the emulator does."""
    emulator = Emulator()
    hostile.respond = Mutator(emulator, {}).respond
    tables = workspace / "weblogs" / "tables.yaml"
    assert run("apply", "--auto-approve", "--no-lock", str(tables)).exit_code == 0
    return emulator, tables


def versions_written_as(literal: str, emulator: Emulator) -> Callable[[str, str, bytes], Canned]:
    """Answers as the emulator's, with every table version written as `literal`."""

    def respond(method: str, path: str, body: bytes) -> Canned:
        answered = Mutator(emulator, {}).respond(method, path, body)
        text = re.sub(r'"version": *\d+', f'"version": {literal}', answered.body.decode())
        return Canned(answered.status, text.encode(), answered.headers)

    return respond


def test_a_table_version_of_nan_is_an_error_naming_the_url_and_never_reaches_json_output(
    hostile: HostileServer, workspace: Path
) -> None:
    emulator, tables = applied_tables(hostile, workspace)
    text = tables.read_text(encoding="utf-8")
    tables.write_text(text.replace("at the edge", "at the edge, now"), encoding="utf-8")
    hostile.respond = versions_written_as("NaN", emulator)
    result = run("plan", "--format", "json", "--show-requests", str(tables))
    emulator.store.close()
    # Standard JSON on stdout (the failure is reported there too): no NaN value, only the
    # message that names it.
    reported = strict_json(result.stdout)
    assert "NaN in the field values[0].version" in reported["error"]["message"]
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "/tables: " in result.stderr and "NaN in the field values[0].version" in result.stderr, (
        result.stderr
    )


def test_a_number_too_large_for_a_float_is_an_error_naming_its_field_like_nan(
    hostile: HostileServer, workspace: Path
) -> None:
    # The client searches a body for such numbers only when the parser made one: 1e400 is a
    # finite literal that parses to infinity, made by the float hook rather than the constant one.
    emulator, tables = applied_tables(hostile, workspace)
    hostile.respond = versions_written_as("1e400", emulator)
    result = run("plan", "--format", "json", str(tables))
    emulator.store.close()
    reported = strict_json(result.stdout)
    assert "1e400 in the field values[0].version" in reported["error"]["message"]
    assert result.exit_code == 1, result.stdout + result.stderr
