"""Two ways to reach the emulator: an in-process httpx transport, and an HTTP/1.1 server."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.emulator.api import DroppedResponse, Request, Response, Service


class EmulatorTransport(httpx.BaseTransport):
    """Calls the emulator directly: no socket, no port, and thread-safe."""

    def __init__(self, emulator: Service) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an httpx request the way a server on the network would."""
        incoming = Request(
            method=request.method,
            path=request.url.path,
            query=request.url.query.decode("ascii"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.read(),
        )
        try:
            response = self.emulator.handle(incoming)
        except DroppedResponse:
            # What httpx raises when a real server closes the connection without answering.
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        return httpx.Response(
            response.status, headers=_headers(response), content=response.content(), request=request
        )


def _headers(response: Response) -> dict[str, str]:
    headers = dict(response.headers)
    if response.body is not None or response.raw is not None:
        headers["Content-Type"] = response.media_type
    return headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    # Headers and body leave in one buffered write, without Nagle's delay: otherwise every
    # keep-alive request waits out the peer's delayed ACK (about 40 ms) and a client manages
    # only ~25 requests a second.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=target.path,
            query=target.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.emulator.handle(request)
        except DroppedResponse:
            self.close_connection = True  # the write is committed; the answer never leaves
            return
        content = response.content()
        self.send_response(response.status)
        for name, value in _headers(response).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer is headers only (RFC 9110, 9.3.2)
            self.wfile.write(content)

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the emulator, which answers one outside the API with its JSON
        # 405 (or 404), never the HTTP server's own 501 page (TRACE, HEAD, OPTIONS, BREW...).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are counted in `Emulator.requests`, not logged: logs could carry secrets."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Service) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


class RunningEmulator:
    """An emulator served on a loopback port from a background thread."""

    def __init__(self, emulator: Service, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = _Server((host, port), emulator)
        bound_host, bound_port = self.server.server_address[:2]
        name = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.address = (name, bound_port)  # where shutdown() connects to wake the loop
        shown = f"[{name}]" if ":" in name else name
        self.url = f"http://{shown}:{bound_port}"
        # Polled every 50 ms rather than 500: shutdown() returns at the next poll, and the tests
        # start and stop a served emulator hundreds of times.
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="polaris-emulator", daemon=True
        )
        self.thread.start()

    def shutdown(self) -> None:
        """Stop serving and release the port."""
        # shutdown() returns once the loop sees its flag, at the next poll or the next connection:
        # a connection made as it waits ends the wait at once (tests stop a server hundreds of
        # times). Made too early, it is an empty request the loop answers by closing it.
        stopping = threading.Thread(target=self.server.shutdown, name="polaris-emulator-stop")
        stopping.start()
        while stopping.is_alive():
            try:
                socket.create_connection(self.address, timeout=1).close()
            except OSError:
                break  # no longer listening: the loop has ended
            stopping.join(timeout=0.005)
        stopping.join()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()
