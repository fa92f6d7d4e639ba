"""Ctrl-C and SIGTERM during `apply --wait`: stop waiting at once, say what was done, free the lock.

The jobs keep running in Polaris: apply stops following them, not running them. Each test runs
apply as a user does, in a process of its own, against the emulator served on a loopback port,
whose jobs are held pending so that --wait would otherwise wait until --timeout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from reconciler.client import PolarisClient
from reconciler.emulator import Emulator, FaultPlan
from tests.cli import run

WAITING = "IngestionJob/koalas-demo-file job "  # the progress line of a job being followed


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes a test starts; any still running when it ends is killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


def waiting_apply(
    started: list[subprocess.Popen[str]], cwd: Path, *flags: str
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """Start `apply --wait` and return once it follows the submitted job; its stderr so far."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--wait", *flags,
         "manifests/guide"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started.append(process)
    assert process.stderr is not None
    lines: list[str] = []
    following = threading.Event()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            if WAITING in line:
                following.set()

    reader = threading.Thread(target=read, args=(process.stderr,), daemon=True)
    reader.start()
    if not following.wait(60):
        pytest.fail("apply never followed its job:\n" + "".join(lines))
    return process, lines, reader


def ended(process: subprocess.Popen[str], reader: threading.Thread) -> str:
    """Wait for the process to end (at most 30 s) and for its stderr to be read; its stdout."""
    process.wait(timeout=30)
    reader.join(timeout=10)
    assert process.stdout is not None
    return process.stdout.read()


@pytest.mark.parametrize(
    ("signum", "status", "flags"),
    [(signal.SIGINT, 130, ()), (signal.SIGTERM, 143, ()), (signal.SIGTERM, 143, ("--no-lock",))],
    ids=["SIGINT", "SIGTERM", "SIGTERM without the lock"],
)
def test_the_first_signal_during_apply_wait_stops_waiting_at_once_and_frees_the_lock(
    served: Any, workspace: Path, emulator: Emulator, client: PolarisClient,
    started: list[subprocess.Popen[str]], signum: int, status: int, flags: tuple[str, ...],
) -> None:  # fmt: skip
    emulator.hold_jobs()  # the job stays pending: --wait would wait an hour
    process, stderr, reader = waiting_apply(started, workspace.parent, *flags)
    sent = time.monotonic()
    process.send_signal(signum)
    stdout = ended(process, reader)
    elapsed = time.monotonic() - sent
    assert process.returncode == status, "".join(stderr)
    assert elapsed < 5, f"took {elapsed:.1f} s to stop waiting"
    assert "done     Connection/demo-conn" in stdout
    assert "IngestionJob/koalas-demo-file" in stdout
    said = "".join(stderr)
    assert "stopped waiting; 1 job(s) still running in Polaris: job " in said
    assert "Apply interrupted: 2 done" in stdout
    assert "Could not release the project lock" not in said
    (job,) = client.iter_jobs(type="batch")
    assert job["executionStatus"] == "pending", "the job keeps running in Polaris"
    again = run("apply", "--auto-approve", "--lock-timeout", "0", "manifests/guide")
    assert again.exit_code == 0, again.stderr  # the lock was released: no wait for it


def test_an_interrupted_apply_in_json_reports_the_error_beside_what_was_done(
    served: Any, workspace: Path, emulator: Emulator, started: list[subprocess.Popen[str]]
) -> None:
    emulator.hold_jobs()
    process, stderr, reader = waiting_apply(started, workspace.parent, "--format", "json")
    process.send_signal(signal.SIGTERM)
    stdout = ended(process, reader)
    assert process.returncode == 143, "".join(stderr)
    document = json.loads(stdout)
    assert document["error"]["code"] == "interrupted"
    assert "1 job(s) still running in Polaris" in document["error"]["message"]
    statuses = {r["name"]: (r["status"], r.get("executionStatus")) for r in document["results"]}
    assert statuses["koalas-demo-file"] == ("done", "pending")
    assert statuses["demo-conn"][0] == "done"


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_ctrl_c_while_a_command_reads_live_state_exits_130_at_once_not_when_the_answer_comes(
    served: Any, workspace: Path, emulator: Emulator, started: list[subprocess.Popen[str]],
    command: str,
) -> None:  # fmt: skip
    emulator.faults = FaultPlan(latency_seconds=15)  # an answer that would come 15 s later
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", command, "manifests/guide"],
        cwd=workspace.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started.append(process)
    deadline = time.monotonic() + 30
    # A request in flight (counted as it arrives; `requests` lists it only once answered): the
    # command is reading.
    while not emulator.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    began = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert time.monotonic() - began < 5, "Ctrl-C waited for the request in flight"
    assert stderr.rstrip().endswith("Interrupted.")
