"""Outputs never go blank: a run that fails says so on stdout, in the format it was asked for.

A workflow posts `plan --format markdown`'s stdout as a pull-request comment and a script parses
`--format json`: a failure that printed nothing would replace the last good comment with an empty
one, or hand the script nothing to parse. Exit codes stay as they were.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from reconciler.emulator import DEMO_API_KEY
from tests.actions import Runner
from tests.cli import run
from tests.docs.test_workflows import GITHUB, PLAN_MARKER, bare_runner  # noqa: F401 (a fixture)
from tests.fixtures import DEMO_SECRETS, SECURITY_AUDIT, external_connection_exists

WRONG_KEY = "pk-wrong-key-0123456789abcdef-never-shown"


def an_unset_secret_variable(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    monkeypatch.delenv("DEMO_AWS_SECRET_ACCESS_KEY")


def a_rejected_api_key(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    monkeypatch.setenv("POLARIS_API_KEY", WRONG_KEY)


def an_unreachable_polaris(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    monkeypatch.setenv("POLARIS_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the retries' backoff, not slept


def an_invalid_manifest(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    path = workspace / "guide" / "demo-conn.yaml"
    path.write_text(path.read_text().replace("bucket: demo-bucket", "buckit: demo-bucket"))


FAILURES: dict[str, tuple[Callable[[pytest.MonkeyPatch, Path], None], str, str]] = {
    # name: (how, error code, words of the message)
    "unset secret": (an_unset_secret_variable, "manifest", "DEMO_AWS_SECRET_ACCESS_KEY"),
    "401": (a_rejected_api_key, "api", "rejected the API key (401)"),
    "unreachable": (an_unreachable_polaris, "api", "cannot reach http://127.0.0.1:9"),
    "invalid manifest": (an_invalid_manifest, "manifest", "buckit"),
}
COMMANDS = {
    "plan": ("plan", "manifests/guide"),
    "apply": ("apply", "--auto-approve", "manifests/guide"),
    "drift": ("drift", "manifests/guide"),
}


def fail(
    failure: str, command: str, fmt: str, monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> Any:
    how, _, _ = FAILURES[failure]
    how(monkeypatch, workspace)
    result = run(*COMMANDS[command], "--format", fmt)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    for secret in (WRONG_KEY, DEMO_API_KEY, *DEMO_SECRETS.values()):
        assert secret not in result.stdout + result.stderr
    return result


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_command_prints_a_json_error_on_stdout(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, failure: str, command: str
) -> None:
    result = fail(failure, command, "json", monkeypatch, workspace)
    _, code, words = FAILURES[failure]
    document = result.json()
    assert document["formatVersion"] == "1"
    assert document["error"]["code"] == code
    assert words in json.dumps(document["error"])


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_command_prints_markdown_that_says_what_failed_and_what_to_do(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, failure: str, command: str
) -> None:
    result = fail(failure, command, "markdown", monkeypatch, workspace)
    _, _, words = FAILURES[failure]
    assert result.stdout.startswith(f"### Polaris reconciler {command} failed\n")
    assert words in result.stdout
    assert "**What to do:**" in result.stdout


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_plan_in_github_format_prints_an_error_annotation(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    result = fail(failure, "plan", "github", monkeypatch, workspace)
    assert "::error title=reconciler plan::" in result.stdout


def test_a_failed_validate_prints_a_json_error_beside_its_problems(workspace: Path) -> None:
    an_invalid_manifest(pytest.MonkeyPatch(), workspace)
    result = run("validate", "--format", "json", "manifests/guide")
    assert result.exit_code == 1
    document = result.json()
    assert document["formatVersion"] == "1"
    assert document["error"]["code"] == "manifest"
    assert any("buckit" in problem["message"] for problem in document["problems"])


def test_a_valid_validate_in_json_carries_a_format_version(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    result = run("validate", "--format", "json", "manifests/guide")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"formatVersion": "1", "valid": True, "problems": []}


def test_an_unsafe_apply_in_json_prints_the_plan_beside_the_error(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    for name in ("old-1", "old-2", "old-3", "old-4"):
        client.create_connection({**SECURITY_AUDIT, "name": name})
    result = run("apply", "--prune", "--auto-approve", "--format", "json", "manifests/guide")
    assert result.exit_code == 1
    document = result.json()
    assert document["error"]["code"] == "unsafe-plan"
    assert "pass --allow-empty" in document["error"]["message"]
    actions = {c["name"]: c["action"] for c in document["plan"]["changes"]}
    assert actions["old-1"] == "delete"


def test_a_usage_failure_in_markdown_is_not_blank(served: Any, workspace: Path) -> None:
    result = run("plan", "--format", "markdown", "--target", "nowhere", "manifests/guide")
    assert result.exit_code == 1
    assert result.stdout.startswith("### Polaris reconciler plan failed\n")
    assert "reconciler.yaml" in result.stdout


def test_a_plan_that_cannot_be_saved_prints_the_plan_beside_the_error_in_json(
    served: Any, workspace: Path
) -> None:
    result = run("plan", "--format", "json", "--out", "no/such/dir/plan.json", "manifests/guide")
    assert result.exit_code == 1
    document = result.json()
    assert document["error"]["code"] == "saved-plan"
    assert "cannot write the plan to no/such/dir/plan.json" in document["error"]["message"]
    assert {c["name"] for c in document["changes"]} == {"demo-conn", "koalas-demo-file"}


def test_a_usage_error_is_reported_in_the_format_asked_for(workspace: Path) -> None:
    result = run("plan", "--format=json", "--bogus", "manifests/guide")
    assert result.exit_code == 1
    error = result.json()["error"]
    assert error["code"] == "usage"
    assert error["message"].startswith("No such option '--bogus'.")


@pytest.mark.parametrize("failure", ["401", "unreachable"])
def test_the_plan_workflow_comments_the_failure_never_an_empty_body(
    request: pytest.FixtureRequest, client: PolarisClient, failure: str
) -> None:
    runner: Runner = request.getfixturevalue("bare_runner")  # test_workflows's
    # (An unset secret reaches a workflow as an empty value, which its Validate step refuses.)
    external_connection_exists(client)
    if failure == "401":
        runner.secrets["POLARIS_API_KEY"] = WRONG_KEY
    else:
        runner.vars["POLARIS_URL"] = "http://127.0.0.1:9"
    run = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert run.failed
    assert run.step("Plan").outputs["exitcode"] == "1"
    (comment,) = runner.gh["comments"]
    assert comment["body"].startswith(PLAN_MARKER + "\n### Polaris reconciler plan failed\n")
    assert "**What to do:**" in comment["body"]
    assert WRONG_KEY not in comment["body"] + run.summary


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_plan_in_text_says_so_on_stdout_too_when_stdout_is_a_file(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    result = fail(failure, "plan", "text", monkeypatch, workspace)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert result.stdout.strip().splitlines()[-1] == last


def test_a_failed_command_in_a_terminal_shows_its_error_once(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLARIS_API_KEY", WRONG_KEY)
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "manifests/guide"],
        stdin=follower, stdout=follower, stderr=follower, cwd=workspace.parent, timeout=60,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert done.returncode == 1
    assert screen.decode().count("rejected the API key (401)") == 1
