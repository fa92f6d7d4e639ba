"""The emulator with a data source: jobs read real objects, tables hold real rows, SQL answers."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator, JobTiming, ManualClock
from reconciler.emulator.engine import DataSource
from reconciler.emulator.samples import koalas_rows, write_nd_json
from tests.fixtures import ROOT
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB, GUIDE_ROLE_CONNECTION

KOALAS_KEY = "polaris-ingest/demo-file.json.gz"
PENGUINS = ("adelaide", "chinstrap", "emperor", "gentoo")


def job_with(source: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The guide's Koalas job with some source fields and top-level fields replaced."""
    body = copy.deepcopy(GUIDE_JOB)
    if source is not None:
        for name in ("uris", "prefixes", "objects", "pattern"):
            body["source"].pop(name, None)
        body["source"].update(source)
    body.update(changes)
    return body


def run(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a job and read it back (instant jobs: it has finished)."""
    created = api.post("/jobs", json=body)
    assert created.status_code == 201, created.text
    return dict(api.get(f"/jobs/{created.json()['id']}").json())


def sql(api: httpx.Client, query: str, **options: Any) -> Any:
    response = api.post("/query/sql", json={"query": query, **options})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def koalas(s3_dir: Path) -> list[dict[str, Any]]:
    """300 sample rows at the guide's object URI."""
    rows = list(koalas_rows(300))
    write_nd_json(s3_dir / "demo-bucket" / KOALAS_KEY, rows)
    return rows


def test_koalas_rollup_matches_an_independent_reading_of_the_sample_data(
    data_api: httpx.Client, koalas: list[dict[str, Any]], s3_dir: Path
) -> None:
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in koalas:
        expected[row["city"]][0] += 1
        expected[row["city"]][1] = max(expected[row["city"]][1], row["session_length"])
    assert data_api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    manifest = yaml.safe_load((ROOT / "manifests" / "guide" / "koalas-job.yaml").read_text())
    job = run(data_api, manifest["spec"])
    assert (job["executionStatus"], job["health"]) == ("completed", {"status": "ok"})
    answer = sql(
        data_api,
        'SELECT "city", SUM("__count") AS "events", MAX("max_session_length") AS "longest" '
        'FROM "Koalas" GROUP BY "city" ORDER BY "city"',
    )
    assert answer == [
        {"city": city, "events": count, "longest": longest}
        for city, (count, longest) in sorted(expected.items())
    ]
    totals = data_api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert totals["numRowsProcessed"] == 300
    assert totals["numBytesProcessed"] == len(
        gzip.decompress((s3_dir / "demo-bucket" / KOALAS_KEY).read_bytes())
    )
    table = data_api.get("/tables/Koalas").json()
    assert (
        table["totalRows"]
        == totals["numRowsPersisted"]
        == sql(data_api, 'SELECT COUNT(*) AS "n" FROM "Koalas"')[0]["n"]
    )
    days = {row["timestamp"][:10] for row in koalas}
    assert table["segmentCount"] == len(days)  # one segment per day partition
    assert table["totalDataSizeBytes"] > 0


def penguin_bucket(s3_dir: Path) -> None:
    for number, name in enumerate(PENGUINS):
        write_nd_json(
            s3_dir / "zoo" / "penguins" / f"{name}.json",
            [{"timestamp": f"2026-11-0{number + 1}T10:00:00Z", "city": name, "session": "s",
              "session_length": number}],
        )  # fmt: skip
    write_nd_json(s3_dir / "zoo" / "notes.txt", [{"not": "selected"}])
    write_nd_json(
        s3_dir / "zoo" / "seals" / "harbor.csv.json",
        [{"timestamp": "2026-11-09T10:00:00Z", "city": "x", "session": "s", "session_length": 9}],
    )


@pytest.mark.parametrize(
    "selector",
    [
        {"uris": [f"s3://zoo/penguins/{name}.json" for name in PENGUINS]},
        {"prefixes": ["penguins/"]},
        {"objects": [f"penguins/{name}.json" for name in PENGUINS]},
        {"pattern": "penguins/*.json"},
        {"pattern": "**.json", "_connection_prefix": "penguins/"},
    ],
    ids=["uris", "prefixes", "objects", "pattern", "double-star-within-prefix"],
)
def test_the_guides_selector_forms_ingest_the_same_penguins(
    data_api: httpx.Client, s3_dir: Path, selector: dict[str, Any]
) -> None:
    penguin_bucket(s3_dir)
    selector = dict(selector)
    prefix = selector.pop("_connection_prefix", None)
    connection = {**GUIDE_CONNECTION, "name": "zoo", "bucket": "zoo"}
    if prefix:
        connection["prefix"] = prefix
    assert data_api.post("/connections", json=connection).status_code == 201
    body = job_with({**selector, "connectionName": "zoo"})
    body["target"] = {"type": "table", "tableName": "penguins"}
    job = run(data_api, body)
    assert job["executionStatus"] == "completed", job["health"]
    rows = sql(data_api, 'SELECT "city", "max_session_length" FROM "penguins" ORDER BY 1')
    assert rows == [{"city": name, "max_session_length": n} for n, name in enumerate(PENGUINS)]


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("s3://other-bucket/polaris-ingest/demo-file.json.gz", "outside the connection's bucket"),
        ("s3://demo-bucket/elsewhere/demo-file.json.gz", "outside the connection's prefix"),
    ],
)
def test_a_uri_outside_the_connection_fails_the_job_saying_so(
    data_api: httpx.Client, koalas: list[dict[str, Any]], uri: str, says: str
) -> None:
    data_api.post("/connections", json={**GUIDE_CONNECTION, "prefix": "polaris-ingest/"})
    job = run(data_api, job_with({"uris": [uri]}))
    assert job["executionStatus"] == "failed"
    assert job["health"]["code"] == "could_not_connect_to_source"
    assert uri in job["health"]["message"] and says in job["health"]["message"]


def test_a_corrupt_object_fails_its_job_with_cannot_parse_source_naming_the_object(
    data_api: httpx.Client, s3_dir: Path, koalas: list[dict[str, Any]]
) -> None:
    whole = (s3_dir / "demo-bucket" / KOALAS_KEY).read_bytes()
    (s3_dir / "demo-bucket" / "polaris-ingest" / "torn.json.gz").write_bytes(whole[:200])
    data_api.post("/connections", json=GUIDE_CONNECTION)
    job = run(data_api, job_with({"prefixes": ["polaris-ingest/"]}))
    assert (job["executionStatus"], job["health"]["code"]) == ("failed", "cannot_parse_source")
    assert "s3://demo-bucket/polaris-ingest/torn.json.gz" in job["health"]["message"]
    logs = data_api.get(f"/jobs/{job['id']}/logs").json()["logs"]
    assert logs[-1]["code"] == "cannot_parse_source"
    # Nothing of the job landed, not even the good object's rows.
    assert data_api.get("/tables/Koalas").json()["totalRows"] == 0


def test_a_missing_object_fails_with_could_not_connect_to_source(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    job = run(data_api, job_with({"objects": ["polaris-ingest/absent.json"]}))
    assert job["health"]["code"] == "could_not_connect_to_source"
    assert "s3://demo-bucket/polaris-ingest/absent.json" in job["health"]["message"]


def test_null_timestamps_fail_with_null_timestamp(data_api: httpx.Client, s3_dir: Path) -> None:
    rows = [*koalas_rows(3), {"timestamp": "not a time", "city": "Perth", "session": "s"}]
    write_nd_json(s3_dir / "demo-bucket" / "in.json", rows)
    data_api.post("/connections", json=GUIDE_CONNECTION)
    job = run(data_api, job_with({"objects": ["in.json"]}))
    assert job["health"]["code"] == "null_timestamp"
    assert (
        "1 row(s)" in job["health"]["message"]
        and "s3://demo-bucket/in.json" in job["health"]["message"]
    )


def test_a_filter_that_keeps_nothing_fails_with_no_rows_ingested(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    job = run(data_api, job_with(filterExpression="\"city\" = 'Atlantis'"))
    assert job["health"]["code"] == "no_rows_ingested"
    assert "300 filtered out" in job["health"]["message"]


def test_max_parse_exceptions_is_honoured(data_api: httpx.Client, s3_dir: Path) -> None:
    good = "".join(json.dumps(r) + "\n" for r in koalas_rows(5))
    (s3_dir / "demo-bucket").mkdir()
    (s3_dir / "demo-bucket" / "mixed.json").write_text(good + "{broken\nnot json either\n")
    data_api.post("/connections", json=GUIDE_CONNECTION)
    tolerant = run(data_api, job_with({"objects": ["mixed.json"]}, maxParseExceptions=2))
    assert tolerant["executionStatus"] == "completed"
    assert tolerant["health"]["status"] == "warn"
    assert tolerant["health"]["code"] == "invalid_rows_found"
    totals = data_api.get(f"/jobs/{tolerant['id']}/metrics").json()["totals"]
    assert (totals["numRowsProcessed"], totals["numRowsSkippedByError"]) == (5, 2)
    strict = run(data_api, job_with({"objects": ["mixed.json"]}, maxParseExceptions=1))
    assert (strict["executionStatus"], strict["health"]["code"]) == (
        "failed",
        "cannot_parse_source",
    )
    assert "maxParseExceptions (1)" in strict["health"]["message"]


def test_an_unsupported_expression_fails_the_job_naming_it(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    body = job_with()
    body["mappings"] = [
        *body["mappings"],
        {"columnName": "x", "expression": "REGEXP_LIKE(\"city\", '^P')"},
    ]
    job = run(data_api, body)
    assert job["health"]["code"] == "query_not_supported"
    assert "REGEXP_LIKE" in job["health"]["message"]


def test_csv_with_columns_header_rows_delimiter_filter_and_druid_functions(
    data_api: httpx.Client, s3_dir: Path
) -> None:
    lines = [
        "ts;service;method;status;bytes",
        "2026-11-01T10:15:00Z;api;get;200;1000",
        "2026-11-01T10:45:00Z;api;post;500;3000",
        "2026-11-01T11:05:00Z;web;get;0;10",
        "2026-11-01T11:10:00Z;web;get;200;20",
    ]
    path = s3_dir / "logs" / "edge" / "2026" / "11" / "01" / "part-0.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    data_api.post("/connections", json={**GUIDE_CONNECTION, "name": "logs", "bucket": "logs"})
    body = {
        "type": "batch",
        "target": {"type": "table", "tableName": "requests"},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3", "connectionName": "logs", "prefixes": ["edge/2026/11/01/"],
            "formatSettings": {"format": "csv", "skipHeaderRows": 1, "delimiter": ";",
                               "columns": ["ts", "service", "method", "status", "bytes"]},
            "inputSchema": [{"name": "ts", "dataType": "string"}, {"name": "service", "dataType": "string"},
                            {"name": "method", "dataType": "string"}, {"name": "status", "dataType": "long"},
                            {"name": "bytes", "dataType": "long"}],
        },
        "mappings": [
            {"columnName": "__time", "expression": "TIME_FLOOR(TIME_PARSE(\"ts\"), 'PT1H')"},
            {"columnName": "method", "expression": 'UPPER("method")'},
            {"columnName": "kb", "expression": '"bytes" / 1000'},
            {"columnName": "hour", "expression": "TIME_FORMAT(TIME_PARSE(\"ts\"), 'HH:mm')"},
        ],
        "filterExpression": '"status" <> 0',
    }  # fmt: skip
    job = run(data_api, body)
    assert job["executionStatus"] == "completed", job["health"]
    rows = sql(data_api, 'SELECT __time, "method", "kb", "hour" FROM "requests" ORDER BY "hour"')
    assert rows == [
        {"__time": "2026-11-01T10:00:00.000Z", "method": "GET", "kb": 1, "hour": "10:15"},
        {"__time": "2026-11-01T10:00:00.000Z", "method": "POST", "kb": 3, "hour": "10:45"},
        {"__time": "2026-11-01T11:00:00.000Z", "method": "GET", "kb": 0, "hour": "11:10"},
    ]
    totals = data_api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert totals["numRowsSkippedByFilter"] == 1


def test_replace_with_intervals_replaces_exactly_those_intervals(
    data_api: httpx.Client, s3_dir: Path
) -> None:
    first = [{"timestamp": f"2026-11-0{d}T12:00:00Z", "city": "Perth", "session": "a",
              "session_length": 1} for d in (1, 2, 3)]  # fmt: skip
    second = [{"timestamp": f"2026-11-0{d}T13:00:00Z", "city": "Perth", "session": "b",
               "session_length": 2} for d in (2, 3)]  # fmt: skip
    write_nd_json(s3_dir / "demo-bucket" / "first.json", first)
    write_nd_json(s3_dir / "demo-bucket" / "second.json", second)
    data_api.post("/connections", json=GUIDE_CONNECTION)
    run(data_api, job_with({"objects": ["first.json"]}))
    body = job_with({"objects": ["second.json"]}, ingestionMode="replace")
    body["target"] = {**body["target"], "intervals": ["2026-11-02T00:00:00Z/2026-11-03T00:00:00Z"]}
    job = run(data_api, body)
    assert job["executionStatus"] == "completed", job["health"]
    rows = sql(
        data_api, 'SELECT TIME_FORMAT(__time, \'dd\') AS "day", "session" FROM "Koalas" ORDER BY 1'
    )
    assert rows == [
        {"day": "01", "session": "a"},
        {"day": "02", "session": "b"},
        {"day": "03", "session": "a"},
    ]
    totals = data_api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert totals["numRowsSkippedByFilter"] == 1  # the 3rd's row lies outside the interval
    assert data_api.get("/tables/Koalas").json()["segmentCount"] == 3


def test_query_result_formats_and_header(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    run(data_api, GUIDE_JOB)
    query = (
        'SELECT "city", COUNT(*) AS "n" FROM "Koalas" WHERE "city" IN (?, ?) GROUP BY 1 ORDER BY 1'
    )
    parameters = [{"type": "VARCHAR", "value": "Perth"}, {"type": "VARCHAR", "value": "Darwin"}]
    counts = {c: sum(r["city"] == c for r in koalas) for c in ("Darwin", "Perth")}

    def answer(fmt: str, header: bool = False) -> httpx.Response:
        return data_api.post(
            "/query/sql",
            json={"query": query, "resultFormat": fmt, "header": header, "parameters": parameters},
        )

    assert answer("array", header=True).json() == [
        ["city", "n"],
        ["Darwin", counts["Darwin"]],
        ["Perth", counts["Perth"]],
    ]
    lines = answer("objectLines")
    assert lines.headers["content-type"].startswith("text/plain")
    assert lines.text == (
        f'{{"city":"Darwin","n":{counts["Darwin"]}}}\n{{"city":"Perth","n":{counts["Perth"]}}}\n\n'
    )
    assert answer("arrayLines").text.splitlines()[0] == f'["Darwin",{counts["Darwin"]}]'
    csv = answer("csv", header=True)
    assert csv.headers["x-druid-sql-header-included"] == "yes"
    assert csv.text == f"city,n\nDarwin,{counts['Darwin']}\nPerth,{counts['Perth']}\n\n"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('SELECT * FROM "Wombats"', "Wombats"),
        ('SELECT FOO("city") FROM "Koalas"', "FOO"),
        ('DELETE FROM "Koalas"', "SELECT"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not a table"),
    ],
)
def test_a_query_that_cannot_be_answered_gets_polaris_error_body(
    data_api: httpx.Client, koalas: list[dict[str, Any]], query: str, says: str
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    run(data_api, GUIDE_JOB)
    response = data_api.post("/query/sql", json={"query": query})
    assert response.status_code == 400
    body = response.json()
    assert {"error", "errorCode", "category", "errorMessage"} <= set(body)
    assert body["category"] == "INVALID_INPUT" and says in body["errorMessage"]


def test_a_restarted_emulator_with_a_data_dir_keeps_its_rows(
    s3_dir: Path, tmp_path: Path, koalas: list[dict[str, Any]]
) -> None:
    def started() -> tuple[Emulator, httpx.Client]:
        emulator = Emulator(data_dir=tmp_path / "state", data=DataSource(directory=s3_dir))
        client = httpx.Client(
            base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
            transport=emulator.transport(), auth=(DEMO_API_KEY, ""),
        )  # fmt: skip
        return emulator, client

    emulator, api = started()
    api.post("/connections", json=GUIDE_CONNECTION)
    assert run(api, GUIDE_JOB)["executionStatus"] == "completed"
    query = 'SELECT "city", SUM("__count") AS "n" FROM "Koalas" GROUP BY 1 ORDER BY 1'
    before = sql(api, query)
    rows = api.get("/tables/Koalas").json()["totalRows"]
    emulator.close()
    emulator, api = started()
    try:
        after = sql(api, query)
        assert after == before and sum(r["n"] for r in after) == 300
        assert api.get("/tables/Koalas").json()["totalRows"] == rows == 300
    finally:
        emulator.close()


def test_parquet_objects_are_read(data_api: httpx.Client, s3_dir: Path) -> None:
    target = s3_dir / "demo-bucket" / "part.parquet"
    target.parent.mkdir(parents=True)
    rows = list(koalas_rows(20))
    source = s3_dir / "rows.json"
    write_nd_json(source, rows)
    duckdb.sql(f"COPY (SELECT * FROM read_json('{source}')) TO '{target}' (FORMAT parquet)")
    data_api.post("/connections", json=GUIDE_CONNECTION)
    body = job_with({"objects": ["part.parquet"], "formatSettings": {"format": "parquet"}})
    job = run(data_api, body)
    assert job["executionStatus"] == "completed", job["health"]
    assert sql(data_api, 'SELECT SUM("__count") AS "n" FROM "Koalas"') == [{"n": 20}]


def test_a_canceled_job_leaves_no_rows(s3_dir: Path, koalas: list[dict[str, Any]]) -> None:
    emulator = Emulator(data=DataSource(directory=s3_dir))
    emulator.hold_jobs()
    with httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(), auth=(DEMO_API_KEY, ""),
    ) as api:  # fmt: skip
        api.post("/connections", json=GUIDE_CONNECTION)
        job = api.post("/jobs", json=GUIDE_JOB).json()
        canceled = api.post(
            f"/jobs/{job['id']}/status", json={"desiredExecutionStatus": "canceled"}
        )
        assert canceled.json()["executionStatus"] == "canceled"
        assert api.get("/tables/Koalas").json()["totalRows"] == 0
    emulator.close()


def test_the_connection_test_checks_the_bucket_and_prefix_for_real(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    cases = {"demo-conn": ("demo-bucket", "polaris-ingest/", 200),
             "no-bucket": ("no-such-bucket", "", 400), "no-prefix": ("demo-bucket", "nothing-here/", 400)}  # fmt: skip
    for name, (bucket, prefix, status) in cases.items():
        body = {**GUIDE_CONNECTION, "name": name, "bucket": bucket, "prefix": prefix}
        data_api.post("/connections", json=body)
        tested = data_api.post(f"/connections/{name}/test", json={})
        assert tested.status_code == status, (name, tested.text)
        if status == 400:
            assert bucket in tested.json()["message"]


def test_without_a_data_source_the_emulator_says_no_data_is_read(api: httpx.Client) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    job = run(api, GUIDE_JOB)
    assert job["executionStatus"] == "completed"  # as before: invented rows
    logs = api.get(f"/jobs/{job['id']}/logs").json()["logs"]
    assert any("No data is read" in entry["message"] for entry in logs)
    refused = api.post("/query/sql", json={"query": 'SELECT COUNT(*) FROM "Koalas"'})
    assert refused.status_code == 400 and "--s3-dir" in refused.json()["errorMessage"]


@pytest.mark.parametrize("auth", ["access_key", "role", "role_private"])
def test_objects_are_read_through_the_s3_api_of_an_s3_compatible_server(
    moto_endpoint: str, koalas: list[dict[str, Any]], s3_dir: Path, auth: str
) -> None:
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id=GUIDE_CONNECTION["secrets"]["accessKeyId"],
        aws_secret_access_key=GUIDE_CONNECTION["secrets"]["accessKeySecret"],
    )  # fmt: skip
    bucket = f"moto-{auth.replace('_', '-')}-{id(s3_dir) % 100000}"
    # Role connections read with unsigned requests, which a server answers for a public bucket.
    acl = "public-read" if auth == "role" else "private"
    s3.create_bucket(Bucket=bucket, ACL=acl)
    body = (s3_dir / "demo-bucket" / KOALAS_KEY).read_bytes()
    s3.put_object(Bucket=bucket, Key=KOALAS_KEY, Body=body, ACL=acl)
    for number in range(3):  # keys outside the connection's prefix
        s3.put_object(Bucket=bucket, Key=f"other/{number}.json", Body=b"{}")
    emulator = Emulator(data=DataSource(endpoint=moto_endpoint))
    with httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(), auth=(DEMO_API_KEY, ""),
    ) as api:  # fmt: skip
        # A role cannot be assumed outside AWS: such a connection reads with unsigned requests.
        connection = GUIDE_CONNECTION if auth == "access_key" else GUIDE_ROLE_CONNECTION
        api.post("/connections", json={**connection, "bucket": bucket, "prefix": "polaris-ingest/"})
        tested = api.post("/connections/demo-conn/test", json={})
        job = run(api, job_with({"pattern": "polaris-ingest/*.json.gz"}))
        if auth == "role_private":
            # moto lists a private bucket for anyone, but GetObject is refused: the job says why.
            assert job["health"]["code"] == "could_not_connect_to_source"
            assert "unsigned" in job["health"]["message"]
            return
        assert tested.status_code == 200
        assert job["executionStatus"] == "completed", job["health"]
        assert sql(api, 'SELECT SUM("__count") AS "n" FROM "Koalas"') == [{"n": 300}]
    emulator.close()


def test_the_official_polaris_sdk_queries_the_emulator(
    data_emulator: Emulator, data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    sdk = pytest.importorskip("polaris.sdk.client")
    data_api.post("/connections", json=GUIDE_CONNECTION)
    run(data_api, GUIDE_JOB)
    with data_emulator.serve() as server:
        client = sdk.ProjectClient.from_endpoint(DEMO_PROJECT_ID, server.url, DEMO_API_KEY)
        rows = client.query.query_sync(
            {"query": 'SELECT COUNT(*) AS "n", SUM("__count") AS "events" FROM "Koalas"'}
        )
        error = client.query.query_sync({"query": 'SELECT "nope" FROM "Koalas"'})
    assert rows == [{"n": len(koalas), "events": len(koalas)}]
    assert (error.error_code, error.category) == ("invalidInput", "INVALID_INPUT")
    assert "nope" in error.error_message


def test_types_headers_describe_the_columns(
    data_api: httpx.Client, koalas: list[dict[str, Any]]
) -> None:
    data_api.post("/connections", json=GUIDE_CONNECTION)
    run(data_api, GUIDE_JOB)
    query = 'SELECT __time, "city", "max_session_length" FROM "Koalas" LIMIT 1'
    options = {"header": True, "typesHeader": True, "sqlTypesHeader": True}
    arrays = sql(data_api, query, resultFormat="array", **options)
    assert arrays[:3] == [
        ["__time", "city", "max_session_length"],
        ["LONG", "STRING", "LONG"],
        ["TIMESTAMP", "VARCHAR", "BIGINT"],
    ]
    objects = sql(data_api, query, resultFormat="object", **options)
    assert objects[0]["city"] == {"type": "STRING", "sqlType": "VARCHAR"}


def test_a_job_reads_off_the_request_thread_and_completes_on_the_clock(
    s3_dir: Path, koalas: list[dict[str, Any]]
) -> None:
    clock = ManualClock()
    emulator = Emulator(
        clock=clock, timing=JobTiming(pending_seconds=1, running_seconds=4),
        data=DataSource(directory=s3_dir),
    )  # fmt: skip
    with httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(), auth=(DEMO_API_KEY, ""),
    ) as api:  # fmt: skip
        api.post("/connections", json=GUIDE_CONNECTION)
        job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
        clock.advance(2)
        assert api.get(f"/jobs/{job_id}").json()["executionStatus"] == "running"
        emulator.engine.outcome(job_id)  # the rows are read, but the clock says a quarter done
        assert api.get(f"/jobs/{job_id}/progress").json()["overallProgress"] == 0.25
        assert api.get(f"/jobs/{job_id}/metrics").json()["totals"]["numRowsProcessed"] == 0
        assert api.get("/tables/Koalas").json()["totalRows"] == 0  # nothing lands before the end
        clock.advance(3)
        assert api.get(f"/jobs/{job_id}").json()["executionStatus"] == "completed"
        assert api.get(f"/jobs/{job_id}/progress").json()["overallProgress"] == 1.0
        assert api.get(f"/jobs/{job_id}/metrics").json()["totals"]["numRowsProcessed"] == 300
    emulator.close()


def test_a_job_pending_when_the_emulator_stopped_is_ingested_after_the_restart(
    s3_dir: Path, tmp_path: Path, koalas: list[dict[str, Any]]
) -> None:
    state = tmp_path / "state"
    emulator = Emulator(data_dir=state, data=DataSource(directory=s3_dir))
    emulator.hold_jobs()
    base = f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}"
    with httpx.Client(
        base_url=base, transport=emulator.transport(), auth=(DEMO_API_KEY, "")
    ) as api:
        api.post("/connections", json=GUIDE_CONNECTION)
        job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
    emulator.close()
    emulator = Emulator(data_dir=state, data=DataSource(directory=s3_dir))
    emulator.hold_jobs(False)
    with httpx.Client(
        base_url=base, transport=emulator.transport(), auth=(DEMO_API_KEY, "")
    ) as api:
        assert api.get(f"/jobs/{job_id}").json()["executionStatus"] == "completed"
        assert api.get("/tables/Koalas").json()["totalRows"] == 300
    emulator.close()


def test_an_aggregate_table_rolls_up_on_its_query_granularity(
    data_api: httpx.Client, s3_dir: Path
) -> None:
    events = [
        ("2026-11-01T10:05:00Z", "Perth", 5),
        ("2026-11-01T10:55:00Z", "Perth", 9),
        ("2026-11-01T10:30:00Z", "Darwin", 4),
        ("2026-11-01T11:10:00Z", "Perth", 1),
    ]
    write_nd_json(
        s3_dir / "demo-bucket" / "hourly.json",
        [{"timestamp": t, "city": c, "session": "s", "session_length": n} for t, c, n in events],
    )
    data_api.post("/connections", json=GUIDE_CONNECTION)
    table = {"name": "hourly", "type": "aggregate",
             "queryGranularity": {"type": "simple", "granularity": "hour"}}  # fmt: skip
    assert data_api.post("/tables", json=table).status_code == 201
    body = job_with({"objects": ["hourly.json"]}, createTableIfNotExists=False)
    body["target"] = {"type": "table", "tableName": "hourly"}
    body["mappings"] = [
        {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'},
        {"columnName": "city", "expression": '"city"'},
        {"columnName": "longest", "expression": 'MAX("session_length")', "isAggregation": True},
        {"columnName": "last", "expression": 'LATEST("session_length")', "isAggregation": True},
    ]
    job = run(data_api, body)
    assert job["executionStatus"] == "completed", job["health"]
    rows = sql(data_api, 'SELECT * FROM "hourly" ORDER BY __time, "city"')
    assert rows == [
        {
            "__time": "2026-11-01T10:00:00.000Z",
            "city": "Darwin",
            "longest": 4,
            "last": 4,
            "__count": 1,
        },
        {
            "__time": "2026-11-01T10:00:00.000Z",
            "city": "Perth",
            "longest": 9,
            "last": 9,
            "__count": 2,
        },
        {
            "__time": "2026-11-01T11:00:00.000Z",
            "city": "Perth",
            "longest": 1,
            "last": 1,
            "__count": 1,
        },
    ]
    totals = data_api.get(f"/jobs/{job['id']}/metrics").json()["totals"]
    assert (totals["numRowsProcessed"], totals["numRowsPersisted"]) == (4, 3)


def test_the_emulator_command_says_whether_it_reads_data(s3_dir: Path) -> None:
    for extra, says in (([], "No data is read"), (["--s3-dir", str(s3_dir)], str(s3_dir))):
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "emulator", "--port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            assert says in process.stderr.readline()
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
