"""The Files API: upload (multipart), list, get, delete; batch jobs from `uploaded` files."""

from __future__ import annotations

import copy
import gzip
import json

import httpx

from reconciler.emulator.samples import koalas_rows
from tests.guide import GUIDE_JOB

ROWS = list(koalas_rows(40))
CONTENT = gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode())


def upload(api: httpx.Client, name: str = "koalas.json.gz") -> httpx.Response:
    return api.post("/files", files={"file": (name, CONTENT, "application/octet-stream")})


def test_a_file_is_uploaded_listed_read_and_deleted(api: httpx.Client) -> None:
    uploaded = upload(api)
    assert uploaded.status_code == 201, uploaded.text
    meta = uploaded.json()
    assert (meta["name"], meta["sizeBytes"]) == ("koalas.json.gz", len(CONTENT))
    assert (meta["dataFormat"], meta["compressionFormat"]) == ("nd-json", "gz")
    assert meta["digest"]["algo"] == "md5"
    assert upload(api).status_code == 409  # names are unique
    listed = api.get("/files").json()
    assert [f["name"] for f in listed["files"]] == ["koalas.json.gz"]
    assert listed["space"]["usedBytes"] == len(CONTENT)
    assert api.get("/files/koalas.json.gz").json() == meta
    assert api.delete("/files/koalas.json.gz").status_code == 204
    assert api.get("/files/koalas.json.gz").status_code == 404
    assert api.delete("/files/koalas.json.gz").status_code == 404


def test_an_upload_without_a_file_part_is_a_400(api: httpx.Client) -> None:
    answer = api.post("/files", files={"other": ("x.json", b"{}")})
    assert answer.status_code == 400
    assert "file" in answer.json()["message"]


def test_a_batch_job_ingests_uploaded_files_through_the_same_engine(
    data_api: httpx.Client,
) -> None:
    assert upload(data_api).status_code == 201
    job = copy.deepcopy(GUIDE_JOB)
    job["source"] = {
        "type": "uploaded",
        "fileList": ["koalas.json.gz"],
        "formatSettings": {"format": "nd-json"},
        "inputSchema": GUIDE_JOB["source"]["inputSchema"],
    }
    created = data_api.post("/jobs", json=job)
    assert created.status_code == 201, created.text
    done = data_api.get(f"/jobs/{created.json()['id']}").json()
    assert done["executionStatus"] == "completed", done
    answer = data_api.post("/query/sql", json={"query": 'SELECT SUM("__count") AS n FROM "Koalas"'})
    assert answer.json() == [{"n": len(ROWS)}]


def test_a_job_on_a_file_that_was_never_uploaded_is_a_400(api: httpx.Client) -> None:
    job = copy.deepcopy(GUIDE_JOB)
    job["source"] = {"type": "uploaded", "fileList": ["nope.json"], "inputSchema": []}
    job["source"]["inputSchema"] = GUIDE_JOB["source"]["inputSchema"]
    answer = api.post("/jobs", json=job)
    assert answer.status_code == 400
    assert "nope.json" in answer.json()["message"]
