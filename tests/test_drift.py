"""`reconciler drift`: a read-only report whose exit status says whether anything drifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from tests.cli import run
from tests.test_plan import external_connection_exists


def drift_json() -> tuple[int, dict[str, dict[str, Any]]]:
    result = run("drift", "--format", "json")
    payload = result.json()
    assert payload["formatVersion"] == "1"
    return result.exit_code, {entry["name"]: entry for entry in payload["drift"]}


def test_an_empty_project_has_everything_missing_and_exits_2(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    code, drift = drift_json()
    assert code == 2
    assert drift["demo-conn"]["status"] == "missing"
    assert drift["security-audit"]["status"] == "in-sync"


def test_after_apply_nothing_drifts_and_the_exit_status_is_0(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    assert run("apply", "--auto-approve").exit_code == 0
    code, drift = drift_json()
    assert code == 0
    assert {entry["status"] for entry in drift.values()} == {"in-sync"}
    assert "Drift: 0 drifted" in run("drift").stdout


def test_changes_behind_gits_back_failed_jobs_and_unmanaged_resources_are_reported(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    emulator.hold_jobs()
    assert run("apply", "--auto-approve").exit_code == 0
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    client.create_connection({"type": "s3", "name": "hand-made", "bucket": "b", "awsEndpoint": "e"})
    koalas = next(j for j in client.iter_jobs() if j["target"]["tableName"] == "Koalas")
    emulator.fail_job(koalas["id"], code="could_not_connect_to_source", message="access denied")
    before = len(emulator.requests)
    code, drift = drift_json()
    assert code == 2
    assert drift["weblogs-s3"]["status"] == "changed"
    assert {
        "path": "bucket",
        "op": "change",
        "before": "moved-bucket",
        "after": "acme-weblogs",
    } in drift["weblogs-s3"]["diff"]
    assert drift["koalas-demo-file"]["status"] == "failed"
    assert "could_not_connect_to_source" in drift["koalas-demo-file"]["detail"]
    assert drift["hand-made"]["status"] == "unmanaged"
    writes = [r for r in emulator.requests[before:] if r[0] != "GET"]
    assert writes == [], "drift must only read"


def test_drift_markdown_lists_only_what_drifted(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("drift", "--format", "markdown")
    assert result.exit_code == 2
    assert result.stdout.startswith("### Polaris drift report")
    assert "`Connection/demo-conn` | missing" in result.stdout
    assert "security-audit" not in result.stdout


def test_drift_against_an_unreachable_polaris_is_an_error_exit_1(
    workspace: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("POLARIS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("POLARIS_PROJECT_ID", "p")
    monkeypatch.setenv("POLARIS_API_KEY", "k")
    monkeypatch.setenv("DEMO_AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("DEMO_AWS_SECRET_ACCESS_KEY", "b")
    result = run("drift")
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr
