"""The HTTP under the client: what bounds an answer in time, the direct path for reads, TLS.

`client.PolarisClient` owns the policy (retries, budgets, errors, shapes); this module owns how a
request travels: the deadline that bounds a whole answer (body included), the GETs that skip
httpx's client layers over a real socket (`Direct`), and the one verifying TLS context a process
builds.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import os
import re
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpcore
import httpx

from reconciler.errors import ReconcilerError

# A path the direct GET sends as it is (`api_path` percent-encodes every name); any other goes
# through httpx, which encodes it.
DIRECT_PATH = re.compile(r"/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*")


class Deadline(httpx.SyncByteStream):
    """A response body that raises ReadTimeout once a monotonic deadline has passed."""

    def __init__(self, body: httpx.SyncByteStream, deadline: float, request: httpx.Request) -> None:
        self.body = body
        self.deadline = deadline
        self.request = request

    @staticmethod
    def check(deadline: float, request: httpx.Request) -> None:
        """Raise ReadTimeout when `deadline` has passed."""
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(
                "the whole answer took longer than the timeout", request=request
            )

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.check(self.deadline, self.request)
            yield chunk

    def close(self) -> None:
        self.body.close()


class Direct:
    """GETs sent straight through the connection pool of httpx's own network transport.

    httpx's Client spends about 0.3 ms of CPU a request around the pool (building and merging
    the request, the auth and redirect flows, cookies, hooks), a third of a cold plan's CPU over
    1,000 job details, and the workers that spend it hold the interpreter the sockets need. The
    pool is the one httpx chose for the base URL (its SSL context, limits and any proxy from the
    environment), shared with every other request. The host is fixed here, from the checked base
    URL, never parsed from a path; a redirect is an answer like any other (nothing follows it);
    the answer becomes an httpx.Response (decoded as httpx decodes it), so the retry loop, the
    deadline and every check downstream are the same code for both paths.
    """

    def __init__(self, pool: httpcore.ConnectionPool, http: httpx.Client, api_key: str) -> None:
        self.pool = pool
        base = http.base_url
        self.scheme, self.host, self.port = base.raw_scheme, base.raw_host, base.port
        self.prefix = base.raw_path.rstrip(b"/")
        self.origin = f"{base.scheme}://{base.netloc.decode('ascii')}"
        key = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
        headers = httpx.Headers(http.headers)
        headers["Authorization"] = f"Basic {key}"  # as httpx.BasicAuth(api_key, "") sends it
        # Host first, as httpx sends it; then the client's own headers.
        self.headers = [
            (b"Host", httpx.Request("GET", base).headers["Host"].encode("ascii")),
            *headers.raw,
        ]
        self.extensions = {"timeout": http.timeout.as_dict()}

    @classmethod
    def of(cls, http: httpx.Client, api_key: str) -> Direct | None:
        """The direct path for `http`, when httpx sends its requests through its own network
        transport (not a test's MockTransport or the emulator's in-process one); else None."""
        choose = getattr(http, "_transport_for_url", None)  # private: a newer httpx may move it
        if choose is None:
            return None
        transport = choose(http.base_url)
        pool = getattr(transport, "_pool", None) if type(transport) is httpx.HTTPTransport else None
        return cls(pool, http, api_key) if isinstance(pool, httpcore.ConnectionPool) else None

    def get(self, path: str, params: Mapping[str, Any] | None, deadline: float) -> httpx.Response:
        """One GET of a project-relative path, read whole before `deadline` (monotonic)."""
        target = self.prefix + path.encode("ascii")
        if params:
            target += b"?" + str(httpx.QueryParams(params)).encode("ascii")
        url = httpcore.URL(scheme=self.scheme, host=self.host, port=self.port, target=target)
        sent = self.origin + target.decode("ascii")
        try:
            answer = self.pool.handle_request(
                httpcore.Request("GET", url, headers=self.headers, extensions=self.extensions)
            )
            try:
                chunks = []
                late = time.monotonic() > deadline  # the headers alone may have taken too long
                for chunk in answer.stream if not late else ():  # type: ignore[union-attr]
                    late = time.monotonic() > deadline
                    if late:
                        break
                    chunks.append(chunk)
            finally:
                answer.close()
        except HTTPCORE_ERRORS as error:
            raise as_httpx(error, httpx.Request("GET", sent)) from None
        if late:
            Deadline.check(deadline, httpx.Request("GET", sent))
        return Answer(answer.status, sent, answer.headers, b"".join(chunks))


class Answer(httpx.Response):
    """A response of the direct path: its request (parsing a URL costs a fifth of the path)
    is made only when something asks for it, an error message."""

    def __init__(
        self, status: int, sent: str, headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        super().__init__(status, headers=headers, content=content)
        self._sent = sent

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request("GET", self._sent)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


HTTPCORE_ERRORS = (
    httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
    httpcore.UnsupportedProtocol, httpcore.ProxyError,
)  # fmt: skip


def as_httpx(error: Exception, request: httpx.Request) -> httpx.HTTPError:
    """httpcore's exception as the httpx one of the same name (as httpx's transport maps it)."""
    for kind in type(error).__mro__:
        mapped = getattr(httpx, kind.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, httpx.TransportError):
            return mapped(str(error), request=request)
    return httpx.TransportError(str(error), request=request)


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context httpx makes by default (CA bundle, SSL_CERT_FILE), made once a
    process: loading the bundle costs about 15 ms of CPU, which every client paid again. A
    caller while it is being made (`warm_tls_context`) waits for that one."""
    with _MAKING:
        return _tls_context()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # httpx reads SSL_CERT_FILE, else SSL_CERT_DIR (httpx._config.create_ssl_context): a path
    # that holds no bundle is the operator's to fix, said as such, not an internal error (a file
    # that is not there), nor every https request failing to verify (a directory that is not).
    bundle, directory = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    try:
        if not bundle and directory and not os.path.isdir(directory):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory")
        return httpx.create_ssl_context()
    except OSError as error:  # ssl.SSLError is one: a file of no certificate
        variable, path = ("SSL_CERT_FILE", bundle) if bundle else ("SSL_CERT_DIR", directory)
        reason = getattr(error, "reason", None) or error.strerror
        raise ReconcilerError(
            # The path quoted, its line breaks escaped: the message stays one line in a CI log.
            f"{variable} is set to {path!r}, which holds no CA certificates ({reason or error}): "
            f"point it to {'a PEM file' if bundle else 'a directory'} of CA certificates, "
            "or unset it"
        ) from None


_MAKING = threading.Lock()


def warm_tls_context() -> threading.Thread:
    """Start making the TLS context in a thread of its own (returned, started), for a caller
    with work to do first (a plan validating its manifests): OpenSSL reads the CA bundle without
    holding Python's lock, so the two run side by side. Nothing is sent: the bundle is a local
    file. A failure is left to the client's own call, which meets it again and reports it as it
    always has: a thread would print it with a traceback."""

    def make() -> None:
        with contextlib.suppress(Exception):
            tls_context()

    thread = threading.Thread(target=make, name="tls-context", daemon=True)
    thread.start()
    return thread
