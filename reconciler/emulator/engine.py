"""The emulator's table storage: one DuckDB database per project, filled by real ingestion.

Jobs ingest on worker threads into staging tables; `commit` moves a job's rows into its table,
records its segments and marks the job as ingested in the same DuckDB transaction. The JSON
journal (store.py) records the job as completed only after that commit, and a restarted emulator
completes any job the database already holds (`committed`) instead of ingesting it twice.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from reconciler.emulator.druid import UnsupportedSql, period_interval, translate_query
from reconciler.emulator.ingest import Failure, Progress, Staged, ingest, quoted, scratch_tables
from reconciler.s3 import Credentials, DirectorySource, ObjectSource, S3Api, region_of

SEGMENTS, INGESTED = "__polaris_segments", "__polaris_ingested"
# Pushed events, numbered from 1 per stream, and how far each (table, source) has read them.
EVENTS, CHECKPOINTS = "__polaris_events", "__polaris_checkpoints"
# A read point: the last pushed event read, or the last sequence number read per Kinesis shard.
Point = int | Mapping[str, str]
TRASH = "__trash_"  # before a storage name: the soft-deleted rows that restore_data brings back
LAYOUT = "__polaris_layout"  # present once tables are stored under `storage_name`
_INTEGERS = "('TINYINT','SMALLINT','INTEGER','BIGINT','HUGEINT','UTINYINT','USMALLINT','UINTEGER','UBIGINT')"


@dataclass(frozen=True)
class DataSource:
    """Where objects come from: a directory of buckets, or an S3-compatible endpoint."""

    directory: Path | None = None
    endpoint: str | None = None

    def describe(self) -> str:
        """One line for logs and the start-up banner."""
        if self.directory is not None:
            return f"objects are read from the directory {self.directory} (DIR/BUCKET/KEY)"
        return f"objects are read through the S3 API at {self.endpoint}"

    def for_connection(self, connection: Mapping[str, Any]) -> ObjectSource:
        """The objects a connection can read; access keys sign requests, a role is not assumed."""
        if self.directory is not None:
            return DirectorySource(self.directory)
        assert self.endpoint is not None
        secrets = connection.get("secrets") or {}
        credentials = (
            Credentials(secrets["accessKeyId"], secrets["accessKeySecret"])
            if secrets.get("type") == "access_key"
            else None
        )
        return S3Api(self.endpoint, credentials, region_of(connection.get("awsEndpoint", "")))


@dataclass(frozen=True)
class TableStats:
    """What a table's record reports about its data."""

    rows: int
    bytes: int
    segments: int


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of a query, values as JSON would carry them."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


class QueryError(Exception):
    """A query that cannot be answered: Druid's error code and category."""

    def __init__(self, code: str, category: str, message: str) -> None:
        super().__init__(message)
        self.code, self.category, self.message = code, category, message


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return value


def storage_name(table: str) -> str:
    """The DuckDB table that holds a Polaris table's rows.

    Polaris table names are case-sensitive (they are Druid datasource names, and Druid SQL
    identifiers are case-sensitive; the reference documents say nothing else), so `t1` and `T1`
    are two tables. DuckDB compares identifiers without case, so the rows live under a name
    that is unique for each spelling: the name's UTF-8 bytes in hex.
    """
    return "table_" + table.encode("utf-8").hex()


def _size(types: Sequence[Sequence[Any]]) -> str:
    """The SQL for a row's size in bytes, from DESCRIBE's (name, type, ...) rows."""
    return " + ".join(
        f"coalesce(strlen(CAST({quoted(name)} AS VARCHAR)), 0)" if kind == "VARCHAR" else "8"
        for name, kind, *_ in types
    )


def _within(intervals: Sequence[tuple[datetime, datetime]] | None) -> tuple[str, list[Any]]:
    """A WHERE clause for rows in any of the intervals (every row for None), and its values."""
    if intervals is None:
        return "TRUE", []
    clauses = ['("__time" >= ? AND "__time" < ?)'] * len(intervals)
    return " OR ".join(clauses) or "FALSE", [b for pair in intervals for b in pair]


class Engine:
    """DuckDB storage for one project, and the threads that ingest into it."""

    def __init__(self, path: Path | None) -> None:
        self.db = duckdb.connect(str(path) if path is not None else ":memory:")
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute(
            f"CREATE MACRO IF NOT EXISTS druid_div(a, b) AS CASE WHEN typeof(a) IN {_INTEGERS} "
            f"AND typeof(b) IN {_INTEGERS} THEN a // b ELSE a / b END"
        )
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {SEGMENTS} (tbl VARCHAR, job VARCHAR, chunk TIMESTAMP, "
            "num_rows BIGINT, num_bytes BIGINT)"
        )
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {INGESTED} (job VARCHAR PRIMARY KEY, metrics VARCHAR)"
        )
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {EVENTS} (stream VARCHAR, seq BIGINT, line VARCHAR)"
        )
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (tbl VARCHAR, source VARCHAR, seq BIGINT, "
            "PRIMARY KEY (tbl, source))"
        )
        # A Kinesis stream's read point: the last sequence number read per shard, as JSON.
        self.db.execute(f"ALTER TABLE {CHECKPOINTS} ADD COLUMN IF NOT EXISTS shards VARCHAR")
        self._store_tables_by_storage_name()
        for (name,) in self.db.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_\\_raw\\_%' ESCAPE '\\' "
            "OR table_name LIKE '\\_\\_stage\\_%' ESCAPE '\\'"
        ).fetchall():
            self.db.execute(f"DROP TABLE {quoted(name)}")  # a job in flight when the emulator died
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="polaris-ingest")
        self.jobs: dict[str, tuple[Future[Staged], Progress]] = {}
        self.lock = threading.Lock()
        self._heads: dict[str, int] = {}  # the last event of each stream read so far (head())

    def _store_tables_by_storage_name(self) -> None:
        """Move the tables of a database written before `storage_name` existed under it."""
        if self.db.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [LAYOUT]
        ).fetchone() != (0,):
            return
        for (name,) in self.db.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND NOT starts_with(table_name, '__')"
        ).fetchall():
            self.db.execute(f"ALTER TABLE {quoted(name)} RENAME TO {quoted(storage_name(name))}")
        self.db.execute(f"CREATE TABLE {LAYOUT} (version INTEGER)")
        self.db.execute(f"INSERT INTO {LAYOUT} VALUES (1)")

    def close(self) -> None:
        """Stop ingesting and close the database."""
        for _, progress in self.jobs.values():
            progress.canceled.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.db.close()

    # Ingestion ---------------------------------------------------------------------------------

    def submit(
        self, job: Mapping[str, Any], spec: Mapping[str, Any], connection: Mapping[str, Any],
        table: Mapping[str, Any], source: ObjectSource,
    ) -> None:  # fmt: skip
        """Start ingesting a job on a worker thread."""
        progress = Progress()

        def check() -> None:
            if progress.canceled.is_set():
                raise Failure("canceled", "The job was canceled")

        def run() -> Staged:
            cursor = self.db.cursor()
            try:
                return ingest(cursor, job, spec, connection, table, source, progress, check)
            except BaseException:
                for name in scratch_tables(job["id"]):  # a failed job leaves nothing behind
                    cursor.execute(f"DROP TABLE IF EXISTS {quoted(name)}")
                raise
            finally:
                cursor.close()
                if isinstance(source, S3Api):
                    source.close()

        with self.lock:
            self.jobs[job["id"]] = (self.pool.submit(run), progress)

    def progress(self, job_id: str) -> float | None:
        """How much of a job's input has been read (None: not ingesting here)."""
        entry = self.jobs.get(job_id)
        if entry is None:
            return None
        return 1.0 if entry[0].done() else entry[1].fraction()

    def outcome(self, job_id: str) -> Staged:
        """Wait for a job's ingestion; raises Failure when it failed."""
        future, _ = self.jobs[job_id]
        try:
            return future.result()
        except Failure:
            raise
        except Exception as error:  # a bug or an I/O error: the job fails, the emulator does not
            raise Failure("internal_error", f"{type(error).__name__}: {error}") from None

    def tracking(self, job_id: str) -> bool:
        """Whether the job is being ingested by this engine."""
        return job_id in self.jobs

    def cancel(self, job_id: str) -> None:
        """Stop a job's ingestion and drop whatever it staged."""
        entry = self.jobs.pop(job_id, None)
        if entry is None:
            return
        entry[1].canceled.set()
        entry[0].add_done_callback(lambda done: self._drop_staging(done))

    def _drop_staging(self, future: Future[Staged]) -> None:
        try:
            staged = future.result()
        except Exception:
            return
        cursor = self.db.cursor()
        try:
            cursor.execute(f"DROP TABLE IF EXISTS {quoted(staged.staging)}")
        finally:
            cursor.close()

    def commit(
        self, job_id: str, staged: Staged, checkpoint: tuple[str, str, Point] | None = None,
        upsert: tuple[Sequence[str], str] | None = None,
    ) -> TableStats:  # fmt: skip
        """Move a job's staged rows into its table, atomically with its bookkeeping (and, for
        a streaming read, with the checkpoint it moves to: (table, source, read point)).

        With `upsert` (key columns, version column) only the row of the highest version of each
        key stays, the later one of equal versions (inferred: the OpenAPI says only "the row with
        the highest version"); the table's segments are then counted again from its rows.
        """
        self.jobs.pop(job_id, None)
        stored = storage_name(staged.table)
        target, staging = quoted(stored), quoted(staged.staging)
        cursor = self.db.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            types = cursor.execute(f"DESCRIBE {staging}").fetchall()
            exists = cursor.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
                [stored],
            ).fetchone()
            fresh = not exists or not exists[0]
            if not fresh:
                present = {row[0] for row in cursor.execute(f"DESCRIBE {target}").fetchall()}
                for name, kind, *_ in types:
                    if name not in present:
                        cursor.execute(f"ALTER TABLE {target} ADD COLUMN {quoted(name)} {kind}")
            if staged.replace is not None:
                if staged.replace_all or not staged.replace:
                    if not fresh:
                        cursor.execute(f"DELETE FROM {target}")
                    cursor.execute(f"DELETE FROM {SEGMENTS} WHERE tbl = ?", [staged.table])
                for start, end in staged.replace:
                    bounds = [staged.table, start, end]
                    if not fresh:
                        cursor.execute(
                            f'DELETE FROM {target} WHERE "__time" >= ? AND "__time" < ?', bounds[1:]
                        )
                    cursor.execute(
                        f"DELETE FROM {SEGMENTS} WHERE tbl = ? AND chunk >= ? AND chunk < ?", bounds
                    )
            interval, origin = period_interval(staged.partition_period)
            size = _size(types)
            cursor.execute(
                f"INSERT INTO {SEGMENTS} SELECT ?, ?, time_bucket(INTERVAL '{interval}', \"__time\", "
                f"TIMESTAMP '{origin}') AS chunk, count(*), sum({size}) FROM {staging} GROUP BY chunk",
                [staged.table, job_id],
            )
            if fresh:
                # A table's first rows: the staged table becomes the table, nothing is copied.
                cursor.execute(f"ALTER TABLE {staging} RENAME TO {target}")
            else:
                cursor.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {staging}")
                cursor.execute(f"DROP TABLE {staging}")
            if upsert is not None:
                self._keep_latest(cursor, staged, job_id, upsert)
            cursor.execute(
                f"INSERT INTO {INGESTED} VALUES (?, ?)", [job_id, json.dumps(staged.metrics)]
            )
            if checkpoint is not None:
                self._checkpoint(cursor, *checkpoint)
            cursor.execute("COMMIT")
        except Exception as error:
            # The job fails, and the project goes on: an error here must never leave a job
            # that every later request tries, and fails, to finish.
            cursor.execute("ROLLBACK")
            cursor.execute(f"DROP TABLE IF EXISTS {staging}")
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise Failure("internal_error", f"the rows could not be stored: {message}") from None
        finally:
            cursor.close()
        return self.stats(staged.table)

    @staticmethod
    def _keep_latest(
        cursor: duckdb.DuckDBPyConnection, staged: Staged, job_id: str,
        upsert: tuple[Sequence[str], str],
    ) -> None:  # fmt: skip
        target = quoted(storage_name(staged.table))
        keys, version = ", ".join(quoted(k) for k in upsert[0]), quoted(upsert[1])
        cursor.execute(
            f"DELETE FROM {target} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
            f"OVER (PARTITION BY {keys} ORDER BY {version} DESC NULLS LAST, rowid DESC) AS n "
            f"FROM {target}) WHERE n > 1)"
        )
        interval, origin = period_interval(staged.partition_period)
        size = _size(cursor.execute(f"DESCRIBE {target}").fetchall())
        cursor.execute(f"DELETE FROM {SEGMENTS} WHERE tbl = ?", [staged.table])
        cursor.execute(
            f"INSERT INTO {SEGMENTS} SELECT ?, ?, time_bucket(INTERVAL '{interval}', \"__time\", "
            f"TIMESTAMP '{origin}') AS chunk, count(*), sum({size}) FROM {target} GROUP BY chunk",
            [staged.table, job_id],
        )

    def committed(self, job_id: str) -> dict[str, int] | None:
        """The metrics of a job whose rows the database holds (None: not ingested)."""
        cursor = self.db.cursor()
        try:
            row = cursor.execute(
                f"SELECT metrics FROM {INGESTED} WHERE job = ?", [job_id]
            ).fetchone()
        finally:
            cursor.close()
        return None if row is None else dict(json.loads(row[0]))

    def stats(self, table: str) -> TableStats:
        """Rows, bytes and segments of a table as stored."""
        cursor = self.db.cursor()
        try:
            row = cursor.execute(
                f"SELECT coalesce(sum(num_rows), 0), coalesce(sum(num_bytes), 0), count(*) "
                f"FROM {SEGMENTS} WHERE tbl = ?",
                [table],
            ).fetchone()
        finally:
            cursor.close()
        rows, size, segments = row or (0, 0, 0)
        return TableStats(int(rows), int(size), int(segments))

    # Streams (push streaming) -------------------------------------------------------------------

    def append_events(self, stream: str, lines: Sequence[str]) -> int:
        """Keep pushed events at the end of a stream; the number of the last one (its head)."""
        cursor = self.db.cursor()
        try:
            head = self.head(stream)
            # One statement for the whole batch (executemany inserts a row at a time).
            cursor.execute(
                f"INSERT INTO {EVENTS} SELECT ?, ? + generate_subscripts(l, 1), unnest(l) "
                "FROM (SELECT CAST(? AS VARCHAR[]) AS l)",
                [stream, head, list(lines)],
            )
        finally:
            cursor.close()
        self._heads[stream] = head + len(lines)  # append_events is the only writer
        return head + len(lines)

    def head(self, stream: str) -> int:
        """The number of the last event of a stream (0 when it has none)."""
        if stream in self._heads:
            return self._heads[stream]
        cursor = self.db.cursor()
        try:
            row = cursor.execute(
                f"SELECT coalesce(max(seq), 0) FROM {EVENTS} WHERE stream = ?", [stream]
            ).fetchone()
        finally:
            cursor.close()
        self._heads[stream] = int(row[0]) if row else 0
        return self._heads[stream]

    def events_after(self, stream: str, seq: int) -> list[tuple[int, str]]:
        """The events of a stream after number `seq`, in order."""
        cursor = self.db.cursor()
        try:
            rows = cursor.execute(
                f"SELECT seq, line FROM {EVENTS} WHERE stream = ? AND seq > ? ORDER BY seq",
                [stream, seq],
            ).fetchall()
        finally:
            cursor.close()
        return [(int(n), str(line)) for n, line in rows]

    def checkpoint(self, table: str, source: str) -> int | None:
        """The last event a table has read from a source (None: it never read it; 0 for a
        Kinesis stream, whose read point is `shards_read`)."""
        row = self._checkpoint_row(table, source)
        return None if row is None else int(row[0])

    def shards_read(self, table: str, source: str) -> dict[str, str] | None:
        """Where a table has read a Kinesis stream to, per shard (None: it never read it)."""
        row = self._checkpoint_row(table, source)
        return None if row is None else dict(json.loads(row[1] or "{}"))

    def _checkpoint_row(self, table: str, source: str) -> tuple[Any, ...] | None:
        cursor = self.db.cursor()
        try:
            return cursor.execute(
                f"SELECT seq, shards FROM {CHECKPOINTS} WHERE tbl = ? AND source = ?",
                [table, source],
            ).fetchone()
        finally:
            cursor.close()

    def set_checkpoint(self, table: str, source: str, point: Point | None) -> None:
        """Move a table's read point on a source (a reset, or a job that starts reading);
        None forgets it, so that the next read starts at the job's readFromPoint."""
        cursor = self.db.cursor()
        try:
            if point is None:
                cursor.execute(
                    f"DELETE FROM {CHECKPOINTS} WHERE tbl = ? AND source = ?", [table, source]
                )
            else:
                self._checkpoint(cursor, table, source, point)
        finally:
            cursor.close()

    @staticmethod
    def _checkpoint(
        cursor: duckdb.DuckDBPyConnection, table: str, source: str, point: Point
    ) -> None:
        seq, shards = (point, None) if isinstance(point, int) else (0, json.dumps(dict(point)))
        # An update, and an insert only when there was no row: INSERT OR REPLACE took 1.8 ms a
        # call (a push of 1,000 events took 19 ms in all), an UPDATE a fraction of that.
        moved = cursor.execute(
            f"UPDATE {CHECKPOINTS} SET seq = ?, shards = ? WHERE tbl = ? AND source = ?",
            [seq, shards, table, source],
        ).fetchone()
        if not moved or not moved[0]:
            cursor.execute(
                f"INSERT INTO {CHECKPOINTS} (tbl, source, seq, shards) VALUES (?, ?, ?, ?)",
                [table, source, seq, shards],
            )

    # Table jobs (drop_table, delete_data, restore_data) -----------------------------------------

    def drop(self, table: str) -> None:
        """Drop a table with its rows, soft-deleted rows and segments."""
        self._in_transaction(table, None, lambda cursor, stored: [
            cursor.execute(f"DROP TABLE IF EXISTS {quoted(stored)}"),
            cursor.execute(f"DROP TABLE IF EXISTS {quoted(TRASH + stored)}"),
            cursor.execute(f"DELETE FROM {SEGMENTS} WHERE tbl = ?", [table]),
        ])  # fmt: skip

    def delete(
        self, table: str, intervals: Sequence[tuple[datetime, datetime]] | None, soft: bool,
        period: str,
    ) -> None:  # fmt: skip
        """Delete a table's rows in the intervals (all rows for None); soft keeps them aside
        for restore_data."""

        def run(cursor: duckdb.DuckDBPyConnection, stored: str) -> None:
            where, bounds = _within(intervals)
            if soft:
                trash = quoted(TRASH + stored)
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {trash} AS SELECT * FROM {quoted(stored)} LIMIT 0"
                )
                cursor.execute(
                    f"INSERT INTO {trash} BY NAME SELECT * FROM {quoted(stored)} WHERE {where}",
                    bounds,
                )
            cursor.execute(f"DELETE FROM {quoted(stored)} WHERE {where}", bounds)

        self._in_transaction(table, period, run)

    def restore(self, table: str, interval: tuple[datetime, datetime], period: str) -> None:
        """Bring back the soft-deleted rows of a table in an interval."""

        def run(cursor: duckdb.DuckDBPyConnection, stored: str) -> None:
            trash = TRASH + stored
            if not self._exists(cursor, trash):
                return
            where, bounds = _within([interval])
            cursor.execute(
                f"INSERT INTO {quoted(stored)} BY NAME SELECT * FROM {quoted(trash)} WHERE {where}",
                bounds,
            )
            cursor.execute(f"DELETE FROM {quoted(trash)} WHERE {where}", bounds)

        self._in_transaction(table, period, run)

    def insert_select(
        self, table: str, select: str, tables: Sequence[str], replace: bool, period: str
    ) -> None:
        """An sql job: the rows of a Druid SQL SELECT over the project's tables into `table`
        (all its rows replaced for REPLACE ... OVERWRITE ALL); raises Failure."""
        cursor = self.db.cursor()
        try:
            stored = {
                n for (n,) in cursor.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            held = {t: storage_name(t) for t in tables if storage_name(t) in stored}
            try:
                translated = translate_query(select, held)
            except UnsupportedSql as error:
                raise Failure("query_not_supported", str(error)) from None
            rows = f"__stage_sql_{uuid.uuid4().hex}"  # dropped at start-up if left behind
            try:
                cursor.execute(f"CREATE TABLE {quoted(rows)} AS {translated}")
            except duckdb.Error as error:
                raise Failure("query_not_supported", str(error).splitlines()[0]) from None
            names = [r[0] for r in cursor.execute(f"DESCRIBE {quoted(rows)}").fetchall()]
            if "__time" not in names:
                cursor.execute(f"DROP TABLE {quoted(rows)}")
                raise Failure(
                    "query_not_supported", "the SELECT of an sql job needs a __time column"
                )
        finally:
            cursor.close()

        def run(cursor: duckdb.DuckDBPyConnection, target: str) -> None:
            if not self._exists(cursor, target):
                cursor.execute(
                    f"CREATE TABLE {quoted(target)} AS SELECT * FROM {quoted(rows)} LIMIT 0"
                )
            present = {r[0] for r in cursor.execute(f"DESCRIBE {quoted(target)}").fetchall()}
            for name, kind, *_ in cursor.execute(f"DESCRIBE {quoted(rows)}").fetchall():
                if name not in present:
                    cursor.execute(f"ALTER TABLE {quoted(target)} ADD COLUMN {quoted(name)} {kind}")
            if replace:
                cursor.execute(f"DELETE FROM {quoted(target)}")
            cursor.execute(f"INSERT INTO {quoted(target)} BY NAME SELECT * FROM {quoted(rows)}")
            cursor.execute(f"DROP TABLE {quoted(rows)}")

        try:
            self._in_transaction(table, period, run, create=True)
        except duckdb.Error as error:
            self.db.execute(f"DROP TABLE IF EXISTS {quoted(rows)}")
            raise Failure("internal_error", str(error).splitlines()[0]) from None

    def _in_transaction(
        self, table: str, period: str | None,
        change: Callable[[duckdb.DuckDBPyConnection, str], object], create: bool = False,
    ) -> None:  # fmt: skip
        stored = storage_name(table)
        cursor = self.db.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            if period is None or create or self._exists(cursor, stored):
                change(cursor, stored)
            if period is not None and self._exists(cursor, stored):
                # The segments are counted again from the rows that remain.
                types = cursor.execute(f"DESCRIBE {quoted(stored)}").fetchall()
                interval, origin = period_interval(period)
                cursor.execute(f"DELETE FROM {SEGMENTS} WHERE tbl = ?", [table])
                cursor.execute(
                    f"INSERT INTO {SEGMENTS} SELECT ?, 'rebuilt', time_bucket(INTERVAL '{interval}', "
                    f"\"__time\", TIMESTAMP '{origin}') AS chunk, count(*), sum({_size(types)}) "
                    f"FROM {quoted(stored)} GROUP BY chunk",
                    [table],
                )
            cursor.execute("COMMIT")
        except Exception:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    @staticmethod
    def _exists(cursor: duckdb.DuckDBPyConnection, stored: str) -> bool:
        found = cursor.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
            [stored],
        ).fetchone()
        return bool(found and found[0])

    def columns(self, table: str) -> list[tuple[str, str]]:
        """The stored columns of a table and their DuckDB types, in order ([] before any row)."""
        cursor = self.db.cursor()
        try:
            return [
                (str(name), str(kind))
                for name, kind in cursor.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                    "AND schema_name = 'main' ORDER BY column_index",
                    [storage_name(table)],
                ).fetchall()
            ]
        finally:
            cursor.close()

    # Queries -----------------------------------------------------------------------------------

    def query(self, sql: str, tables: Sequence[str], parameters: Sequence[Any] = ()) -> QueryResult:
        """Answer a Druid SQL query over the project's tables."""
        cursor = self.db.cursor()
        try:
            stored = {
                name
                for (name,) in cursor.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
                ).fetchall()
            }
            try:
                held = {t: storage_name(t) for t in tables if storage_name(t) in stored}
                translated = translate_query(sql, held)
            except UnsupportedSql as error:
                missing = error.name in tables
                raise QueryError(
                    "invalidInput", "INVALID_INPUT",
                    f"Table '{error.name}' holds no data yet" if missing else str(error),
                ) from None  # fmt: skip
            try:
                result = cursor.execute(translated, list(parameters))
            except (duckdb.Error, TypeError, ValueError, OverflowError) as error:
                raise QueryError(
                    "invalidInput", "INVALID_INPUT", str(error).splitlines()[0]
                ) from None
            description = result.description or []
            rows = [[_json_value(v) for v in row] for row in result.fetchall()]
            return QueryResult([d[0] for d in description], [str(d[1]) for d in description], rows)
        finally:
            cursor.close()
