"""The Polaris client: retries that honour Retry-After, POSTs never repeated blindly, clear errors."""

from __future__ import annotations

import base64
import email.utils
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.client import (
    AmbiguousWriteError,
    ClientConfig,
    ConflictError,
    PolarisClient,
    PolarisError,
    retry_after,
)
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.names import UnaddressableName, api_path
from tests.fixtures import IN_PROCESS_HOSTS
from tests.guide import ACCESS_KEYS, GUIDE_CONNECTION, GUIDE_JOB

URL = "http://polaris.test"
CONNECTION = {
    "type": "s3",
    "name": "c1",
    "bucket": "b",
    "awsEndpoint": "s3.us-east-1.amazonaws.com",
}
TABLE = {"name": "events", "type": "detail", "schema": [{"name": "city", "dataType": "string"}]}
# Every key a test in this module uses: none may show in any message, repr or log line.
KEYS = (DEMO_API_KEY, "pok_wrong_key_value_123", "pok_tables_only_456", "pok_mock_789")


def make_client(
    emulator: Emulator | None = None,
    *,
    key: str = DEMO_API_KEY,
    project: str = DEMO_PROJECT_ID,
    transport: httpx.BaseTransport | None = None,
    **limits: Any,
) -> tuple[PolarisClient, list[float]]:
    """A client on the in-process emulator (or `transport`) whose waits are recorded, not slept."""
    sleeps: list[float] = []
    config = ClientConfig(
        url=URL, project=project, api_key=key, insecure=True, allowed_hosts=IN_PROCESS_HOSTS,
        **limits,
    )  # fmt: skip
    if transport is None:
        assert emulator is not None
        transport = emulator.transport()
    return PolarisClient(config, transport=transport, sleep=sleeps.append), sleeps


def assert_secret_free(*things: object) -> None:
    """No API key, raw or base64-encoded as in the Authorization header, in str or repr."""
    text = " ".join(f"{thing} {thing!r}" for thing in things)
    for thing in things:
        if isinstance(thing, BaseException):
            text += f" {thing.args!r} {vars(thing)!r}"
    for key in KEYS:
        assert key not in text
        assert base64.b64encode(f"{key}:".encode()).decode() not in text


def failure(
    call: Callable[[], object], kind: type[PolarisError] = PolarisError, match: str | None = None
) -> PolarisError:
    """The error `call` raises, checked to be of `kind`, to match, and to hold no key."""
    with pytest.raises(kind, match=match) as raised:
        call()
    assert_secret_free(raised.value)
    return raised.value


def requests_to(emulator: Emulator, method: str, fragment: str) -> int:
    return sum(1 for m, path, _ in emulator.requests if m == method and fragment in path)


def seed_jobs(client: PolarisClient, count: int) -> None:
    for i in range(count):
        client.create_job({**GUIDE_JOB, "source": {**GUIDE_JOB["source"], "uris": [f"s3://b/{i}"]}})


class Transport(httpx.BaseTransport):
    """Raises `errors` in turn, before (`sent=False`) or after handing the request on."""

    def __init__(self, inner: httpx.BaseTransport, *errors: httpx.HTTPError, sent: bool) -> None:
        self.inner, self.errors, self.sent = inner, list(errors), sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.errors and not self.sent:
            raise self.errors.pop(0)
        response = self.inner.handle_request(request)
        if self.errors:
            raise self.errors.pop(0)
        return response


# Reading and writing -----------------------------------------------------------------------------


def test_connections_and_tables_are_created_listed_read_and_updated(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    assert client.list_connections() == [] and client.list_tables() == []
    assert client.create_connection(CONNECTION)["name"] == "c1"
    assert [c["name"] for c in client.list_connections()] == ["c1"]
    assert client.update_connection("c1", {"type": "s3", "prefix": "p/"})["prefix"] == "p/"
    assert client.get_connection("nope") is None
    table = client.create_table(TABLE)
    assert client.update_table("events", {**TABLE, "version": table["version"]})["version"] == 1
    assert (client.get_table("events") or {})["version"] == 1 and client.get_table("x") is None
    client.delete_connection("c1")
    client.delete_connection("c1")  # gone already: still fine
    assert client.get_connection("c1") is None and sleeps == []


def test_a_stale_table_version_is_a_conflict(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    client.create_table(TABLE)
    client.update_table("events", {**TABLE, "version": 0})
    error = failure(lambda: client.update_table("events", {**TABLE, "version": 0}), ConflictError)
    assert error.status == 409 and "stale" in str(error)


def test_jobs_are_submitted_read_and_cancelled(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    client.create_connection(GUIDE_CONNECTION)
    emulator.hold_jobs()
    job = client.create_job(GUIDE_JOB)
    assert (client.get_job(job["id"]) or {})["id"] == job["id"]
    assert client.cancel_job(job["id"])["executionStatus"] == "canceled"
    assert "overallProgress" in client.job_progress(job["id"])
    assert "totals" in client.job_metrics(job["id"])
    assert client.get_job("00000000-0000-0000-0000-000000000000") is None


def test_jobs_are_read_in_pages_of_1000_until_no_more_results(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    client.create_connection(GUIDE_CONNECTION)
    for count, pages in ((2_000, 2), (2_001, 3)):
        seed_jobs(client, count - len(list(client.iter_jobs())))
        emulator.reset_requests()
        ids = [summary["id"] for summary in client.iter_jobs(type="batch")]
        assert len(ids) == len(set(ids)) == count
        listed = [path for method, path, _ in emulator.requests if method == "GET"]
        assert len(listed) == pages == math.ceil(count / 1000)
        assert all("paginationLimit=1000" in p and "type=batch" in p for p in listed)
        assert [p.count(f"paginationOffset={1000 * i}") for i, p in enumerate(listed)] == [
            1
        ] * pages


def test_requests_from_many_threads_are_all_counted(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    threads = [
        threading.Thread(target=lambda: [client.list_tables() for _ in range(25)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.request_count == len(emulator.requests) == 200


# Retries -----------------------------------------------------------------------------------------


def test_a_429_is_retried_after_the_servers_retry_after(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.retry_after_seconds = 7
    emulator.faults.inject("429", method="GET", times=2)
    assert client.list_connections() == []
    assert sleeps == [7, 7]
    assert client.request_count == 3


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    in_30_seconds = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    wait = retry_after(httpx.Response(429, headers={"Retry-After": in_30_seconds}))
    assert wait is not None and 28 <= wait <= 30
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


class Answers(httpx.BaseTransport):
    """Answers the first requests with `statuses` in turn, as a proxy or the service might."""

    def __init__(self, inner: httpx.BaseTransport, *statuses: int) -> None:
        self.inner, self.statuses = inner, list(statuses)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.statuses:
            status = self.statuses.pop(0)
            return httpx.Response(status, json={"code": "Injected", "message": str(status)})
        return self.inner.handle_request(request)


def test_every_read_survives_each_passing_server_error_and_a_connection_reset(
    emulator: Emulator,
) -> None:
    reset = httpx.ReadError("[Errno 104] Connection reset by peer")
    statuses = Answers(Transport(emulator.transport(), reset, sent=True), 500, 502, 503, 504, 429)
    client, sleeps = make_client(transport=statuses)
    assert client.list_connections() == []
    assert len(sleeps) == 6 and not statuses.statuses


def test_a_503_on_a_read_is_retried_with_jittered_backoff(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("503", method="GET", times=3)
    assert client.list_tables() == []
    # Full jitter: each wait is drawn below a ceiling that doubles from 0.5 s.
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))
    assert requests_to(emulator, "GET", "/tables") == 4


def test_retries_stop_at_the_attempt_cap(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator, max_attempts=3)
    emulator.faults.inject("503", method="GET", times=10)
    error = failure(client.list_connections, match=r"GET /connections failed \(503\) after 3")
    assert error.status == 503 and error.method == "GET"
    assert len(sleeps) == 2 and requests_to(emulator, "GET", "/connections") == 3


def test_retries_stop_when_the_time_budget_is_spent(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator, max_retry_seconds=10)
    emulator.faults.retry_after_seconds = 6
    emulator.faults.inject("429", method="GET", times=5)
    assert failure(client.list_connections).status == 429
    assert sleeps == [6]


def test_a_patch_whose_response_is_dropped_is_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    client.create_connection(CONNECTION)
    emulator.faults.inject("drop", method="PATCH")
    assert client.update_connection("c1", {"type": "s3", "prefix": "p/"})["prefix"] == "p/"
    assert requests_to(emulator, "PATCH", "/connections/c1") == 2 and len(sleeps) == 1


def test_a_put_retried_after_a_lost_answer_reports_its_own_version_bump_as_ambiguous(
    emulator: Emulator,
) -> None:
    client, _ = make_client(emulator)
    client.create_table(TABLE)
    emulator.faults.inject("drop", method="PUT")
    error = failure(
        lambda: client.update_table("events", {**TABLE, "version": 0}), AmbiguousWriteError
    )
    assert error.status == 409 and "read the live state" in str(error)
    assert (client.get_table("events") or {})["version"] == 1  # the first PUT was applied


def test_a_500_on_a_read_is_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    client.create_connection(CONNECTION)
    emulator.faults.inject("500", method="GET", times=2)
    assert client.get_connection("c1") is not None
    assert [c["name"] for c in client.list_connections()] == ["c1"]
    assert len(sleeps) == 2 and requests_to(emulator, "GET", "/connections/c1") == 3


def test_a_500_on_an_update_is_retried_and_ambiguous_when_every_attempt_fails(
    emulator: Emulator,
) -> None:
    client, sleeps = make_client(emulator, max_attempts=3)
    client.create_connection(CONNECTION)
    emulator.faults.inject("500", method="PATCH")
    assert client.update_connection("c1", {"type": "s3", "prefix": "p/"})["prefix"] == "p/"
    emulator.faults.inject("500", method="PATCH", times=3)
    call = lambda: client.update_connection("c1", {"type": "s3", "prefix": "q/"})  # noqa: E731
    assert failure(call, AmbiguousWriteError).status == 500 and len(sleeps) == 1 + 2


def test_a_post_answered_500_is_ambiguous_and_never_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    client.create_connection(GUIDE_CONNECTION)
    emulator.faults.inject("500", method="POST", path_contains="/jobs")
    error = failure(lambda: client.create_job(GUIDE_JOB), AmbiguousWriteError)
    assert error.status == 500 and "may have been applied" in str(error)
    assert requests_to(emulator, "POST", "/jobs") == 1 and sleeps == []


# POSTs are never repeated blindly -----------------------------------------------------------------


def test_a_post_answered_503_is_ambiguous_and_never_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("503", method="POST")
    error = failure(lambda: client.create_connection(CONNECTION), AmbiguousWriteError)
    assert "may have been applied" in str(error) and error.status == 503
    assert requests_to(emulator, "POST", "/connections") == 1 and sleeps == []


def test_a_job_whose_response_is_dropped_is_ambiguous_and_never_resubmitted(
    emulator: Emulator,
) -> None:
    client, sleeps = make_client(emulator)
    client.create_connection(GUIDE_CONNECTION)
    emulator.faults.inject("drop", method="POST", path_contains="/jobs")
    failure(lambda: client.create_job(GUIDE_JOB), AmbiguousWriteError, "closed before an answer")
    assert requests_to(emulator, "POST", "/jobs") == 1 and sleeps == []
    assert len(list(client.iter_jobs())) == 1  # it was applied after all


def test_a_post_that_timed_out_after_sending_is_ambiguous(emulator: Emulator) -> None:
    timeout = httpx.ReadTimeout("timed out")
    client, _ = make_client(transport=Transport(emulator.transport(), timeout, sent=True))
    failure(lambda: client.create_connection(CONNECTION), AmbiguousWriteError, "no answer within")
    assert requests_to(emulator, "POST", "/connections") == 1


def test_a_post_answered_429_was_not_processed_and_is_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("429", method="POST")
    assert client.create_connection(CONNECTION)["name"] == "c1"
    assert requests_to(emulator, "POST", "/connections") == 2 and sleeps == [1]


def test_a_post_that_could_not_connect_was_never_sent_and_is_retried(emulator: Emulator) -> None:
    refused = httpx.ConnectError("connection refused")
    client, sleeps = make_client(transport=Transport(emulator.transport(), refused, sent=False))
    client.create_connection(GUIDE_CONNECTION)
    assert client.create_job(GUIDE_JOB)["type"] == "batch"
    assert requests_to(emulator, "POST", "/jobs") == 1 and len(sleeps) == 1


# Errors a person can act on ----------------------------------------------------------------------


def test_a_bad_key_says_to_check_polaris_api_key_without_showing_it(emulator: Emulator) -> None:
    client, _ = make_client(emulator, key="pok_wrong_key_value_123")
    error = failure(client.list_connections, match="check POLARIS_API_KEY")
    assert error.status == 401 and error.api_code == "Unauthorized"  # read from {"error": {...}}
    assert_secret_free(client, client.config)


def test_a_missing_permission_is_named(emulator: Emulator) -> None:
    emulator.api_keys["pok_tables_only_456"] = frozenset({"ManageTables"})
    client, _ = make_client(emulator, key="pok_tables_only_456")
    error = failure(
        lambda: client.create_connection(CONNECTION), match="needs the ManageConnections permission"
    )
    assert error.status == 403 and error.method == "POST"
    assert error.url == f"{URL}/v1/projects/{DEMO_PROJECT_ID}/connections"
    assert client.create_table(TABLE)["name"] == "events"


def test_an_unknown_project_names_the_project_and_url(emulator: Emulator) -> None:
    client, _ = make_client(emulator, project="no-such-project")
    expected = r"project no-such-project not found at http://polaris\.test"
    assert failure(client.list_connections, match=expected).status == 404
    # Not "no such connection": reading one resource of a missing project fails as loudly.
    failure(lambda: client.get_connection("c1"), match=expected)
    failure(lambda: client.get_job("j1"), match=expected)


def test_other_client_errors_carry_the_apis_message(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    error = failure(lambda: client.create_connection({**CONNECTION, "type": "ftp"}))
    assert error.status == 400 and str(error).startswith("POST /connections failed (400): ")
    assert error.api_code and len(str(error)) > len("POST /connections failed (400): ")


def test_a_network_error_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client, sleeps = make_client(transport=httpx.MockTransport(refuse))
    error = failure(client.list_connections, match=r"cannot reach http://polaris\.test")
    assert error.status is None and client.request_count == 3 and len(sleeps) == 2


def test_a_closed_local_port_names_the_url() -> None:
    config = ClientConfig(url="http://127.0.0.1:9", project="p", api_key=DEMO_API_KEY)
    with PolarisClient(config, sleep=lambda s: None) as client:
        failure(client.list_connections, match=r"cannot reach http://127\.0\.0\.1:9")


def test_plain_http_to_a_remote_host_is_refused_unless_insecure() -> None:
    allowed = frozenset({"polaris.example.com"})  # a host the operator allows: still not in clear
    remote = ClientConfig("http://polaris.example.com", "p", DEMO_API_KEY, allowed_hosts=allowed)
    failure(lambda: PolarisClient(remote), match="use https:// or pass --insecure")
    PolarisClient(ClientConfig(remote.url, "p", DEMO_API_KEY, True, allowed_hosts=allowed)).close()
    for loopback in ("http://localhost:8085", "http://127.0.0.2", "http://[::1]:8085"):
        PolarisClient(ClientConfig(url=loopback, project="p", api_key=DEMO_API_KEY)).close()


def test_a_hundred_clients_load_the_ca_bundle_once_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Loading the bundle takes about 15 ms of CPU: every command, and every test, makes clients.
    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    config = ClientConfig("https://org.us-east-1.aws.api.imply.io", "p", DEMO_API_KEY)
    for _ in range(100):
        PolarisClient(config).close()
    assert len(loads) <= 1  # none when an earlier test of this process loaded it


def test_a_url_with_credentials_or_a_v1_path_is_refused_without_echoing_it() -> None:
    with_key = f"https://{DEMO_API_KEY}@polaris.example.com"
    failure(lambda: PolarisClient(ClientConfig(with_key, "p", "k")), match="POLARIS_API_KEY")
    api_path = "https://org.us-east-1.aws.api.imply.io/v1/projects/p"
    failure(lambda: PolarisClient(ClientConfig(api_path, "p", "k")), match="without /v1")


def test_both_documented_error_shapes_are_read() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/connections"):
            return httpx.Response(400, json={"error": {"code": "Bad", "message": "wrapped shape"}})
        return httpx.Response(400, json={"code": "Flat", "message": "flat shape"})

    client, _ = make_client(transport=httpx.MockTransport(server), key="pok_mock_789")
    assert failure(client.list_connections, match="wrapped shape").api_code == "Bad"
    assert failure(client.list_tables, match="flat shape").api_code == "Flat"


def test_a_page_that_is_not_json_points_at_the_url() -> None:
    page = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>hello</html>"))
    client, _ = make_client(transport=page)
    failure(client.list_tables, match="is POLARIS_URL the API base URL")


# Logs --------------------------------------------------------------------------------------------


def test_each_request_is_logged_without_headers_or_bodies(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = make_client(emulator)
    emulator.faults.inject("429", method="POST")
    with caplog.at_level(logging.DEBUG, logger="reconciler.client"):
        client.create_connection(GUIDE_CONNECTION)
        client.list_connections()
    base = client.config.base_url  # -v shows the final URL sent, not only its path
    assert f"POST {base}/connections -> 429" in caplog.text
    assert f"POST {base}/connections -> 201" in caplog.text
    assert f"GET {base}/connections -> 200" in caplog.text
    for secret in ACCESS_KEYS.values():
        assert secret not in caplog.text
    assert_secret_free(caplog.text)


def test_an_empty_name_a_server_sent_is_refused_naming_the_collection_it_was_meant_for() -> None:
    # A job answered with an empty id cannot be followed: the message says where it came from
    # (a run that ends on it must name the API path, as every other answer a server garbles does).
    with pytest.raises(UnaddressableName, match=r"under /jobs"):
        api_path("jobs", "", "metrics")
