"""StreamingJob end to end, through the command line, against the emulator with real push events.

Each event carries a sequence number `n`, so that SQL through the emulator's query API counts
what reached the table: nothing lost and nothing twice across a replacement, a re-read counted
with `earliest`, a gap with `latest`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator
from tests.cli import run
from tests.conftest import raw_client
from tests.steps import apply_all, edit, plan_json, write

CONNECTIONS = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: clicks}
spec: {type: push_streaming}
---
apiVersion: reconciler/v1
kind: Connection
metadata: {name: clicks-v2}
spec: {type: push_streaming}
---
apiVersion: reconciler/v1
kind: Table
metadata: {name: Clicks}
spec:
  type: detail
  schema:
    - {name: page, dataType: string}
    - {name: n, dataType: long}
"""

JOB = """\
apiVersion: reconciler/v1
kind: StreamingJob
metadata: {name: clicks-stream}
spec:
  target: {type: table, tableName: Clicks}
  source:
    type: connection
    connectionName: clicks
    formatSettings: {format: nd-json}
    inputSchema:
      - {name: ts, dataType: string}
      - {name: page, dataType: string}
      - {name: n, dataType: long}
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("ts")'}
    - {columnName: page, expression: '"page"'}
    - {columnName: n, expression: '"n"'}
"""


@pytest.fixture
def manifests(served: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    write(folder, "base.yaml", CONNECTIONS)
    write(folder, "job.yaml", JOB)
    return folder


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    with raw_client(emulator) as client:
        yield client


class Events:
    """Events numbered 0, 1, 2, ... in the order they are sent, to any push connection."""

    def __init__(self, api: httpx.Client, emulator: Emulator) -> None:
        self.api, self.emulator = api, emulator
        self.sent = 0

    def send(self, count: int, connection: str = "clicks") -> range:
        numbers = range(self.sent, self.sent + count)
        now = self.emulator.now().strftime("%Y-%m-%dT%H:%M:%SZ")  # within the rejection periods
        body = "".join(json.dumps({"ts": now, "page": "home", "n": n}) + "\n" for n in numbers)
        response = self.api.post(
            f"/events/{connection}", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        self.sent += count
        return numbers


@pytest.fixture
def events(api: httpx.Client, emulator: Emulator) -> Events:
    return Events(api, emulator)


def counted(api: httpx.Client) -> dict[int, int]:
    """How many rows of the table hold each event number, counted with SQL."""
    response = api.post(
        "/query/sql", json={"query": 'SELECT n, COUNT(*) AS c FROM "Clicks" GROUP BY n'}
    )
    assert response.status_code == 200, response.text
    return {int(row["n"]): int(row["c"]) for row in response.json()}


def streaming_jobs(api: httpx.Client, *statuses: str) -> list[dict[str, Any]]:
    jobs = api.get("/jobs", params={"type": "streaming", "targetTableName": "Clicks"}).json()
    return [j for j in jobs["values"] if not statuses or j["executionStatus"] in statuses]


def only_change(plan: dict[str, Any]) -> dict[str, Any]:
    (change,) = [c for c in plan["changes"] if c["kind"] == "StreamingJob"]
    return dict(change)


def started(manifests: Path, api: httpx.Client) -> None:
    """Apply the manifests: the connections, the table and a running streaming job."""
    plan = plan_json(str(manifests))
    assert only_change(plan)["action"] == "create"
    apply_all(str(manifests))
    assert [j["executionStatus"] for j in streaming_jobs(api)] in (["pending"], ["running"])
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_a_streaming_job_is_created_then_plans_clean_and_ingests_pushed_events(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    started(manifests, api)
    events.send(5)
    assert counted(api) == dict.fromkeys(range(5), 1)
    result = run("plan", "--detailed-exitcode", str(manifests))
    assert result.exit_code == 0, result.stdout + result.stderr


def test_a_mapping_change_is_planned_as_continuing_and_loses_or_repeats_no_event(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    started(manifests, api)
    events.send(10)
    edit(manifests / "job.yaml", "expression: '\"page\"'", "expression: 'UPPER(\"page\")'")
    change = only_change(plan_json(str(manifests)))
    assert (change["action"], change["why"]) == ("update", "continues-from-checkpoint")
    assert change["reason"].startswith("update (continues from the checkpoint)")
    (post,) = change["requests"]
    assert post["body"]["replaceRunning"] is True
    text = run("plan", str(manifests)).stdout
    assert "update (continues from the checkpoint)" in text
    apply_all(str(manifests))
    events.send(10)
    assert counted(api) == dict.fromkeys(range(20), 1)
    assert len(streaming_jobs(api, "pending", "running")) == 1
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


@pytest.mark.parametrize(("read_from", "expected"), [("earliest", "re-reads"), ("latest", "skips")])
def test_a_move_to_another_connection_is_refused_without_the_flag_then_does_what_the_plan_said(
    manifests: Path, api: httpx.Client, events: Events, read_from: str, expected: str
) -> None:
    started(manifests, api)
    events.send(5)  # read by the job on clicks
    events.send(3, "clicks-v2")  # already in the other stream, before the move
    edit(manifests / "job.yaml", "connectionName: clicks\n", "connectionName: clicks-v2\n")
    edit(manifests / "job.yaml", "  target:", f"  readFromPoint: {read_from}\n  target:")
    change = only_change(plan_json(str(manifests)))
    assert (change["action"], change["why"]) == ("update", "checkpoint-change")
    assert f"CHECKPOINT: starts at {read_from}: {expected} data" in change["reason"]
    refused = run("apply", "--auto-approve", "--format", "json", str(manifests))
    assert refused.exit_code == 1  # as every unsafe plan
    error = refused.json()["error"]
    assert error["code"] == "unsafe-plan"
    assert "--allow-checkpoint-change" in error["message"]
    assert "StreamingJob/clicks-stream" in error["message"]
    assert "table Clicks reads push streaming connection clicks-v2" in error["message"]
    assert len(streaming_jobs(api, "pending", "running")) == 1
    assert counted(api) == dict.fromkeys(range(5), 1)
    apply_all("--allow-checkpoint-change", str(manifests))
    events.send(4, "clicks-v2")
    if read_from == "earliest":  # the three sent before the move are read too
        assert counted(api) == dict.fromkeys(range(12), 1)
    else:  # the three sent before the move are skipped: a gap
        assert counted(api) == dict.fromkeys([*range(5), *range(8, 12)], 1)
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_a_read_from_point_change_alone_has_no_effect_until_reset(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    started(manifests, api)
    events.send(5)
    edit(manifests / "job.yaml", "  target:", "  readFromPoint: earliest\n  target:")
    change = only_change(plan_json(str(manifests)))
    assert (change["action"], change["why"]) == ("update", "no-effect-until-reset")
    assert "no effect until reset" in change["reason"]
    apply_all(str(manifests))
    events.send(5)
    assert counted(api) == dict.fromkeys(range(10), 1)  # nothing re-read


def test_suspend_and_resume_lose_nothing_sent_while_suspended(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    started(manifests, api)
    events.send(3)
    edit(manifests / "job.yaml", "  target:", "  status: suspended\n  target:")
    change = only_change(plan_json(str(manifests)))
    assert change["action"] == "suspend"
    assert "1 to suspend" in run("plan", str(manifests)).stdout
    apply_all(str(manifests))
    assert [j["executionStatus"] for j in streaming_jobs(api, "suspended")] == ["suspended"]
    assert only_change(plan_json(str(manifests)))["action"] == "noop"
    events.send(4)  # kept in the stream while the job is suspended
    assert counted(api) == dict.fromkeys(range(3), 1)
    edit(manifests / "job.yaml", "  status: suspended\n", "")
    assert only_change(plan_json(str(manifests)))["action"] == "resume"
    apply_all(str(manifests))
    assert counted(api) == dict.fromkeys(range(7), 1)


def test_a_lost_answer_to_a_replacement_never_leaves_two_jobs(
    manifests: Path, api: httpx.Client, events: Events, emulator: Emulator
) -> None:
    started(manifests, api)
    events.send(5)
    edit(manifests / "job.yaml", "expression: '\"page\"'", "expression: 'LOWER(\"page\")'")
    emulator.faults.inject("drop", method="POST", path_contains="/jobs", times=2)
    result = run("apply", "--auto-approve", str(manifests))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(streaming_jobs(api, "pending", "running")) == 1
    assert len(streaming_jobs(api)) == 2  # the first job, replaced, and one replacement
    events.send(5)
    assert counted(api) == dict.fromkeys(range(10), 1)
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_drift_sees_a_job_suspended_behind_gits_back(manifests: Path, api: httpx.Client) -> None:
    started(manifests, api)
    (job,) = streaming_jobs(api)
    suspended = api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"})
    assert suspended.status_code == 200, suspended.text
    result = run("drift", "--format", "json", str(manifests))
    assert result.exit_code == 2, result.stdout + result.stderr
    entries = {e["name"]: e for e in result.json()["drift"]}
    assert entries["clicks-stream"]["status"] == "changed"
    assert "resume" in entries["clicks-stream"]["detail"]


def test_a_job_declared_suspended_is_created_then_suspended(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    edit(manifests / "job.yaml", "  target:", "  status: suspended\n  target:")
    change = only_change(plan_json(str(manifests)))
    assert change["action"] == "create"
    assert [r["path"] for r in change["requests"]] == ["/jobs", "/jobs/(new job)/status"]
    apply_all(str(manifests))
    assert [j["executionStatus"] for j in streaming_jobs(api)] == ["suspended"]
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_a_lost_answer_to_a_suspend_is_read_back_and_not_sent_again(
    manifests: Path, api: httpx.Client, emulator: Emulator
) -> None:
    started(manifests, api)
    edit(manifests / "job.yaml", "  target:", "  status: suspended\n  target:")
    emulator.faults.inject("drop", method="POST", path_contains="/status", times=1)
    apply_all(str(manifests))
    assert [j["executionStatus"] for j in streaming_jobs(api)] == ["suspended"]
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_a_connection_that_is_neither_declared_nor_live_is_a_plan_error(
    manifests: Path,
) -> None:
    edit(manifests / "job.yaml", "connectionName: clicks\n", "connectionName: elsewhere\n")
    result = run("plan", "--format", "json", str(manifests))
    assert result.exit_code == 1
    (error,) = result.json()["errors"]
    assert error["name"] == "clicks-stream"
    assert "connection elsewhere does not exist" in error["message"]


def test_drift_reports_a_failed_job_and_plan_creates_a_new_one(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    edit(manifests / "job.yaml", "  target:", "  maxParseExceptions: 0\n  target:")
    started(manifests, api)
    pushed = api.post("/events/clicks", content=b"not json\n")
    assert pushed.status_code == 200, pushed.text
    assert [j["executionStatus"] for j in streaming_jobs(api)] == ["failed"]
    change = only_change(plan_json(str(manifests)))
    assert (change["action"], change["why"]) == ("create", "failed")
    result = run("drift", "--format", "json", str(manifests))
    assert result.exit_code == 2
    entries = {e["name"]: e for e in result.json()["drift"]}
    assert entries["clicks-stream"]["status"] == "failed"


def test_drift_reports_a_job_canceled_behind_gits_back_as_missing(
    manifests: Path, api: httpx.Client
) -> None:
    started(manifests, api)
    (job,) = streaming_jobs(api)
    api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "canceled"})
    entries = {
        e["name"]: e for e in run("drift", "--format", "json", str(manifests)).json()["drift"]
    }
    assert entries["clicks-stream"]["status"] == "missing"


def test_drift_reports_a_job_replaced_behind_gits_back_as_changed(
    manifests: Path, api: httpx.Client
) -> None:
    started(manifests, api)
    (job,) = streaming_jobs(api)
    body = dict(api.get(f"/jobs/{job['id']}").json()["spec"])
    body["mappings"] = [m for m in body["mappings"] if m["columnName"] != "n"]
    replaced = api.post("/jobs", json={**body, "replaceRunning": True})
    assert replaced.status_code == 201, replaced.text
    entries = {
        e["name"]: e for e in run("drift", "--format", "json", str(manifests)).json()["drift"]
    }
    assert entries["clicks-stream"]["status"] == "changed"
    assert "continues from the checkpoint" in entries["clicks-stream"]["detail"]


def test_a_warn_health_is_reported_but_fails_drift_only_when_asked(
    manifests: Path, api: httpx.Client
) -> None:
    started(manifests, api)
    assert api.post("/events/clicks", content=b"not json\n").status_code == 200
    result = run("drift", "--format", "json", str(manifests))
    assert result.exit_code == 0, result.stdout
    entries = {e["name"]: e for e in result.json()["drift"]}
    assert entries["clicks-stream"]["status"] == "unhealthy"
    assert "health warn" in entries["clicks-stream"]["detail"]
    asked = run("drift", "--fail-on", "unhealthy", str(manifests))
    assert asked.exit_code == 2


def test_an_error_health_on_a_job_in_sync_fails_drift(
    manifests: Path, api: httpx.Client, emulator: Emulator
) -> None:
    started(manifests, api)
    (job,) = streaming_jobs(api)
    with emulator.store.lock:  # Polaris reports an error on a job that still runs
        stored = emulator.store.jobs[job["id"]]
        health = {
            "status": "error",
            "code": "could_not_connect_to_source",
            "message": "the stream is unreachable",
        }
        emulator.store.put("jobs", job["id"], {**stored, "health": health})
    entries = {
        e["name"]: e for e in run("drift", "--format", "json", str(manifests)).json()["drift"]
    }
    assert entries["clicks-stream"]["status"] == "failed"
    assert "could_not_connect_to_source" in entries["clicks-stream"]["detail"]


def test_reset_happens_only_when_asked_and_moves_the_read_point_as_it_said(
    manifests: Path, api: httpx.Client, events: Events
) -> None:
    edit(manifests / "job.yaml", "  target:", "  readFromPoint: earliest\n  target:")
    started(manifests, api)
    events.send(4)
    refused = run("reset", "Clicks")  # no terminal to ask, and no --auto-approve
    assert refused.exit_code != 0
    assert "re-reads data" in refused.stderr
    assert counted(api) == dict.fromkeys(range(4), 1)
    done = run("reset", "--auto-approve", "Clicks")
    assert done.exit_code == 0, done.stdout + done.stderr
    assert counted(api) == dict.fromkeys(range(4), 2)  # earliest: everything read again
    assert run("reset", "--auto-approve", "Nothing").exit_code != 0


def test_import_writes_streaming_jobs_as_manifests_that_plan_no_change(
    manifests: Path, api: httpx.Client, tmp_path: Path
) -> None:
    edit(manifests / "job.yaml", "  target:", "  lateMessageRejectionPeriod: P7D\n  target:")
    started(manifests, api)
    (job,) = streaming_jobs(api)
    api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"})
    out = tmp_path / "imported"
    result = run("import", "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    written = "\n".join(p.read_text() for p in sorted(out.rglob("*.yaml")))
    assert "kind: StreamingJob" in written
    assert "status: suspended" in written and "lateMessageRejectionPeriod: P7D" in written
    assert "kind: IngestionJob" not in written
    plan = run("plan", "--detailed-exitcode", str(out))
    assert plan.exit_code == 0, plan.stdout + plan.stderr


BATCH = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: lake}
spec:
  type: s3
  bucket: lake
  awsEndpoint: s3.us-east-1.amazonaws.com
  awsAssumedRoleArn: arn:aws:iam::123456789012:role/lake
---
apiVersion: reconciler/v1
kind: IngestionJob
metadata: {name: backfill}
spec:
  type: batch
  target: {type: table, tableName: Clicks}
  source:
    type: s3
    connectionName: lake
    objects: [clicks/2025.json]
    formatSettings: {format: nd-json}
    inputSchema:
      - {name: ts, dataType: string}
      - {name: page, dataType: string}
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("ts")'}
    - {columnName: page, expression: '"page"'}
"""


def test_batch_and_streaming_jobs_into_one_table_each_ignore_the_other(
    manifests: Path, api: httpx.Client, tmp_path: Path
) -> None:
    write(manifests, "batch.yaml", BATCH)
    plan = plan_json(str(manifests))
    kinds = {c["name"]: (c["kind"], c["action"]) for c in plan["changes"]}
    assert kinds["backfill"] == ("IngestionJob", "create")
    assert kinds["clicks-stream"] == ("StreamingJob", "create")
    apply_all(str(manifests))
    plan = plan_json(str(manifests))
    assert {c["name"]: c["action"] for c in plan["changes"]} == dict.fromkeys(
        ["clicks", "clicks-v2", "lake", "Clicks", "backfill", "clicks-stream"], "noop"
    )
    assert not any("warnings" in c for c in plan["changes"])
    # Import with the batch jobs: the streaming job is a StreamingJob, never an IngestionJob.
    out, history = tmp_path / "imported", tmp_path / "history"
    assert run("import", "--jobs", "--out", str(out), "--history-out", str(history)).exit_code == 0
    written = [p.read_text() for p in [*out.rglob("*.yaml"), *history.rglob("*.yaml")]]
    jobs = [text for text in written if "kind: IngestionJob" in text]
    assert len(jobs) == 1 and "type: batch" in jobs[0]


def test_a_live_streaming_job_no_manifest_declares_is_unmanaged_and_keeps_its_connection(
    manifests: Path, api: httpx.Client
) -> None:
    started(manifests, api)
    (manifests / "job.yaml").unlink()
    write(manifests, "base.yaml", CONNECTIONS.split("---\n", 1)[1])  # clicks undeclared
    plan = plan_json("--prune", str(manifests))
    assert {"kind": "StreamingJob", "name": "Clicks"} in plan["unmanaged"]
    assert not [c for c in plan["changes"] if c["action"] == "delete"]  # clicks is in use
    assert not [c for c in plan["changes"] if c["kind"] == "IngestionJob"]


KAFKA = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: orders}
spec:
  type: kafka
  bootstrapServers: broker.example.com:9092
  topicName: orders-v1
  secrets: {type: sasl_plain, username: "${env:KAFKA_USER}", password: "${env:KAFKA_PASSWORD}"}
---
apiVersion: reconciler/v1
kind: StreamingJob
metadata: {name: orders}
spec:
  target: {type: table, tableName: Orders}
  createTableIfNotExists: true
  source:
    type: connection
    connectionName: orders
    formatSettings: {format: nd-json}
    inputSchema: [{name: ts, dataType: string}]
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("ts")'}
"""


def test_a_connection_change_that_moves_a_running_job_to_another_topic_is_caught(
    served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_USER", "reconciler")
    monkeypatch.setenv("KAFKA_PASSWORD", "kafka-password-never-shown")
    folder = tmp_path / "kafka"
    write(folder, "orders.yaml", KAFKA)
    apply_all(str(folder))
    edit(folder / "orders.yaml", "topicName: orders-v1", "topicName: orders-v2")
    plan = plan_json(str(folder))
    (job,) = [c for c in plan["changes"] if c["kind"] == "StreamingJob"]
    assert (job["action"], job["why"]) == ("update", "checkpoint-change")
    assert "reads topic orders-v2, not topic orders-v1" in job["reason"]
    assert job["dependsOn"] == ["Connection/orders"]
    refused = run("apply", "--auto-approve", str(folder))
    assert refused.exit_code != 0 and "--allow-checkpoint-change" in refused.stderr
    apply_all("--allow-checkpoint-change", str(folder))
    assert run("plan", "--detailed-exitcode", str(folder)).exit_code == 0


ROOT = Path(__file__).resolve().parents[2]


def test_the_streaming_job_spec_has_the_fields_of_the_openapi_create_request_and_status() -> None:
    openapi = json.loads((ROOT / "tests/reference/polaris-openapi-full.json").read_text())
    request = openapi["components"]["schemas"]["CreateStreamingJobRequest"]["allOf"][1]
    spec = json.loads((ROOT / "schemas/streaming-job.schema.json").read_text())
    declared = set(spec["definitions"]["spec"]["properties"])
    # type is always streaming and replaceRunning is apply's choice; status is the manifest's.
    assert declared == set(request["properties"]) - {"replaceRunning"} | {"status"}
    read_from = openapi["components"]["schemas"]["StreamingReadFromPoint"]
    assert set(spec["definitions"]["spec"]["properties"]["readFromPoint"]["enum"]) == set(
        read_from["enum"]
    )


@pytest.mark.parametrize("fault", ["drop", "500"])
def test_a_create_whose_answers_are_lost_or_refused_leaves_exactly_one_job(
    manifests: Path, api: httpx.Client, emulator: Emulator, fault: str
) -> None:
    emulator.faults.inject(fault, method="POST", path_contains="/jobs", times=3)  # type: ignore[arg-type]
    apply_all(str(manifests))
    assert len(streaming_jobs(api)) == 1
    assert only_change(plan_json(str(manifests)))["action"] == "noop"


def test_a_replacement_planned_before_someone_else_replaced_the_job_is_not_applied_over_it(
    manifests: Path, api: httpx.Client, tmp_path: Path
) -> None:
    started(manifests, api)
    edit(manifests / "job.yaml", "expression: '\"page\"'", "expression: 'UPPER(\"page\")'")
    saved = tmp_path / "plan.json"
    assert run("plan", "--out", str(saved), str(manifests)).exit_code in (0, 2)
    (job,) = streaming_jobs(api)
    body = dict(api.get(f"/jobs/{job['id']}").json()["spec"])
    body["mappings"] = [m for m in body["mappings"] if m["columnName"] != "n"]
    assert api.post("/jobs", json={**body, "replaceRunning": True}).status_code == 201
    result = run("apply", "--auto-approve", str(saved))
    assert result.exit_code == 1
    assert len(streaming_jobs(api, "pending", "running")) == 1


def test_the_manifest_the_streaming_guide_shows_validates(tmp_path: Path) -> None:
    guide = (ROOT / "docs/guide/streaming.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    write(tmp_path, "clicks.yaml", example)
    result = run("validate", str(tmp_path))
    assert result.exit_code == 0, result.stdout + result.stderr


def test_a_connection_change_under_a_streaming_job_no_manifest_declares_warns_of_the_checkpoint(
    served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_USER", "reconciler")
    monkeypatch.setenv("KAFKA_PASSWORD", "kafka-password-never-shown")
    folder = tmp_path / "kafka"
    write(folder, "orders.yaml", KAFKA)
    apply_all(str(folder))
    connection_only = KAFKA.split("---\n", 1)[0].replace("orders-v1", "orders-v2")
    write(folder, "orders.yaml", connection_only)
    plan = plan_json(str(folder))
    (change,) = [c for c in plan["changes"] if c["kind"] == "Connection"]
    assert change["action"] == "update"
    (warning,) = change["warnings"]
    assert warning.startswith("CHECKPOINT: the streaming jobs of tables Orders")
    assert "topic orders-v2 instead of topic orders-v1" in warning


def test_a_plan_with_one_worker_reads_a_live_streaming_job_without_waiting_on_itself(
    manifests: Path, api: httpx.Client
) -> None:
    started(manifests, api)
    # One worker: a read that waits in the pool for a read queued after it never ends. A
    # process of its own, so that such a wait fails the test instead of hanging the suite.
    command = [sys.executable, "-m", "reconciler", "plan", "--format", "json", "--parallelism", "1"]
    done = subprocess.run([*command, str(manifests)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert only_change(json.loads(done.stdout))["action"] == "noop"
