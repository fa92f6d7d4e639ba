"""On a terminal, apply shows the plan and asks; only a yes changes anything."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from tests.fixtures import external_connection_exists


def converse(answer: bytes, cwd: Path) -> tuple[int, str]:
    """Run `reconciler apply` on a pseudo-terminal, answer its question, return status and screen."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply"],
        stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    os.close(follower)
    screen, answered, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        if not answered and b"Apply these changes?" in screen:
            os.write(leader, answer + b"\n")
            answered = True
        if process.poll() is not None and not ready:
            break
    os.close(leader)
    return process.wait(timeout=30), screen.decode("utf-8", "replace")


def test_on_a_terminal_apply_shows_the_plan_and_a_no_changes_nothing(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    code, screen = converse(b"n", workspace.parent)
    assert "Plan: 6 to create, 0 to update, 0 to delete." in screen
    assert code == 1 and "apply canceled; nothing was changed" in screen
    assert [c["name"] for c in client.list_connections()] == ["security-audit"]


def test_on_a_terminal_a_yes_applies(served: Any, workspace: Path, client: PolarisClient) -> None:
    external_connection_exists(client)
    code, screen = converse(b"y", workspace.parent)
    assert code == 0, screen
    assert "Apply complete: 6 done" in screen
