"""Smaller surprises: global options anywhere, saved plans that travel and cannot be edited."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from tests.cli import run

SECURITY_AUDIT = {
    "type": "s3",
    "name": "security-audit",
    "bucket": "acme-security-audit",
    "awsEndpoint": "s3.eu-west-1.amazonaws.com",
}


@pytest.mark.parametrize(
    "args",
    [("-v", "plan"), ("plan", "-v"), ("plan", "manifests/guide", "--verbose"), ("--debug", "plan")],
)
def test_verbose_and_debug_work_before_or_after_the_subcommand(
    served: Any, workspace: Path, args: tuple[str, ...]
) -> None:
    result = run(*args, *(() if "manifests/guide" in args else ("manifests/guide",)))
    assert result.exit_code == 0, result.stderr
    assert re.search(r"reconciler\.client: GET http://\S+/connections -> 200", result.stderr)


def test_a_saved_plan_applies_from_another_directory(
    served: Any, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("plans").mkdir()
    assert run("plan", "manifests/guide", "--out", "plans/guide.json").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("apply", str(tmp_path / "plans" / "guide.json"), "--auto-approve")
    assert result.exit_code == 0, result.stderr
    assert "Apply complete: 2 done" in result.stdout


def test_any_edit_to_a_saved_plan_is_refused(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    client.create_connection(SECURITY_AUDIT)
    assert run("plan", "--out", "plan.json").exit_code == 0
    saved = json.loads(Path("plan.json").read_text(encoding="utf-8"))
    saved["plan"]["changes"][0]["reason"] = "nothing to see here"
    Path("plan.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 1
    assert "plan.json was changed after `reconciler plan --out` saved it" in result.stderr
    assert client.list_connections() == [client.get_connection("security-audit")]


@pytest.mark.parametrize("flag", ["--prune", "--rotate-secrets", "--resubmit-canceled"])
def test_a_plan_option_given_to_apply_of_a_saved_plan_is_an_error(
    served: Any, workspace: Path, flag: str
) -> None:
    assert run("plan", "manifests/guide", "--out", "plan.json").exit_code == 0
    result = run("apply", "plan.json", flag, "--auto-approve")
    assert result.exit_code == 1
    assert f"{flag} cannot change a saved plan" in result.stderr
    assert f"reconciler plan {flag} --out" in result.stderr


def test_the_job_cache_holds_no_piece_of_the_api_key(
    served: Any, workspace: Path, tmp_path: Path
) -> None:
    assert run("apply", "--auto-approve", "manifests/guide").exit_code == 0
    assert run("plan", "manifests/guide").exit_code == 0
    caches = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert caches, "the plan should have cached the finished job"
    key = os.environ["POLARIS_API_KEY"]
    for path in caches:
        text = path.read_text(encoding="utf-8")
        assert '"executionStatus":"completed"' in text
        for start in range(len(key) - 7):
            assert key[start : start + 8] not in text, path


def test_parallelism_above_sixteen_reaches_the_server_as_concurrent_requests(
    served: Any, emulator: Emulator, tmp_path: Path
) -> None:
    # Each job into its own auto-created table, so that nothing orders them: all may go at once.
    jobs = 40
    docs = [
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: conn}\n"
        "spec: {type: s3, bucket: b, awsEndpoint: s3.us-east-1.amazonaws.com}\n"
    ] + [
        f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: job-{j}}}\nspec:\n"
        f"  type: batch\n  target: {{type: table, tableName: t{j}}}\n  createTableIfNotExists: true\n"
        f"  source: {{type: s3, connectionName: conn, objects: [f{j}.json],"
        " formatSettings: {format: nd-json}, inputSchema: [{name: ts, dataType: string}]}\n"
        "  mappings: [{columnName: __time, expression: 'TIME_PARSE(\"ts\")'}]\n"
        for j in range(jobs)
    ]
    (tmp_path / "many.yaml").write_text("---\n".join(docs), encoding="utf-8")
    emulator.faults.latency_seconds = 0.2  # long enough for every worker's request to overlap
    emulator.reset_requests()
    result = run("apply", "--auto-approve", "--parallelism", "32", "--no-lock", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert emulator.peak_in_flight > 16  # the old fixed pool of 16 connections capped it there
    assert emulator.peak_in_flight <= 32 + 1  # and --parallelism still bounds it (+1: the lock)
