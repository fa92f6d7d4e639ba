"""A job's spec is put in compared form once per run: a plan makes it (not validation), and the
fingerprint, the identity, the comparison with live jobs and the plan's desired body all read that
one form."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from reconciler.kinds.base import ResourceKind
from reconciler.kinds.ingestion_job import LiveJob, live_job, planning
from reconciler.kinds.ingestion_job.identity import place_of
from reconciler.manager import Loader, Scope
from reconciler.model import Action, Kind
from reconciler.plan import make_plan
from reconciler.validate import load_manifests
from tests.builders import job_spec, live_connection, s3
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, ROOT, external_connection_exists


def _normalized(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every value any kind normalizes from now on (kept alive, so `is` tells them apart)."""
    seen: list[Any] = []
    original = ResourceKind.normalize

    def counted(self: ResourceKind, spec: Any, **options: Any) -> dict[str, Any]:
        seen.append(spec)
        return original(self, spec, **options)

    monkeypatch.setattr(ResourceKind, "normalize", counted)
    return seen


def _plan_and_apply(client: PolarisClient, manifests: Path, seen: list[Any]) -> list[int]:
    """Validate, read, plan and apply the manifests; how often each job spec was normalized."""
    seen.clear()
    loaded = load_manifests([str(manifests)], dict(os.environ))
    provider = PolarisProvider(client, sleep=lambda seconds: None)
    plan = make_plan(loaded.resources, provider.read(loaded.resources))
    result = Applier(provider).run(plan)
    assert not result.failed, [outcome.message for outcome in result.outcomes]
    jobs = loaded.of_kind(Kind.INGESTION_JOB)
    assert jobs
    return [sum(value is job.spec for value in seen) for job in jobs]


def test_each_job_spec_is_normalized_once_in_a_run_that_plans_and_submits_it(
    served: Any, workspace: Path, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    external_connection_exists(client)
    seen = _normalized(monkeypatch)

    counts = _plan_and_apply(client, workspace, seen)

    assert counts == [1] * len(counts)


def test_each_job_spec_is_normalized_once_in_a_run_that_compares_it_with_live_jobs(
    served: Any, workspace: Path, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second run finds each job in sync (a noop, compared with the live job it matches) but
    # one whose mapping changed (a new job, compared with the one it replaces).
    external_connection_exists(client)
    seen = _normalized(monkeypatch)
    _plan_and_apply(client, workspace, seen)
    koalas = workspace / "guide" / "koalas-job.yaml"
    koalas.write_text(koalas.read_text().replace("columnName: city", "columnName: town"))

    seen.clear()
    loaded = load_manifests([str(workspace)], dict(os.environ))
    plan = make_plan(loaded.resources, PolarisProvider(client).read(loaded.resources))

    jobs = {change.name: change for change in plan.changes if change.kind is Kind.INGESTION_JOB}
    assert jobs["koalas-demo-file"].action is Action.CREATE
    assert {change.action for name, change in jobs.items() if name != "koalas-demo-file"} == {
        Action.NOOP
    }
    counts = [
        sum(value is job.spec for value in seen) for job in loaded.of_kind(Kind.INGESTION_JOB)
    ]
    assert counts == [1] * len(counts)


def test_a_live_job_request_is_normalized_once_when_read_even_through_two_places(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The manifests move the job's connection elsewhere: the job is identified through both
    # places, each identity taken of the one compared form of its request.
    seen = _normalized(monkeypatch)
    request = job_spec()
    body = {"id": "job-1", "executionStatus": "completed", "spec": request}
    declared = {"zoo": place_of(s3(prefix="moved/"))}

    job = LiveJob.of(body, {"zoo": live_connection("zoo")}, declared)

    assert len({identity for identity, _ in job.readings}) == 2
    assert sum(value is request for value in seen) == 1


def test_validation_makes_no_compared_form_nor_fingerprint_and_a_plan_makes_both_once(
    tmp_path: Path,
) -> None:
    # `reconciler validate` (offline) needs neither: 10,000 jobs' compared forms are about 17 MB
    # it would hold for a plan it never makes, and its duplicate check fingerprints only the jobs
    # that share a table, connection and objects (tests/manifest/test_validate.py). A plan makes
    # them once, while its first reads are in flight.
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    scope = Scope()
    offline = Loader(DEMO_SECRETS)([str(tmp_path / "manifests")], scope, offline=True)
    planning = Loader(DEMO_SECRETS)([str(tmp_path / "manifests")], scope, offline=False)
    for loaded in (offline, planning):
        assert all(resource.compared is None for resource in loaded.resources)
        assert all(resource.fingerprint is None for resource in loaded.resources)
    jobs = [r for r in planning.prepared.resources if r.kind is Kind.INGESTION_JOB]
    assert jobs and all(job.compared is not None and job.fingerprint for job in jobs)
    assert planning.prepared.prepared is planning.prepared  # once
    assert [r.spec for r in planning.prepared.resources] == [r.spec for r in planning.resources]
    assert [r.key for r in offline.resources] == [r.key for r in planning.resources]


def test_a_plan_makes_its_jobs_compared_forms_while_its_first_reads_are_in_flight(
    served: Any, workspace: Path, emulator: Emulator, client: PolarisClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Validation passes before anything is sent, and the compared forms are not validation's:
    # they are made while the lists are on their way. The connection list is held until then.
    external_connection_exists(client)
    held = emulator.faults.hold(method="GET", path_contains="/connections")
    arrived: list[bool] = []
    original = ResourceKind.normalize

    def watched(self: ResourceKind, spec: Any, **options: Any) -> dict[str, Any]:
        if self.kind is Kind.INGESTION_JOB and not arrived:
            arrived.append(held.wait_for_arrival(timeout=10))
            held.release()
        return original(self, spec, **options)

    monkeypatch.setattr(ResourceKind, "normalize", watched)
    result = run("plan", "--no-cache", str(workspace))
    assert result.exit_code in (0, 2), result.stderr
    assert arrived == [True]


def test_a_job_in_sync_has_its_identity_taken_once_for_the_live_job_and_the_manifest_job(
    served: Any, workspace: Path, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live job holds the manifest job's compared form, over the same place: the identity
    # its reader took is the one the plan needs (a sha256 of the form's JSON each).
    external_connection_exists(client)
    _plan_and_apply(client, workspace, [])
    taken: list[int] = []
    original = live_job.job_identity

    def counted(compared: Any, place: Any) -> Any:
        taken.append(id(compared))
        return original(compared, place)

    for module in (live_job, planning):  # the reader's and the plan's
        monkeypatch.setattr(module, "job_identity", counted)
    loaded = load_manifests([str(workspace)], dict(os.environ))
    plan = make_plan(loaded.resources, PolarisProvider(client).read(loaded.resources))

    jobs = loaded.of_kind(Kind.INGESTION_JOB)
    assert {c.action for c in plan.changes if c.kind is Kind.INGESTION_JOB} == {Action.NOOP}
    assert [taken.count(id(job.compared)) for job in jobs] == [1] * len(jobs)
