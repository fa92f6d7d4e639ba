"""Shared fixtures: an in-process emulator whose every response is checked against the OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
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


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    """A raw HTTP client on the emulator, authenticated with the demo key."""
    with httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(),
        auth=(DEMO_API_KEY, ""),
    ) as client:
        yield client
