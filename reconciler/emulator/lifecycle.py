"""A batch job's life: pending -> running -> completed (or failed, canceled) on the clock.

With a data source a job completes only once its rows are in its table (engine.py); without
one, row counts are invented (`invented_rows`). Every function here runs under the store's lock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from reconciler.emulator.api import interval_bounds, invalid
from reconciler.emulator.clock import job_timestamp
from reconciler.emulator.files import BUCKET
from reconciler.emulator.state import INSTANT, TERMINAL, JobTiming
from reconciler.emulator.tables import druid_type, queryable_schema
from reconciler.s3 import DirectorySource

if TYPE_CHECKING:
    from reconciler.emulator.state import Project

__all__ = ["INSTANT", "NO_DATA", "TERMINAL", "JobTiming"]

NO_DATA = (
    "No data is read: the emulator runs without --s3-dir or --s3-endpoint, so row counts are "
    "invented and queries have nothing to answer"
)


def invented_rows(job_id: str) -> int:
    """A deterministic row count for a job completed without a data source."""
    return 1000 + int(hashlib.sha256(job_id.encode()).hexdigest()[:6], 16) % 9000


def advance(emulator: Project) -> None:
    """Move every active job along as the clock says."""
    if not emulator.active:
        return
    now = emulator.now()
    for job_id in emulator.clocked_jobs():  # held and pinned jobs stay as they are
        job = emulator.store.jobs[job_id]
        if job["type"] == "streaming":
            continue  # streaming jobs never complete: streaming.advance starts them
        started = emulator.timing.started(job)
        finished = started + timedelta(seconds=emulator.timing.running_seconds)
        if now >= finished:
            finish(emulator, job, started=started, finished=finished)
        elif now >= started and job["executionStatus"] == "pending":
            transition(emulator, job, "running", started=started)


def transition(
    emulator: Project, job: dict[str, Any], status: str, *, started: datetime | None = None,
    finished: datetime | None = None, health: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Record a job's new status, with the timestamps and health that go with it."""
    job = dict(job)
    now = emulator.now()
    if status != "pending" and "startedTimestamp" not in job:
        job["startedTimestamp"] = job_timestamp(started or now)
    if status in TERMINAL:
        job["completedTimestamp"] = job_timestamp(finished or now)
    job["executionStatus"] = status
    job["lastUpdatedTimestamp"] = job_timestamp(finished or started or now)
    if health is not None:
        job["health"] = health
    store = emulator.store
    if status == "completed" and not emulator.reads_data and job["type"] == "batch":
        table = store.tables.get(job["target"]["tableName"])
        if table is not None:  # completed jobs fill their table, so "non-empty" is real
            rows = invented_rows(job["id"])
            store.put("tables", table["name"], {
                **table, "totalRows": table["totalRows"] + rows, "segmentCount": table["segmentCount"] + 1,
                "totalDataSizeBytes": table["totalDataSizeBytes"] + rows * 120,
            })  # fmt: skip
    if status in TERMINAL:
        emulator.active.discard(job["id"])
    if status in ("failed", "canceled") and emulator.opened_engine is not None:
        emulator.opened_engine.cancel(job["id"])  # whatever it read is dropped, nothing lands
    store.put("jobs", job["id"], job)


def error_health(code: str, message: str, moment: datetime) -> dict[str, Any]:
    """A failed job's health, with the log entry Polaris attaches."""
    log = {
        "timestamp": job_timestamp(moment),
        "healthStatus": "error",
        "code": code,
        "message": message,
    }
    return {"status": "error", "code": code, "message": message, "log": log}


def finish(
    emulator: Project,
    job: dict[str, Any],
    *,
    started: datetime | None = None,
    finished: datetime | None = None,
) -> None:
    """Complete a due job: with data, only once its rows are in its table (or fail it)."""
    from reconciler.emulator.ingest import Failure  # DuckDB loads only when data is read

    if job["type"] == "sql" and emulator.reads_data:
        try:
            run_sql_job(emulator, job)
        except Failure as failure:
            health = error_health(failure.code, failure.message, finished or emulator.now())
            transition(emulator, job, "failed", started=started, finished=finished, health=health)
            return
    elif job["type"] in ("drop_table", "delete_data", "restore_data"):
        apply_table_job(emulator, job)
    if job["type"] != "batch":
        transition(emulator, job, "completed", started=started, finished=finished)
        return
    if not emulator.reads_data:
        transition(emulator, job, "completed", started=started, finished=finished)
        return

    engine, store = emulator.engine, emulator.store
    job_id, table_name = job["id"], job["target"]["tableName"]
    metrics = engine.committed(job_id)  # ingested before a restart: never twice
    warning = None
    if metrics is None:
        if not engine.tracking(job_id):
            submit(emulator, job)
        try:
            staged = engine.outcome(job_id)  # waits while the rows are still coming
            engine.commit(job_id, staged)
        except Failure as failure:
            health = error_health(failure.code, failure.message, finished or emulator.now())
            transition(emulator, job, "failed", started=started, finished=finished, health=health)
            return
        metrics, warning = staged.metrics, staged.warning
    stats = engine.stats(table_name)
    table = store.tables.get(table_name)
    if table is not None:
        stored = [(name, druid_type(kind)) for name, kind in engine.columns(table_name)]
        store.put("tables", table_name, {
            **table, "totalRows": stats.rows, "segmentCount": stats.segments,
            "totalDataSizeBytes": stats.bytes, "segmentTotalBytes": stats.bytes,
            "queryableSchema": queryable_schema(table, stored),
        })  # fmt: skip
    warned: dict[str, Any] | None = None
    if warning is not None:
        log = {"timestamp": job_timestamp(finished or emulator.now()), "healthStatus": "warn",
               "code": "invalid_rows_found", "message": warning}  # fmt: skip
        warned = {"status": "warn", "code": "invalid_rows_found", "log": log}
    job = {**job, "_metrics": metrics}
    transition(emulator, job, "completed", started=started, finished=finished, health=warned)


# The SQL ingestion statements the emulator runs: INSERT, or REPLACE ... OVERWRITE ALL, of a
# SELECT over the project's tables, with Druid's PARTITIONED BY (and optional CLUSTERED BY).
SQL_JOB = re.compile(
    r'^\s*(?P<verb>INSERT|REPLACE)\s+INTO\s+(?P<table>"(?:[^"]|"")+"|[A-Za-z_][\w]*)\s+'
    r"(?P<overwrite>OVERWRITE\s+(?:ALL|WHERE\b.*?)\s+)?(?P<select>(?:SELECT|WITH)\b.*?)"
    r"\s+PARTITIONED\s+BY\s+(?P<partition>.+?)(?:\s+CLUSTERED\s+BY\s+.+?)?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def parse_sql_job(query: str) -> tuple[str, str, bool]:
    """(target table, SELECT, whether it replaces every row) of an sql job (400 otherwise)."""
    found = SQL_JOB.match(query)
    if found is None:
        raise invalid(
            "The emulator runs sql jobs of the form INSERT INTO t SELECT ... PARTITIONED BY ..., "
            "or REPLACE INTO t OVERWRITE ALL SELECT ... PARTITIONED BY ..."
        )
    if "EXTERN" in found["select"].upper():
        raise invalid("EXTERN is not supported by the emulator in sql jobs: use a batch job")
    overwrite = (found["overwrite"] or "").split()
    if found["verb"].upper() == "REPLACE" and [w.upper() for w in overwrite] != [
        "OVERWRITE",
        "ALL",
    ]:
        raise invalid("The emulator runs REPLACE only with OVERWRITE ALL (not OVERWRITE WHERE)")
    if found["verb"].upper() == "INSERT" and overwrite:
        raise invalid("INSERT takes no OVERWRITE clause; use REPLACE")
    table = found["table"]
    name = table[1:-1].replace('""', '"') if table.startswith('"') else table
    return name, found["select"], found["verb"].upper() == "REPLACE"


def run_sql_job(emulator: Project, job: Mapping[str, Any]) -> None:
    """Run an sql job's SELECT into its table; raises Failure."""
    from reconciler.emulator.ingest import GRANULARITY_PERIODS, Failure  # deferred: DuckDB

    store, engine = emulator.store, emulator.engine
    name, select, replace = parse_sql_job(job["query"])
    table = store.tables.get(name)
    if table is None:
        raise Failure("table_not_found", f"Table {name} was dropped before the job ran")
    period = GRANULARITY_PERIODS.get(table.get("partitioningGranularity", "day"), "P1D")
    engine.insert_select(name, select, sorted(store.tables), replace, period)
    stats = engine.stats(name)
    stored = [(column, druid_type(kind)) for column, kind in engine.columns(name)]
    store.put("tables", name, {
        **table, "totalRows": stats.rows, "segmentCount": stats.segments,
        "totalDataSizeBytes": stats.bytes, "segmentTotalBytes": stats.bytes,
        "queryableSchema": queryable_schema(table, stored),
    })  # fmt: skip


def apply_table_job(emulator: Project, job: Mapping[str, Any]) -> None:
    """What a drop_table, delete_data or restore_data job does to its table, as it completes."""
    from reconciler.emulator.ingest import GRANULARITY_PERIODS  # deferred: DuckDB

    store, name = emulator.store, job["target"]["tableName"]
    table = store.tables.get(name)
    if table is None:
        return  # dropped meanwhile: nothing left to change
    engine = emulator.engine if emulator.reads_data else None
    period = GRANULARITY_PERIODS.get(table.get("partitioningGranularity", "day"), "P1D")
    if job["type"] == "drop_table":
        if engine is not None:
            engine.drop(name)
        store.delete("tables", name)
        return
    if job["type"] == "delete_data":
        everything = job.get("deleteAll") is True
        intervals = None if everything else [interval_bounds(i) for i in job["target"]["intervals"]]
        if engine is not None:
            engine.delete(name, intervals, job.get("softDelete") is True, period)
        elif everything:  # without data the rows were invented; all of them can still go
            store.put("tables", name, {**table, "totalRows": 0, "segmentCount": 0,
                                       "totalDataSizeBytes": 0, "segmentTotalBytes": 0})  # fmt: skip
    elif engine is not None:  # restore_data
        engine.restore(name, interval_bounds(job["interval"]), period)
    if engine is not None:
        stats = engine.stats(name)
        store.put("tables", name, {
            **table, "totalRows": stats.rows, "segmentCount": stats.segments,
            "totalDataSizeBytes": stats.bytes, "segmentTotalBytes": stats.bytes,
        })  # fmt: skip


def submit(emulator: Project, job: Mapping[str, Any]) -> None:
    """Start reading a job's objects, off the request's thread."""
    assert emulator.data is not None
    spec = job.get("spec", job)
    table = emulator.store.tables.get(job["target"]["tableName"], {})
    if job["source"]["type"] == "uploaded":
        # Uploaded files are the objects of one bucket: the same selection and reading as S3.
        connection: Mapping[str, Any] = {"type": "uploaded", "bucket": BUCKET}
        files = {**spec["source"], "objects": spec["source"]["fileList"]}
        source: Any = DirectorySource(emulator.files_root)
        emulator.engine.submit(job, {**spec, "source": files}, connection, table, source)
        return
    connection = emulator.store.connections.get(job["source"]["connectionName"], {})
    source = emulator.data.for_connection(connection)
    emulator.engine.submit(job, spec, connection, table, source)


def cancel(emulator: Project, job: dict[str, Any]) -> None:
    """Cancel an active job: it ends canceled and nothing it read lands."""
    canceled = {"status": "error", "code": "canceled", "message": "The job was canceled"}
    transition(emulator, {**job, "desiredExecutionStatus": "canceled"}, "canceled", health=canceled)


def progress(emulator: Project, job: Mapping[str, Any]) -> float:
    """The share of a job done: never ahead of the clock, nor of the data read."""
    status = job["executionStatus"]
    share = {"pending": 0.0, "running": 0.5, "completed": 1.0}.get(status, 0.0)
    if status == "running" and emulator.timing.running_seconds:
        elapsed = (emulator.now() - emulator.timing.started(job)).total_seconds()
        share = max(0.0, min(0.99, elapsed / emulator.timing.running_seconds))
    if status == "running" and emulator.opened_engine is not None:
        read = emulator.opened_engine.progress(job["id"])  # the share of the bytes read so far
        if read is not None:
            share = min(share, 0.99 * read)
    return share
