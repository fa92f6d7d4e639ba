"""Reads over the network skip httpx's client layers, with the same safety as every request.

A GET to a real socket goes straight through the connection pool httpx chose for the base URL
(`transport.Direct`): the same headers, the same host, no redirect followed, the same retries,
deadline and error messages, and the answer decoded as httpx decodes it.
"""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import transport
from reconciler.answers import check_fields, compiled, fit
from reconciler.client import (
    CONNECTION_SHAPE,
    JOB_SHAPE,
    TABLE_SHAPE,
    ClientConfig,
    PolarisClient,
    PolarisError,
)
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID
from reconciler.errors import ReconcilerError
from tests.fixtures import Canned, HostileServer

JSON = {"Content-Type": "application/json"}


def client_of(url: str, **config: Any) -> PolarisClient:
    sleeps: list[float] = []
    return PolarisClient(
        ClientConfig(url, DEMO_PROJECT_ID, DEMO_API_KEY, **config), sleep=sleeps.append
    )


class _Headers(http.server.BaseHTTPRequestHandler):
    """Records the headers of each request, answers an empty list."""

    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(
            {name.lower(): value for name, value in self.headers.items()} | {":path": self.path}
        )
        body = b'{"values": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recording() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Recording", (_Headers,), {"seen": seen})
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_read_over_the_network_sends_the_headers_httpx_would_send(
    recording: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = recording
    with client_of(url) as client:
        assert client._direct is not None, "GETs over the network take the direct path"
        assert client.list_connections() == []
    direct = seen[0]
    with httpx.Client(auth=(DEMO_API_KEY, ""), headers={"User-Agent": "polaris-reconciler"}) as h:
        h.get(f"{url}/v1/projects/{DEMO_PROJECT_ID}/connections")
    plain = seen[-1]
    assert direct["authorization"] == plain["authorization"]  # Basic base64("KEY:")
    assert direct["host"] == plain["host"] == url.removeprefix("http://")
    assert direct["user-agent"] == "polaris-reconciler"
    assert direct["accept"] == "application/json"
    assert direct["accept-encoding"] == plain["accept-encoding"]


def test_a_client_on_a_test_transport_keeps_every_request_on_httpx() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"values": []})

    config = ClientConfig("https://acme.api.imply.io", DEMO_PROJECT_ID, DEMO_API_KEY)
    with PolarisClient(config, transport=httpx.MockTransport(answer)) as client:
        assert client._direct is None
        assert client.list_tables() == []
    assert seen == [f"/v1/projects/{DEMO_PROJECT_ID}/tables"]


def test_a_redirect_answered_to_a_direct_read_is_reported_and_never_followed(
    hostile: HostileServer, recording: tuple[str, list[dict[str, str]]]
) -> None:
    elsewhere, seen = recording
    hostile.respond = lambda m, p, b: Canned(307, b"", {"Location": f"{elsewhere}{p}"})
    with client_of(hostile.url) as client, pytest.raises(PolarisError) as failed:
        client.list_connections()
    assert "307" in str(failed.value) and DEMO_API_KEY not in str(failed.value)
    assert seen == [], "the redirect was followed"
    assert len(hostile.requests) == 1


def test_a_compressed_answer_is_decoded_as_httpx_decodes_it(hostile: HostileServer) -> None:
    body = gzip.compress(json.dumps({"values": [{"name": "c", "type": "s3"}]}).encode())
    hostile.respond = lambda m, p, b: Canned(200, body, {**JSON, "Content-Encoding": "gzip"})
    with client_of(hostile.url) as client:
        assert client.list_connections() == [{"name": "c", "type": "s3"}]


def test_a_direct_read_is_retried_after_a_server_error_and_a_dropped_connection(
    hostile: HostileServer,
) -> None:
    answers = iter(
        [
            Canned(503, b"busy", {"Retry-After": "0"}),
            Canned(200, b'{"values": [', {**JSON, "X-Pad": "1"}),  # not JSON: not retried
        ]
    )
    hostile.respond = lambda m, p, b: next(answers)
    with client_of(hostile.url) as client, pytest.raises(PolarisError, match="not JSON"):
        client.list_connections()
    assert len(hostile.requests) == 2

    # A server that closes the connection without an answer, once: the read is tried again.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        body = b'{"values": []}'

        def serve() -> None:
            first, _ = listener.accept()
            first.recv(65536)
            first.close()
            second, _ = listener.accept()
            second.recv(65536)
            second.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            second.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with client_of(f"http://127.0.0.1:{port}") as client:
            assert client.list_tables() == []
            assert client.request_count == 2
        thread.join(5)


def test_an_unreachable_host_fails_fast_with_a_message_and_without_the_key() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with client_of(f"http://127.0.0.1:{port}") as client, pytest.raises(PolarisError) as failed:
        client.get_job("j1")
    assert "cannot reach http://127.0.0.1" in str(failed.value)
    assert DEMO_API_KEY not in str(failed.value)
    assert client.request_count == 3  # CONNECT_ATTEMPTS


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "name", "type", "spec", "source", "uris", "schema", "values"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(JSONS, st.sampled_from([JOB_SHAPE, TABLE_SHAPE, CONNECTION_SHAPE]))
def test_the_quick_shape_check_agrees_with_the_one_that_names_the_field(
    value: Any, shape: Any
) -> None:
    fields = compiled(tuple(shape.items()))
    assert fit(value, fields) == (check_fields(value, fields, ()) is None)


@pytest.mark.parametrize("job_id", ["..", ".", "a/../b"])
def test_a_job_id_made_of_dot_segments_reaches_the_path_httpx_would_send(
    recording: tuple[str, list[dict[str, str]]], job_id: str
) -> None:
    url, seen = recording
    with client_of(url) as client:
        client.get(f"/jobs/{job_id}")
    with httpx.Client(base_url=f"{url}/v1/projects/{DEMO_PROJECT_ID}") as plain:
        plain.get(f"/jobs/{job_id}")
    ours, theirs = seen
    assert ours[":path"] == theirs[":path"]


def test_a_tls_context_made_in_a_thread_while_the_caller_validates_is_made_once_for_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A plan starts making it before it validates its manifests (OpenSSL reads the bundle
    # without holding Python's lock); a client made meanwhile waits for that one.
    made: list[int] = []
    create = httpx.create_ssl_context

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)  # long enough for the callers below to come while it is being made
        made.append(1)
        return create(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", slow)
    transport._tls_context.cache_clear()
    try:
        transport.warm_tls_context()
        callers = [threading.Thread(target=transport.tls_context) for _ in range(3)]
        for caller in callers:
            caller.start()
        contexts = {id(transport.tls_context()) for _ in range(2)}
        for caller in callers:
            caller.join()
        assert made == [1] and len(contexts) == 1
    finally:
        transport._tls_context.cache_clear()


def test_a_tls_context_that_cannot_be_made_in_advance_fails_only_where_the_client_makes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # A CA bundle that is not there: the thread that makes the context in advance prints no
    # traceback of its own; the client's call fails as it does without such a thread, with an
    # error that names the variable.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    printed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    transport._tls_context.cache_clear()
    try:
        transport.warm_tls_context().join(timeout=10)
        assert printed == []
        with pytest.raises(ReconcilerError, match="SSL_CERT_FILE is set to"):
            transport.tls_context()
    finally:
        transport._tls_context.cache_clear()
