"""Emulator speed on loopback: simple GETs per second, and paging through 1,000 vs 10,000 jobs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

SECONDS = 3.0
CONNECTION = {"type": "s3", "name": "c", "bucket": "b", "awsEndpoint": "s3.us-east-1.amazonaws.com"}
JOB = {
    "type": "batch",
    "target": {"type": "table", "tableName": "t"},
    "createTableIfNotExists": True,
    "source": {
        "type": "s3",
        "connectionName": "c",
        "objects": ["x"],
        "inputSchema": [{"name": "ts", "dataType": "string"}],
    },
    "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("ts")'}],
}


def gets_per_second(base: str, threads: int) -> float:
    """GET /connections/c as fast as `threads` keep-alive clients can for SECONDS."""
    deadline = time.perf_counter() + SECONDS

    def worker(_: int) -> int:
        count = 0
        with httpx.Client(base_url=base, auth=(DEMO_API_KEY, "")) as client:
            while time.perf_counter() < deadline:
                client.get("/connections/c").raise_for_status()
                count += 1
        return count

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(worker, range(threads)))
    return total / (time.perf_counter() - began)


def page_through(base: str, client: httpx.Client, expected: int) -> float:
    """Seconds to read every job summary at 1,000 a page."""
    began = time.perf_counter()
    offset, seen = 0, 0
    while True:
        page = client.get(
            "/jobs", params={"paginationLimit": 1000, "paginationOffset": offset}
        ).json()
        seen += len(page["values"])
        if not page["moreResultsAvailable"]:
            break
        offset += 1000
    assert seen == expected
    return time.perf_counter() - began


def run() -> dict[str, object]:
    """Measure and print the figures."""
    figures: dict[str, object] = {}
    emulator = Emulator()
    with emulator.serve() as server:
        base = f"{server.url}/v1/projects/{DEMO_PROJECT_ID}"
        with httpx.Client(base_url=base, auth=(DEMO_API_KEY, "")) as client:
            client.post("/connections", json=CONNECTION).raise_for_status()
            figures["gets_per_second_1_client"] = round(gets_per_second(base, 1))
            figures["gets_per_second_4_clients"] = round(gets_per_second(base, 4))
            for total in (1_000, 10_000):
                while len(emulator.store.jobs) < total:
                    client.post("/jobs", json=JOB).raise_for_status()
                page_through(base, client, total)  # first read completes the jobs (instant timing)
                figures[f"page_{total}_jobs_s"] = round(page_through(base, client, total), 3)
    print(
        f"simple GET on loopback: {figures['gets_per_second_1_client']}/s with one keep-alive client, "
        f"{figures['gets_per_second_4_clients']}/s with 4 (goal >= 1,500/s)\n"
        f"paging at 1,000 a page: 1,000 jobs {figures['page_1000_jobs_s']} s, "
        f"10,000 jobs {figures['page_10000_jobs_s']} s (linear: about 10x)"
    )
    return figures
