"""The emulator behaves as the Polaris reference documents say, status code by status code."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import (
    DEMO_API_KEY,
    DEMO_PROJECT_ID,
    Emulator,
    FaultPlan,
    JobTiming,
    ManualClock,
)
from tests.conformance import ConformanceLog, openapi_paths
from tests.fixtures import ROOT
from tests.guide import GUIDE_JOB
from tests.guide import GUIDE_ROLE_CONNECTION as GUIDE_CONNECTION

BASE = f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}"


def job_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GUIDE_JOB)
    for dotted, value in changes.items():
        target = body
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return body


def test_the_guides_connection_then_job_work_and_return_what_the_guide_shows(
    api: httpx.Client,
) -> None:
    created = api.post("/connections", json=GUIDE_CONNECTION)
    assert created.status_code == 201
    assert created.headers["Location"] == f"/v1/projects/{DEMO_PROJECT_ID}/connections/demo-conn"
    body = created.json()
    assert {k: body[k] for k in GUIDE_CONNECTION} == GUIDE_CONNECTION
    assert {
        "submittedByUser",
        "submittedOnTimestamp",
        "modifiedByUser",
        "modifiedOnTimestamp",
    } <= set(body)
    job = api.post("/jobs", json=GUIDE_JOB)
    assert job.status_code == 201
    assert job.headers["Location"].endswith(f"/jobs/{job.json()['id']}")
    shown = job.json()
    assert shown["ingestionMode"] == "append"
    assert shown["desiredExecutionStatus"] == "running"
    assert shown["executionStatus"] == "pending"
    assert shown["health"] == {"status": "ok"}
    assert shown["mappings"][-1] == {"columnName": "__count", "expression": "COUNT(*)"}
    assert all("isAggregation" not in m for m in shown["mappings"])
    assert shown["spec"] == GUIDE_JOB
    assert {"createdBy", "lastModifiedBy", "createdTimestamp", "lastUpdatedTimestamp"} <= set(shown)
    assert shown["createdBy"]["username"].startswith("api-key-")
    koalas = api.get("/tables/Koalas").json()
    assert (koalas["type"], koalas["schemaMode"], koalas["partitioningGranularity"]) == (
        "aggregate",
        "flexible",
        "day",
    )


@pytest.mark.parametrize(
    "authorization",
    [
        f"Basic {DEMO_API_KEY}",
        "Basic " + base64.b64encode(f"{DEMO_API_KEY}:".encode()).decode(),
        f"Bearer {DEMO_API_KEY}",
    ],
    ids=["raw key", "base64 of key colon", "bearer token"],
)
def test_every_documented_form_of_credentials_is_accepted(
    emulator: Emulator, authorization: str
) -> None:
    with httpx.Client(base_url=BASE, transport=emulator.transport()) as raw:
        assert raw.get("/connections", headers={"Authorization": authorization}).status_code == 200


def test_missing_or_wrong_credentials_are_401_in_the_wrapped_error_shape(
    emulator: Emulator,
) -> None:
    with httpx.Client(base_url=BASE, transport=emulator.transport()) as raw:
        for headers in ({}, {"Authorization": "Basic nope"}, {"Authorization": "Bearer nope"}):
            response = raw.get("/connections", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "Unauthorized"


def test_a_key_without_the_permission_gets_a_403_naming_it() -> None:
    emulator = Emulator(api_keys={"pok_tables_only": ["ManageTables"]})
    with httpx.Client(
        base_url=BASE, transport=emulator.transport(), auth=("pok_tables_only", "")
    ) as api:
        assert api.get("/connections").status_code == 200  # reads need no permission
        denied = api.post("/connections", json=GUIDE_CONNECTION)
        assert denied.status_code == 403
        assert "ManageConnections" in denied.json()["message"]
        assert api.post("/tables", json={"name": "t", "type": "detail"}).status_code == 201


def test_an_unknown_project_is_a_404(emulator: Emulator) -> None:
    with httpx.Client(
        base_url="http://polaris.test/v1/projects/nope",
        transport=emulator.transport(),
        auth=(DEMO_API_KEY, ""),
    ) as api:
        response = api.get("/connections")
    assert response.status_code == 404
    assert "nope" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**GUIDE_CONNECTION, "bucket": None}, "bucket is required"),
        (
            {k: v for k, v in GUIDE_CONNECTION.items() if k != "awsEndpoint"},
            "awsEndpoint is required",
        ),
        ({**GUIDE_CONNECTION, "name": "has space"}, "name must be"),
        (
            {**GUIDE_CONNECTION, "type": "kafka"},
            "Unrecognized field(s) for a connection of type kafka: awsAssumedRoleArn",
        ),
        ({**GUIDE_CONNECTION, "type": "ftp"}, "type is required and must be one of azure,"),
        ({**GUIDE_CONNECTION, "buckt": "x"}, "Unrecognized field"),
    ],
    ids=[
        "no bucket",
        "no endpoint",
        "bad name",
        "s3 fields on kafka",
        "unknown type",
        "unknown field",
    ],
)
def test_an_invalid_connection_is_a_400_with_code_and_message(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = api.post("/connections", json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert response.json()["code"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source__connectionName": "missing"}, "Connection missing does not exist"),
        ({"mappings": [{"columnName": "city", "expression": '"city"'}]}, "__time"),
        (
            {"source__prefixes": ["polaris-ingest/"]},
            "Exactly one of uris, prefixes, objects or pattern",
        ),
        ({"source__uris": None}, "Exactly one of uris, prefixes, objects or pattern"),
        (
            {"target__intervals": ["2026-01-01/2026-02-01"]},
            "intervals are not allowed with ingestionMode append",
        ),
        (
            {"createTableIfNotExists": False, "target__tableName": "Nope"},
            "Table Nope does not exist",
        ),
        ({"source__inputSchema": []}, "inputSchema"),
        ({"type": "streaming"}, "A streaming job reads source {type: connection"),
    ],
    ids=[
        "unknown connection",
        "no __time",
        "two selectors",
        "no selector",
        "intervals with append",
        "no table",
        "no input schema",
        "streaming from s3",
    ],
)
def test_an_invalid_job_is_a_400(api: httpx.Client, changes: dict[str, Any], message: str) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    response = api.post("/jobs", json=job_with(**changes))
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_duplicates_are_409_and_a_non_json_body_is_415(api: httpx.Client) -> None:
    assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    conflict = api.post("/connections", json=GUIDE_CONNECTION)
    assert conflict.status_code == 409
    assert conflict.json()["message"] == "Connection with name demo-conn already exists"
    assert api.post("/tables", json={"name": "t", "type": "detail"}).status_code == 201
    assert api.post("/tables", json={"name": "t", "type": "detail"}).status_code == 409
    not_json = api.post("/connections", content=b"type=s3", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 415
    assert (
        api.post(
            "/connections", content=b"{oops", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_a_stale_table_version_is_a_409_and_a_fresh_one_bumps_the_version(
    api: httpx.Client,
) -> None:
    created = api.post(
        "/tables",
        json={"name": "t", "type": "detail", "schema": [{"name": "a", "dataType": "string"}]},
    ).json()
    assert created["version"] == 0
    updated = api.put("/tables/t", json={**created, "description": "now described"})
    assert (updated.status_code, updated.json()["version"]) == (200, 1)
    assert api.put("/tables/t", json={**created, "description": "stale"}).status_code == 409
    assert api.put("/tables/t", json={**updated.json(), "type": "aggregate"}).status_code == 400


def test_columns_can_be_added_to_a_full_table_but_not_removed(api: httpx.Client) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    schema = [{"name": "city", "dataType": "string", "type": "dimension"}]
    table = api.post(
        "/tables", json={"name": "Koalas", "type": "aggregate", "schema": schema}
    ).json()
    api.post("/jobs", json=GUIDE_JOB)
    table = api.get("/tables/Koalas").json()
    assert table["totalRows"] > 0
    grown = api.put(
        "/tables/Koalas",
        json={
            **table,
            "schema": [*schema, {"name": "country", "dataType": "string", "type": "dimension"}],
        },
    )
    assert grown.status_code == 200
    shrunk = api.put("/tables/Koalas", json={**grown.json(), "schema": []})
    assert shrunk.status_code == 400
    assert "only be changed or removed while the table is empty" in shrunk.json()["message"]


def test_a_connection_type_cannot_change_and_null_clears_a_field(api: httpx.Client) -> None:
    api.post("/connections", json={**GUIDE_CONNECTION, "prefix": "a/"})
    assert api.patch("/connections/demo-conn", json={"type": "kafka"}).status_code == 400
    assert api.patch("/connections/demo-conn", json={"bucket": "x"}).status_code == 400
    cleared = api.patch(
        "/connections/demo-conn", json={"type": "s3", "prefix": None, "description": "d"}
    )
    assert cleared.status_code == 200
    assert "prefix" not in cleared.json() and cleared.json()["description"] == "d"


def test_secrets_are_stored_but_never_returned(api: httpx.Client, emulator: Emulator) -> None:
    secrets = {
        "type": "access_key",
        "accessKeyId": "AKIAEMU",
        "accessKeySecret": "s3cr3t-emu-value",
    }
    created = api.post("/connections", json={**GUIDE_CONNECTION, "secrets": secrets})
    assert emulator.store.connections["demo-conn"]["secrets"] == secrets
    for response in (created, api.get("/connections/demo-conn"), api.get("/connections")):
        assert "s3cr3t-emu-value" not in response.text and "AKIAEMU" not in response.text


def test_a_connection_in_use_by_an_active_job_cannot_be_deleted(
    api: httpx.Client, emulator: Emulator
) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    emulator.hold_jobs()
    job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
    refused = api.delete("/connections/demo-conn")
    assert (refused.status_code, refused.json()["message"]) == (
        400,
        "Connection is in use by ingestion jobs",
    )
    emulator.complete_job(job_id)
    assert api.delete("/connections/demo-conn").status_code == 200
    assert api.get("/connections/demo-conn").status_code == 404


def test_jobs_go_pending_running_completed_on_the_clock(emulator: Emulator) -> None:
    clock = ManualClock()
    timed = Emulator(
        clock=clock,
        timing=JobTiming(pending_seconds=2, running_seconds=5),
        response_observer=ConformanceLog(),
    )
    with httpx.Client(base_url=BASE, transport=timed.transport(), auth=(DEMO_API_KEY, "")) as api:
        api.post("/connections", json=GUIDE_CONNECTION)
        job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
        assert api.get(f"/jobs/{job_id}").json()["executionStatus"] == "pending"
        clock.advance(3)
        running = api.get(f"/jobs/{job_id}").json()
        assert running["executionStatus"] == "running" and "startedTimestamp" in running
        assert 0 < api.get(f"/jobs/{job_id}/progress").json()["overallProgress"] < 1
        clock.advance(5)
        done = api.get(f"/jobs/{job_id}").json()
        assert done["executionStatus"] == "completed" and "completedTimestamp" in done
        assert api.get(f"/jobs/{job_id}/metrics").json()["totals"]["numRowsPersisted"] > 0
        assert api.get(f"/jobs/{job_id}/status").json() == {"executionStatus": "completed"}


def test_a_failed_job_reports_its_health_code_and_message(
    api: httpx.Client, emulator: Emulator
) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    emulator.hold_jobs()
    job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
    emulator.fail_job(job_id, code="cannot_parse_source", message="bad gzip")
    job = api.get(f"/jobs/{job_id}").json()
    assert job["executionStatus"] == "failed"
    assert (job["health"]["status"], job["health"]["code"], job["health"]["message"]) == (
        "error",
        "cannot_parse_source",
        "bad gzip",
    )
    assert any(
        entry.get("code") == "cannot_parse_source"
        for entry in api.get(f"/jobs/{job_id}/logs").json()["logs"]
    )


def test_cancel_moves_an_active_job_to_canceled_and_refuses_a_finished_one(
    api: httpx.Client, emulator: Emulator
) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    emulator.hold_jobs()
    first = api.post("/jobs", json=GUIDE_JOB).json()["id"]
    second = api.post("/jobs", json=job_with(source__uris=["s3://demo-bucket/other.json"])).json()[
        "id"
    ]
    canceled = api.post(f"/jobs/{first}/status", json={"desiredExecutionStatus": "canceled"})
    assert canceled.json() == {"executionStatus": "canceled"}
    put = api.put(f"/jobs/{second}", json={"desiredExecutionStatus": "canceled"})
    assert (
        put.json()["executionStatus"] == "canceled"
        and put.json()["desiredExecutionStatus"] == "canceled"
    )
    assert (
        api.post(f"/jobs/{first}/status", json={"desiredExecutionStatus": "canceled"}).status_code
        == 400
    )


def test_the_job_list_pages_filters_and_returns_summaries_only(
    api: httpx.Client, emulator: Emulator
) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    for i in range(250):
        api.post("/jobs", json=job_with(source__uris=[f"s3://demo-bucket/f{i}.json"]))
    first = api.get("/jobs").json()
    assert len(first["values"]) == 100 and first["moreResultsAvailable"] is True
    assert set(first["values"][0]["source"]) == {"type", "connectionName"}
    assert "mappings" not in first["values"][0]
    last = api.get("/jobs", params={"paginationLimit": 100, "paginationOffset": 200}).json()
    assert len(last["values"]) == 50 and last["moreResultsAvailable"] is False
    ids = [
        j["id"]
        for offset in (0, 100, 200)
        for j in api.get("/jobs", params={"paginationOffset": offset}).json()["values"]
    ]
    assert len(set(ids)) == 250
    assert api.get("/jobs", params={"targetTableName": "Nope"}).json()["values"] == []
    assert (
        len(
            api.get(
                "/jobs",
                params={"connectionName": "demo-conn", "type": "batch", "paginationLimit": 1000},
            ).json()["values"]
        )
        == 250
    )
    for bad in ("0", "1001", "x"):
        assert api.get("/jobs", params={"paginationLimit": bad}).status_code == 400
    assert api.get("/jobs", params={"executionStatus": "sleeping"}).status_code == 400


def test_state_in_a_data_dir_survives_a_restart(tmp_path: Path) -> None:
    first = Emulator(data_dir=tmp_path)
    with httpx.Client(base_url=BASE, transport=first.transport(), auth=(DEMO_API_KEY, "")) as api:
        api.post("/connections", json=GUIDE_CONNECTION)
        job_id = api.post("/jobs", json=GUIDE_JOB).json()["id"]
    # No clean shutdown: the journal alone must carry every acknowledged write.
    second = Emulator(data_dir=tmp_path)
    with httpx.Client(base_url=BASE, transport=second.transport(), auth=(DEMO_API_KEY, "")) as api:
        assert api.get("/connections/demo-conn").status_code == 200
        assert api.get(f"/jobs/{job_id}").json()["executionStatus"] == "completed"
        assert api.get("/tables/Koalas").status_code == 200
    second.store.close()
    first.store.close()


def test_faults_are_the_same_for_the_same_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        emulator = Emulator(faults=FaultPlan(seed=seed, rate_429=0.3, rate_503=0.2))
        with httpx.Client(
            base_url=BASE, transport=emulator.transport(), auth=(DEMO_API_KEY, "")
        ) as api:
            return [api.get("/connections").status_code for _ in range(40)]

    assert outcomes(5) == outcomes(5)
    assert outcomes(5) != outcomes(6)
    assert {429, 503, 200} == set(outcomes(5))


def test_a_429_carries_retry_after(emulator: Emulator, api: httpx.Client) -> None:
    emulator.faults.inject("429", method="GET")
    response = api.get("/connections")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")


def test_a_dropped_response_leaves_the_write_committed(
    emulator: Emulator, api: httpx.Client
) -> None:
    emulator.faults.inject("drop", method="POST", path_contains="/connections")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/connections", json=GUIDE_CONNECTION)
    assert api.get("/connections/demo-conn").status_code == 200


def test_the_real_server_answers_on_a_random_port_and_drops_like_a_network(
    emulator: Emulator,
) -> None:
    with emulator.serve() as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(
            base_url=f"{server.url}/v1/projects/{DEMO_PROJECT_ID}", auth=(DEMO_API_KEY, "")
        ) as api:
            assert api.get("/connections").json() == {"values": []}
            emulator.faults.inject("drop", method="POST")
            with pytest.raises(httpx.RemoteProtocolError):
                api.post("/connections", json=GUIDE_CONNECTION)
            assert api.get("/connections/demo-conn").status_code == 200


def test_every_operation_of_the_openapi_document_is_routed_and_every_route_is_documented(
    emulator: Emulator,
) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in openapi_paths().items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    routed = {(route.method, route.template) for route in emulator.routes}
    # The Query, Files and Events APIs are documented in the full document only.
    full = json.loads((ROOT / "tests" / "reference" / "polaris-openapi-full.json").read_text())
    assert routed - {(m.upper(), p) for p, ops in full["paths"].items() for m in ops} == set()
    assert {p for _, p in routed - documented} == {
        "/v1/projects/{projectId}/query/sql",
        "/v1/projects/{projectId}/files",
        "/v1/projects/{projectId}/files/{name}",
        "/v1/projects/{projectId}/events/{connectionName}",
    }
    assert documented - routed == set()


def test_a_null_in_a_job_request_counts_as_absent_and_is_never_echoed(api: httpx.Client) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    created = api.post("/jobs", json={**GUIDE_JOB, "filterExpression": None})
    assert created.status_code == 201
    assert "filterExpression" not in created.json()
    assert "filterExpression" not in created.json()["spec"]


def test_an_aggregate_table_column_without_a_type_is_a_400(api: httpx.Client) -> None:
    schema = [{"name": "city", "dataType": "string"}]
    response = api.post("/tables", json={"name": "t", "type": "aggregate", "schema": schema})
    assert response.status_code == 400
    assert response.json()["message"] == (
        "Column city of an aggregate table needs a type: dimension or measure"
    )


def test_the_batch_job_field_types_are_the_openapi_documents() -> None:
    from reconciler.emulator.jobs import JOB_FIELD_TYPES
    from tests.conformance import openapi_schemas

    schemas = openapi_schemas()
    request = schemas["CreateBatchJobRequest"]
    documented = {}
    for part in request["allOf"]:
        part = schemas[part["$ref"].rsplit("/", 1)[-1]] if "$ref" in part else part
        for name, field in part.get("properties", {}).items():
            field = schemas[field["$ref"].rsplit("/", 1)[-1]] if "$ref" in field else field
            documented[name] = field.get("type")
    assert documented == JOB_FIELD_TYPES


@pytest.mark.parametrize(
    "field", ["createTableIfNotExists", "replaceAll", "maxParseExceptions", "filterExpression"]
)
def test_a_job_field_of_the_wrong_type_is_a_400_naming_it(api: httpx.Client, field: str) -> None:
    api.post("/connections", json=GUIDE_CONNECTION)
    response = api.post("/jobs", json={**GUIDE_JOB, field: []})
    assert response.status_code == 400, response.text
    assert field in response.text
