"""Names that differ only in case are different tables and connections, and never wedge a project."""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reconciler.emulator import Emulator
from reconciler.emulator.engine import DataSource
from reconciler.emulator.samples import koalas_rows, write_nd_json
from tests.conformance import ConformanceLog
from tests.conftest import raw_client
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB

KEY = "polaris-ingest/demo-file.json.gz"


def job_into(table: str, connection: str = "demo-conn") -> dict[str, Any]:
    """The guide's job, into `table` through `connection`."""
    body = copy.deepcopy(GUIDE_JOB)
    body["target"]["tableName"] = table
    body["source"]["connectionName"] = connection
    return body


@contextmanager
def project(state: Path, s3_dir: Path) -> Iterator[tuple[Emulator, httpx.Client, ConformanceLog]]:
    """An emulator on a data dir that reads `s3_dir`, with a client; closed on exit."""
    log = ConformanceLog()
    emulator = Emulator(data_dir=state, data=DataSource(directory=s3_dir), response_observer=log)
    try:
        with raw_client(emulator) as api:
            yield emulator, api, log
    finally:
        emulator.close()


def rows_of(api: httpx.Client, table: str) -> int:
    answer = api.post("/query/sql", json={"query": f'SELECT COUNT(*) AS "n" FROM "{table}"'})
    assert answer.status_code == 200, answer.text
    return int(answer.json()[0]["n"])


def test_a_job_into_a_table_named_like_another_but_for_case_fills_its_own_table(
    tmp_path: Path,
) -> None:
    s3_dir = tmp_path / "s3"
    write_nd_json(s3_dir / "demo-bucket" / KEY, list(koalas_rows(50)))
    with project(tmp_path / "state", s3_dir) as (_, api, log):
        assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
        first = api.post("/jobs", json=job_into("t1")).json()
        assert api.get(f"/jobs/{first['id']}").json()["executionStatus"] == "completed"
        second = api.post("/jobs", json=job_into("T1"))
        assert second.status_code == 201, second.text
        done = api.get(f"/jobs/{second.json()['id']}")
        assert done.status_code == 200, done.text
        assert done.json()["executionStatus"] == "completed", done.text
        names = [t["name"] for t in api.get("/tables").json()["values"]]
        assert names == ["T1", "t1"]
        assert rows_of(api, "t1") == rows_of(api, "T1") > 0
        assert not log.violations
    with project(tmp_path / "state", s3_dir) as (_, api, _log):
        assert api.get("/tables").status_code == 200
        assert rows_of(api, "t1") == rows_of(api, "T1") > 0


def test_connections_named_alike_but_for_case_are_two_connections(api: httpx.Client) -> None:
    upper = {**GUIDE_CONNECTION, "name": "DEMO-conn"}
    assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
    assert api.post("/connections", json=upper).status_code == 201
    assert api.get("/connections/DEMO-conn").json()["name"] == "DEMO-conn"
    assert api.delete("/connections/demo-conn").status_code == 200
    assert api.get("/connections/DEMO-conn").status_code == 200
    assert api.get("/connections/demo-conn").status_code == 404


NAMES = st.sampled_from(["t1", "T1", "Koalas", "koalas"])
CONNECTIONS = st.sampled_from(["demo-conn", "DEMO-conn"])


class CaseVariants(RuleBasedStateMachine):
    """Valid calls with names that differ in case (creates, deletes, ingestion, drop_table and
    delete_data jobs, queries), and restarts on the same data dir.

    After every step the project still answers: no call is a 5xx, and each collection lists.
    """

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="names-"))
        write_nd_json(self.root / "s3" / "demo-bucket" / KEY, list(koalas_rows(20)))
        self.project = project(self.root / "state", self.root / "s3")
        self.emulator, self.api, self.log = self.project.__enter__()
        assert self.api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
        self.statuses: list[tuple[str, int]] = []

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.api.request(method, path, **kwargs)
        self.statuses.append((f"{method} {path}", response.status_code))
        assert response.status_code < 500, f"{method} {path}: {response.text}"
        return response

    @rule(name=CONNECTIONS)
    def create_connection(self, name: str) -> None:
        self.call("POST", "/connections", json={**GUIDE_CONNECTION, "name": name})

    @rule(name=CONNECTIONS)
    def delete_connection(self, name: str) -> None:
        self.call("DELETE", f"/connections/{name}")

    @rule(name=NAMES)
    def create_table(self, name: str) -> None:
        self.call("POST", "/tables", json={"name": name, "type": "aggregate"})

    @rule(name=NAMES, connection=CONNECTIONS)
    def ingest(self, name: str, connection: str) -> None:
        created = self.call("POST", "/jobs", json=job_into(name, connection))
        if created.status_code == 201:  # its own table, whatever other tables' names
            job = self.call("GET", f"/jobs/{created.json()['id']}").json()
            assert job["executionStatus"] == "completed", job

    @rule(name=NAMES)
    def drop_table(self, name: str) -> None:
        target = {"type": "table", "tableName": name}
        self.call("POST", "/jobs", json={"type": "drop_table", "target": target})

    @rule(name=NAMES)
    def delete_data(self, name: str) -> None:
        target = {"type": "table", "tableName": name}
        self.call(
            "POST", "/jobs", json={"type": "delete_data", "target": target, "deleteAll": True}
        )

    @rule(name=NAMES)
    def query(self, name: str) -> None:
        self.call("POST", "/query/sql", json={"query": f'SELECT COUNT(*) FROM "{name}"'})

    @rule()
    def restart(self) -> None:
        self.project.__exit__(None, None, None)
        self.project = project(self.root / "state", self.root / "s3")
        self.emulator, self.api, self.log = self.project.__enter__()

    @invariant()
    def every_collection_still_answers(self) -> None:
        for path in ("/tables", "/connections", "/jobs"):
            assert self.call("GET", path).status_code == 200
        for job in self.api.get("/jobs").json()["values"]:
            self.call("GET", f"/jobs/{job['id']}")
        assert not self.log.violations, self.log.violations

    def teardown(self) -> None:
        self.project.__exit__(None, None, None)
        shutil.rmtree(self.root, ignore_errors=True)


CaseVariants.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_no_sequence_of_calls_with_case_variants_wedges_the_project = CaseVariants.TestCase


def test_tables_stored_before_case_sensitive_names_are_found_after_an_upgrade(
    tmp_path: Path,
) -> None:
    import duckdb

    from reconciler.emulator import DEMO_PROJECT_ID

    s3_dir = tmp_path / "s3"
    write_nd_json(s3_dir / "demo-bucket" / KEY, list(koalas_rows(50)))
    with project(tmp_path / "state", s3_dir) as (_, api, _log):
        assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
        api.get(f"/jobs/{api.post('/jobs', json=job_into('t1')).json()['id']}")
        before = rows_of(api, "t1")
    # What an earlier emulator left: the rows under the table's own name, no layout marker.
    database = duckdb.connect(str(tmp_path / "state" / f"project-{DEMO_PROJECT_ID}.duckdb"))
    database.execute('ALTER TABLE "table_7431" RENAME TO "t1"')
    database.execute("DROP TABLE __polaris_layout")
    database.close()
    with project(tmp_path / "state", s3_dir) as (_, api, _log):
        assert rows_of(api, "t1") == before > 0
