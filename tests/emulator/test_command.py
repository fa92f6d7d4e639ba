"""`reconciler emulator` as a user starts it: it prints where it is and how to use it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest


def test_the_emulator_command_prints_its_url_key_and_exports_then_serves(
    tmp_path: pytest.TempPathFactory,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--job-seconds", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {"POLARIS_URL", "POLARIS_PROJECT_ID", "POLARIS_API_KEY"}
        assert lines[0].startswith("Polaris emulator listening on http://127.0.0.1:")
        request = urllib.request.Request(
            f"{exports['POLARIS_URL']}/v1/projects/{exports['POLARIS_PROJECT_ID']}/connections",
            headers={"Authorization": f"Basic {exports['POLARIS_API_KEY']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response) == {"values": []}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("attempt", range(3))
def test_the_emulator_stops_cleanly_when_terminated_right_after_it_says_it_is_listening(
    attempt: int,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("Polaris emulator listening on")
    process.terminate()  # at once: the handler must already be in place
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Emulator stopped." in stderr
