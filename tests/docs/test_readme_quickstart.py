"""The README's quick start, run as a newcomer would: its own shell blocks, unchanged but for the
port, against `reconciler emulator` started as it says, in an empty directory. If the README's
commands, manifests or shown output stop matching the tool, this fails."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
BIN = Path(sys.executable).parent
README_PORT = "8080"


def quickstart() -> str:
    found = re.search(
        r"<!-- --8<-- \[start:quickstart\] -->\n(.*?)<!-- --8<-- \[end:quickstart\] -->",
        README,
        re.DOTALL,
    )
    assert found, "README.md has lost its quick start markers"
    return found.group(1)


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", quickstart(), re.DOTALL | re.MULTILINE)


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def wait_for(port: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the emulator exited: " + (server.stderr or "").__str__()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(port))) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the emulator did not listen on {port}")


def newcomer_environment(tmp_path: Path) -> dict[str, str]:
    """A shell with the reconciler on PATH and nothing of ours exported yet."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POLARIS_", "RECONCILER_", "EVENTS_"))
    }
    environment["PATH"] = f"{BIN}{os.pathsep}{environ_path()}"
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    environment.pop("NO_COLOR", None)
    return environment


def environ_path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


def test_the_quick_start_has_a_server_block_command_blocks_and_the_output_they_show() -> None:
    shell = blocks("sh")
    assert shell[0].strip() == f"reconciler emulator --port {README_PORT}"
    commands = "\n".join(shell[1:])
    for step in ("reconciler validate", "reconciler plan", "reconciler apply", "kind: Connection"):
        assert step in commands
    assert "kind: IngestionJob" in commands
    assert commands.rstrip().endswith("reconciler plan --detailed-exitcode")
    assert len(blocks("text")) == 1


def test_the_readme_quick_start_runs_as_written_against_the_emulator(tmp_path: Path) -> None:
    port = free_port()
    shell = [block.replace(README_PORT, port) for block in blocks("sh")]
    environment = newcomer_environment(tmp_path)
    work = tmp_path / "quickstart"
    work.mkdir()
    server = subprocess.Popen(
        ["bash", "-c", shell[0]],
        cwd=work,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C reaches only it
    )
    try:
        wait_for(port, server)
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + "\n".join(shell[1:])],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.killpg(server.pid, signal.SIGINT)  # what "Stop the emulator with Ctrl-C" does
        _, stopped = server.communicate(timeout=60)
    seen = done.stdout + done.stderr
    assert done.returncode == 0, seen  # the last plan's --detailed-exitcode: 0, nothing to change
    for line in blocks("text")[0].splitlines():
        assert line.strip() in seen, f"the README shows {line.strip()!r}; the run printed:\n{seen}"
    assert "Emulator stopped." in stopped
    assert sorted(path.name for path in (work / "manifests").iterdir()) == [
        "events-2026-12-01.yaml",
        "events-connection.yaml",
    ]
