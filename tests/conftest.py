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
