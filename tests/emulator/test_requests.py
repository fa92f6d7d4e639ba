"""Requests as a spec-following client sends them: validated like Polaris, bodiless where the
OpenAPI defines no body, unknown methods answered in JSON, timestamps as the guide shows them."""

from __future__ import annotations

import http.client
import json
import re
import runpy
from typing import Any

import httpx
import pytest

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from tests.fixtures import ROOT
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB

JUNK: list[tuple[str, Any]] = [
    ("clusteringColumns", [["a"]]),
    ("clusteringColumns", [{"a": 1}]),
    ("clusteringColumns", "abc"),
    ("clusteringColumns", [5]),
    ("storagePolicy", "forever"),
    ("storagePolicy", {"retain": [{"x": 1}]}),
    ("description", 42),
    ("schemaMode", ["strict"]),
    ("partitioningGranularity", 7),
]


@pytest.mark.parametrize(("field", "value"), JUNK)
def test_a_table_created_with_junk_is_a_400_naming_the_field_and_nothing_is_stored(
    api: httpx.Client, field: str, value: Any
) -> None:
    answer = api.post("/tables", json={"name": "t", "type": "detail", field: value})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["message"]
    assert api.get("/tables/t").status_code == 404


@pytest.mark.parametrize(("field", "value"), JUNK)
def test_a_table_updated_with_junk_is_a_400_naming_the_field_and_nothing_changes(
    api: httpx.Client, field: str, value: Any
) -> None:
    created = api.post("/tables", json={"name": "t", "type": "detail"}).json()
    answer = api.put("/tables/t", json={"name": "t", "type": "detail", "version": 0, field: value})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["message"]
    assert api.get("/tables/t").json() == created


def test_a_valid_table_with_a_null_description_is_accepted(api: httpx.Client) -> None:
    body = {"name": "t", "type": "detail", "description": None, "clusteringColumns": ["a"]}
    assert api.post("/tables", json=body).status_code == 201


def test_testing_a_connection_and_resetting_a_job_need_no_body(api: httpx.Client) -> None:
    assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    job = api.post("/jobs", json=GUIDE_JOB).json()
    tested = api.post("/connections/demo-conn/test")
    assert tested.status_code == 200, tested.text
    reset = api.post(f"/jobs/{job['id']}/reset")
    assert reset.status_code == 400, reset.text
    assert "streaming" in reset.json()["message"]


@pytest.mark.parametrize("method", ["TRACE", "HEAD", "OPTIONS", "CONNECT", "BREW"])
def test_methods_outside_the_api_get_the_json_405_with_allow(
    emulator: Emulator, method: str
) -> None:
    with emulator.serve() as running:
        host, port = running.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        path = f"/v1/projects/{DEMO_PROJECT_ID}/connections"
        connection.request(method, path, headers={"Authorization": f"Basic {DEMO_API_KEY}"})
        answer = connection.getresponse()
        body = answer.read()
        connection.close()
    assert answer.status == 405
    assert answer.getheader("Allow") == "GET, POST"
    assert answer.getheader("Content-Type") == "application/json"
    if method != "HEAD":  # a HEAD answer has headers only
        assert json.loads(body)["code"] == "MethodNotAllowed"


WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_connection_and_table_timestamps_are_whole_seconds_as_in_the_guide(
    api: httpx.Client,
) -> None:
    connection = api.post("/connections", json=GUIDE_CONNECTION).json()
    table = api.post("/tables", json={"name": "t", "type": "detail"}).json()
    stamps = [connection["submittedOnTimestamp"], connection["modifiedOnTimestamp"]]
    stamps += [table["createdOnTimestamp"], table["modifiedOnTimestamp"]]
    assert all(WHOLE_SECONDS.match(s) for s in stamps), stamps


def test_the_emulators_request_schemas_are_those_of_the_full_openapi_document() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "emulator_request_schemas.py"))
    written = (ROOT / "reconciler" / "emulator" / "request-schemas.json").read_text()
    assert written == generator["rendered"](), "run scripts/emulator_request_schemas.py"
