"""Streaming jobs on the emulator: one per table, on the clock, with a checkpoint per (table,
source); push streaming events land in the table through the batch engine and are queryable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, JobTiming, ManualClock
from tests.conformance import ConformanceLog
from tests.conftest import raw_client
from tests.connections import CONNECTIONS

NOW = "2026-01-01T00:00:00"  # the ManualClock's start


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def streamer(clock: ManualClock) -> Iterator[Emulator]:
    """An emulator on a manual clock: jobs stay pending 10 s; every response is conformant."""
    log = ConformanceLog()
    emulator = Emulator(clock=clock, timing=JobTiming(pending_seconds=10), response_observer=log)
    yield emulator
    emulator.close()
    assert not log.violations, "\n".join(log.violations)


@pytest.fixture
def api(streamer: Emulator) -> Iterator[httpx.Client]:
    with raw_client(streamer) as client:
        created = client.post("/connections", json={"type": "push_streaming", "name": "clicks"})
        assert created.status_code == 201, created.text
        yield client


def streaming_job(
    table: str = "Clicks", connection: str = "clicks", **changes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "streaming",
        "target": {"type": "table", "tableName": table},
        "createTableIfNotExists": True,
        "source": {
            "type": "connection",
            "connectionName": connection,
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [
                {"name": "ts", "dataType": "string"},
                {"name": "page", "dataType": "string"},
                {"name": "n", "dataType": "long"},
            ],
        },
        "mappings": [
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "page", "expression": '"page"'},
        ],
    }
    return {**body, **changes}


def events(*pages: str, at: str = NOW, start: int = 0) -> bytes:
    return "".join(
        json.dumps({"ts": f"{at}Z", "page": p, "n": start + i}) + "\n" for i, p in enumerate(pages)
    ).encode()


def push(api: httpx.Client, body: bytes, connection: str = "clicks") -> httpx.Response:
    return api.post(
        f"/events/{connection}", content=body, headers={"Content-Type": "application/json"}
    )


def sql(api: httpx.Client, query: str) -> Any:
    response = api.post("/query/sql", json={"query": query})
    assert response.status_code == 200, response.text
    return response.json()


def running_job(api: httpx.Client, clock: ManualClock, **changes: Any) -> dict[str, Any]:
    created = api.post("/jobs", json=streaming_job(**changes))
    assert created.status_code == 201, created.text
    clock.advance(10)
    job = api.get(f"/jobs/{created.json()['id']}").json()
    assert job["executionStatus"] == "running"
    return dict(job)


def test_a_streaming_job_is_pending_then_runs_on_the_clock_with_the_documented_defaults(
    api: httpx.Client, clock: ManualClock
) -> None:
    created = api.post("/jobs", json=streaming_job())
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["type"], job["executionStatus"]) == ("streaming", "pending")
    assert (job["readFromPoint"], job["lateMessageRejectionPeriod"]) == ("latest", "P30D")
    assert job["earlyMessageRejectionPeriod"] == "P2000D"
    assert "replaceRunning" not in job
    clock.advance(10)
    assert api.get(f"/jobs/{job['id']}/status").json()["executionStatus"] == "running"
    clock.advance(3600)
    assert api.get(f"/jobs/{job['id']}/status").json()["executionStatus"] == "running"


def test_an_event_pushed_to_a_running_jobs_connection_is_queryable_with_sql(
    api: httpx.Client, clock: ManualClock
) -> None:
    job = running_job(api, clock)
    assert push(api, events("home", "cart")).status_code == 200
    rows = sql(api, 'SELECT page FROM "Clicks" ORDER BY page')
    assert rows == [{"page": "cart"}, {"page": "home"}]
    totals = api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert totals["numRowsProcessed"] == 2
    assert api.get("/tables/Clicks").json()["totalRows"] == 2


def test_pushed_events_go_through_the_jobs_filter_and_rollup(
    api: httpx.Client, clock: ManualClock
) -> None:
    api.post("/tables", json={"name": "Pages", "type": "aggregate", "timeResolution": "hour"})
    running_job(
        api, clock, target={"type": "table", "tableName": "Pages"}, filterExpression="\"page\" <> 'admin'",
        mappings=[
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "page", "expression": '"page"'},
            {"columnName": "total", "expression": 'SUM("n")', "isAggregation": True},
        ],
    )  # fmt: skip
    push(api, events("home", "home", "admin", "cart"))
    rows = sql(api, 'SELECT page, total, "__count" FROM "Pages" ORDER BY page')
    assert rows == [
        {"page": "cart", "total": 3, "__count": 1},
        {"page": "home", "total": 1, "__count": 2},
    ]


def test_a_second_streaming_job_on_a_table_is_refused_unless_it_replaces_the_running_one(
    api: httpx.Client, clock: ManualClock
) -> None:
    first = running_job(api, clock)
    refused = api.post("/jobs", json=streaming_job())
    assert refused.status_code == 400
    assert first["id"] in refused.json()["message"]
    replaced = api.post("/jobs", json=streaming_job(replaceRunning=True))
    assert replaced.status_code == 201
    assert replaced.json()["id"] != first["id"]
    assert api.get(f"/jobs/{first['id']}").json()["executionStatus"] == "canceled"
    active = api.get("/jobs", params={"type": "streaming", "executionStatus": "pending"}).json()
    assert [j["id"] for j in active["values"]] == [replaced.json()["id"]]


def test_a_mapping_change_through_replace_running_continues_from_the_checkpoint(
    api: httpx.Client, clock: ManualClock
) -> None:
    running_job(api, clock)
    push(api, events("a", "b", "c", start=0))
    changed = streaming_job(replaceRunning=True, readFromPoint="earliest")
    changed["mappings"] = [*changed["mappings"], {"columnName": "n", "expression": '"n"'}]
    replacement = api.post("/jobs", json=changed).json()
    push(api, events("d", "e", start=3))  # while the replacement is still pending
    clock.advance(10)
    push(api, events("f", start=5))
    assert api.get(f"/jobs/{replacement['id']}/status").json()["executionStatus"] == "running"
    counted = sql(
        api, 'SELECT count(*) AS c, count(DISTINCT page) AS d, count("n") AS m FROM "Clicks"'
    )
    assert counted == [{"c": 6, "d": 6, "m": 3}]  # none lost, none twice; new mapping from d on


def test_a_job_reading_a_new_source_starts_at_its_read_from_point(
    api: httpx.Client, clock: ManualClock
) -> None:
    push(api, events("before"))
    running_job(api, clock)  # latest: what was pushed before the job is skipped
    push(api, events("after"))
    assert sql(api, 'SELECT page FROM "Clicks"') == [{"page": "after"}]
    running_job(api, clock, target={"type": "table", "tableName": "All"}, readFromPoint="earliest")
    assert sql(api, 'SELECT count(*) AS c FROM "All"') == [{"c": 2}]


def test_a_reset_to_earliest_reads_the_stream_again(api: httpx.Client, clock: ManualClock) -> None:
    job = running_job(api, clock)
    push(api, events("a", "b"))
    replacement = api.post(
        "/jobs", json=streaming_job(replaceRunning=True, readFromPoint="earliest")
    )
    clock.advance(10)
    api.get(f"/jobs/{replacement.json()['id']}")
    # Changing only readFromPoint does nothing until a reset.
    assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 2}]
    reset = api.post(f"/jobs/{replacement.json()['id']}/reset")
    assert (reset.status_code, reset.content) == (200, b"")
    assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 4}]  # re-read: twice each
    assert job["id"] != replacement.json()["id"]


def test_a_reset_to_latest_skips_what_was_not_read(api: httpx.Client, clock: ManualClock) -> None:
    job = running_job(api, clock)
    api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"})
    push(api, events("skipped"))
    api.post(f"/jobs/{job['id']}/reset")
    api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "running"})
    push(api, events("read"))
    assert sql(api, 'SELECT page FROM "Clicks"') == [{"page": "read"}]


def test_events_pushed_while_suspended_are_read_after_resume(
    api: httpx.Client, clock: ManualClock
) -> None:
    job = running_job(api, clock)
    push(api, events("a"))
    suspended = api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"})
    assert suspended.json()["executionStatus"] == "suspended"
    push(api, events("b", "c"))
    assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 1}]
    resumed = api.put(f"/jobs/{job['id']}", json={"desiredExecutionStatus": "running"})
    assert (resumed.json()["executionStatus"], resumed.json()["desiredExecutionStatus"]) == (
        "running",
        "running",
    )
    assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 3}]


def test_a_late_or_early_event_is_rejected_and_counted(
    api: httpx.Client, clock: ManualClock
) -> None:
    job = running_job(
        api, clock, lateMessageRejectionPeriod="P1D", earlyMessageRejectionPeriod="PT1H"
    )
    push(
        api,
        events("late", at="2025-12-30T00:00:00")
        + events("on-time")
        + events("early", at="2026-01-01T02:00:00"),
    )
    assert sql(api, 'SELECT page FROM "Clicks"') == [{"page": "on-time"}]
    totals = api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert (totals["numRowsProcessed"], totals["numRowsSkippedByFilter"]) == (1, 2)
    messages = [entry["message"] for entry in api.get(f"/jobs/{job['id']}/logs").json()["logs"]]
    assert "1 event(s) rejected as late messages (lateMessageRejectionPeriod P1D)" in messages
    assert "1 event(s) rejected as early messages (earlyMessageRejectionPeriod PT1H)" in messages


def test_unparseable_events_are_counted_and_fail_the_job_past_max_parse_exceptions(
    api: httpx.Client, clock: ManualClock
) -> None:
    job = running_job(api, clock, maxParseExceptions=1)
    push(api, b"not json\n" + events("ok"))
    seen = api.get(f"/jobs/{job['id']}").json()
    assert (seen["executionStatus"], seen["health"]["code"]) == ("running", "invalid_rows_found")
    assert api.get(f"/jobs/{job['id']}/metrics").json()["totals"]["numRowsSkippedByError"] == 1
    push(api, b"[1, 2]\n")
    failed = api.get(f"/jobs/{job['id']}").json()
    assert (failed["executionStatus"], failed["health"]["code"]) == (
        "failed",
        "cannot_parse_source",
    )


def test_events_are_refused_for_an_unknown_or_non_push_connection(api: httpx.Client) -> None:
    assert push(api, events("a"), connection="nowhere").status_code == 404
    api.post("/connections", json={**CONNECTIONS["kinesis/none"], "name": "kin"})
    assert push(api, events("a"), connection="kin").status_code == 400
    assert push(api, b"\n").status_code == 400


def test_kafka_and_kinesis_jobs_go_through_their_lifecycle_and_say_they_read_no_data(
    api: httpx.Client, clock: ManualClock
) -> None:
    for name, key in (("kaf", "kafka/sasl_plain"), ("kin", "kinesis/none")):
        assert api.post("/connections", json={**CONNECTIONS[key], "name": name}).status_code == 201
        job = running_job(api, clock, connection=name, target={"type": "table", "tableName": name})
        logs = api.get(f"/jobs/{job['id']}/logs").json()["logs"]
        assert any(entry["code"] == "no_data_read" for entry in logs)
        suspended = api.post(
            f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"}
        )
        assert suspended.json()["executionStatus"] == "suspended"
        canceled = api.post(
            f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "canceled"}
        )
        assert canceled.json()["executionStatus"] == "canceled"


def test_a_streaming_job_is_refused_on_a_batch_connection_or_with_a_bad_read_from_point(
    api: httpx.Client,
) -> None:
    api.post("/connections", json={**CONNECTIONS["s3/access_key"], "name": "bucket"})
    assert api.post("/jobs", json=streaming_job(connection="bucket")).status_code == 400
    assert api.post("/jobs", json=streaming_job(readFromPoint="middle")).status_code == 400
    late = streaming_job(lateMessageRejectionPeriod="30 days")
    assert "lateMessageRejectionPeriod" in api.post("/jobs", json=late).json()["message"]


def test_a_restarted_emulator_continues_from_the_checkpoint(
    tmp_path: Path, clock: ManualClock
) -> None:
    def started() -> Emulator:
        return Emulator(clock=clock, data_dir=tmp_path)

    first = started()
    with raw_client(first) as api:
        api.post("/connections", json={"type": "push_streaming", "name": "clicks"})
        api.post("/jobs", json=streaming_job())
        api.get("/jobs")  # instant timing: the job runs from here
        push(api, events("a", "b"))
    first.close()
    second = started()
    with raw_client(second) as api:
        push(api, events("c"))
        assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 3}]
    second.close()


def test_a_replacement_reading_another_source_starts_at_its_read_from_point(
    api: httpx.Client, clock: ManualClock
) -> None:
    api.post("/connections", json={"type": "push_streaming", "name": "views"})
    running_job(api, clock)
    push(api, events("old-source"))
    push(api, events("v1", "v2"), connection="views")
    moved = streaming_job(connection="views", replaceRunning=True, readFromPoint="earliest")
    assert api.post("/jobs", json=moved).status_code == 201
    clock.advance(10)
    push(api, events("v3"), connection="views")
    pages = sql(api, 'SELECT page FROM "Clicks" ORDER BY page')
    assert pages == [{"page": p} for p in ("old-source", "v1", "v2", "v3")]  # earliest: re-read
    push(api, events("meanwhile"))  # to clicks, which no job reads now
    back = streaming_job(replaceRunning=True)  # latest, but the table read clicks before:
    api.post("/jobs", json=back)  # it continues from that checkpoint and reads "meanwhile"
    clock.advance(10)
    push(api, events("new"))
    assert sql(api, 'SELECT count(*) AS c FROM "Clicks"') == [{"c": 6}]


def test_an_upsert_job_keeps_the_latest_version_of_each_key(
    api: httpx.Client, clock: ManualClock
) -> None:
    job = running_job(
        api, clock, enableUpserts=True, upsertKeyColumns=["page"], upsertVersionColumn="n",
        mappings=[
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "page", "expression": '"page"'},
            {"columnName": "n", "expression": '"n"'},
        ],
    )  # fmt: skip
    assert (job["enableUpserts"], job["upsertKeyColumns"]) == (True, ["page"])
    push(api, events("home", "cart", "home", start=0))  # home 0 and home 2 in one batch
    push(api, events("cart", start=7) + events("home", start=1))  # home 1 is older than home 2
    rows = sql(api, 'SELECT page, n FROM "Clicks" ORDER BY page')
    assert rows == [{"page": "cart", "n": 7}, {"page": "home", "n": 2}]
    assert api.get("/tables/Clicks").json()["totalRows"] == 2


def test_upsert_fields_are_refused_without_enable_upserts_or_naming_no_mapped_column(
    api: httpx.Client,
) -> None:
    alone = streaming_job(upsertKeyColumns=["page"], upsertVersionColumn="__time")
    assert "enableUpserts" in api.post("/jobs", json=alone).json()["message"]
    unknown = streaming_job(
        enableUpserts=True, upsertKeyColumns=["nowhere"], upsertVersionColumn="__time"
    )
    refused = api.post("/jobs", json=unknown)
    assert refused.status_code == 400
    assert "nowhere" in refused.json()["message"]
    keyless = streaming_job(enableUpserts=True, upsertVersionColumn="__time")
    assert api.post("/jobs", json=keyless).status_code == 400
