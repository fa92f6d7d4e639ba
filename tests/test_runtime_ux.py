"""Runtime surprises for people used to Terraform: follow-on errors, approval, help and completion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from tests.cli import run

BREAKAGES = {
    "a typo'd field": ("bucket: demo-bucket", "buckit: demo-bucket", "buckit"),
    "a literal secret": (
        "accessKeySecret: ${env:DEMO_AWS_SECRET_ACCESS_KEY}",
        "accessKeySecret: literally-secret",
        "must be an ${env:NAME} reference",
    ),
    "a wrong apiVersion": ("apiVersion: reconciler/v1", "apiVersion: reconciler/v2", "apiVersion"),
}


def break_connection(workspace: Path, old: str, new: str) -> None:
    path = workspace / "guide" / "demo-conn.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_connection_is_the_only_error_not_the_jobs_that_use_it(
    workspace: Path, breakage: str
) -> None:
    old, new, said = BREAKAGES[breakage]
    break_connection(workspace, old, new)
    result = run("validate", "manifests/guide")
    assert result.exit_code == 1
    assert said in result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert errors and all(line.startswith("manifests/guide/demo-conn.yaml:") for line in errors)
    assert "names no declared Connection" not in result.stdout + result.stderr


def test_a_connection_whose_secret_variable_is_unset_is_the_only_error_of_a_plan(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEMO_AWS_SECRET_ACCESS_KEY")
    result = run("plan", "manifests/guide")
    assert result.exit_code == 1
    assert "environment variable DEMO_AWS_SECRET_ACCESS_KEY is not set" in result.stderr
    assert "names no declared Connection" not in result.stderr
    assert "1 manifest error(s); nothing was sent" in result.stderr


def test_a_job_naming_a_connection_nobody_declares_is_still_an_error(workspace: Path) -> None:
    path = workspace / "guide" / "koalas-job.yaml"
    path.write_text(path.read_text().replace("connectionName: demo-conn", "connectionName: demo"))
    result = run("validate", "manifests/guide")
    assert result.exit_code == 1
    assert "source.connectionName 'demo' names no declared Connection" in result.stdout


def test_a_non_interactive_apply_without_auto_approve_prints_the_plan_before_refusing(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    result = run("apply", "manifests/guide")
    assert result.exit_code == 1
    assert "Connection/demo-conn" in result.stderr
    assert "Plan: 2 to create, 0 to update, 0 to delete" in result.stderr
    assert result.stderr.index("Plan: 2 to create") < result.stderr.index("pass --auto-approve")
    assert client.list_connections() == []


def test_a_non_interactive_apply_in_json_refuses_beside_the_plan(
    served: Any, workspace: Path
) -> None:
    result = run("apply", "--format", "json", "manifests/guide")
    assert result.exit_code == 1
    document = result.json()
    assert "pass --auto-approve" in document["error"]["message"]
    assert {c["name"] for c in document["plan"]["changes"]} == {"demo-conn", "koalas-demo-file"}


@pytest.mark.parametrize("bucket", ["s3://my-bucket", "s3://my-bucket/logs/", "my-bucket/logs"])
def test_an_s3_url_where_a_bucket_name_belongs_is_an_error_naming_the_file_line_and_fix(
    workspace: Path, bucket: str
) -> None:
    break_connection(workspace, "bucket: demo-bucket", f"bucket: {bucket}")
    result = run("validate", "manifests/guide")
    assert result.exit_code == 1
    assert (
        "manifests/guide/demo-conn.yaml:12:11: error: spec.bucket does not match a bucket name "
        "such as my-bucket, not an s3:// URL or a path (write a key prefix in spec.prefix)"
    ) in result.stdout


def test_a_bucket_name_with_dots_is_valid(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_AWS_ACCESS_KEY_ID", "AKIA")
    monkeypatch.setenv("DEMO_AWS_SECRET_ACCESS_KEY", "x")
    break_connection(workspace, "bucket: demo-bucket", "bucket: logs.example.com")
    assert run("validate", "manifests/guide").exit_code == 0
