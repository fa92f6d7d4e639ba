"""drop_table, delete_data and restore_data jobs, applied to the tables' rows."""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator import Emulator
from reconciler.emulator.samples import koalas_rows, write_nd_json
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB

TABLE = {"type": "table", "tableName": "Koalas"}


@pytest.fixture
def koalas(data_api: httpx.Client, s3_dir: object) -> httpx.Client:
    """The guide's Koalas table, filled with 3 days of rows from 2026-11-01."""
    path = s3_dir / "demo-bucket" / "polaris-ingest" / "demo-file.json.gz"  # type: ignore[operator]
    write_nd_json(path, list(koalas_rows(300)))
    assert data_api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    finished(data_api, GUIDE_JOB)
    return data_api


def finished(api: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    created = api.post("/jobs", json=body)
    assert created.status_code == 201, created.text
    job = dict(api.get(f"/jobs/{created.json()['id']}").json())
    assert job["executionStatus"] == "completed", job
    return job


def events(api: httpx.Client, where: str = "TRUE") -> int:
    query = f'SELECT SUM("__count") AS "n" FROM "Koalas" WHERE {where}'
    answer = api.post("/query/sql", json={"query": query})
    assert answer.status_code == 200, answer.text
    return int(answer.json()[0]["n"] or 0)


FIRST_DAY = "\"__time\" < TIMESTAMP '2026-11-02 00:00:00'"


def test_a_drop_table_job_removes_the_table_and_its_rows(koalas: httpx.Client) -> None:
    finished(koalas, {"type": "drop_table", "target": TABLE})
    assert koalas.get("/tables/Koalas").status_code == 404
    answer = koalas.post("/query/sql", json={"query": 'SELECT COUNT(*) FROM "Koalas"'})
    assert answer.status_code == 400
    finished(koalas, GUIDE_JOB)  # the name is free again: a new, empty table fills up
    assert events(koalas) == 300


def test_a_drop_table_job_is_refused_while_a_job_writes_into_the_table(
    koalas: httpx.Client, data_emulator: Emulator
) -> None:
    data_emulator.hold_jobs()
    koalas.post("/jobs", json=GUIDE_JOB)
    refused = koalas.post("/jobs", json={"type": "drop_table", "target": TABLE})
    assert refused.status_code == 400
    assert "Koalas" in refused.json()["message"] and "job" in refused.json()["message"]


def test_a_delete_data_job_deletes_its_intervals_and_restore_data_brings_them_back(
    koalas: httpx.Client,
) -> None:
    first_day = events(koalas, FIRST_DAY)
    assert 0 < first_day < 300
    interval = "2026-11-01T00:00:00Z/2026-11-02T00:00:00Z"
    target = {**TABLE, "intervals": [interval]}
    finished(koalas, {"type": "delete_data", "target": target, "softDelete": True})
    assert events(koalas) == 300 - first_day
    assert koalas.get("/tables/Koalas").json()["totalRows"] < 300
    finished(koalas, {"type": "restore_data", "target": TABLE, "interval": interval})
    assert events(koalas) == 300


def test_delete_all_empties_the_table_but_keeps_it(koalas: httpx.Client) -> None:
    finished(koalas, {"type": "delete_data", "target": TABLE, "deleteAll": True})
    assert events(koalas) == 0
    assert koalas.get("/tables/Koalas").json()["totalRows"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "drop_table", "target": {"type": "table", "tableName": "nope"}}, "nope"),
        ({"type": "delete_data", "target": TABLE}, "intervals"),
        ({"type": "restore_data", "target": TABLE}, "interval"),
        ({"type": "sql", "query": "DELETE FROM x"}, "INSERT INTO"),
    ],
)
def test_table_jobs_that_cannot_run_are_a_400_naming_why(
    koalas: httpx.Client, body: dict[str, object], message: str
) -> None:
    refused = koalas.post("/jobs", json=body)
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["message"]


def test_an_sql_job_inserts_and_replaces_from_a_select_over_the_projects_tables(
    koalas: httpx.Client,
) -> None:
    insert = (
        'INSERT INTO "Perth" SELECT "__time", "city", "__count" AS "n" FROM "Koalas" '
        "WHERE \"city\" = 'Perth' PARTITIONED BY DAY"
    )
    job = finished(koalas, {"type": "sql", "query": insert, "createTableIfNotExists": True})
    assert job["target"] == {"type": "table", "tableName": "Perth"}
    perth = koalas.post("/query/sql", json={"query": 'SELECT SUM("n") AS "n" FROM "Perth"'})
    expected = events(koalas, "\"city\" = 'Perth'")
    assert perth.json() == [{"n": expected}]
    finished(koalas, {"type": "sql", "query": insert})  # INSERT appends
    replace = insert.replace('INSERT INTO "Perth"', 'REPLACE INTO "Perth" OVERWRITE ALL')
    finished(koalas, {"type": "sql", "query": replace})  # REPLACE ... OVERWRITE ALL replaces
    again = koalas.post("/query/sql", json={"query": 'SELECT SUM("n") AS "n" FROM "Perth"'})
    assert again.json() == [{"n": expected}]
    assert koalas.get("/tables/Perth").json()["totalRows"] > 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1", "INSERT INTO"),
        ("INSERT INTO \"x\" SELECT * FROM TABLE(EXTERN('{}', '{}', '[]')) PARTITIONED BY DAY", "EXTERN"),
        ('REPLACE INTO "Koalas" OVERWRITE WHERE TRUE SELECT * FROM "Koalas" PARTITIONED BY DAY', "OVERWRITE ALL"),
    ],
)  # fmt: skip
def test_sql_jobs_the_emulator_cannot_run_are_refused_by_name(
    koalas: httpx.Client, query: str, message: str
) -> None:
    refused = koalas.post("/jobs", json={"type": "sql", "query": query})
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["message"]
