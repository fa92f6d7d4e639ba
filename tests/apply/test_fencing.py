"""A lock that fences: no write on a stale lease, and a paused holder's late job POST is undone.

Polaris has no fenced writes: a holder stopped (SIGSTOP, a frozen VM) after its last check and
before its job POST reaches Polaris still submits when it resumes, after another apply took the
lock over. These tests stop a real `reconciler apply` process at that worst moment: the emulator
holds its job POST at the door (`FaultPlan.hold`), the test stops the process, a second apply
takes the lock over and submits, then the held POST lands and the first process resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from reconciler.lock import Holder, ProjectLock
from reconciler.model import Kind
from tests.cli import run
from tests.fleet import plan_fleet, write_fleet

LEASE = "2"  # seconds: a takeover waits this long, so the tests stay fast


@contextmanager
def apply_process(fleet: Path, name: str, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`reconciler apply --format json` of `fleet` as its own process, with a short lease."""
    command = [sys.executable, "-m", "reconciler", "apply", str(fleet), "--auto-approve"]
    command += ["--lock-lease", LEASE, "--format", "json", *options]
    with (
        (fleet.parent / f"{name}.out").open("w") as stdout,
        (fleet.parent / f"{name}.err").open("w") as stderr,
    ):
        process = subprocess.Popen(
            command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=stdout, stderr=stderr
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()


def finished(process: subprocess.Popen[bytes], fleet: Path, name: str) -> tuple[int, Any, str]:
    """Exit status, JSON output and standard error of a process started by `apply_process`."""
    code = process.wait(timeout=60)
    out = (fleet.parent / f"{name}.out").read_text()
    err = (fleet.parent / f"{name}.err").read_text()
    return code, json.loads(out) if out.strip() else None, err


def statuses(emulator: Emulator) -> dict[str, str]:
    """Every job's id and execution status, in the order they were created."""
    jobs = sorted(emulator.store.jobs.values(), key=lambda job: str(job["createdTimestamp"]))
    return {str(job["id"]): str(job["executionStatus"]) for job in jobs}


def job_result(output: Any) -> dict[str, Any]:
    (result,) = [r for r in output["results"] if r["kind"] == "IngestionJob"]
    return dict(result)


@pytest.mark.parametrize("answer", ["received", "lost"])
def test_a_paused_holder_whose_job_post_lands_after_a_takeover_cancels_its_late_duplicate(
    served: Any, tmp_path: Path, emulator: Emulator, answer: str
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    emulator.hold_jobs()  # jobs stay pending, as they do for a while in Polaris
    gate = emulator.faults.hold("POST", "/jobs")
    with apply_process(fleet, "paused") as paused:
        assert gate.wait_for_arrival(), "the first apply never posted its job"
        os.kill(paused.pid, signal.SIGSTOP)  # between its last check and the POST landing
        try:
            second = run("apply", str(fleet), "--auto-approve", "--lock-lease", LEASE)
            assert second.exit_code == 0, second.stdout + second.stderr
            assert "Taking over the project lock" in second.stderr
            (kept,) = statuses(emulator)
            if answer == "lost":  # the late POST lands, but its answer never comes back
                emulator.faults.inject("drop", method="POST", path_contains="/jobs")
        finally:
            gate.release()  # the POST lands now, after the second apply's
            os.kill(paused.pid, signal.SIGCONT)
        _, output, err = finished(paused, fleet, "paused")
    jobs = statuses(emulator)
    assert list(jobs.values()) == ["pending", "canceled"], (jobs, err)
    assert jobs[kept] == "pending"
    (late,) = [job_id for job_id in jobs if job_id != kept]
    result = job_result(output)
    assert result["canceledDuplicates"] == [late], result
    assert f"canceled job {late}" in result["message"]
    assert "internal error" not in err


def test_a_late_post_that_lands_before_the_new_holder_posts_makes_the_new_holder_cancel_its_own(
    served: Any, tmp_path: Path, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    emulator.hold_jobs()
    first_post = emulator.faults.hold("POST", "/jobs")
    with apply_process(fleet, "paused") as paused:
        assert first_post.wait_for_arrival(), "the first apply never posted its job"
        os.kill(paused.pid, signal.SIGSTOP)
        try:
            second_post = emulator.faults.hold("POST", "/jobs")
            with apply_process(fleet, "taker") as taker:
                # The second apply has taken the lock over and read the table: its POST waits.
                assert second_post.wait_for_arrival(60), "the second apply never posted its job"
                first_post.release()
                deadline = time.monotonic() + 10
                while not emulator.store.jobs and time.monotonic() < deadline:
                    time.sleep(0.01)
                (early,) = statuses(emulator)
                second_post.release()
                code, output, err = finished(taker, fleet, "taker")
        finally:
            first_post.release()
            os.kill(paused.pid, signal.SIGCONT)
        finished(paused, fleet, "paused")
    assert code == 0, err
    jobs = statuses(emulator)
    assert list(jobs.values()) == ["pending", "canceled"], (jobs, err)
    assert jobs[early] == "pending"
    (late,) = [job_id for job_id in jobs if job_id != early]
    result = job_result(output)
    assert result["status"] == "done"
    assert result["jobId"] == early
    assert result["canceledDuplicates"] == [late]


def test_an_apply_without_the_lock_cancels_its_job_when_someone_posted_the_same_one_first(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    emulator.hold_jobs()
    gate = emulator.faults.hold("POST", "/jobs")
    with apply_process(fleet, "unlocked", "--no-lock") as unlocked:
        assert gate.wait_for_arrival(), "the apply never posted its job"
        try:
            _, plan = plan_fleet(client, fleet)  # someone else posts the same job meanwhile
            (job,) = [c for c in plan.changes if c.kind is Kind.INGESTION_JOB]
            (request,) = job.requests
            first = client.create_job(dict(request.body or {}))
        finally:
            gate.release()
        code, output, err = finished(unlocked, fleet, "unlocked")
    assert code == 0, err
    jobs = statuses(emulator)
    assert jobs == {first["id"]: "pending", **{k: "canceled" for k in jobs if k != first["id"]}}
    assert len(jobs) == 2
    result = job_result(output)
    assert result["jobId"] == first["id"]
    assert result["message"].startswith(f"already submitted as job {first['id']}; canceled job ")


def test_a_holder_never_starts_a_write_once_its_last_confirmed_renewal_is_half_a_lease_old(
    client: PolarisClient, emulator: Emulator
) -> None:
    now = [0.0]
    with ProjectLock(client, Holder("ivy@host", 9, None), ttl=3600, clock=lambda: now[0]) as lock:
        assert lock.check() is None
        now[0] = 1799.0
        assert lock.check() is None
        emulator.faults.inject("500", method="PUT", path_contains="/tables", times=10_000)
        now[0] = 1800.0  # half the lease: it tries to renew first, and cannot
        reason = lock.check()
        assert reason is not None
        assert "last confirmed renewal is 1800 s old" in reason
        emulator.faults = type(emulator.faults)()
        assert lock.check() is None  # renewed now: writes may start again


class FenceThatFailsOnItsSecondCheck:
    """The project lock as a writer sees it, lost between a change's start and its POST."""

    contested = False

    def __init__(self) -> None:
        self.checks = 0

    def check(self) -> str | None:
        self.checks += 1
        return "the project lock was taken over by someone" if self.checks > 1 else None


def test_the_lock_is_checked_again_right_before_each_job_post(
    tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    client.create_connection(
        {"name": "fleet-0", "type": "s3", "bucket": "fleet-bucket-0",
         "awsEndpoint": "s3.us-east-1.amazonaws.com"}
    )  # fmt: skip
    _, plan = plan_fleet(client, fleet)
    fence = FenceThatFailsOnItsSecondCheck()
    provider = PolarisProvider(client, fence=fence)
    result = Applier(provider, halt=fence.check).run(plan)
    (job,) = [o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB]
    assert (job.status, job.message) == (
        "failed",
        "not attempted: the project lock was taken over by someone",
    )
    assert not list(client.iter_jobs())


def test_apply_lists_the_jobs_of_a_table_once_however_many_jobs_it_submits_into_it(
    served: Any, tmp_path: Path, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=2, jobs_per_connection=40)
    emulator.reset_requests()
    result = run("apply", str(fleet), "--auto-approve", "--parallelism", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    listings = [path for method, path, _ in emulator.requests if "targetTableName" in path]
    assert len(listings) <= 2, listings
    posts = [path for method, path, _ in emulator.requests if method == "POST"]
    assert len(emulator.requests) <= 1.1 * 80 + 10, len(emulator.requests)
    assert len(posts) >= 80
