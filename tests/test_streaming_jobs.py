"""StreamingJob end to end, through the command line, against the emulator with real push events.

Each event carries a sequence number `n`, so that SQL through the emulator's query API counts
what reached the table: nothing lost and nothing twice across a replacement, a re-read counted
with `earliest`, a gap with `latest`.
"""

from __future__ import annotations

import json
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
    refused = run("apply", "--auto-approve", str(manifests))
    assert refused.exit_code != 0
    assert "--allow-checkpoint-change" in refused.stderr
    assert "StreamingJob/clicks-stream" in refused.stderr
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
