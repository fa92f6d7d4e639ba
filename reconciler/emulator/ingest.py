"""One batch ingestion job, for real: select objects, parse them, map, filter and roll up rows.

The result is a staging table in the project's DuckDB database plus the job's metrics; the engine
moves the staged rows into the target table when the job completes on the emulator's clock, so a
job canceled meanwhile leaves no rows behind. Every way a job can go wrong ends in a `Failure`
with a health code from the OpenAPI's `JobErrorCodeV2` and a message naming the object or the
expression at fault.
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from reconciler.emulator.druid import (
    Translated,
    UnsupportedSql,
    period_interval,
    translate_expression,
)
from reconciler.s3 import DirectorySource, ObjectSource, S3Error, S3Object, SelectionError, select

# Polaris input types and the DuckDB types they are read as.
INPUT_TYPES = {"string": "VARCHAR", "long": "BIGINT", "double": "DOUBLE", "float": "FLOAT"}
SUPPORTED_FORMATS = ("nd-json", "csv", "parquet")
MAX_PARSE_EXCEPTIONS = 2147483647
# A table's rollup granularity (queryGranularity or timeResolution) as an ISO 8601 period.
GRANULARITY_PERIODS = {
    "second": "PT1S", "minute": "PT1M", "five_minute": "PT5M", "ten_minute": "PT10M",
    "fifteen_minute": "PT15M", "thirty_minute": "PT30M", "hour": "PT1H", "six_hour": "PT6H",
    "eight_hour": "PT8H", "day": "P1D", "week": "P1W", "month": "P1M", "quarter": "P3M",
    "year": "P1Y",
}  # fmt: skip
TIME = "__time$"  # the mapped timestamp before truncation; never a user column name


class Failure(Exception):
    """The job fails with this health code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Progress:
    """Bytes read so far out of the bytes selected, updated by the ingesting thread."""

    total: int = 0
    done: int = 0
    canceled: threading.Event = field(default_factory=threading.Event)

    def fraction(self) -> float:
        """Between 0 and 1."""
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class Staged:
    """Rows ready to move into the target table, and what the job reports about them."""

    staging: str
    table: str
    metrics: dict[str, int]
    replace: tuple[tuple[datetime, datetime], ...] | None  # None: append; () with replaceAll
    replace_all: bool
    partition_period: str
    warning: str | None  # a log message for a job that completes with skipped rows
    # "strict" when DuckDB's read_json vouched for every line (see _read_strictly), else "tolerant"
    reader: str = "tolerant"


def scratch_tables(job_id: str) -> tuple[str, str]:
    """The raw-input and staging tables of a job."""
    compact = job_id.replace("-", "")
    return f"__raw_{compact}", f"__stage_{compact}"


def quoted(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def granularity_period(table: Mapping[str, Any]) -> str | None:
    """The ISO period an aggregate table truncates __time to (None: keep milliseconds)."""
    query = table.get("queryGranularity")
    if isinstance(query, dict):
        if query.get("type") == "period" and isinstance(query.get("period"), str):
            return str(query["period"])
        name = query.get("granularity")
    else:
        name = table.get("timeResolution", "millisecond")
    if name == "all":
        return "ALL"
    return GRANULARITY_PERIODS.get(str(name))


def _bucket(column: str, period: str | None) -> str:
    if period is None:
        return column
    if period == "ALL":
        return "TIMESTAMP '1970-01-01'"
    interval, origin = period_interval(period)
    return f"time_bucket(INTERVAL '{interval}', {column}, TIMESTAMP '{origin}')"


def parse_interval(text: str) -> tuple[datetime, datetime]:
    """An ISO 8601 interval `start/end` as naive UTC datetimes."""
    start, _, end = text.partition("/")
    try:
        bounds = [datetime.fromisoformat(part) for part in (start, end)]
    except ValueError:
        raise Failure("query_not_supported", f"interval {text!r} is not START/END") from None
    return bounds[0].replace(tzinfo=None), bounds[1].replace(tzinfo=None)


def _select_sql(fmt: Mapping[str, Any], path: str, schema: list[dict[str, Any]]) -> str:
    """SELECT the input columns (typed as Druid reads them) and a __valid flag from one file."""
    kind = fmt.get("format", "nd-json")
    typed = {f["name"]: INPUT_TYPES[f["dataType"]] for f in schema}
    if kind == "nd-json":
        # Each line a JSON object; a line that is not one is a parse exception (__valid false).
        # One transform per line into a struct of the input schema, then its fields as columns.
        return (
            f"SELECT parsed.*, valid AS __valid FROM (SELECT json_transform(json, "
            f"{_literal(json.dumps(typed))}) AS parsed, coalesce(json_type(json) = 'OBJECT', false) "
            f"AS valid FROM read_ndjson_objects({_literal(path)}, ignore_errors = true))"
        )
    if kind == "csv":
        columns = fmt.get("columns")
        skip = int(fmt.get("skipHeaderRows", 0))
        delimiter = fmt.get("delimiter", ",")
        if columns:
            spec = "{" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in columns) + "}"
            source = (
                f"read_csv({_literal(path)}, columns = {spec}, header = false, skip = {skip}, "
                f"delim = {_literal(delimiter)}, auto_detect = false, null_padding = true)"
            )
        else:
            source = (
                f"read_csv({_literal(path)}, header = true, skip = {skip}, all_varchar = true, "
                f"delim = {_literal(delimiter)})"
            )
        fields = ", ".join(f"TRY_CAST({quoted(n)} AS {t}) AS {quoted(n)}" for n, t in typed.items())
        return f"SELECT {fields}, true AS __valid FROM {source}"
    fields = ", ".join(f"TRY_CAST({quoted(n)} AS {t}) AS {quoted(n)}" for n, t in typed.items())
    return f"SELECT {fields}, true AS __valid FROM read_parquet({_literal(path)})"


def _uncompressed_size(path: Path) -> int:
    if path.suffix != ".gz":
        return path.stat().st_size
    size = 0
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            size += len(chunk)
    return size


def _local(source: ObjectSource, obj: S3Object, scratch: Path) -> Path:
    if isinstance(source, DirectorySource):
        return source.path(obj.bucket, obj.key)
    # DuckDB reads files; the file keeps the object's name so `.gz` still means gzip.
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / obj.key.rsplit("/", 1)[-1]
    target.write_bytes(source.read(obj.bucket, obj.key))
    return target


def _fail_unsupported(error: UnsupportedSql, where: str) -> Failure:
    return Failure("query_not_supported", f"{where}: {error} ({error.name})")


def ingest(
    db: duckdb.DuckDBPyConnection, job: Mapping[str, Any], spec: Mapping[str, Any],
    connection: Mapping[str, Any], table: Mapping[str, Any], source: ObjectSource,
    progress: Progress, check: Callable[[], None] = lambda: None, *, strict_first: bool = True,
) -> Staged:  # fmt: skip
    """Run one batch job up to its staged rows; raises Failure with the health code.

    An nd-json job is read first by DuckDB's own strict reader (`_read_strictly`); a job it cannot
    vouch for, and every other format, is read line by line (`_read_tolerantly`, the only reader
    with `strict_first=False`). Both stage the same rows with the same metrics.
    """
    job_source = spec["source"]
    fmt, schema = readable(spec, SUPPORTED_FORMATS, "")
    bucket, prefix = connection["bucket"], connection.get("prefix") or ""
    try:
        objects = select(source, bucket, prefix, job_source)
    except SelectionError as error:
        raise Failure("could_not_connect_to_source", str(error)) from None
    except S3Error as error:
        raise Failure("could_not_connect_to_source", error.message) from None
    selector = next(k for k in ("uris", "prefixes", "objects", "pattern") if job_source.get(k))
    if not objects:
        raise Failure(
            "no_rows_ingested",
            f"no object in s3://{bucket}/{prefix} matches the job's {selector}",
        )
    progress.total = sum(o.size for o in objects) or 1

    mapped, kept, aggregations = translated(spec, [f["name"] for f in schema])

    raw, staging = scratch_tables(str(job["id"]))
    plan = _Plan(
        spec=spec, table=table, fmt=fmt, schema=schema, objects=objects, mapped=mapped,
        condition=kept.sql if kept else "true",
        read=frozenset().union(*(t.columns for t in mapped.values()), kept.columns if kept else ()),
        aggregations=frozenset(aggregations), raw=raw, staging=staging,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="polaris-emulator-") as scratch:
        if strict_first:
            staged = _read_strictly(db, plan, source, progress, check, Path(scratch))
            if staged is not None:
                return staged
        return _read_tolerantly(db, plan, source, progress, check, Path(scratch))


@dataclass(frozen=True)
class _Plan:
    """A job translated to DuckDB SQL: what both readers start from."""

    spec: Mapping[str, Any]
    table: Mapping[str, Any]
    fmt: Mapping[str, Any]
    schema: list[dict[str, Any]]
    objects: list[S3Object]
    mapped: dict[str, Translated]
    condition: str  # the filterExpression ("true" without one)
    read: frozenset[str]  # the input fields a mapping or the filter uses
    aggregations: frozenset[str]
    raw: str
    staging: str

    @property
    def rollup(self) -> bool:
        """Whether the target is an aggregate table."""
        return self.table.get("type") == "aggregate"

    def intervals(self) -> tuple[tuple[datetime, datetime], ...]:
        """The target's replace intervals (raises Failure for one that is not START/END)."""
        return tuple(parse_interval(i) for i in (self.spec["target"].get("intervals") or []))

    def in_intervals(self, intervals: tuple[tuple[datetime, datetime], ...]) -> str:
        """SQL true for a row whose mapped time is inside the intervals the job replaces."""
        if self.spec.get("ingestionMode", "append") != "replace" or not intervals:
            return "true"
        return " OR ".join(
            f"({quoted(TIME)} >= TIMESTAMP '{a.isoformat()}' AND {quoted(TIME)} < TIMESTAMP '{b.isoformat()}')"
            for a, b in intervals
        )

    def outputs(self) -> tuple[list[str], list[int]]:
        """The SELECT list of the staged rows, and the 1-based positions a rollup groups by."""
        return output_columns(self.table, self.mapped, self.aggregations)

    def staged(
        self, metrics: dict[str, int], warning: str | None, reader: str,
        intervals: tuple[tuple[datetime, datetime], ...],
    ) -> Staged:  # fmt: skip
        """The staged rows of this job and what it reports about them."""
        replace = self.spec.get("ingestionMode", "append") == "replace"
        return Staged(
            staging=self.staging, table=self.spec["target"]["tableName"], metrics=metrics,
            replace=intervals if replace else None, replace_all=bool(self.spec.get("replaceAll")),
            partition_period=GRANULARITY_PERIODS.get(
                self.table.get("partitioningGranularity", "day"), "P1D"
            ),
            warning=warning, reader=reader,
        )  # fmt: skip


# Columns the strict reader stages beside the mapped ones and drops once it has counted them.
_KEEP, _OUTSIDE, _ROWS = "__keep$", "__outside$", "__rows$"


def _read_strictly(
    db: duckdb.DuckDBPyConnection, plan: _Plan, source: ObjectSource, progress: Progress,
    check: Callable[[], None], scratch: Path,
) -> Staged | None:  # fmt: skip
    """Stage an nd-json job in one pass of DuckDB's own reader, or None: the tolerant path decides.

    `read_json` with explicit columns and `records = true` either stops at a line or gives the
    values `json_transform` gives, as both go through DuckDB's JSON-to-type casts: `"12"`, 1.5,
    true and `"0x10"` read as a long give 12, 2, 1 and 16 on both, and 12 read as a string gives
    "12". Where `json_transform` gives null or bends the text (`"abc"`, `"1.5"`, `"+3"` or 1e30
    read as a long, `" 7 "` as a double, an object as a number), `read_json` stops, as it does at
    a malformed line, a duplicate key or a line that is not an object; then the tolerant path
    reads the job again. The one line it accepts that the tolerant path counts as a parse
    exception is `null`, read as a row of nulls: a row with every read field null stops the
    statement too, as does a kept row with a null __time, and a job that keeps no rows goes
    back as well. So only a job that completes cleanly is staged here, and every failure keeps
    the message the tolerant path gives it. tests/emulator/test_ingest_readers.py holds both
    readers to the same rows and metrics.
    """
    fmt = plan.fmt.get("format", "nd-json")
    read = [f for f in plan.schema if f["name"] in plan.read]
    if fmt != "nd-json" or not read or (plan.aggregations and not plan.rollup):
        return None
    paths = []
    for index, obj in enumerate(plan.objects):
        check()
        try:
            paths.append(_local(source, obj, scratch / str(index)))  # one name, two prefixes
        except S3Error:
            return None
    try:
        staged = _stage_strictly(db, plan, paths, read)
    except Exception:  # whatever it is, the tolerant path meets it again and reports it
        staged = None
    if staged is None:
        db.execute(f"DROP TABLE IF EXISTS {quoted(plan.staging)}")
        return None
    check()
    progress.done = progress.total
    return staged


def _stage_strictly(
    db: duckdb.DuckDBPyConnection, plan: _Plan, paths: list[Path], read: list[dict[str, Any]]
) -> Staged | None:
    spec, staging = plan.spec, quoted(plan.staging)
    limit = spec.get("maxParseExceptions", MAX_PARSE_EXCEPTIONS)
    if limit < 0:  # even no parse exception is too many: the tolerant path says so
        return None
    intervals = plan.intervals()
    columns = "{" + ", ".join(
        f"{_literal(f['name'])}: {_literal(INPUT_TYPES[f['dataType']])}" for f in read
    ) + "}"  # fmt: skip
    files = "[" + ", ".join(_literal(str(path)) for path in paths) + "]"
    rows = (
        f"SELECT *, {plan.mapped['__time'].sql} AS {quoted(TIME)} FROM read_json({files}, "
        f"format = 'newline_delimited', records = true, columns = {columns})"
    )
    # Rows the filter drops or the intervals leave out are staged with a flag, counted, then
    # deleted; without a filter or intervals there is nothing to flag.
    flags = {}
    if plan.condition != "true":
        flags[_KEEP] = f"coalesce(({plan.condition}), false)"
    if (inside := plan.in_intervals(intervals)) != "true":
        flags[_OUTSIDE] = f"coalesce(NOT ({inside}), false)"
    # A kept row with a null __time fails the job, and a row with every field null may be a
    # `null` line: error() stops the statement, and the tolerant path decides.
    blank = " AND ".join(f"{quoted(f['name'])} IS NULL" for f in read)
    doubt = f"(({flags.get(_KEEP, 'true')}) AND {quoted(TIME)} IS NULL) OR ({blank})"
    guard = f"CASE WHEN {doubt} THEN error('for the tolerant reader') ELSE true END"
    outputs, keys = plan.outputs()
    selected = outputs + [f"{sql} AS {quoted(name)}" for name, sql in flags.items()]
    grouped, count = "", "1"
    if plan.rollup:
        keys += range(len(outputs) + 1, len(selected) + 1)
        grouped = f" GROUP BY {', '.join(map(str, keys))}"
        selected.append(f"count(*) AS {quoted(_ROWS)}")
        count = quoted(_ROWS)
    db.execute(
        f"CREATE OR REPLACE TABLE {staging} AS SELECT {', '.join(selected)} "
        f"FROM ({rows}) WHERE {guard}{grouped}"
    )
    keep = quoted(_KEEP) if _KEEP in flags else "true"
    outside = quoted(_OUTSIDE) if _OUTSIDE in flags else "false"
    total, kept, out = db.execute(
        f"SELECT sum({count}), sum({count}) FILTER (WHERE {keep}), "
        f"sum({count}) FILTER (WHERE {keep} AND {outside}) FROM {staging}"
    ).fetchone() or (0, 0, 0)
    total, kept, out = int(total or 0), int(kept or 0), int(out or 0)
    if kept - out == 0:
        return None  # no rows: the tolerant path fails the job with its counts
    if flags:
        db.execute(f"DELETE FROM {staging} WHERE NOT {keep} OR {outside}")
    for name in [*flags, _ROWS] if plan.rollup else flags:
        db.execute(f"ALTER TABLE {staging} DROP COLUMN {quoted(name)}")
    persisted = (db.execute(f"SELECT count(*) FROM {staging}").fetchone() or (0,))[0]
    metrics = {
        "numRowsProcessed": kept - out,
        "numRowsPersisted": persisted,
        "numBytesProcessed": sum(_uncompressed_size(path) for path in paths),
        "numRowsProcessedWithWarning": 0,
        "numRowsSkippedByFilter": total - kept + out,
        "numRowsSkippedByError": 0,
    }
    return plan.staged(metrics, None, "strict", intervals)


def _read_tolerantly(
    db: duckdb.DuckDBPyConnection, plan: _Plan, source: ObjectSource, progress: Progress,
    check: Callable[[], None], scratch: Path,
) -> Staged:  # fmt: skip
    """Stage a job line by line: a line that does not parse is a parse exception, not an error."""
    spec, schema, fmt, objects, raw = plan.spec, plan.schema, plan.fmt, plan.objects, plan.raw
    columns = ", ".join(f"{quoted(f['name'])} {INPUT_TYPES[f['dataType']]}" for f in schema)
    db.execute(
        f"CREATE OR REPLACE TABLE {quoted(raw)} ({columns}, __valid BOOLEAN, __object VARCHAR)"
    )
    processed_bytes = 0
    for obj in objects:
        check()
        try:
            path = _local(source, obj, scratch)
        except S3Error as error:
            raise Failure("could_not_connect_to_source", error.message) from None
        try:
            db.execute(
                f"INSERT INTO {quoted(raw)} SELECT *, {_literal(obj.uri)} "
                f"FROM ({_select_sql(fmt, str(path), schema)})"
            )
            processed_bytes += _uncompressed_size(path)
        except (duckdb.Error, OSError, EOFError) as error:
            first = str(error).splitlines()[0]
            raise Failure(
                "cannot_parse_source",
                f"{obj.uri} could not be parsed as {fmt.get('format')}: {first}",
            ) from None
        finally:
            if not isinstance(source, DirectorySource) and path.exists():
                path.unlink()
        progress.done += obj.size
    check()

    total, invalid, first_bad = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT __valid), "
        f"min(__object) FILTER (WHERE NOT __valid) FROM {quoted(raw)}"
    ).fetchone() or (0, 0, None)
    limit = spec.get("maxParseExceptions", MAX_PARSE_EXCEPTIONS)
    if invalid > limit:
        raise Failure(
            "cannot_parse_source",
            f"{invalid} row(s) could not be parsed, more than maxParseExceptions ({limit}); "
            f"the first is in {first_bad}",
        )

    try:
        time_sql = plan.mapped["__time"].sql
        timed = (
            f"SELECT *, {time_sql} AS {quoted(TIME)} FROM {quoted(raw)} "
            f"WHERE __valid AND coalesce(({plan.condition}), false)"
        )
        kept, nulls, null_object = db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {quoted(TIME)} IS NULL), "
            f"min(__object) FILTER (WHERE {quoted(TIME)} IS NULL) FROM ({timed})"
        ).fetchone() or (0, 0, None)
    except duckdb.Error as error:
        raise Failure(
            "query_not_supported", f"the filter or __time mapping failed: {error}"
        ) from None
    if nulls:
        raise Failure(
            "null_timestamp",
            f"{nulls} row(s) have a null __time ({spec_expression(spec, '__time')} gave null); "
            f"the first is in {null_object}",
        )
    filtered = (total - invalid) - kept

    intervals = plan.intervals()
    in_intervals = plan.in_intervals(intervals)
    outside = 0
    if in_intervals != "true":
        outside = (
            db.execute(f"SELECT count(*) FROM ({timed}) WHERE NOT ({in_intervals})").fetchone()
            or (0,)
        )[0]
    rows_in = kept - outside
    if rows_in == 0:
        raise Failure(
            "no_rows_ingested",
            f"the job produced no rows from {len(objects)} object(s): {total} read, {invalid} "
            f"unparseable, {filtered} filtered out, {outside} outside the intervals",
        )

    selected = f"SELECT * FROM ({timed}) WHERE {in_intervals}"
    rows = rolled_up(plan.spec, plan.table, plan.mapped, set(plan.aggregations), selected)
    try:
        db.execute(f"CREATE OR REPLACE TABLE {quoted(plan.staging)} AS {rows}")
    except duckdb.Error as error:
        raise Failure(
            "query_not_supported", f"a mapping failed: {str(error).splitlines()[0]}"
        ) from None
    finally:
        db.execute(f"DROP TABLE IF EXISTS {quoted(raw)}")
    persisted = (db.execute(f"SELECT count(*) FROM {quoted(plan.staging)}").fetchone() or (0,))[0]
    metrics = {
        "numRowsProcessed": rows_in,
        "numRowsPersisted": persisted,
        "numBytesProcessed": processed_bytes,
        "numRowsProcessedWithWarning": 0,
        "numRowsSkippedByFilter": filtered + outside,
        "numRowsSkippedByError": invalid,
    }
    warning = None
    if invalid:
        warning = (
            f"{invalid} row(s) could not be parsed and were skipped; the first is in {first_bad}"
        )
    return plan.staged(metrics, warning, "tolerant", intervals)


def readable(
    spec: Mapping[str, Any], formats: tuple[str, ...], source: str
) -> tuple[Mapping[str, Any], list[dict[str, Any]]]:
    """A job's format settings and input schema, or Failure where the emulator cannot read them
    (`source` says from where, in the message)."""
    job_source = spec["source"]
    fmt = job_source.get("formatSettings") or {"format": "nd-json"}
    if fmt.get("format") not in formats:
        raise Failure(
            "query_not_supported",
            f"format {fmt.get('format')} is not read by the emulator{source} ({', '.join(formats)})",
        )
    schema = list(job_source["inputSchema"])
    for item in schema:
        if item["dataType"] not in INPUT_TYPES:
            raise Failure(
                "column_type_not_supported",
                f"input field {item['name']} has dataType {item['dataType']}; the emulator reads "
                f"{', '.join(INPUT_TYPES)}",
            )
    return fmt, schema


@functools.lru_cache(maxsize=1024)
def _translate(text: str, columns: tuple[str, ...], time_column: str) -> Translated:
    # A streaming job translates the same expressions for every batch it reads.
    return translate_expression(text, columns, time_column)


def translated(
    spec: Mapping[str, Any], names: list[str]
) -> tuple[dict[str, Translated], Translated | None, set[str]]:
    """A job's mappings and filter (None without one) in DuckDB SQL, and the columns that
    aggregate."""
    try:
        columns = tuple(names)
        mapped = {
            m["columnName"]: _translate(m["expression"], columns, TIME)
            for m in spec.get("mappings", [])
        }
        where = spec.get("filterExpression")
        condition = _translate(where, columns, "__time") if where else None
    except UnsupportedSql as error:
        raise _fail_unsupported(error, "an expression is not supported") from None
    aggregations = {
        name
        for name, m in zip(mapped, spec.get("mappings", []), strict=True)
        if m.get("isAggregation") or mapped[name].aggregates
    }
    if mapped["__time"].aggregates:
        raise Failure("query_not_supported", "the __time mapping cannot aggregate")
    return mapped, condition, aggregations


def output_columns(
    table: Mapping[str, Any], mapped: Mapping[str, Translated], aggregations: Iterable[str]
) -> tuple[list[str], list[int]]:
    """The SELECT list of a job's output rows (each mapping; on an aggregate table __time
    truncated to the rollup granularity, and __count), and the 1-based positions to group by."""
    aggregations = set(aggregations)
    rollup = table.get("type") == "aggregate"
    outputs = []
    for name, translation in mapped.items():
        expression = translation.sql if name != "__time" else quoted(TIME)
        if name == "__time" and rollup:
            expression = _bucket(quoted(TIME), granularity_period(table))
        outputs.append(f"{expression} AS {quoted(name)}")
    if rollup and "__count" not in mapped:
        outputs.append('count(*) AS "__count"')
        aggregations.add("__count")
    keys = [i + 1 for i, name in enumerate(mapped) if name not in aggregations]
    return outputs, keys


def rolled_up(
    spec: Mapping[str, Any], table: Mapping[str, Any], mapped: Mapping[str, Translated],
    aggregations: set[str], selected: str,
) -> str:  # fmt: skip
    """The SELECT of a job's output rows from its `selected` input rows: each mapping, and on
    an aggregate table __time truncated to the rollup granularity and rows grouped."""
    outputs, keys = output_columns(table, mapped, aggregations)
    grouped = ""
    if table.get("type") == "aggregate":
        grouped = f" GROUP BY {', '.join(map(str, keys))}" if keys else ""
    elif aggregations:
        raise Failure(
            "query_not_supported",
            f"{sorted(aggregations)[0]} aggregates, but {spec['target']['tableName']} is a detail table",
        )
    return f"SELECT {', '.join(outputs)} FROM ({selected}){grouped}"


def spec_expression(spec: Mapping[str, Any], column: str) -> str:
    """The expression a job maps to a column."""
    for mapping in spec.get("mappings", []):
        if mapping["columnName"] == column:
            return str(mapping["expression"])
    return column


@dataclass(frozen=True)
class Window:
    """The event times a streaming job accepts: from `earliest` (late messages are older)
    to `latest` (early messages are newer), naive UTC."""

    earliest: datetime
    latest: datetime


def ingest_events(
    db: duckdb.DuckDBPyConnection, batch_id: str, spec: Mapping[str, Any],
    table: Mapping[str, Any], lines: list[str], window: Window,
) -> tuple[Staged, dict[str, int]]:  # fmt: skip
    """Stage pushed events (newline-delimited JSON) for a streaming job's table through the
    same mappings, filter and rollup as a batch job; the counts of what was rejected and why
    (`parse`: not JSON objects or without a __time; `filter`; `late`; `early`)."""
    fmt, schema = readable(spec, ("nd-json",), " from pushed events")
    mapped, kept_by, aggregations = translated(spec, [f["name"] for f in schema])
    condition = kept_by.sql if kept_by else "true"
    raw, staging = scratch_tables(batch_id)
    columns = ", ".join(f"{quoted(f['name'])} {INPUT_TYPES[f['dataType']]}" for f in schema)
    db.execute(f"CREATE OR REPLACE TABLE {quoted(raw)} ({columns}, __valid BOOLEAN)")
    try:
        with tempfile.TemporaryDirectory(prefix="polaris-events-") as scratch:
            path = Path(scratch) / "events.json"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            db.execute(f"INSERT INTO {quoted(raw)} {_select_sql(fmt, str(path), schema)}")
        size = sum(len(line.encode()) for line in lines)
        time = quoted(TIME)
        timed = (
            f"SELECT *, {mapped['__time'].sql} AS {time} FROM {quoted(raw)} "
            f"WHERE __valid AND coalesce(({condition}), false)"
        )
        early, late = _literal(window.latest.isoformat()), _literal(window.earliest.isoformat())
        total, invalid, kept, untimed, too_late, too_early = db.execute(
            f"SELECT (SELECT count(*) FROM {quoted(raw)}), "
            f"(SELECT count(*) FROM {quoted(raw)} WHERE NOT __valid), count(*), "
            f"count(*) FILTER (WHERE {time} IS NULL), "
            f"count(*) FILTER (WHERE {time} < CAST({late} AS TIMESTAMP)), "
            f"count(*) FILTER (WHERE {time} > CAST({early} AS TIMESTAMP)) FROM ({timed})"
        ).fetchone() or (0, 0, 0, 0, 0, 0)
        selected = (
            f"SELECT * FROM ({timed}) WHERE {time} BETWEEN CAST({late} AS TIMESTAMP) "
            f"AND CAST({early} AS TIMESTAMP)"
        )
        rows = rolled_up(spec, table, mapped, aggregations, selected)
        db.execute(f"CREATE OR REPLACE TABLE {quoted(staging)} AS {rows}")
    except duckdb.Error as error:
        raise Failure(
            "query_not_supported", f"a mapping failed: {str(error).splitlines()[0]}"
        ) from None
    finally:
        db.execute(f"DROP TABLE IF EXISTS {quoted(raw)}")
    rejected = {
        "parse": invalid + untimed,
        "filter": total - invalid - kept,
        "late": too_late,
        "early": too_early,
    }
    metrics = {
        "numRowsProcessed": kept - untimed - too_late - too_early,
        "numBytesProcessed": size,
        "numRowsProcessedWithWarning": 0,
        "numRowsSkippedByFilter": rejected["filter"] + too_late + too_early,
        "numRowsSkippedByError": rejected["parse"],
    }
    staged = Staged(
        staging=staging, table=spec["target"]["tableName"], metrics=metrics, replace=None,
        replace_all=False, warning=None,
        partition_period=GRANULARITY_PERIODS.get(table.get("partitioningGranularity", "day"), "P1D"),
    )  # fmt: skip
    return staged, rejected
