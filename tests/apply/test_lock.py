"""The project lock: applies started together take turns, so none submits another's jobs again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator import Emulator, FaultPlan
from reconciler.lock import Holder, ProjectLock, read_lock, remove_lock
from reconciler.model import LOCK_TABLE
from tests.cli import run
from tests.fleet import assert_converged, plan_fleet, write_fleet


def apply_processes(fleet: Path, count: int, *options: str) -> list[tuple[int, str]]:
    """Start `count` `reconciler apply` processes at once; their exit statuses and stderr."""
    command = [sys.executable, "-m", "reconciler", "apply", str(fleet), "--auto-approve", *options]
    logs = [fleet.parent / f"apply-{i}.log" for i in range(count)]
    processes = []
    for log in logs:
        with log.open("w") as stderr:  # a file, not a pipe: a full pipe would stall a process
            processes.append(
                subprocess.Popen(
                    command,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
    return [(p.wait(timeout=120), log.read_text()) for p, log in zip(processes, logs, strict=True)]


@pytest.mark.parametrize("trial", range(3))
def test_two_applies_started_together_submit_each_job_once(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator, trial: int
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=30)
    emulator.faults = FaultPlan(seed=trial, latency_seconds=0.03)
    results = apply_processes(fleet, 2)
    assert [code for code, _ in results] == [0, 0], [err for _, err in results]
    assert sum("Waiting for the project lock held by" in err for _, err in results) == 1
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=30)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_three_applies_started_together_submit_each_job_once(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator, trial: int
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=30)
    emulator.faults = FaultPlan(seed=10 + trial, latency_seconds=0.05)
    results = apply_processes(fleet, 3)
    assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
    assert sum("Waiting for the project lock held by" in err for _, err in results) >= 1
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=30)


def test_an_apply_that_cannot_get_the_lock_in_time_names_the_holder_and_changes_nothing(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=2)
    holder = Holder("alice@ci-runner-7", 4242, "https://ci.example/runs/7")
    with ProjectLock(client, holder):
        result = run("apply", str(fleet), "--auto-approve", "--lock-timeout", "0.5")
    assert result.exit_code == 1
    assert "project is locked by alice@ci-runner-7 (pid 4242, CI run https://ci.example/runs/7" in (
        result.stderr
    )
    assert "waited 0.5 s (--lock-timeout)" in result.stderr
    assert "reconciler unlock" in result.stderr
    assert not client.list_connections()
    assert not emulator.store.jobs


def test_unlock_removes_a_lock_left_by_a_dead_apply_after_confirmation(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=2)
    dead = ProjectLock(client, Holder("bob@laptop", 99, None), ttl=3600)
    dead.acquire()  # and never released: its process "died"
    unconfirmed = run("unlock")
    assert unconfirmed.exit_code == 1
    assert "locked by bob@laptop (pid 99" in unconfirmed.stderr
    assert "pass --yes" in unconfirmed.stderr
    removed = run("unlock", "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert "Removed the lock" in removed.stdout
    lock = read_lock(client)
    assert lock is not None and lock.free
    assert run("apply", str(fleet), "--auto-approve", "--lock-timeout", "0").exit_code == 0
    assert run("unlock").stdout.startswith("Project ")  # not locked: nothing to confirm
    dead.release()  # ends its renewal thread; the lock is no longer its own to free


def test_a_lock_not_renewed_for_its_ttl_is_taken_over_and_its_old_holder_stops(
    client: PolarisClient, emulator: Emulator
) -> None:
    stale = ProjectLock(client, Holder("carol@build-3", 7, None), ttl=0.3)
    renewal = emulator.faults.hold("PUT", "/tables")  # its first renewal hangs: it looks dead
    stale.acquire()
    assert renewal.wait_for_arrival()
    messages: list[str] = []
    with ProjectLock(
        client, Holder("dave@build-4", 8, None), ttl=0.3, timeout=10, progress=messages.append
    ) as waiter:
        assert waiter.lost is None
        assert messages[0].startswith("Waiting for the project lock held by carol@build-3")
        assert "Taking over the project lock of carol@build-3 (pid 7" in messages[-1]
        assert messages[-1].endswith("not renewed for 0.3 s")
        renewal.release()  # lands on a lock that is no longer its own
        stale.renew()
        assert stale.lost is not None
        assert stale.lost.startswith("the project lock was taken over by dave@build-4")
        stale.release()  # no longer its lock: releasing must not free the new holder's
        lock = read_lock(client)
        assert lock is not None and lock.who == "dave@build-4"
    lock = read_lock(client)
    assert lock is not None and lock.free  # freed by the waiter when its block ended


def test_an_apply_whose_lock_was_lost_starts_no_more_writes(
    tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=3)
    _, plan = plan_fleet(client, fleet)
    result = Applier(PolarisProvider(client), halt=lambda: "the lock was lost").run(plan)
    assert result.failed
    connection, *jobs = result.outcomes
    assert (connection.status, connection.message) == ("failed", "not attempted: the lock was lost")
    assert {o.status for o in jobs} == {"skipped"}
    assert not client.list_connections()
    assert not list(client.iter_jobs())


def test_the_lock_is_taken_even_when_the_answer_to_its_write_is_lost(
    client: PolarisClient, emulator: Emulator
) -> None:
    emulator.faults.inject("drop", method="POST", path_contains="/tables")
    with ProjectLock(client, Holder("erin@host", 1, None), timeout=0) as lock:
        assert lock.version == 0
        emulator.faults.inject("drop", method="PUT", path_contains="/tables")
        lock.renew()
        assert lock.lost is None and lock.version == 1
    state = read_lock(client)
    assert state is not None and state.free


def test_plan_drift_and_prune_never_show_or_touch_the_lock(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=2, jobs_per_connection=2)
    assert run("apply", str(fleet), "--auto-approve").exit_code == 0
    outputs = [
        run("plan", str(fleet), "--detailed-exitcode", "--prune"),
        run("plan", str(fleet), "--format", "json"),
        run("drift", str(fleet)),
    ]
    assert [r.exit_code for r in outputs] == [0, 0, 0], [r.stdout for r in outputs]
    assert not any(LOCK_TABLE in r.stdout + r.stderr for r in outputs)
    lock = read_lock(client)
    assert lock is not None and lock.free


def test_a_manifest_may_not_declare_or_write_into_the_lock_table(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    path = fleet / "fleet-0.yaml"
    path.write_text(path.read_text().replace("tableName: fleet_0", f"tableName: {LOCK_TABLE}"))
    for command in (("validate",), ("apply", "--auto-approve")):
        result = run(*command, str(fleet))
        assert result.exit_code == 1
        output = result.stdout + result.stderr
        assert f"the table name {LOCK_TABLE} is reserved for the project lock" in output
    assert not client.list_connections()


def test_without_the_table_permission_apply_says_so_and_runs_with_no_lock(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=2)
    emulator.api_keys["pok_no_tables"] = frozenset({"ManageConnections", "ManageIngestionJobs"})
    monkeypatch.setenv("POLARIS_API_KEY", "pok_no_tables")
    refused = run("apply", str(fleet), "--auto-approve")
    assert refused.exit_code == 1
    assert "needs the ManageTables permission" in refused.stderr
    assert "pass --no-lock" in refused.stderr
    assert not client.list_connections()
    unlocked = run("apply", str(fleet), "--auto-approve", "--no-lock")
    assert unlocked.exit_code == 0, unlocked.stderr
    assert "warning: --no-lock" in unlocked.stderr
    assert_converged(client, fleet, jobs=2)


def test_an_apply_that_fails_gives_the_lock_back(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    emulator.faults.inject("500", method="POST", path_contains="/connections", times=10)
    assert run("apply", str(fleet), "--auto-approve").exit_code == 1
    lock = read_lock(client)
    assert lock is not None and lock.free


# Once in a fresh-clone CI run the apply hung after the signal: a signal inside
# concurrent.futures.wait left futures' locks held. Applier._schedule now waits on a queue; the
# test ran clean 20 times in a row at a load average of 10 before it came back to `make test`.
def test_an_apply_stopped_with_sigterm_mid_way_starts_no_more_writes_and_gives_the_lock_back(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=30)
    emulator.faults = FaultPlan(latency_seconds=0.05)
    command = [sys.executable, "-m", "reconciler", "apply", str(fleet), "--auto-approve"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not emulator.store.jobs and time.monotonic() < deadline:  # wait until it writes
        time.sleep(0.005)
    process.terminate()  # what a canceled CI job receives
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr  # 128 + SIGTERM
    assert "change(s) not attempted. The project lock was released" in stderr
    assert 0 < len(emulator.store.jobs) < 30  # the writes in flight finished; no other started
    lock = read_lock(client)
    assert lock is not None and lock.free, lock


def test_an_apply_whose_read_of_live_state_fails_gives_the_lock_back(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    emulator.faults.retry_after_seconds = 0
    # The batch and the streaming job lists are read together: between them they draw the 20
    # refusals, and whichever draws 10 first gives up (neither can succeed before all are drawn).
    emulator.faults.inject("429", method="GET", path_contains="/jobs", times=20)
    result = run("apply", str(fleet), "--auto-approve")
    assert result.exit_code == 1
    assert "error: GET /jobs failed (429) after 10 attempts" in result.stderr
    assert "internal error" not in result.stderr
    lock = read_lock(client)
    assert lock is not None and lock.free


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_two_applies_started_together_under_faults_submit_each_job_once(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator, trial: int
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=30)
    emulator.faults = FaultPlan(
        seed=20 + trial, rate_500=0.05, rate_drop=0.05, latency_seconds=0.05
    )
    results = apply_processes(fleet, 2)
    assert [code for code, _ in results] == [0, 0], [err for _, err in results]
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=30)


def test_a_holder_whose_lock_was_removed_by_unlock_knows_it_lost_the_lock(
    client: PolarisClient,
) -> None:
    holder = ProjectLock(client, Holder("frank@host", 5, None))
    with holder:
        state = read_lock(client)
        assert state is not None and state.who == "frank@host"
        remove_lock(client, state, datetime.now(UTC))
        holder.renew()
        assert holder.lost == "the project lock was removed (reconciler unlock?)"
    state = read_lock(client)
    assert state is not None and state.free


def test_a_holder_that_cannot_renew_for_most_of_its_ttl_counts_its_lock_as_lost(
    client: PolarisClient, emulator: Emulator
) -> None:
    with ProjectLock(client, Holder("grace@host", 6, None), ttl=0.4) as lock:
        emulator.faults.inject("500", method="PUT", path_contains="/tables", times=10_000)
        deadline = time.monotonic() + 5
        while lock.lost is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the renewal thread tries every 0.1 s
        assert lock.lost is not None and lock.lost.startswith(
            "the project lock could not be renewed for"
        )
    emulator.faults = FaultPlan()
