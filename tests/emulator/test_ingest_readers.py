"""The strict nd-json reader stages exactly what the tolerant reader stages, or leaves the job to it.

Every job here runs twice on the same objects: once as the emulator runs it (DuckDB's `read_json`
first) and once with the tolerant line-by-line reader only. Rows, column types, metrics, warnings
and failures must be identical; the reader that produced them is asserted too, so a strict reader
that silently gave up on everything would not pass.
"""

from __future__ import annotations

import gzip
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator.engine import Engine
from reconciler.emulator.ingest import Failure, Progress, ingest, quoted, scratch_tables
from reconciler.s3 import Credentials, DirectorySource, ObjectSource, S3Api

SCHEMA = [
    {"name": "timestamp", "dataType": "string"}, {"name": "city", "dataType": "string"},
    {"name": "n", "dataType": "long"}, {"name": "x", "dataType": "double"},
    {"name": "ratio", "dataType": "float"}, {"name": "agent", "dataType": "string"},
]  # fmt: skip
CONNECTION = {"name": "c", "bucket": "b", "prefix": ""}
TIME = {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}
DETAIL = [TIME, {"columnName": "city", "expression": '"city"'},
          {"columnName": "n", "expression": '"n"'}, {"columnName": "x", "expression": '"x" * 2'},
          {"columnName": "ratio", "expression": '"ratio"'}]  # fmt: skip
ROLLUP = [TIME, {"columnName": "city", "expression": 'UPPER("city")'},
          {"columnName": "total", "expression": 'SUM("n")', "isAggregation": True},
          {"columnName": "most", "expression": 'MAX("x")', "isAggregation": True}]  # fmt: skip
AGGREGATE = {"type": "aggregate", "timeResolution": "day"}

# name: (spec fields beside source and target, the target table)
JOBS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "detail": ({"mappings": DETAIL}, {"type": "detail"}),
    "rollup by day": ({"mappings": ROLLUP}, AGGREGATE),
    # LATEST picks among rows of one time as the threads meet them, on either reader: the files
    # give each row its own time where this job reads them.
    "latest by day": (
        {
            "mappings": [
                *ROLLUP,
                {"columnName": "last", "expression": 'LATEST("n")', "isAggregation": True},
            ]
        },
        AGGREGATE,
    ),
    "rollup of everything, own count": (
        {
            "mappings": [
                TIME,
                {"columnName": "__count", "expression": "COUNT(*)", "isAggregation": True},
            ]
        },
        {"type": "aggregate", "timeResolution": "all"},
    ),
    "filtered": (
        {"mappings": DETAIL, "filterExpression": '"n" > 2 OR "city" = \'Sydney\''},
        {"type": "detail"},
    ),
    "filtered rollup": ({"mappings": ROLLUP, "filterExpression": '"x" < 4'}, AGGREGATE),
    "filter keeps nothing": (
        {"mappings": DETAIL, "filterExpression": '"n" > 999999'},
        {"type": "detail"},
    ),
    "replace one day": (
        {"mappings": DETAIL, "ingestionMode": "replace"},
        {"type": "detail", "intervals": ["2026-11-01T00:00:00Z/2026-11-02T00:00:00Z"]},
    ),
    "replace all": (
        {"mappings": ROLLUP, "ingestionMode": "replace", "replaceAll": True},
        AGGREGATE,
    ),
    "no parse exception allowed": (
        {"mappings": DETAIL, "maxParseExceptions": 0},
        {"type": "detail"},
    ),
    "one parse exception allowed": (
        {"mappings": DETAIL, "maxParseExceptions": 1},
        {"type": "detail"},
    ),
    "negative parse exceptions": (
        {"mappings": DETAIL, "maxParseExceptions": -1},
        {"type": "detail"},
    ),
    "time from a constant": (
        {
            "mappings": [
                {"columnName": "__time", "expression": "TIME_PARSE('2026-11-05T00:00:00Z')"},
                {"columnName": "city", "expression": '"city"'},
            ]
        },
        {"type": "detail"},
    ),
    "time with a default": (
        {
            "mappings": [
                {
                    "columnName": "__time",
                    "expression": "TIME_PARSE(NVL(\"timestamp\", '2026-11-09T00:00:00Z'))",
                },
                {"columnName": "n", "expression": '"n" + 1'},
            ]
        },
        {"type": "detail"},
    ),
    "aggregation into a detail table": (
        {"mappings": [TIME, {"columnName": "most", "expression": 'MAX("n")'}]},
        {"type": "detail"},
    ),
    "a mapping that fails": (
        {"mappings": [TIME, {"columnName": "big", "expression": '"n" * 9223372036854775807'}]},
        {"type": "detail"},
    ),
}


def line(day: int, city: Any, n: Any, x: Any = 1.5, minute: int = 0, **extra: Any) -> str:
    return json.dumps({"timestamp": f"2026-11-0{day}T10:{minute:02d}:00Z", "city": city, "n": n,
                       "x": x, "ratio": 0.25, "agent": "Firefox", **extra})  # fmt: skip


CLEAN = [line(1, "Sydney", 1, minute=1), line(1, "Perth", 5, 3.25, minute=2),
         line(2, "Sydney", 7, -2.0, minute=3), line(2, "Hobart", 2, 0, minute=4),
         line(3, "Perth", 9, 8.5, minute=5), line(1, "Sydney", 3, 4.0, minute=6)]  # fmt: skip
# name: (lines of each object, which reader stages them: True, the strict one for every job that
# completes; False, the tolerant one for the detail job (it reads every field but agent); None, it
# depends on the fields a job reads: a row whose read fields are all null may be a `null` line)
FILES: dict[str, tuple[list[list[str]], bool | None]] = {
    "clean": ([CLEAN], True),
    "clean, two objects": ([CLEAN[:3], CLEAN[3:]], True),
    "clean, CRLF and blank lines": ([["", CLEAN[0] + "\r", "   ", *CLEAN[1:]]], True),
    # json_transform and read_json cast these alike: "12" to 12, 1.5 to 2, true to 1, 3 to 3.0.
    "numbers as text and text as numbers": (
        [
            [
                line(1, "Sydney", "12", "2.5"),
                line(1, 17, 1.5, 3),
                line(2, True, True, "-1e2"),
                line(2, {"a": [1, 2]}, 2.0, 7),
                line(3, [1, "x"], -0, None),
            ]
        ],
        True,
    ),
    "a mismatch in a field no job reads": ([[*CLEAN, line(2, "Perth", 1, agent={"b": 1})]], True),
    "fields missing or null": (
        [[*CLEAN, json.dumps({"timestamp": "2026-11-01T00:00:00Z"}), line(2, None, None, None)]],
        None,
    ),
    "keys in another case": (
        [[*CLEAN, json.dumps({"timestamp": "2026-11-01T00:00:00Z", "City": "x", "N": 4})]],
        None,
    ),
    "a malformed line": ([[*CLEAN[:2], '{"city": "Perth", "n": ', *CLEAN[2:]]], False),
    "lines that are not objects": ([[*CLEAN, "[1, 2]", "42", '"text"', "true"]], False),
    "a null line": ([[*CLEAN, "null"]], False),
    "a null line in the second object": ([CLEAN[:3], [*CLEAN[3:], "  null  "]], False),
    "an empty object": ([[*CLEAN, "{}"]], False),
    "text in a long field": ([[*CLEAN, line(2, "Perth", "abc")]], False),
    # json_transform reads "1.5" as the long 2 and " 7 " as the double 7; read_json refuses both.
    "a decimal in text in a long field": ([[*CLEAN, line(2, "Perth", "1.5")]], False),
    "spaces around a double in text": ([[*CLEAN, line(2, "Perth", 1, " 7 ")]], False),
    "a long too big": ([[*CLEAN, line(2, "Perth", 99999999999999999999)]], False),
    "an object in a double field": ([[*CLEAN, line(2, "Perth", 1, {"y": 1})]], False),
    "a float out of range": ([[*CLEAN, line(2, "Perth", 1, ratio=1e300)]], False),
    "a duplicate key": ([[*CLEAN, '{"timestamp": "2026-11-01T00:00:00Z", "n": 1, "n": 2}']], False),
    "invalid UTF-8": ([[*CLEAN, '{"city": "\udcff"}']], False),
    "a null timestamp": ([[*CLEAN, line(2, "Perth", 4, timestamp=None)]], False),
    "a timestamp that does not parse": ([[*CLEAN, line(2, "Perth", 4, timestamp="soon")]], False),
    "two objects on one line": ([[*CLEAN, CLEAN[0] + " " + CLEAN[1]]], False),
    "no lines": ([[]], False),
}


def write_object(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(text + "\n" for text in lines).encode("utf-8", "surrogateescape")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A project's DuckDB database, with the macros and time zone jobs run under."""
    opened = Engine(None)
    yield opened
    opened.close()


def spec_for(prefix: str, job: str) -> tuple[dict[str, Any], dict[str, Any]]:
    fields, table = JOBS[job]
    target = {"type": "table", "tableName": "t"}
    if "intervals" in table:
        target["intervals"] = table["intervals"]
    spec = {
        "type": "batch", "target": target, **fields,
        "source": {"type": "s3", "connectionName": "c", "prefixes": [prefix],
                   "formatSettings": {"format": "nd-json"}, "inputSchema": SCHEMA},
    }  # fmt: skip
    return spec, table


def outcome(
    engine: Engine, source: ObjectSource, spec: dict[str, Any], table: dict[str, Any],
    strict_first: bool, bucket: str = "b",
) -> tuple[Any, str | None]:  # fmt: skip
    """What a job stages (or how it fails), and which reader staged it."""
    cursor = engine.db.cursor()
    job = {"id": str(uuid.uuid4())}
    try:
        staged = ingest(
            cursor,
            job,
            spec,
            {**CONNECTION, "bucket": bucket},
            table,
            source,
            Progress(),
            strict_first=strict_first,
        )
    except Failure as failure:
        for name in scratch_tables(job["id"]):  # as the engine does for a failed job
            cursor.execute(f"DROP TABLE IF EXISTS {quoted(name)}")
        return ("failed", failure.code, failure.message), None
    raw = scratch_tables(job["id"])[0]
    assert not cursor.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name = ?", [raw]
    ).fetchall(), "the raw table is left behind"
    try:
        types = cursor.execute(f"DESCRIBE {quoted(staged.staging)}").fetchall()
        rows = [
            tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in cursor.execute(f"SELECT * FROM {quoted(staged.staging)}").fetchall()
        ]
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {quoted(staged.staging)}")
        cursor.close()
    if table["type"] == "aggregate":
        rows.sort(key=repr)  # a rollup's rows come in no particular order, on either path
    facts = (types, rows, staged.metrics, staged.warning, staged.replace, staged.replace_all,
             staged.partition_period, staged.table)  # fmt: skip
    return facts, staged.reader


def both(
    engine: Engine, root: Path | ObjectSource, prefix: str, job: str, bucket: str = "b"
) -> tuple[Any, str | None]:
    """A job's outcome on both readers, which must be the same, and the reader it had."""
    source = DirectorySource(root) if isinstance(root, Path) else root
    spec, table = spec_for(prefix, job)
    tolerant, reader = outcome(engine, source, spec, table, False, bucket)
    assert reader in ("tolerant", None)
    strict, reader = outcome(engine, source, spec, table, True, bucket)
    assert strict == tolerant
    return strict, reader


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", list(FILES))
def test_the_strict_reader_stages_what_the_tolerant_reader_stages_for_every_job(
    engine: Engine, tmp_path: Path, name: str, gzipped: bool
) -> None:
    objects, vouched = FILES[name]
    for index, lines in enumerate(objects):
        write_object(tmp_path / "b" / "in" / f"part-{index}.json{'.gz' if gzipped else ''}", lines)
    strict_jobs = []
    for job in JOBS:
        result, reader = both(engine, tmp_path, "in/", job)
        if reader == "strict":
            strict_jobs.append(job)
        elif vouched and result[0] != "failed":
            pytest.fail(f"{job}: the strict reader left a clean file to the tolerant one")
    if vouched is False:
        assert "detail" not in strict_jobs, "the strict reader vouched for a file it must not"


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_objects_of_one_name_under_two_prefixes_of_an_s3_server_are_both_read(
    engine: Engine, tmp_path: Path, moto_endpoint: str, suffix: str
) -> None:
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")  # fmt: skip
    bucket = f"readers-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for key, lines in ((f"in/a/data{suffix}", CLEAN[:2]), (f"in/b/data{suffix}", CLEAN[2:])):
        write_object(tmp_path / key, lines)
        s3.put_object(Bucket=bucket, Key=key, Body=(tmp_path / key).read_bytes())
    source = S3Api(moto_endpoint, Credentials("AKIDEXAMPLE", "secret"))
    try:
        result, reader = both(engine, source, "in/", "detail", bucket)
    finally:
        source.close()
    assert reader == "strict"
    assert result[2]["numRowsProcessed"] == len(CLEAN)
    assert sorted(row[1:3] for row in result[1]) == sorted(
        (row["city"], row["n"]) for row in map(json.loads, CLEAN)
    )


# Lines a stranger's file may hold: clean ones most often, and every kind of trouble.
LINES = st.one_of(
    st.builds(
        line,
        st.integers(1, 3),
        st.sampled_from(["Sydney", "Perth", None]),
        st.one_of(
            st.integers(-5, 20), st.sampled_from(["7", "x", 2.5, "1.5", "+3", "0x10", None, True])
        ),
        st.one_of(st.floats(-10, 10), st.sampled_from(["1.5", " 7 ", "1_0", None, "y"])),
    ),
    st.sampled_from(
        [
            "",
            "null",
            "{}",
            "[1]",
            '{"n": ',
            '{"timestamp": null, "city": "Perth"}',
            '{"timestamp": "2026-11-02T00:00:00Z", "n": 1, "n": 2}',
        ]
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    objects=st.lists(st.lists(LINES, max_size=8), min_size=1, max_size=3),
    job=st.sampled_from(sorted(set(JOBS) - {"latest by day"})),
)
def test_any_mix_of_lines_stages_the_same_on_both_readers(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, objects: list[list[str]], job: str
) -> None:
    root = tmp_path_factory.mktemp("mix")
    for index, lines in enumerate(objects):
        write_object(root / "b" / "in" / f"part-{index}.json", lines)
    both(engine, root, "in/", job)
