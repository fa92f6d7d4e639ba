"""Runtime surprises for people used to Terraform: follow-on errors, approval, help and completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import cli
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
    "a misspelt kind": ("kind: Connection", "kind: Conection", "Conection"),
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


@pytest.mark.parametrize(
    ("variable", "written"),
    [("SSL_CERT_FILE", None), ("SSL_CERT_FILE", "no certificate here\n"), ("SSL_CERT_DIR", "")],
    ids=["a missing file", "a file of no certificate", "a file where a directory belongs"],
)
def test_a_ca_bundle_variable_naming_no_bundle_is_an_error_naming_the_variable_and_fix(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str,
    written: str | None,
) -> None:  # fmt: skip
    from reconciler import transport

    monkeypatch.setattr(transport, "_tls_context", transport._tls_context.__wrapped__)
    not_a_bundle = tmp_path / "not-a-bundle.pem"
    if written is not None:
        not_a_bundle.write_text(written)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv(variable, str(not_a_bundle))
    result = run("plan", "manifests/guide")
    assert result.exit_code == 1
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert f"error: {variable} is set to {str(not_a_bundle)!r}" in result.stderr
    assert "unset it" in result.stderr


def test_a_ca_bundle_path_with_a_line_break_cannot_start_a_line_of_its_own(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler import transport

    monkeypatch.setattr(transport, "_tls_context", transport._tls_context.__wrapped__)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/nowhere\n::error::forged")
    result = run("plan", "manifests/guide")
    assert result.exit_code == 1
    assert "SSL_CERT_FILE is set to '/nowhere\\n::error::forged'" in result.stderr
    assert not any(line.startswith("::error::forged") for line in result.stderr.splitlines())


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


COMMAND_NAMES = ("validate", "plan", "apply", "drift", "import", "unlock", "emulator")


def test_unlock_help_lists_neither_parallelism_nor_the_job_cache() -> None:
    result = run("unlock", "--help")
    assert result.exit_code == 0
    assert "--parallelism" not in result.stdout
    assert "--no-cache" not in result.stdout
    assert "--target NAME" in result.stdout


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_no_option_type_shows_as_finite_float(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "FINITE FLOAT" not in result.stdout
    if command != "emulator":  # whose --port says its range
        assert "INTEGER RANGE" not in result.stdout


def test_import_help_does_not_list_the_job_cache_it_never_reads() -> None:
    assert "--no-cache" not in run("import", "--help").stdout


def test_apply_help_gives_its_timeouts_in_seconds() -> None:
    help_text = " ".join(run("apply", "--help").stdout.split())
    assert "--timeout SECONDS" in help_text
    assert "--lock-timeout SECONDS" in help_text
    assert "--parallelism N" in help_text


PLAN_CREATES = "\x1b[32m"  # a create is green


@pytest.mark.parametrize(
    ("flags", "environment", "colored"),
    [
        ((), {}, False),  # not a terminal
        ((), {"FORCE_COLOR": "1"}, True),
        (("--no-color",), {"FORCE_COLOR": "1"}, False),
        ((), {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        ((), {"FORCE_COLOR": ""}, False),  # empty means unset (force-color.org)
    ],
)
def test_no_color_and_force_color_decide_whether_a_plan_is_colored(
    served: Any,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    environment: dict[str, str],
    colored: bool,
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = run("plan", *flags, "manifests/guide")
    assert result.exit_code == 0, result.stderr
    assert (PLAN_CREATES in result.stdout) is colored


def test_no_color_is_accepted_before_the_command_too(served: Any, workspace: Path) -> None:
    result = run("--no-color", "plan", "manifests/guide")
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" not in result.stdout


def complete(monkeypatch: pytest.MonkeyPatch, line: str) -> list[str]:
    """What bash completion offers after `line` (click's bash_complete protocol), as a shell
    asks for it: by running the command with the completion variables set."""
    words = line.split(" ")
    environment = {
        **os.environ,
        "_RECONCILER_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "reconciler"], env=environment, capture_output=True, text=True,
        check=True, cwd=Path.cwd(),
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def test_target_names_complete_from_reconciler_yaml(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workspace.parent / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n"
        "  staging:\n    url: http://127.0.0.1:1\n    project: s\n    apiKeyEnv: STAGING_KEY\n"
        "  prod:\n    url: http://127.0.0.1:2\n    project: p\n    apiKeyEnv: PROD_KEY\n"
    )
    assert complete(monkeypatch, "reconciler plan --target ") == ["plain,prod", "plain,staging"]
    assert complete(monkeypatch, "reconciler apply --target st") == ["plain,staging"]


def test_target_names_complete_to_nothing_without_reconciler_yaml(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert complete(monkeypatch, "reconciler plan --target ") == []


def test_manifest_paths_complete_as_files_and_directories(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert complete(monkeypatch, "reconciler validate ") == ["file,"]
    assert complete(monkeypatch, "reconciler plan --config ") == ["file,"]


def test_the_command_list_shows_each_summary_whole() -> None:
    listing = run("--help").stdout.split("Commands:")[1].splitlines()
    ours = [line for line in listing if line.strip() and not line.strip().startswith("emulator")]
    cut = [line for line in ours if line.endswith("...")]
    assert len(ours) == len(cli.commands) - 1 and not cut  # every command but the emulator
