"""A table reports the columns its data created (the OpenAPI's `queryableSchema`), declared or
discovered, for detail and aggregate tables, flexible and strict."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from reconciler.emulator.samples import koalas_rows, write_nd_json
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB


def columns(api: httpx.Client, table: str) -> list[tuple[str, str, bool]]:
    record = api.get(f"/tables/{table}").json()
    return [(c["name"], c["dataType"], c["isDiscovered"]) for c in record["queryableSchema"]]


@pytest.fixture
def ingesting(data_api: httpx.Client, s3_dir: Any) -> httpx.Client:
    write_nd_json(
        s3_dir / "demo-bucket" / "polaris-ingest" / "demo-file.json.gz", list(koalas_rows(30))
    )
    assert data_api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    return data_api


def test_a_table_a_job_created_reports_the_columns_the_data_created(
    ingesting: httpx.Client,
) -> None:
    job = ingesting.post("/jobs", json=GUIDE_JOB).json()
    assert ingesting.get(f"/jobs/{job['id']}").json()["executionStatus"] == "completed"
    assert columns(ingesting, "Koalas") == [
        ("__time", "timestamp", False),
        ("city", "string", True),
        ("session", "string", True),
        ("max_session_length", "long", True),
        ("__count", "long", True),
    ]
    assert ingesting.get("/tables/Koalas").json()["schema"] == []  # nothing was declared


@pytest.mark.parametrize("mode", ["flexible", "strict"])
def test_declared_columns_are_reported_before_and_after_ingestion(
    ingesting: httpx.Client, mode: str
) -> None:
    schema = [{"name": "city", "dataType": "string"}, {"name": "session", "dataType": "string"}]
    body = {"name": "Events", "type": "detail", "schemaMode": mode, "schema": schema}
    assert ingesting.post("/tables", json=body).status_code == 201
    declared = [
        ("__time", "timestamp", False),
        ("city", "string", False),
        ("session", "string", False),
    ]
    assert columns(ingesting, "Events") == declared
    job: dict[str, Any] = copy.deepcopy(GUIDE_JOB)
    job["target"]["tableName"] = "Events"
    job["mappings"] = [m for m in job["mappings"] if not m.get("isAggregation")]
    discovered = [("length", "long", True)] if mode == "flexible" else []
    if discovered:  # a strict table takes only declared columns
        job["mappings"].append({"columnName": "length", "expression": '"session_length"'})
    done = ingesting.get(f"/jobs/{ingesting.post('/jobs', json=job).json()['id']}").json()
    assert done["executionStatus"] == "completed", done
    assert columns(ingesting, "Events") == [*declared, *discovered]
