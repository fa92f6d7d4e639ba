"""Push-streaming ingestion in events per second, beside DuckDB inserting the same rows directly.

The emulator side is a whole process that starts an emulator, creates a `push_streaming`
connection, an aggregate table (hourly rollup) and a streaming job reading it, then POSTs the
events to `/events/{connection}` a batch at a time through the in-process transport, and
checks with SQL that every event landed. Each POST is read at once by the running job: stored in
the stream, mapped, rolled up and committed with the job's checkpoint.

The baseline is what a competent user would write with DuckDB alone for the same batches: for
each batch, one `INSERT ... SELECT ... GROUP BY` over `read_json` of the batch, with the same
input types, the same hourly rollup (`max` and the `__count` Polaris adds) into the same table.
It keeps no stream, no checkpoint and no table statistics: the floor.

Both sides are whole processes (imports included) reading one file of events, as interleaved
pairs (benchmarks/harness.py), with bytecode for every module on both sides, as a wheel install
has it. `python -m benchmarks stream_bench` runs this row alone.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import harness
from benchmarks.plan_bench import with_bytecode

EVENTS = int(os.environ.get("BENCH_STREAM_EVENTS", "100000"))
BATCH = 1000  # events a POST: about 100 KB, well under the push API's request size
CITIES = [f"city-{n:03d}" for n in range(200)]
COLUMNS = "{timestamp: 'VARCHAR', city: 'VARCHAR', session: 'VARCHAR', session_length: 'BIGINT'}"
SCHEMA = [
    {"name": "timestamp", "dataType": "string"}, {"name": "city", "dataType": "string"},
    {"name": "session", "dataType": "string"}, {"name": "session_length", "dataType": "long"},
]  # fmt: skip


def write_events(path: Path, count: int) -> None:
    """`count` events of the last ten days (inside the job's late message rejection period)."""
    rng = random.Random(1)
    now = datetime.now(UTC).replace(microsecond=0)
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(count):
            at = now - timedelta(seconds=rng.randrange(10 * 86400))
            event = {"timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "city": rng.choice(CITIES),
                     "session": f"S{rng.randrange(100000):05d}",
                     "session_length": rng.randrange(5, 5000)}  # fmt: skip
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def batches(path: Path) -> list[bytes]:
    """The file's events, BATCH lines a batch."""
    lines = path.read_bytes().splitlines(keepends=True)
    return [b"".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]


def emulator_side(path: Path) -> None:
    """Push every batch to a running streaming job and check that every event landed."""
    import httpx

    from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

    emulator = Emulator()
    base = f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}"
    with httpx.Client(
        base_url=base, transport=emulator.transport(), auth=(DEMO_API_KEY, "")
    ) as api:
        api.post(
            "/connections", json={"type": "push_streaming", "name": "events"}
        ).raise_for_status()
        table = {"name": "sessions", "type": "aggregate", "timeResolution": "hour"}
        api.post("/tables", json=table).raise_for_status()
        job = {
            "type": "streaming", "target": {"type": "table", "tableName": "sessions"},
            "source": {"type": "connection", "connectionName": "events",
                       "formatSettings": {"format": "nd-json"}, "inputSchema": SCHEMA},
            "mappings": [
                {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'},
                {"columnName": "city", "expression": '"city"'},
                {"columnName": "longest", "expression": 'MAX("session_length")',
                 "isAggregation": True},
            ],
        }  # fmt: skip
        job_id = api.post("/jobs", json=job).json()["id"]
        if api.get(f"/jobs/{job_id}").json()["executionStatus"] != "running":
            raise SystemExit("stream_bench: the streaming job is not running")
        headers = {"Content-Type": "application/json"}
        for batch in batches(path):
            api.post("/events/events", content=batch, headers=headers).raise_for_status()
        total = api.post("/query/sql", json={"query": 'SELECT sum("__count") AS n FROM sessions'})
        landed = total.json()[0]["n"]
    emulator.close()
    if landed != EVENTS:
        raise SystemExit(f"stream_bench: {landed} of {EVENTS} events landed")


def duckdb_side(path: Path) -> None:
    """The same batches into the same rolled-up table with DuckDB alone."""
    import duckdb

    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(
        'CREATE TABLE sessions (__time TIMESTAMP, city VARCHAR, longest BIGINT, "__count" BIGINT)'
    )
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as scratch:
        batch_path = Path(scratch) / "batch.json"
        for batch in batches(path):
            batch_path.write_bytes(batch)
            db.execute(
                "INSERT INTO sessions SELECT date_trunc('hour', strptime(timestamp, "
                "'%Y-%m-%dT%H:%M:%SZ')), city, max(session_length), count(*) FROM read_json("
                f"'{batch_path}', format = 'newline_delimited', columns = {COLUMNS}) GROUP BY 1, 2"
            )
    row = db.execute('SELECT sum("__count") FROM sessions').fetchone()
    db.close()
    if row is None or row[0] != EVENTS:
        raise SystemExit(f"stream_bench: DuckDB holds {row} of {EVENTS} events")


def run() -> dict[str, object]:
    """Interleaved pairs of the two whole processes; print events/s and the ratio."""
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as scratch:
        path = Path(scratch) / "events.json"
        write_events(path, EVENTS)
        argv = [sys.executable, "-m", "benchmarks.stream_bench"]
        ours, theirs = [*argv, "emulator", str(path)], [*argv, "duckdb", str(path)]
        env = with_bytecode(dict(os.environ), Path(scratch) / "pycache", [ours, theirs])
        row = harness.compare(
            f"push streaming, {EVENTS:,} events in POSTs of {BATCH:,} into an hourly rollup "
            "(time; goal: 0.25x DuckDB's throughput)",
            harness.Command(ours, env),
            harness.Command(theirs, env),
            tool_label="emulator (POST /events, whole process)",
            baseline_label="DuckDB alone, INSERT ... SELECT a batch",
            caches="bytecode for both; events file in the page cache",
            goal_ratio=4.0,
        )
    rates = [EVENTS / s for s in row.tool_seconds]
    alone = [EVENTS / s for s in row.baseline_seconds]
    print(
        f"push streaming: {harness.spread(rates)} events/s through the emulator; DuckDB alone "
        f"{harness.spread(alone)} events/s (load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    return {"events": EVENTS, "batch": BATCH, "seconds": row.tool_seconds,
            "duckdb_alone_seconds": row.baseline_seconds,
            "events_per_second": round(EVENTS / min(row.tool_seconds))}  # fmt: skip


if __name__ == "__main__":
    side = {"emulator": emulator_side, "duckdb": duckdb_side}[sys.argv[1]]
    side(Path(sys.argv[2]))
