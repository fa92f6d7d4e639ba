"""Fixtures for the reconciler's own tests: a client on the in-process emulator, a served emulator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

ROOT = Path(__file__).resolve().parent.parent
DEMO_SECRETS = {
    "DEMO_AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST0000",
    "DEMO_AWS_SECRET_ACCESS_KEY": "test-secret-value-must-never-show",
}


@pytest.fixture
def client(emulator: Emulator) -> Iterator[PolarisClient]:
    """A client talking to the in-process emulator, with instant retries."""
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True
    )
    with PolarisClient(config, transport=emulator.transport(), sleep=lambda seconds: None) as c:
        yield c


@pytest.fixture
def served(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The emulator on a loopback port, with the environment a user would have exported."""
    yield from _serve(emulator, monkeypatch, tmp_path)


@pytest.fixture
def data_served(
    data_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """The emulator that reads objects from `s3_dir`, served like `served`."""
    yield from _serve(data_emulator, monkeypatch, tmp_path)


def _serve(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    with emulator.serve() as server:
        monkeypatch.setenv("POLARIS_URL", server.url)
        monkeypatch.setenv("POLARIS_PROJECT_ID", DEMO_PROJECT_ID)
        monkeypatch.setenv("POLARIS_API_KEY", DEMO_API_KEY)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.delenv("NO_COLOR", raising=False)
        for name, value in DEMO_SECRETS.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of manifests/ to edit, as the current directory."""
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "manifests"
