"""Reading the job list while it changes: a job that moves or a job that appears is never missed.

Polaris pages the job list with an offset, and by default sorts it by last update: a job that
changes status while the pages are read jumps to the top and out of the page still to come.
These tests change the project between two pages, exactly where that happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reconciler.client import PAGE_SIZE, ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.ingestion_job import jobs_of, planned
from reconciler.live import read_live
from reconciler.model import Resource
from reconciler.plan import Action, make_plan
from reconciler.validate import load_manifests
from tests.fixtures import IN_PROCESS_HOSTS
from tests.fleet import write_fleet
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB


class BetweenPages(httpx.BaseTransport):
    """The emulator's own transport; right after the first page of jobs, `change` runs once."""

    def __init__(self, emulator: Emulator) -> None:
        self.inner = emulator.transport()
        self.change: Callable[[], object] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        first_page = b"paginationOffset=0" in request.url.query
        if request.url.path.endswith("/jobs") and first_page and self.change is not None:
            change, self.change = self.change, None
            change()
        return response


@pytest.fixture
def project() -> Iterator[tuple[Emulator, BetweenPages, PolarisClient]]:
    """A project with more than a page of pending jobs (no response checks: 1,500 jobs is slow)."""
    emulator = Emulator()
    emulator.hold_jobs()  # jobs stay pending until a test moves them
    transport = BetweenPages(emulator)
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with PolarisClient(config, transport=transport, sleep=lambda s: None) as client:
        yield emulator, transport, client


def seed_jobs(client: PolarisClient, count: int, prefix: str = "seed") -> list[str]:
    """`count` pending jobs reading distinct objects, oldest first."""
    if client.get_connection(GUIDE_CONNECTION["name"]) is None:
        client.create_connection(GUIDE_CONNECTION)
    source = GUIDE_JOB["source"]
    return [
        client.create_job({**GUIDE_JOB, "source": {**source, "uris": [f"s3://b/{prefix}/{i}"]}})[
            "id"
        ]
        for i in range(count)
    ]


def declared_fleet(client: PolarisClient, directory: Path, jobs: int) -> list[Resource]:
    """A fleet's manifests of one connection and `jobs` jobs, its connection created live."""
    resources = list(
        load_manifests(
            [str(write_fleet(directory, connections=1, jobs_per_connection=jobs))], {}
        ).resources
    )
    connection = resources[0]
    client.create_connection({"name": connection.name, **connection.spec})
    return resources


def test_a_job_that_completes_between_two_pages_is_still_read(
    project: tuple[Emulator, BetweenPages, PolarisClient],
) -> None:
    emulator, transport, client = project
    oldest, *others = seed_jobs(client, PAGE_SIZE + 500)
    transport.change = lambda: emulator.complete_job(oldest)  # it was last on the list
    listed = {summary["id"]: summary["executionStatus"] for summary in client.iter_jobs()}
    assert listed.get(oldest) == "completed"
    assert set(listed) == {oldest, *others}


def test_a_job_created_between_two_pages_hides_no_other_job_and_repeats_none(
    project: tuple[Emulator, BetweenPages, PolarisClient],
) -> None:
    _, transport, client = project
    before = seed_jobs(client, PAGE_SIZE + 500)
    transport.change = lambda: seed_jobs(client, 1, prefix="late")  # every job moves down one
    ids = [summary["id"] for summary in client.iter_jobs()]
    assert len(ids) == len(set(ids))
    assert set(before) <= set(ids)


def test_a_manifest_job_that_finishes_while_the_plan_reads_is_not_planned_again(
    project: tuple[Emulator, BetweenPages, PolarisClient], tmp_path: Path
) -> None:
    emulator, transport, client = project
    resources = declared_fleet(client, tmp_path / "fleet", jobs=1)
    _, job = resources
    submitted = client.create_job(dict(job.spec))["id"]  # running (held) before the others
    seed_jobs(client, PAGE_SIZE + 500)
    transport.change = lambda: emulator.complete_job(submitted)
    plan = make_plan(resources, read_live(client, resources))
    (change,) = [c for c in plan.changes if c.name == job.name]
    assert change.action is Action.NOOP, change.reason
    assert planned(change).job_id == submitted


def test_pages_after_the_first_are_read_together_within_the_readers_concurrency(
    project: tuple[Emulator, BetweenPages, PolarisClient],
) -> None:
    emulator, _, client = project
    seeded = seed_jobs(client, 3 * PAGE_SIZE + 500)
    emulator.faults.latency_seconds = 0.02  # so that requests sent together are seen together
    emulator.reset_requests()
    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = [summary["id"] for summary in client.iter_jobs(read_ahead=pool)]
    assert sorted(ids) == sorted(seeded)  # every job once
    # The first page alone, then the second, then the third and fourth together: four reads,
    # never more at once than the two workers.
    assert len(emulator.requests) == 4
    assert emulator.peak_in_flight == 2


def test_a_plan_never_has_more_requests_in_flight_than_its_parallelism(
    project: tuple[Emulator, BetweenPages, PolarisClient], tmp_path: Path
) -> None:
    emulator, _, client = project
    resources = declared_fleet(client, tmp_path / "fleet", jobs=1)
    _, job = resources
    source = job.spec["source"]
    for i in range(PAGE_SIZE):  # a full page of jobs into a table no manifest job targets
        other = {**job.spec, "target": {"type": "table", "tableName": "other"}}
        client.create_job({**other, "source": {**source, "objects": [f"other/{i}.json"]}})
    for i in range(6):  # newest first: these are on the first page, read while the second is
        client.create_job({**job.spec, "source": {**source, "objects": [f"days/{i}.json"]}})
    emulator.faults.latency_seconds = 0.02  # so that requests sent together are seen together
    emulator.reset_requests()
    live = read_live(client, resources, parallelism=2)
    assert len(jobs_of(live).jobs) == 6
    assert emulator.peak_in_flight == 2


def test_a_plan_asks_for_every_list_before_any_jobs_detail(
    project: tuple[Emulator, BetweenPages, PolarisClient], tmp_path: Path
) -> None:
    emulator, _, client = project
    resources = declared_fleet(client, tmp_path / "fleet", jobs=3)
    jobs = resources[1:]
    for job in jobs:
        client.create_job(dict(job.spec))
    emulator.reset_requests()
    read_live(client, resources, parallelism=1)
    paths = [path for _, path, _ in emulator.requests]
    first_detail = next(at for at, path in enumerate(paths) if "/jobs/" in path)
    # The batch and the streaming job lists, the connections and the tables: one worker reads
    # them all first, so that no list waits behind the details (a round trip at the end).
    lists = [path.split("?")[0].rsplit("/", 1)[-1] for path in paths[:first_detail]]
    assert sorted(lists) == ["connections", "jobs", "jobs", "tables"], paths
    assert len(paths) == first_detail + len(jobs)


class LaterPageFirst(httpx.BaseTransport):
    """The emulator's own transport; the page at `held` waits until the page after it has been
    answered and `change` has run: two pages read together, answered across a change."""

    def __init__(self, emulator: Emulator, held: int, change: Callable[[], object]) -> None:
        self.inner = emulator.transport()
        self.held, self.change = held, change
        self.answered = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        offset = request.url.params.get("paginationOffset")
        if request.url.path.endswith("/jobs") and offset is not None:
            if int(offset) == self.held:
                self.answered.wait(timeout=10)
            elif int(offset) > self.held and not self.answered.is_set():
                response = self.inner.handle_request(request)
                self.change()
                self.answered.set()
                return response
        return self.inner.handle_request(request)


def test_a_job_created_while_pages_are_read_together_hides_no_other_job(
    project: tuple[Emulator, BetweenPages, PolarisClient],
) -> None:
    emulator, _, seeding = project
    seeded = seed_jobs(seeding, 3 * PAGE_SIZE + 500)
    # The third and fourth pages are asked for together; the fourth is answered first, then a
    # job is created (every job moves down one), then the third.
    transport = LaterPageFirst(emulator, 2 * PAGE_SIZE, lambda: seed_jobs(seeding, 1, "late"))
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with (
        PolarisClient(config, transport=transport, sleep=lambda s: None) as client,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        ids = [summary["id"] for summary in client.iter_jobs(read_ahead=pool)]
    assert transport.answered.is_set()
    assert len(ids) == len(set(ids))
    assert set(seeded) - set(ids) == set()
