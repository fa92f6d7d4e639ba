"""Kinesis streaming jobs reading real records from a local Kinesis endpoint (moto's server):
from the checkpoint kept per (table, stream), on the clock, through the batch engine."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, JobTiming, ManualClock
from tests.conformance import ConformanceLog
from tests.conftest import raw_client
from tests.connections import CONNECTIONS
from tests.emulator.test_streaming import NOW, sql, streaming_job


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def kinesis(moto_endpoint: str) -> Any:
    """A boto3 Kinesis client on moto's server: what a producer would use."""
    import boto3  # moto's dependency; a slow import, only for these tests

    return boto3.client(
        "kinesis", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="producer", aws_secret_access_key="producer",
    )  # fmt: skip


@pytest.fixture
def stream(kinesis: Any) -> str:
    """A new stream of one shard (moto's state lasts the session, so each test has its own)."""
    name = f"clicks-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return name


@pytest.fixture
def streamer(clock: ManualClock, moto_endpoint: str) -> Iterator[Emulator]:
    """An emulator reading Kinesis from moto; jobs stay pending 10 s; responses are conformant."""
    log = ConformanceLog()
    emulator = Emulator(
        clock=clock, timing=JobTiming(pending_seconds=10), response_observer=log,
        kinesis_endpoint=moto_endpoint,
    )  # fmt: skip
    yield emulator
    emulator.close()
    assert not log.violations, "\n".join(log.violations)


@pytest.fixture
def api(streamer: Emulator, stream: str) -> Iterator[httpx.Client]:
    with raw_client(streamer) as client:
        connection = {**CONNECTIONS["kinesis/none"], "name": "kin", "stream": stream}
        created = client.post("/connections", json=connection)
        assert created.status_code == 201, created.text
        yield client


def put(kinesis: Any, stream: str, *pages: str, at: str = NOW, start: int = 0) -> None:
    """One record a page, each a JSON object, as a producer sends them."""
    records = [
        {"Data": json.dumps({"ts": f"{at}Z", "page": p, "n": start + i}).encode(),
         "PartitionKey": f"{p}-{start + i}"}
        for i, p in enumerate(pages)
    ]  # fmt: skip
    assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def kinesis_job(**changes: Any) -> dict[str, Any]:
    return streaming_job(connection="kin", **changes)


def started(api: httpx.Client, clock: ManualClock, **changes: Any) -> dict[str, Any]:
    created = api.post("/jobs", json=kinesis_job(**changes))
    assert created.status_code == 201, created.text
    clock.advance(10)
    job = api.get(f"/jobs/{created.json()['id']}").json()
    assert job["executionStatus"] == "running"
    return dict(job)


def count(api: httpx.Client, table: str = "Clicks") -> dict[str, int]:
    rows = sql(api, f'SELECT count(*) AS c, count(DISTINCT "page") AS d FROM "{table}"')
    return dict(rows[0])


def test_a_kinesis_job_reads_the_records_sent_after_it_was_created_into_its_table(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    put(kinesis, stream, "before")
    job = started(api, clock)  # readFromPoint latest: what the stream held is skipped
    put(kinesis, stream, "home", "cart")
    assert sql(api, 'SELECT page FROM "Clicks" ORDER BY page') == [
        {"page": "cart"},
        {"page": "home"},
    ]
    totals = api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert (totals["numRowsProcessed"], totals["numRowsSkippedByError"]) == (2, 0)
    assert api.get("/tables/Clicks").json()["totalRows"] == 2
    codes = [entry["code"] for entry in api.get(f"/jobs/{job['id']}/logs").json()["logs"]]
    assert "ingested" in codes and "no_data_read" not in codes


def test_a_kinesis_job_reading_from_earliest_reads_what_the_stream_already_holds(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    put(kinesis, stream, "a", "b")
    started(api, clock, readFromPoint="earliest")
    put(kinesis, stream, "c", start=2)
    assert count(api) == {"c": 3, "d": 3}


def test_records_sent_while_a_kinesis_job_is_suspended_are_read_after_resume_and_not_before(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    job = started(api, clock)
    put(kinesis, stream, "a")
    assert count(api) == {"c": 1, "d": 1}
    suspended = api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "suspended"})
    assert suspended.json()["executionStatus"] == "suspended"
    put(kinesis, stream, "b", "c", start=1)
    clock.advance(3600)
    assert count(api) == {"c": 1, "d": 1}  # nothing is read while suspended
    assert api.get(f"/jobs/{job['id']}/metrics").json()["totals"]["numRowsProcessed"] == 1
    resumed = api.post(f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "running"})
    assert resumed.json()["executionStatus"] == "running"
    assert count(api) == {"c": 3, "d": 3}


def test_a_replacement_kinesis_job_continues_from_the_checkpoint_losing_and_repeating_nothing(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    started(api, clock)
    put(kinesis, stream, "a", "b", "c")
    assert count(api) == {"c": 3, "d": 3}
    put(kinesis, stream, "d", start=3)  # read by the first job as the next request comes in
    changed = kinesis_job(replaceRunning=True, readFromPoint="earliest")
    changed["mappings"] = [*changed["mappings"], {"columnName": "n", "expression": '"n"'}]
    replacement = api.post("/jobs", json=changed)
    assert replacement.status_code == 201, replacement.text
    put(kinesis, stream, "e", start=4)  # while the replacement is still pending
    clock.advance(10)
    put(kinesis, stream, "f", start=5)
    status = api.get(f"/jobs/{replacement.json()['id']}/status").json()["executionStatus"]
    assert status == "running"
    counted = sql(
        api, 'SELECT count(*) AS c, count(DISTINCT page) AS d, count("n") AS m FROM "Clicks"'
    )
    assert counted == [{"c": 6, "d": 6, "m": 2}]  # none lost, none twice; new mapping from e on


def test_a_reset_moves_a_kinesis_jobs_read_point_to_its_read_from_point(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    job = started(api, clock)
    put(kinesis, stream, "a", "b")
    assert count(api) == {"c": 2, "d": 2}
    earliest = api.post("/jobs", json=kinesis_job(replaceRunning=True, readFromPoint="earliest"))
    clock.advance(10)
    assert count(api) == {"c": 2, "d": 2}  # a readFromPoint change alone does nothing
    assert api.post(f"/jobs/{earliest.json()['id']}/reset").status_code == 200
    assert count(api) == {"c": 4, "d": 2}  # earliest: the stream is read again
    latest = api.post("/jobs", json=kinesis_job(replaceRunning=True)).json()
    clock.advance(10)
    api.post(f"/jobs/{latest['id']}/status", json={"desiredExecutionStatus": "suspended"})
    put(kinesis, stream, "skipped", start=2)
    assert api.post(f"/jobs/{latest['id']}/reset").status_code == 200
    api.post(f"/jobs/{latest['id']}/status", json={"desiredExecutionStatus": "running"})
    put(kinesis, stream, "read", start=3)
    pages = sql(api, 'SELECT DISTINCT page FROM "Clicks" ORDER BY page')
    assert pages == [{"page": "a"}, {"page": "b"}, {"page": "read"}]  # latest: a gap
    assert job["id"] != latest["id"]


def test_every_shard_of_a_kinesis_stream_is_read(
    api: httpx.Client, clock: ManualClock, kinesis: Any
) -> None:
    wide = f"wide-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=wide, ShardCount=3)
    api.patch("/connections/kin", json={"type": "kinesis", "stream": wide})
    started(api, clock)
    pages = [f"p{i}" for i in range(30)]
    put(kinesis, wide, *pages)
    shards = {r["ShardId"] for r in kinesis.list_shards(StreamName=wide)["Shards"]}
    assert len(shards) == 3
    assert count(api) == {"c": 30, "d": 30}


def test_unparseable_and_late_kinesis_records_show_in_the_jobs_metrics_health_and_logs(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    job = started(api, clock, lateMessageRejectionPeriod="P1D")
    kinesis.put_record(StreamName=stream, Data=b"not json", PartitionKey="x")
    put(kinesis, stream, "late", at="2025-12-30T00:00:00")
    put(kinesis, stream, "ok")
    assert sql(api, 'SELECT page FROM "Clicks"') == [{"page": "ok"}]
    seen = api.get(f"/jobs/{job['id']}").json()
    assert (seen["executionStatus"], seen["health"]["status"]) == ("running", "warn")
    assert seen["health"]["code"] == "invalid_rows_found"
    totals = api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert (totals["numRowsProcessed"], totals["numRowsSkippedByError"]) == (1, 1)
    assert totals["numRowsSkippedByFilter"] == 1
    messages = [entry["message"] for entry in api.get(f"/jobs/{job['id']}/logs").json()["logs"]]
    assert "1 event(s) rejected as late messages (lateMessageRejectionPeriod P1D)" in messages


def test_a_kinesis_job_whose_stream_does_not_exist_says_so_in_its_health_until_it_can_read(
    api: httpx.Client, clock: ManualClock, kinesis: Any
) -> None:
    missing = f"later-{uuid.uuid4().hex[:8]}"
    api.patch("/connections/kin", json={"type": "kinesis", "stream": missing})
    job = started(api, clock, readFromPoint="earliest")
    health = api.get(f"/jobs/{job['id']}").json()["health"]
    assert (health["status"], health["code"]) == ("error", "could_not_connect_to_source")
    assert missing in health["message"]
    kinesis.create_stream(StreamName=missing, ShardCount=1)
    put(kinesis, missing, "a")
    assert count(api) == {"c": 1, "d": 1}
    seen = api.get(f"/jobs/{job['id']}").json()
    assert (seen["executionStatus"], seen["health"]) == ("running", {"status": "ok"})


def test_without_a_kinesis_endpoint_a_kinesis_job_reads_nothing_and_says_so(
    clock: ManualClock, stream: str
) -> None:
    emulator = Emulator(clock=clock)
    with raw_client(emulator) as client:
        connection = {**CONNECTIONS["kinesis/none"], "name": "kin", "stream": stream}
        client.post("/connections", json=connection)
        job = client.post("/jobs", json=kinesis_job()).json()
        logs = client.get(f"/jobs/{job['id']}/logs").json()["logs"]
        assert any("--kinesis-endpoint" in entry["message"] for entry in logs)
    emulator.close()


def test_the_emulator_command_reads_kinesis_from_the_endpoint_it_is_given(
    moto_endpoint: str,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0",
         "--kinesis-endpoint", moto_endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Polaris emulator listening on")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert f"Kinesis: streams are read through the Kinesis API at {moto_endpoint}" in stderr


def test_a_kinesis_connection_test_reaches_its_stream_through_the_endpoint(
    api: httpx.Client,
) -> None:
    assert api.post("/connections/kin/test").status_code == 200
    api.patch("/connections/kin", json={"type": "kinesis", "stream": "no-such-stream"})
    failed = api.post("/connections/kin/test")
    assert failed.status_code == 400
    assert "no-such-stream" in failed.json()["message"]


def test_a_restarted_emulator_continues_a_kinesis_stream_from_the_checkpoint(
    tmp_path: Any, clock: ManualClock, moto_endpoint: str, kinesis: Any, stream: str
) -> None:
    def opened() -> Emulator:
        return Emulator(clock=clock, data_dir=tmp_path, kinesis_endpoint=moto_endpoint)

    first = opened()
    with raw_client(first) as client:
        connection = {**CONNECTIONS["kinesis/none"], "name": "kin", "stream": stream}
        client.post("/connections", json=connection)
        client.post("/jobs", json=kinesis_job())
        client.get("/jobs")  # instant timing: the job runs from here
        put(kinesis, stream, "a", "b")
        assert count(client) == {"c": 2, "d": 2}
    first.close()
    put(kinesis, stream, "c", start=2)  # sent while the emulator is down
    second = opened()
    with raw_client(second) as client:
        assert count(client) == {"c": 3, "d": 3}
    second.close()


def test_a_kinesis_record_is_one_event_however_its_json_is_laid_out_or_one_event_a_line(
    api: httpx.Client, clock: ManualClock, kinesis: Any, stream: str
) -> None:
    started(api, clock)
    pretty = json.dumps({"ts": f"{NOW}Z", "page": "pretty", "n": 0}, indent=2)
    kinesis.put_record(StreamName=stream, Data=pretty.encode(), PartitionKey="a")
    two = "".join(json.dumps({"ts": f"{NOW}Z", "page": p, "n": 1}) + "\n" for p in ("x", "y"))
    kinesis.put_record(StreamName=stream, Data=two.encode(), PartitionKey="b")
    pages = sql(api, 'SELECT page FROM "Clicks" ORDER BY page')
    assert pages == [{"page": "pretty"}, {"page": "x"}, {"page": "y"}]
