"""Whatever a server answers, and however slowly, the reconciler ends with a message in bounded time.

The timeout covers a whole response, body included, not each read of it: a server that trickles
a byte at a time cannot hold a plan for ever.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reconciler.client import ClientConfig, PolarisClient, PolarisError
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID

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
