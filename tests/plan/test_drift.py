"""`reconciler drift`: a read-only report whose exit status says whether anything drifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from reconciler.drift import drift_report
from reconciler.emulator import DEMO_PROJECT_ID, Emulator
from reconciler.live import read_live
from reconciler.plan import make_plan
from reconciler.render import render_drift
from tests.cli import run
from tests.fixtures import external_connection_exists


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


def test_drift_markdown_groups_what_drifted_by_status(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    client.create_connection({"type": "s3", "name": "hand-made", "bucket": "b", "awsEndpoint": "e"})
    result = run("drift", "--format", "markdown")
    assert result.exit_code == 2
    assert result.stdout.startswith("### Polaris drift report")
    missing = result.stdout.index("#### missing (fails): 6")
    unmanaged = result.stdout.index("#### unmanaged: 1")
    assert missing < unmanaged, "failing groups come first"
    assert (
        "| <code>Connection/demo-conn</code> | not found in project |"
        in result.stdout[missing:unmanaged]
    )
    assert "<code>Connection/hand-made</code>" in result.stdout[unmanaged:]
    assert "security-audit" not in result.stdout


def test_drift_markdown_of_many_resources_stays_under_the_comment_limit(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    for index in range(400):
        name = f"hand-made-{index:03}-" + "x" * 40
        client.create_connection({"type": "s3", "name": name, "bucket": "b", "awsEndpoint": "e"})
    report = drift_report(make_plan([], read_live(client, [])), fail_on={"unmanaged"})
    text = render_drift(report, "markdown")
    assert len(text) < 60_000
    assert "#### unmanaged (fails): 400" in text
    short = render_drift(report, "markdown", limit=2_000)
    assert len(short) <= 2_000
    assert "**Truncated:**" in short and "unmanaged resource(s) not shown" in short


def test_fail_on_chooses_which_statuses_fail_the_run(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    assert run("apply", "--auto-approve").exit_code == 0
    client.create_connection({"type": "s3", "name": "hand-made", "bucket": "b", "awsEndpoint": "e"})
    assert run("drift").exit_code == 0, "unmanaged alone does not fail by default"
    assert run("drift", "--fail-on", "unmanaged").exit_code == 2
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    assert run("drift").exit_code == 2
    assert run("drift", "--fail-on", "missing,failed").exit_code == 0
    payload = run("drift", "--format", "json", "--fail-on", "changed").json()
    assert payload["failOn"] == ["changed"] and payload["failed"] is True
    wrong = run("drift", "--fail-on", "chnaged")
    assert wrong.exit_code == 1
    assert "unknown status chnaged" in wrong.stderr


def test_ignored_resources_are_reported_as_ignored_and_never_fail(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    assert run("apply", "--auto-approve").exit_code == 0
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    client.create_connection({"type": "s3", "name": "dbt-owned", "bucket": "b", "awsEndpoint": "e"})
    assert run("drift", "--fail-on", "changed,unmanaged").exit_code == 2
    result = run(
        "drift", "--format", "json", "--fail-on", "changed,unmanaged",
        "--ignore", "Connection/weblogs-*", "--ignore", "dbt-*",
    )  # fmt: skip
    assert result.exit_code == 0
    drift = {entry["name"]: entry for entry in result.json()["drift"]}
    assert drift["weblogs-s3"]["status"] == "ignored"
    assert drift["dbt-owned"]["status"] == "ignored"


def test_a_scheduled_drift_run_after_jobs_moved_to_history_exits_0(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    assert run("apply", "--auto-approve").exit_code == 0
    # The job finished long ago; its manifest moves out of the active paths, and later Polaris's
    # retention forgets the job itself.
    history = workspace.parent / "history"
    history.mkdir()
    (workspace / "guide" / "koalas-job.yaml").rename(history / "koalas-job.yaml")
    koalas = next(j for j in client.iter_jobs() if j["target"]["tableName"] == "Koalas")
    strict = ("--fail-on", "missing,changed,failed,unmanaged")
    # The old advice (an archive/ directory nobody passes) leaves the table the job created
    # unmanaged for ever:
    archived = run("drift", "--format", "json", *strict)
    assert archived.exit_code == 2
    assert {"kind": "Table", "name": "Koalas"} in [
        {"kind": e["kind"], "name": e["name"]} for e in archived.json()["drift"]
        if e["status"] == "unmanaged"
    ]  # fmt: skip
    assert run("drift", "--history", str(history), *strict).exit_code == 0
    emulator.expire_job(koalas["id"])
    result = run("drift", "--format", "json", "--history", str(history), *strict)
    assert result.exit_code == 0, result.stdout
    drift = {entry["name"]: entry for entry in result.json()["drift"]}
    assert drift["koalas-demo-file"]["status"] == "history"
    assert "never submitted" in drift["koalas-demo-file"]["detail"]
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, "plan does not read history paths: nothing is submitted again"


def test_drift_against_an_unreachable_polaris_is_an_error_exit_1(
    workspace: Path, monkeypatch: Any, backoff: list[float]
) -> None:
    monkeypatch.setenv("POLARIS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("POLARIS_PROJECT_ID", "p")
    monkeypatch.setenv("POLARIS_API_KEY", "k")
    monkeypatch.setenv("DEMO_AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("DEMO_AWS_SECRET_ACCESS_KEY", "b")
    result = run("drift")
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert backoff, "the connection was retried (the waits counted, not slept)"


def test_a_history_path_inside_the_manifest_paths_is_refused(served: Any, workspace: Path) -> None:
    (workspace / "history").mkdir()
    result = run("drift", "--history", str(workspace / "history"), str(workspace))
    assert result.exit_code == 1
    assert "overlaps the manifest path" in result.stderr
    assert "would submit the jobs kept there again" in result.stderr


def test_a_targets_history_and_ignore_in_reconciler_yaml_apply_to_drift(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    (workspace.parent / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n  prod:\n"
        f"    url: {served.url}\n    project: {DEMO_PROJECT_ID}\n    apiKeyEnv: POLARIS_API_KEY\n"
        "    history: [history]\n    ignore: ['Connection/hand-*']\n"
    )
    assert run("apply", "--auto-approve").exit_code == 0
    history = workspace.parent / "history"
    history.mkdir()
    (workspace / "guide" / "koalas-job.yaml").rename(history / "koalas-job.yaml")
    koalas = next(j for j in client.iter_jobs() if j["target"]["tableName"] == "Koalas")
    emulator.expire_job(koalas["id"])
    client.create_connection({"type": "s3", "name": "hand-made", "bucket": "b", "awsEndpoint": "e"})
    strict = ("--fail-on", "missing,changed,failed,unmanaged")
    result = run("drift", "--format", "json", "--history", "history", *strict)
    assert result.exit_code == 0, result.stdout + result.stderr
    drift = {entry["name"]: entry["status"] for entry in result.json()["drift"]}
    assert drift["koalas-demo-file"] == "history"
    assert drift["hand-made"] == "ignored"
    assert "Koalas" not in drift, "the table the history job created is accounted for"


def test_drift_reads_a_plan_errors_status_from_its_code_never_its_wording() -> None:
    from reconciler.drift import drift_report
    from reconciler.model import Kind
    from reconciler.plan import Plan
    from reconciler.values import PlanError, PlanErrorCode

    # Wording that says "not found" must not make a forbidden change look missing, nor the
    # other way round: the code decides.
    forbidden = PlanError(
        Kind.TABLE, "t", "column x not found in the table", code=PlanErrorCode.FORBIDDEN
    )
    absent = PlanError(
        Kind.CONNECTION, "c", "the owners have not created it", code=PlanErrorCode.MISSING
    )
    report = drift_report(Plan((), (forbidden, absent)))
    statuses = {entry.name: entry.status for entry in report.entries}
    assert statuses == {"t": "changed", "c": "missing"}
