"""Druid SQL expressions give Druid's answers when the emulator evaluates them in DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.emulator.druid import UnsupportedSql, translate_expression, translate_query
from reconciler.emulator.engine import Engine

INPUT = {"ts": "2026-11-04T13:45:30.250Z", "n": 7, "x": 2.0, "s": "Perth", "ms": 1700000000000}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = Engine(None)
    yield engine
    engine.close()


def evaluate(engine: Engine, expression: str) -> Any:
    translated = translate_expression(expression, INPUT)
    columns = ", ".join(
        f"{value!r} AS {name}" if isinstance(value, str) else f"{value} AS {name}"
        for name, value in INPUT.items()
    )
    row = engine.db.execute(f"SELECT {translated.sql} FROM (SELECT {columns})").fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("expression", "druid_says"),
    [
        ('TIME_FORMAT(TIME_PARSE("ts"))', "2026-11-04T13:45:30.250Z"),
        ("TIME_FORMAT(TIME_FLOOR(TIME_PARSE(\"ts\"), 'PT15M'))", "2026-11-04T13:45:00.000Z"),
        (
            "TIME_FORMAT(TIME_FLOOR(TIME_PARSE(\"ts\"), 'P1W'))",
            "2026-11-02T00:00:00.000Z",
        ),  # Monday
        ("TIME_FORMAT(TIME_FLOOR(TIME_PARSE(\"ts\"), 'P1M'), 'yyyy-MM-dd')", "2026-11-01"),
        ("TIME_FORMAT(TIME_PARSE('04/11/2026 13:45', 'dd/MM/yyyy HH:mm'), 'HH:mm')", "13:45"),
        ('TIMESTAMP_TO_MILLIS(MILLIS_TO_TIMESTAMP("ms"))', 1700000000000),
        ("TIME_PARSE('not a time') IS NULL", True),
        ('"n" / 2', 3),
        ('"x" / 4', 0.5),
        ("CAST('abc' AS BIGINT) IS NULL", True),
        ("CAST('42' AS BIGINT) + 1", 43),
        ("NVL(NULL, 'fallback')", "fallback"),
        ('UPPER("s") || \'-\' || LOWER("s")', "PERTH-perth"),
        ("CASE WHEN \"n\" > 5 THEN 'big' ELSE 'small' END", "big"),
    ],
)
def test_expressions_evaluate_as_druid_does(
    engine: Engine, expression: str, druid_says: Any
) -> None:
    assert evaluate(engine, expression) == druid_says


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("REGEXP_EXTRACT(\"s\", 'P')", "REGEXP_EXTRACT"),
        ("TIME_FORMAT(TIME_PARSE(\"ts\"), 'yyyy-ww')", "'w'"),
        ('"missing" + 1', "missing"),
        ("TIME_FLOOR(TIME_PARSE(\"ts\"), 'hourly')", "hourly"),
        ("\"s\" SIMILAR TO 'P%'", "SIMILARTO"),
    ],
)
def test_what_cannot_be_evaluated_exactly_is_refused_by_name(expression: str, named: str) -> None:
    with pytest.raises(UnsupportedSql) as refused:
        translate_expression(expression, INPUT)
    assert named in str(refused.value)


def test_queries_only_read_the_projects_tables() -> None:
    tables = {"Koalas": "table_4b6f616c6173"}
    assert '"table_4b6f616c6173" AS "Koalas"' in translate_query(
        'SELECT COUNT(*) FROM "Koalas"', tables
    )
    for query in ('SELECT * FROM "secrets"', "SELECT * FROM read_parquet('x')", "DROP TABLE x"):
        with pytest.raises(UnsupportedSql):
            translate_query(query, tables)
