"""Shared fixtures: an in-process emulator whose every response is checked against the OpenAPI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.emulator.engine import DataSource
from tests.conformance import ConformanceLog

# The longest tests (a subprocess each, or thousands of emulator jobs), collected first so
# that xdist starts them at once and the other worker's short tests fill the time around them
# (worksteal then evens out the rest), instead of one of them starting last and running alone.
STARTED_FIRST = (
    "tests/emulator/test_schemathesis.py::test_schemathesis_finds_no_failure_in_any_served_operation",
    "tests/docs/test_workflows.py::test_the_gitlab_template_runs_the_same_sequence",
    "tests/project/test_packaging.py::test_make_rebuilds_a_virtualenv_that_another_python_made",
    "tests/project/test_packaging.py::test_every_base_command_runs_without_the_emulator_extra",
    "tests/docs/test_readme_quickstart.py::test_the_readme_quick_start_runs_as_written_against_the_emulator",
    "tests/client/test_job_paging.py::test_pages_after_the_first_are_read_together_within_the_readers_concurrency",
    "tests/client/test_job_paging.py::test_a_job_created_while_pages_are_read_together_hides_no_other_job",
)


def started_first(node_ids: list[str]) -> list[str]:
    """The node ids in the order to run them: STARTED_FIRST's first (in its order), then the rest."""
    rank = {node_id: index for index, node_id in enumerate(STARTED_FIRST)}
    return sorted(node_ids, key=lambda node_id: rank.get(node_id, len(rank)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order = {
        node_id: index for index, node_id in enumerate(started_first([i.nodeid for i in items]))
    }
    items.sort(key=lambda item: order[item.nodeid])


pytest_plugins = ["tests.fixtures"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (instant jobs); the test fails if any response broke the OpenAPI."""
    log = ConformanceLog()
    emulator = Emulator(response_observer=log)
    yield emulator
    emulator.store.close()
    assert not log.violations, "responses that do not conform to the OpenAPI:\n" + "\n".join(
        log.violations
    )


def raw_client(emulator: Emulator) -> httpx.Client:
    """A raw HTTP client on an in-process emulator's project, authenticated with the demo key."""
    return httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(),
        auth=(DEMO_API_KEY, ""),
    )


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    """A raw HTTP client on the emulator, authenticated with the demo key."""
    with raw_client(emulator) as client:
        yield client


@pytest.fixture
def s3_dir(tmp_path: Path) -> Path:
    """An empty directory of buckets: s3_dir/BUCKET/KEY is s3://BUCKET/KEY."""
    path = tmp_path / "s3"
    path.mkdir()
    return path


@pytest.fixture
def data_emulator(s3_dir: Path) -> Iterator[Emulator]:
    """An emulator that reads objects from `s3_dir` (instant jobs), checked against the OpenAPI."""
    log = ConformanceLog()
    emulator = Emulator(response_observer=log, data=DataSource(directory=s3_dir))
    yield emulator
    emulator.close()
    assert not log.violations, "responses that do not conform to the OpenAPI:\n" + "\n".join(
        log.violations
    )


@pytest.fixture
def data_api(data_emulator: Emulator) -> Iterator[httpx.Client]:
    """A raw HTTP client on the emulator that reads `s3_dir`."""
    with raw_client(data_emulator) as client:
        yield client


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for as long as the test session runs."""
    from moto.server import ThreadedMotoServer  # a slow import, only for the tests that use it

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
