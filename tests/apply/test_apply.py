"""`reconciler apply`: dependency order, no duplicates under failure, and approvals that mean something."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator import DEMO_PROJECT_ID, Emulator, FaultPlan
from reconciler.kinds.ingestion_job import PlannedJob
from reconciler.model import LOCK_TABLE, Action, Kind
from reconciler.plan import Plan, make_plan
from reconciler.validate import load_manifests
from reconciler.values import AMBIGUOUS_WRITE_ATTEMPTS, ApplyOptions
from tests.builders import detail_table, live_state, resource
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, external_connection_exists
from tests.fleet import assert_converged, plan_fleet, write_fleet
from tests.steps import edit, write


def test_apply_creates_each_jobs_connection_and_table_before_the_job(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    # The order of the creations as the server answered them (timestamps of connections and
    # tables are whole seconds, too coarse to order them).
    created: list[tuple[str, str]] = []
    checked = emulator.response_observer
    assert checked is not None

    def observe(method: str, template: str, status: int, body: bytes) -> None:
        checked(method, template, status, body)
        if method == "POST" and status == 201:
            record = json.loads(body)
            created.append((template.rsplit("/", 1)[-1], record.get("id") or record["name"]))

    emulator.response_observer = observe
    assert run("apply", "--auto-approve", "--parallelism", "8").exit_code == 0
    for job in emulator.store.jobs.values():
        position = created.index(("jobs", job["id"]))
        connection = ("connections", job["source"]["connectionName"])
        assert connection not in created or created.index(connection) < position
        if not job.get("createTableIfNotExists"):  # a declared table: created by apply first
            table = ("tables", job["target"]["tableName"])
            assert table not in created or created.index(table) < position


def test_a_failure_stops_only_what_depends_on_it(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    assert emulator.faults is not None
    emulator.faults.inject(
        "500", method="POST", path_contains="/connections", times=AMBIGUOUS_WRITE_ATTEMPTS
    )
    result = run("apply", "--auto-approve", "--parallelism", "1")
    assert result.exit_code == 1
    assert "failed   Connection/" in result.stdout
    assert "skipped  IngestionJob/" in result.stdout
    assert "not attempted: Connection/" in result.stdout
    done = [line for line in result.stdout.splitlines() if line.startswith("done")]
    assert any("Table/web_requests" in line for line in done)
    assert "Apply failed:" in result.stdout


def test_a_dropped_response_to_a_job_post_submits_no_duplicate(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=3)
    assert emulator.faults is not None
    emulator.faults.inject("drop", method="POST", path_contains="/jobs", times=2)
    _, plan = plan_fleet(client, fleet)
    result = Applier(PolarisProvider(client, sleep=lambda s: None)).run(plan)
    assert not result.failed, [o.message for o in result.outcomes]
    assert_converged(client, fleet, jobs=3)


def test_a_job_change_without_the_identity_its_plan_gave_it_is_never_posted(
    tmp_path: Path, client: PolarisClient
) -> None:
    # A job is found by its identity over its connection's place. The spec's own fingerprint
    # names the connection instead, so it never finds a live job: a change that lost the
    # identity its plan gave it fails, and posts no second job beside the first.
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    resources, plan = plan_fleet(client, fleet)
    assert not Applier(PolarisProvider(client, sleep=lambda s: None)).run(plan).failed
    (submitted,) = [c for c in plan.changes if c.kind is Kind.INGESTION_JOB]
    provider = PolarisProvider(client, sleep=lambda s: None)
    provider.read(resources.values())  # the job posted above is live, and known to this apply

    result = Applier(provider).run(
        dataclasses.replace(plan, changes=(dataclasses.replace(submitted, private=PlannedJob()),))
    )

    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "run plan" in outcome.message
    assert_converged(client, fleet, jobs=1)


def test_a_dropped_response_to_a_connection_post_counts_as_created(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    assert emulator.faults is not None
    emulator.faults.inject("drop", method="POST", path_contains="/connections", times=1)
    _, plan = plan_fleet(client, fleet)
    result = Applier(PolarisProvider(client, sleep=lambda s: None)).run(plan)
    conn = next(o for o in result.outcomes if o.change.kind is Kind.CONNECTION)
    assert (conn.status, conn.message) == ("done", "already exists and matches the manifest")


def test_an_equal_connection_created_meanwhile_counts_as_done_and_a_different_one_is_a_conflict(
    tmp_path: Path, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=2, jobs_per_connection=0)
    _, plan = plan_fleet(client, fleet)
    client.create_connection(
        {
            "name": "fleet-0",
            "type": "s3",
            "bucket": "fleet-bucket-0",
            "awsEndpoint": "s3.us-east-1.amazonaws.com",
        }
    )
    client.create_connection(
        {
            "name": "fleet-1",
            "type": "s3",
            "bucket": "someone-elses",
            "awsEndpoint": "s3.us-east-1.amazonaws.com",
        }
    )
    result = Applier(PolarisProvider(client)).run(plan)
    by_name = {o.change.name: o for o in result.outcomes}
    assert by_name["fleet-0"].status == "done"
    assert by_name["fleet-1"].status == "failed"
    assert (
        by_name["fleet-1"].message
        == "already exists with different bucket; run plan again to update it"
    )


def test_a_stale_saved_plan_is_refused_even_with_force(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    assert run("plan", "--out", "plan.json").exit_code == 0
    client.create_connection(
        {"name": "weblogs-s3", "type": "s3", "bucket": "x", "awsEndpoint": "y"}
    )
    result = run("apply", "plan.json", "--auto-approve", "--force")
    assert result.exit_code == 1
    assert "the saved plan is stale" in result.stderr
    assert len(client.list_connections()) == 2


def test_a_fresh_saved_plan_is_applied(served: Any, workspace: Path, client: PolarisClient) -> None:
    external_connection_exists(client)
    assert run("plan", "--out", "plan.json").exit_code == 0
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 0, result.stderr
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_without_a_terminal_apply_refuses_unless_auto_approved(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("apply")
    assert result.exit_code == 1
    assert "pass --auto-approve" in result.stderr
    assert client.list_connections() == [client.get_connection("security-audit")]


def test_prune_deletes_undeclared_connections_but_refuses_a_mass_deletion(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    for i in range(12):
        client.create_connection(
            {"name": f"old-{i}", "type": "s3", "bucket": "b", "awsEndpoint": "e"}
        )
    refused = run("apply", "--auto-approve", "--prune")
    assert refused.exit_code == 1
    assert "too many deletions: 12 of 13 connections (92%) is more than 30%" in refused.stderr
    result = run("apply", "--auto-approve", "--prune", "--force")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted(c["name"] for c in client.list_connections()) == [
        "demo-conn",
        "security-audit",
        "weblogs-s3",
    ]


def test_wait_follows_jobs_and_reports_rows_ingested(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("apply", "--auto-approve", "--wait", "--format", "json")
    assert result.exit_code == 0, result.stderr
    jobs = [r for r in result.json()["results"] if r["kind"] == "IngestionJob"]
    assert len(jobs) == 3
    assert all(r["executionStatus"] == "completed" and r["jobId"] for r in jobs)
    assert all(r["metrics"]["numRowsProcessed"] > 0 for r in jobs)


def test_wait_shows_each_followed_job_in_the_text_summary_with_its_rows(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("apply", "--auto-approve", "--wait")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(f"{'job':<38} {'status':<10} {'rows ingested':>13}  resource")
    rows = [line.split() for line in lines[header + 1 : header + 4]]
    assert {job_id for job_id, *_ in rows} == {str(job["id"]) for job in client.iter_jobs()}
    for line, (job_id, status, ingested, ref) in zip(lines[header + 1 :], rows, strict=False):
        assert line == f"{job_id:<38} {status:<10} {ingested:>13}  {ref}"
        assert (status, ref.startswith("IngestionJob/"), int(ingested) > 0) == (
            "completed",
            True,
            True,
        )


def test_apply_never_prints_a_secret_or_the_api_key(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        outputs.append(run("-v", "plan", "--format", fmt))
    outputs.append(run("-v", "apply", "--auto-approve", "--rotate-secrets"))
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0], "-v belongs before the command"
    assert "POST " in outputs[-1].stderr, "requests were logged"
    text = "".join(r.stdout + r.stderr for r in outputs)
    for secret in [*DEMO_SECRETS.values(), os.environ["POLARIS_API_KEY"]]:
        assert secret not in text


def test_under_injected_faults_ten_connections_and_thirty_jobs_converge_in_one_run(
    tmp_path: Path, emulator: Emulator, client: PolarisClient
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=10, jobs_per_connection=3)
    _, plan = plan_fleet(client, fleet)
    emulator.faults = FaultPlan(
        seed=7, rate_429=0.15, rate_503=0.10, rate_drop=0.10, retry_after_seconds=0
    )
    options = ApplyOptions(parallelism=8)
    result = Applier(
        PolarisProvider(client, options, sleep=lambda s: None), parallelism=options.parallelism
    ).run(plan)
    assert not result.failed, [o.message for o in result.outcomes if o.status == "failed"]
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=30)


def objects_written(emulator: Emulator) -> int:
    """Connections, tables and jobs in the project, the lock's table aside."""
    store = emulator.store
    tables = [name for name in store.tables if name != LOCK_TABLE]
    return len(store.connections) + len(tables) + len(store.jobs)


def test_killing_apply_mid_way_and_running_it_again_converges(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=3, jobs_per_connection=4)
    total = 3 + 3 + 12  # connections, tables their jobs create, jobs
    emulator.faults = FaultPlan(latency_seconds=0.02)  # so that an apply takes a while
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "reconciler", "apply", str(fleet), "--auto-approve"]
    command += ["--parallelism", "2"]
    chance = random.Random(1234)
    for _ in range(3):
        before = objects_written(emulator)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill it after a random number of its writes: mid-apply, never before it began.
        target = before + chance.randint(1, 4)
        deadline = time.monotonic() + 30
        while objects_written(emulator) < target and time.monotonic() < deadline:
            assert process.poll() is None, "the apply finished before it could be killed"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = objects_written(emulator)
        assert before < after < total, (before, after)  # some writes done, some not
        # The killed apply still holds the project lock: remove it, as a user would.
        unlocked = run("unlock", "--yes")
        assert "Removed the lock" in unlocked.stdout, unlocked.stdout + unlocked.stderr
    emulator.faults = FaultPlan()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    assert_converged(client, fleet, jobs=12)


def test_wait_reports_a_failed_job_with_its_health_code_and_message(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    _, plan = plan_fleet(client, fleet)
    emulator.hold_jobs()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if ": pending" in line:  # the job is being followed: now it fails
            (summary,) = list(client.iter_jobs())
            emulator.fail_job(
                summary["id"], code="no_rows_ingested", message="every row was filtered out"
            )

    options = ApplyOptions(wait=True, poll_interval=0)
    result = Applier(PolarisProvider(client, options, progress=progress)).run(plan)
    job = next(o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB)
    assert result.failed
    assert job.status == "failed"
    assert job.message.endswith("failed: no_rows_ingested: every row was filtered out")
    assert job.to_json()["health"] == {
        "code": "no_rows_ingested",
        "message": "every row was filtered out",
    }


def test_wait_gives_up_after_the_timeout(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=1)
    _, plan = plan_fleet(client, fleet)
    emulator.hold_jobs()
    options = ApplyOptions(wait=True, timeout=0.2, poll_interval=0.05)
    result = Applier(PolarisProvider(client, options)).run(plan)
    job = next(o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB)
    assert (job.status, job.message.endswith("still pending after 0.2s (--timeout)")) == (
        "failed",
        True,
    )


def test_an_equal_table_created_meanwhile_counts_as_done_despite_server_chosen_fields(
    tmp_path: Path, client: PolarisClient
) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: events}\n"
        "spec: {type: detail, schema: [{name: city, dataType: string}]}\n",
        encoding="utf-8",
    )
    _, plan = plan_fleet(client, tmp_path)
    # Someone else creates it first; Polaris fills schemaMode, which the manifest leaves to it.
    client.create_table(
        {"name": "events", "type": "detail", "schema": [{"name": "city", "dataType": "string"}]}
    )
    (outcome,) = Applier(PolarisProvider(client)).run(plan).outcomes
    assert (outcome.status, outcome.message) == ("done", "already exists and matches the manifest")


@pytest.mark.parametrize("seed", range(3))
def test_apply_under_five_percent_server_errors_succeeds_in_one_run_without_duplicates(
    served: Any, tmp_path: Path, client: PolarisClient, emulator: Emulator, seed: int
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=1, jobs_per_connection=30)
    emulator.faults = FaultPlan(seed=seed, rate_500=0.05)
    # Whatever the random draws hit, two job POSTs meet a 500 (ambiguous: read before retry),
    # and so does a read of the job list (retried).
    emulator.faults.inject("500", method="POST", path_contains="/jobs", times=2)
    emulator.faults.inject("500", method="GET", path_contains="/jobs")
    result = run("apply", str(fleet), "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    failed = [(method, path) for method, path, status in emulator.requests if status == 500]
    assert ("POST", f"/v1/projects/{DEMO_PROJECT_ID}/jobs") in failed
    assert any(method == "GET" for method, _ in failed)
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=30)


EXTERNAL_WITH_STALE_SPEC = """apiVersion: reconciler/v1
kind: Connection
metadata: {name: shared}
policy: {manage: external}
spec: {type: s3, bucket: team-bucket, awsEndpoint: s3.us-east-1.amazonaws.com, prefix: old/}
---
apiVersion: reconciler/v1
kind: IngestionJob
metadata: {name: shared-day-0}
spec:
  type: batch
  target: {type: table, tableName: shared_events}
  createTableIfNotExists: true
  source:
    type: s3
    connectionName: shared
    objects: [days/000.json]
    formatSettings: {format: nd-json}
    inputSchema: [{name: ts, dataType: string}]
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("ts")'}
"""


def test_a_lost_answer_to_a_job_post_through_an_external_connection_submits_no_duplicate(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    # Another team owns `shared` and has moved it to another prefix since our manifest, which
    # only checks that it exists, described it. Jobs read through the connection as it is live.
    client.create_connection(
        {
            "name": "shared",
            "type": "s3",
            "bucket": "team-bucket",
            "awsEndpoint": "s3.us-east-1.amazonaws.com",
            "prefix": "new/",
        }
    )
    write(tmp_path / "m", "shared.yaml", EXTERNAL_WITH_STALE_SPEC)
    manifests = load_manifests([str(tmp_path / "m")], {})
    assert emulator.faults is not None
    emulator.faults.inject("drop", method="POST", path_contains="/jobs", times=1)
    provider = PolarisProvider(client, sleep=lambda s: None)
    plan = make_plan(manifests.resources, provider.read(manifests.resources))
    result = Applier(provider).run(plan)
    (job,) = [o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB]
    assert job.status == "done", job.message
    assert len(list(client.iter_jobs())) == 1, "the job was submitted twice"


def test_a_saved_plan_is_stale_once_a_secret_comes_from_another_variable(
    served: Any,
    workspace: Path,
    client: PolarisClient,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The saved plan shows each secret by its reference: the reviewed plan says which variable
    # apply will send, so a manifest that now names another one is not the plan that was reviewed.
    external_connection_exists(client)
    assert run("plan", "--out", "plan.json").exit_code == 0
    reviewed = Path("plan.json").read_text(encoding="utf-8")
    assert "${env:DEMO_AWS_SECRET_ACCESS_KEY}" in reviewed
    monkeypatch.setenv("CI_DEPLOY_TOKEN", "a-token-that-is-not-the-s3-secret")
    edit(
        workspace / "guide" / "demo-conn.yaml",
        "${env:DEMO_AWS_SECRET_ACCESS_KEY}",
        "${env:CI_DEPLOY_TOKEN}",
    )
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "the saved plan is stale" in result.stderr
    assert "demo-conn" not in emulator.store.connections


def test_apply_says_which_project_it_reads_before_it_plans(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("apply", "--auto-approve")
    assert result.exit_code == 0, result.stderr
    assert f"Reading live state of project {DEMO_PROJECT_ID} ..." in result.stderr


EVENTS_TABLE = """apiVersion: reconciler/v1
kind: Table
metadata: {name: events}
spec:
  type: detail
  schema:
    - {name: a, dataType: string}
    - {name: b, dataType: string}
"""


def planned_table_update(tmp_path: Path, client: PolarisClient) -> tuple[PolarisProvider, Plan]:
    """A live table `events` with column a, and the plan that adds column b to it."""
    client.create_table(
        {"name": "events", "type": "detail", "schema": [{"name": "a", "dataType": "string"}]}
    )
    write(tmp_path / "m", "events.yaml", EVENTS_TABLE)
    manifests = load_manifests([str(tmp_path / "m")], {})
    provider = PolarisProvider(client, sleep=lambda s: None)
    return provider, make_plan(manifests.resources, provider.read(manifests.resources))


def test_a_table_changed_after_the_plan_is_not_overwritten_by_it(
    tmp_path: Path, client: PolarisClient
) -> None:
    provider, plan = planned_table_update(tmp_path, client)
    (change,) = plan.changes
    assert change.action is Action.UPDATE, change.reason
    # Someone adds a column after the plan was reviewed: the reviewed PUT would remove it.
    current = client.get_table("events")
    assert current is not None
    column = {"name": "c", "dataType": "long"}
    client.update_table("events", {**current, "schema": [*current["schema"], column]})
    (outcome,) = Applier(provider).run(plan).outcomes
    assert outcome.status == "failed", outcome.message
    assert "changed since the plan" in outcome.message
    after = client.get_table("events")
    assert after is not None and column in after["schema"]


def test_a_lost_answer_to_a_table_put_counts_as_updated(
    tmp_path: Path, client: PolarisClient, emulator: Emulator
) -> None:
    provider, plan = planned_table_update(tmp_path, client)
    assert emulator.faults is not None
    emulator.faults.inject("drop", method="PUT", path_contains="/tables", times=1)
    (outcome,) = Applier(provider).run(plan).outcomes
    assert (outcome.status, outcome.message) == ("done", "updated")
    after = client.get_table("events")
    assert after is not None and [c["name"] for c in after["schema"]] == ["a", "b"]


def test_a_table_created_meanwhile_with_other_clustering_columns_names_the_field_not_an_index(
    client: PolarisClient,
) -> None:
    spec = {**detail_table(), "clusteringColumns": ["city"]}
    plan = make_plan([resource(Kind.TABLE, "t", spec)], live_state())
    client.create_table({"name": "t", **detail_table(), "clusteringColumns": []})
    (outcome,) = Applier(PolarisProvider(client)).run(plan).outcomes
    assert (outcome.status, outcome.message) == (
        "failed",
        "already exists with different clusteringColumns; run plan again to update it",
    )
