"""The run API: a Python caller plans and applies through a Manager with the CLI's safety."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import saved_plan
from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.connection import Connection
from reconciler.lock import read_lock
from reconciler.manager import (
    ApplyRun,
    Destination,
    DriftRun,
    Loader,
    LockOptions,
    Manager,
    NotApproved,
    OperateRun,
    PlanRun,
    Refused,
    Scope,
    StalePlan,
    Terminated,
    UnlockRun,
    ValidateRun,
    connected,
)
from reconciler.model import LOCK_TABLE, Kind
from reconciler.plan import Plan, make_plan
from reconciler.ports import Operation
from reconciler.redact import Redactor
from reconciler.values import PlanOptions
from tests.emulator.test_streaming import streaming_job
from tests.fixtures import DEMO_SECRETS, IN_PROCESS_HOSTS, ROOT, external_connection_exists

MANIFESTS = (str(ROOT / "manifests"),)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Recording(httpx.BaseTransport):
    """The emulator's transport, remembering each request's method and path."""

    def __init__(self, emulator: Emulator) -> None:
        self.inner = emulator.transport()
        self.seen: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        lock = LOCK_TABLE in request.url.path or f'"{LOCK_TABLE}"' in request.content.decode()
        self.seen.append((request.method, "(the project lock)" if lock else request.url.path))
        return self.inner.handle_request(request)

    def writes(self) -> list[tuple[str, str]]:
        """Writes other than the project lock's own."""
        return [(m, p) for m, p in self.seen if m in WRITES and p != "(the project lock)"]


@pytest.fixture
def wire(emulator: Emulator) -> Recording:
    return Recording(emulator)


@pytest.fixture
def polaris(wire: Recording, emulator: Emulator) -> Iterator[PolarisClient]:
    config = ClientConfig(
        url="http://polaris.test", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with PolarisClient(config, transport=wire, sleep=lambda seconds: None) as client:
        external_connection_exists(client)  # manifests/weblogs declares it managed elsewhere
        wire.seen.clear()  # what the test's runs send, not its setup
        yield client


@pytest.fixture
def manager(polaris: PolarisClient) -> Manager:
    return Manager(connect=connected(polaris), load=Loader(DEMO_SECRETS))


def yes(plan: Plan) -> bool:
    return True


def save(file: str, url: str, project: str, plan: Plan) -> None:
    """What `reconciler plan --out FILE` writes."""
    saved_plan.save(file, MANIFESTS, url, project, PlanOptions(), plan, Redactor())


def test_a_python_caller_plans_and_applies_the_manifests_and_the_project_then_plans_to_zero(
    manager: Manager,
) -> None:
    planned = manager.plan(PlanRun(MANIFESTS))
    assert planned.plan.has_changes and not planned.plan.errors
    applied = manager.apply(ApplyRun(yes, MANIFESTS))
    assert not applied.result.failed
    assert not manager.plan(PlanRun(MANIFESTS)).plan.has_changes


def test_apply_takes_the_project_lock_before_it_plans_and_releases_it_after(
    manager: Manager, polaris: PolarisClient
) -> None:
    seen_while_asked = []

    def approve(plan: Plan) -> bool:
        seen_while_asked.append(read_lock(polaris))
        return True

    manager.apply(ApplyRun(approve, MANIFESTS, lock=LockOptions(timeout=0)))
    [held] = seen_while_asked
    assert held is not None and not held.free and held.pid == os.getpid()
    after = read_lock(polaris)
    assert after is not None and after.free


def test_the_lock_is_released_when_the_approval_callback_declines(
    manager: Manager, polaris: PolarisClient
) -> None:
    with pytest.raises(NotApproved):
        manager.apply(ApplyRun(lambda plan: False, MANIFESTS))
    after = read_lock(polaris)
    assert after is not None and after.free


def test_an_approval_callback_that_declines_sends_nothing(
    manager: Manager, wire: Recording
) -> None:
    asked: list[Plan] = []

    def decline(plan: Plan) -> bool:
        asked.append(plan)
        return False

    before = len(wire.writes())
    with pytest.raises(NotApproved, match="nothing was changed"):
        manager.apply(ApplyRun(decline, MANIFESTS))
    assert len(asked) == 1 and asked[0].has_changes
    assert wire.writes()[before:] == []


def test_an_apply_of_an_unchanged_project_sends_no_writes_and_asks_nobody(
    manager: Manager, wire: Recording
) -> None:
    manager.apply(ApplyRun(yes, MANIFESTS))
    before = len(wire.writes())

    def must_not_be_asked(plan: Plan) -> bool:
        raise AssertionError("asked to approve a plan without changes")

    applied = manager.apply(ApplyRun(must_not_be_asked, MANIFESTS))
    assert not applied.plan.has_changes and not applied.result.failed
    assert wire.writes()[before:] == []


def test_a_stale_saved_plan_is_refused_before_anything_is_written(
    manager: Manager, polaris: PolarisClient, wire: Recording, tmp_path: Path
) -> None:
    planned = manager.plan(PlanRun(MANIFESTS))
    file = str(tmp_path / "plan.json")
    config = polaris.config
    save(file, config.url, config.project, planned.plan)
    manager.apply(ApplyRun(yes, MANIFESTS))  # someone applies after the review
    before = len(wire.writes())
    with pytest.raises(StalePlan) as stale:
        manager.apply(ApplyRun(yes, reviewed=saved_plan.load(file)))
    assert stale.value.differences
    assert wire.writes()[before:] == []


def test_a_fresh_saved_plan_is_applied_with_the_paths_and_options_it_was_made_with(
    manager: Manager, polaris: PolarisClient, tmp_path: Path
) -> None:
    planned = manager.plan(PlanRun(MANIFESTS))
    file = str(tmp_path / "plan.json")
    config = polaris.config
    save(file, config.url, config.project, planned.plan)
    applied = manager.apply(ApplyRun(yes, reviewed=saved_plan.load(file)))
    assert not applied.result.failed

    def actions(plan: Plan) -> list[tuple[str, str, str]]:
        return [(c.kind, c.name, c.action) for c in plan.changes]

    assert actions(applied.plan) == actions(planned.plan)


def test_a_saved_plan_for_another_project_is_refused_even_without_a_destination(
    manager: Manager, wire: Recording, tmp_path: Path
) -> None:
    planned = manager.plan(PlanRun(MANIFESTS))
    file = str(tmp_path / "plan.json")
    save(file, "http://polaris.test", "another", planned.plan)
    assert manager.destination is None  # so the check is made against the client's own config
    with pytest.raises(Refused, match="for project another"):
        manager.apply(ApplyRun(yes, reviewed=saved_plan.load(file)))
    assert wire.writes() == []


def test_plan_options_beside_a_saved_plan_are_refused_before_anything_is_read(
    polaris: PolarisClient, wire: Recording, tmp_path: Path
) -> None:
    manager = Manager(connect=connected(polaris), load=Loader(DEMO_SECRETS))
    planned = manager.plan(PlanRun(MANIFESTS))
    file = str(tmp_path / "plan.json")
    config = polaris.config
    save(file, config.url, config.project, planned.plan)
    read = len(wire.seen)
    with pytest.raises(Refused, match="--prune cannot change a saved plan"):
        manager.apply(
            ApplyRun(yes, options=PlanOptions(prune=True), reviewed=saved_plan.load(file))
        )
    assert len(wire.seen) == read
    at_another = Manager(
        connect=connected(polaris), load=Loader(DEMO_SECRETS),
        destination=Destination("http://elsewhere.test", config.project),
    )  # fmt: skip
    with pytest.raises(Refused, match=r"not \S+ at http://elsewhere\.test"):
        at_another.apply(ApplyRun(yes, reviewed=saved_plan.load(file)))
    assert len(wire.seen) == read


def test_drift_after_an_apply_reports_nothing_that_fails(manager: Manager) -> None:
    manager.apply(ApplyRun(yes, MANIFESTS))
    drifted = manager.drift(DriftRun(MANIFESTS))
    assert not drifted.report.failed


def test_unlock_of_a_free_lock_removes_nothing_and_asks_nobody(manager: Manager) -> None:
    def must_not_be_asked(state: object) -> bool:
        raise AssertionError("asked to remove a lock nobody holds")

    unlocked = manager.unlock(UnlockRun(must_not_be_asked))
    assert not unlocked.removed


def test_validate_checks_every_scope_and_reports_each_problem_once(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t}\n"
        "spec: {type: detail, partitioningGranularity: fortnight}\n",
        encoding="utf-8",
    )
    checked = Manager().validate(ValidateRun((Scope(), Scope()), (str(broken),)))
    assert not checked.ok and checked.valid == []
    assert len(checked.problems) == 1
    assert checked.files == [str(broken)]
    assert Manager().validate(ValidateRun(paths=MANIFESTS)).ok


def test_a_manager_without_a_project_refuses_to_plan_after_validating(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="no Polaris project"):
        Manager(load=Loader(DEMO_SECRETS)).plan(PlanRun(MANIFESTS))


def test_a_sigterm_during_apply_stops_it_sends_nothing_releases_the_lock_and_restores_the_handler(
    manager: Manager, polaris: PolarisClient, wire: Recording
) -> None:
    def terminated_while_asked(plan: Plan) -> bool:
        os.kill(os.getpid(), signal.SIGTERM)  # a canceled CI job
        return True

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        manager.apply(ApplyRun(terminated_while_asked, MANIFESTS))
    assert wire.writes() == []
    after = read_lock(polaris)
    assert after is not None and after.free
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.fixture
def streamed(polaris: PolarisClient, wire: Recording) -> str:
    """A push-streaming job into table Clicks, running; returns the reset path of the job."""
    polaris.post("/connections", {"type": "push_streaming", "name": "clicks"})
    job = polaris.post("/jobs", streaming_job())
    wire.seen.clear()
    return f"/v1/projects/{DEMO_PROJECT_ID}/jobs/{job['id']}/reset"


def test_a_reset_the_approval_callback_declines_is_never_sent_and_the_lock_is_released(
    manager: Manager, polaris: PolarisClient, wire: Recording, streamed: str
) -> None:
    seen: list[str] = []

    def decline(operation: Operation) -> bool:
        seen.append(operation.describe())
        assert read_lock(polaris) is not None and not read_lock(polaris).free  # type: ignore[union-attr]
        return False

    with pytest.raises(NotApproved):
        manager.operate(OperateRun("reset", "Clicks", decline))
    assert seen and "reset table Clicks's streaming job" in seen[0]
    assert ("POST", streamed) not in wire.seen
    state = read_lock(polaris)
    assert state is None or state.free


def test_an_approved_reset_is_sent_once_and_says_what_it_did(
    manager: Manager, wire: Recording, streamed: str
) -> None:
    operated = manager.operate(OperateRun("reset", "Clicks", lambda operation: True))
    assert operated.done is not None and "to latest" in operated.done
    assert wire.seen.count(("POST", streamed)) == 1


def test_a_reset_of_a_table_without_a_streaming_job_does_nothing_and_asks_nobody(
    manager: Manager, wire: Recording
) -> None:
    def never(operation: Operation) -> bool:
        raise AssertionError("asked about nothing")

    assert manager.operate(OperateRun("reset", "Nothing", never)).done is None
    assert wire.writes() == []


def test_a_plan_that_decides_the_connections_while_jobs_are_read_is_the_plan_made_at_once(
    manager: Manager, polaris: PolarisClient
) -> None:
    # The connections are planned while the jobs' details come (plan.plan_early): a connection
    # changed behind git's back, one no manifest declares (pruned), jobs in sync and one new.
    manager.apply(ApplyRun(yes, MANIFESTS))
    polaris.create_connection({"name": "stray", "type": "s3", "bucket": "b",
                               "awsEndpoint": "s3.us-east-1.amazonaws.com"})  # fmt: skip
    polaris.update_connection("demo-conn", {"type": "s3", "description": "edited by hand"})
    options = PlanOptions(prune=True)
    planned = manager.plan(PlanRun(MANIFESTS, options))
    at_once = make_plan(planned.manifests.resources, planned.live, options)
    actions = {(c.kind, c.name): str(c.action) for c in planned.plan.changes}
    assert actions[(Kind.CONNECTION, "demo-conn")] == "update"
    assert actions[(Kind.CONNECTION, "stray")] == "delete"
    assert planned.plan.to_json() == at_once.to_json()  # the checksum included


def test_a_plan_through_a_connection_moved_behind_gits_back_is_the_plan_made_at_once(
    manager: Manager, polaris: PolarisClient
) -> None:
    # The connections are planned while the jobs' details come; the jobs are planned over each
    # connection's place as the plan leaves it: here one whose bucket was changed by hand, and
    # the plan puts back.
    manager.apply(ApplyRun(yes, MANIFESTS))
    polaris.update_connection("demo-conn", {"type": "s3", "bucket": "moved-by-hand"})
    planned = manager.plan(PlanRun(MANIFESTS))
    at_once = make_plan(planned.manifests.resources, planned.live, PlanOptions())
    actions = {(c.kind, c.name): str(c.action) for c in planned.plan.changes}
    assert actions[(Kind.CONNECTION, "demo-conn")] == "update"
    assert actions[(Kind.INGESTION_JOB, "koalas-demo-file")] == "noop"  # read through demo-bucket
    assert planned.plan.to_json() == at_once.to_json()


def test_the_connections_are_planned_while_a_jobs_detail_is_still_being_read(
    manager: Manager, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager.apply(ApplyRun(yes, MANIFESTS))
    held = emulator.faults.hold(method="GET", path_contains="/jobs/")
    held.limit = 10.0  # a plan that waited for it would go on after this, and fail the test
    in_flight: list[int] = []
    original = Connection.plan

    def watched(self: Connection, resource: Any, context: Any) -> Any:
        if not in_flight:
            held.wait_for_arrival(timeout=10)
            in_flight.append(emulator.in_flight)
            held.release()
        return original(self, resource, context)

    monkeypatch.setattr(Connection, "plan", watched)
    planned = manager.plan(PlanRun(MANIFESTS))
    assert not planned.plan.errors
    # The held detail (and at times another job's) still in flight: the plan of the connections
    # did not wait for it. Had it waited, the gate would have let the detail through after its
    # limit, and the plan would have found the reads over.
    assert len(in_flight) == 1 and in_flight[0] >= 1
