"""The Polaris client: retries that honour Retry-After, POSTs never repeated blindly, clear errors."""

from __future__ import annotations

import httpx
import pytest

from reconciler.client import AmbiguousWriteError, ClientConfig, PolarisClient, PolarisError
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

CONNECTION = {
    "type": "s3",
    "name": "c1",
    "bucket": "b",
    "awsEndpoint": "s3.us-east-1.amazonaws.com",
}


def make_client(
    emulator: Emulator, key: str = DEMO_API_KEY, project: str = DEMO_PROJECT_ID, **config: float
) -> tuple[PolarisClient, list[float]]:
    sleeps: list[float] = []
    settings = ClientConfig(
        url="http://polaris.test", project=project, api_key=key, insecure=True, **config
    )  # type: ignore[arg-type]
    return PolarisClient(settings, transport=emulator.transport(), sleep=sleeps.append), sleeps


def posts(emulator: Emulator, fragment: str) -> int:
    return sum(1 for method, path, _ in emulator.requests if method == "POST" and fragment in path)


def test_a_429_is_retried_after_the_servers_retry_after(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.retry_after_seconds = 7
    emulator.faults.inject("429", method="GET", times=2)
    assert client.list_connections() == []
    assert sleeps == [7, 7]
    assert client.request_count == 3


def test_a_503_on_a_read_is_retried_with_backoff(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("503", method="GET", times=3)
    assert client.list_tables() == []
    assert len(sleeps) == 3 and all(0 <= s <= 30 for s in sleeps)


def test_retries_stop_at_the_attempt_cap(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator, max_attempts=3)
    emulator.faults.inject("503", method="GET", times=10)
    with pytest.raises(PolarisError, match=r"GET /connections failed \(503\)"):
        client.list_connections()
    assert len(sleeps) == 2


def test_retries_stop_when_the_time_budget_is_spent(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator, max_retry_seconds=10)
    emulator.faults.retry_after_seconds = 6
    emulator.faults.inject("429", method="GET", times=5)
    with pytest.raises(PolarisError):
        client.list_connections()
    assert sleeps == [6]


def test_a_post_answered_503_is_ambiguous_and_never_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("503", method="POST")
    with pytest.raises(AmbiguousWriteError, match="may have been applied"):
        client.create_connection(CONNECTION)
    assert posts(emulator, "/connections") == 1 and sleeps == []


def test_a_post_whose_response_is_dropped_is_ambiguous_and_never_retried(
    emulator: Emulator,
) -> None:
    client, _ = make_client(emulator)
    emulator.faults.inject("drop", method="POST")
    with pytest.raises(AmbiguousWriteError):
        client.create_connection(CONNECTION)
    assert posts(emulator, "/connections") == 1
    assert client.get_connection("c1") is not None  # it was applied after all


def test_a_post_answered_429_was_not_processed_and_is_retried(emulator: Emulator) -> None:
    client, sleeps = make_client(emulator)
    emulator.faults.inject("429", method="POST")
    assert client.create_connection(CONNECTION)["name"] == "c1"
    assert posts(emulator, "/connections") == 2 and sleeps == [1]


def test_jobs_are_read_in_pages_of_1000(emulator: Emulator) -> None:
    client, _ = make_client(emulator)
    client.create_connection(CONNECTION)
    job = {
        "type": "batch", "target": {"type": "table", "tableName": "t"}, "createTableIfNotExists": True,
        "source": {"type": "s3", "connectionName": "c1", "objects": ["x"], "inputSchema": [{"name": "ts", "dataType": "string"}]},
        "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("ts")'}],
    }  # fmt: skip
    for i in range(2_100):
        client.create_job({**job, "source": {**job["source"], "objects": [f"f{i}"]}})
    emulator.reset_requests()
    ids = [summary["id"] for summary in client.iter_jobs(type="batch")]
    assert len(set(ids)) == 2_100
    pages = [path for method, path, _ in emulator.requests if method == "GET"]
    assert len(pages) == 3 and all(
        "paginationLimit=1000" in page and "type=batch" in page for page in pages
    )


def test_a_bad_key_says_to_check_polaris_api_key_without_showing_it(emulator: Emulator) -> None:
    client, _ = make_client(emulator, key="pok_wrong_key_value_123")
    with pytest.raises(PolarisError) as failed:
        client.list_connections()
    assert "check POLARIS_API_KEY" in str(failed.value)
    assert "pok_wrong_key_value_123" not in str(failed.value) + repr(client) + repr(client.config)


def test_a_missing_permission_is_named() -> None:
    emulator = Emulator(api_keys={"pok_tables": ["ManageTables"]})
    client, _ = make_client(emulator, key="pok_tables")
    with pytest.raises(PolarisError, match="needs the ManageConnections permission"):
        client.create_connection(CONNECTION)


def test_an_unknown_project_names_the_project_and_url(emulator: Emulator) -> None:
    client, _ = make_client(emulator, project="no-such-project")
    with pytest.raises(
        PolarisError, match=r"project no-such-project not found at http://polaris\.test"
    ):
        client.list_connections()


def test_a_network_error_names_the_url() -> None:
    config = ClientConfig(url="http://127.0.0.1:9", project="p", api_key="k", max_attempts=2)
    with (
        PolarisClient(config, sleep=lambda s: None) as client,
        pytest.raises(PolarisError, match=r"cannot reach http://127\.0\.0\.1:9"),
    ):
        client.list_connections()


def test_plain_http_to_a_remote_host_is_refused_unless_insecure() -> None:
    with pytest.raises(PolarisError, match="use https:// or pass --insecure"):
        PolarisClient(ClientConfig(url="http://polaris.example.com", project="p", api_key="k"))
    PolarisClient(
        ClientConfig(url="http://polaris.example.com", project="p", api_key="k", insecure=True)
    ).close()
    PolarisClient(ClientConfig(url="http://localhost:8085", project="p", api_key="k")).close()


def test_both_documented_error_shapes_are_read() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/connections"):
            return httpx.Response(400, json={"error": {"code": "Bad", "message": "wrapped shape"}})
        return httpx.Response(400, json={"code": "Bad", "message": "flat shape"})

    config = ClientConfig(url="https://polaris.test", project="p", api_key="k")
    with PolarisClient(config, transport=httpx.MockTransport(server)) as client:
        with pytest.raises(PolarisError, match="wrapped shape"):
            client.list_connections()
        with pytest.raises(PolarisError, match="flat shape"):
            client.list_tables()
