"""The example CI definitions work when copied: they lint, and their steps give the right results.

Each test runs the exact steps of a workflow in examples/github/ (and this repository's action.yml,
which they use) or a job of examples/gitlab/, against the emulator on loopback, as a user who
copied them into a repository of manifests would see them run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.client import PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from tests.actions import BIN, ROOT, Runner, gitlab_state, run_gitlab_job
from tests.fixtures import DEMO_SECRETS, external_connection_exists

GITHUB = ROOT / "examples" / "github"
GITLAB = ROOT / "examples" / "gitlab" / "polaris-reconciler.gitlab-ci.yml"
WORKFLOWS = sorted(GITHUB.glob("*.yml"))
PLAN_MARKER = "<!-- polaris-reconciler: plan -->"


@pytest.fixture
def bare_runner(served: Any, workspace: Path, tmp_path: Path) -> Runner:
    """A repository of manifests (the demo set) whose workflows run against the emulator."""
    return Runner(
        workdir=workspace.parent,
        temp=tmp_path / "runner",
        vars={"POLARIS_URL": served.url, "POLARIS_PROJECT_ID": DEMO_PROJECT_ID},
        secrets={"POLARIS_API_KEY": DEMO_API_KEY, **DEMO_SECRETS},
        github={
            "repository": "acme/polaris-config",
            "event_name": "pull_request",
            "event": {
                "pull_request": {
                    "number": 7,
                    "head": {"repo": {"full_name": "acme/polaris-config"}},
                }
            },
            "server_url": "https://github.com",
            "run_id": "42",
        },
    )


@pytest.fixture
def runner(bare_runner: Runner, client: PolarisClient) -> Runner:
    """The same, with the connection the manifests say another team manages already there."""
    external_connection_exists(client)
    return bare_runner


def test_the_example_workflows_pass_actionlint_when_copied_into_a_repository(
    tmp_path: Path,
) -> None:
    assert len(WORKFLOWS) == 4
    repository = tmp_path / "repo"
    shutil.copytree(GITHUB, repository / ".github" / "workflows")
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    linted = subprocess.run(
        [str(BIN / "actionlint"), "-verbose", f"-shellcheck={BIN / 'shellcheck'}"],
        cwd=repository,
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "4 files" in linted.stderr or "4 files" in linted.stdout


def test_actionlint_checks_the_workflows_inputs_against_action_yml(tmp_path: Path) -> None:
    # As a local action (uses: ./), actionlint reads action.yml and checks every `with:` key.
    repository = tmp_path / "repo"
    (repository / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", repository / "action.yml")
    for workflow in WORKFLOWS:
        text = workflow.read_text().replace("polaris-reconciler/polaris-reconciler@v0", "./")
        assert "uses: ./" in text
        (repository / ".github" / "workflows" / workflow.name).write_text(text)
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    linted = subprocess.run(
        [str(BIN / "actionlint")], cwd=repository, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    broken = repository / ".github" / "workflows" / "polaris-plan.yml"
    broken.write_text(broken.read_text().replace("command: plan", "comand: plan"))
    linted = subprocess.run(
        [str(BIN / "actionlint")], cwd=repository, capture_output=True, text=True
    )
    assert linted.returncode == 1 and 'input "comand" is not defined' in linted.stdout


def test_the_shell_in_action_yml_and_the_gitlab_template_passes_shellcheck() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    scripts = {f"action.yml {s['id']}": s["run"] for s in action["runs"]["steps"] if "run" in s}
    pipeline = yaml.safe_load(GITLAB.read_text())
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            before = pipeline.get(job.get("extends", ""), {}).get("before_script", [])
            scripts[name] = "\n".join([*before, *job["script"]])
    assert len(scripts) == 6
    for name, script in scripts.items():
        # GitLab splits $MANIFESTS into paths on purpose (SC2086, info): warnings and up fail.
        level = "info" if name.startswith("action.yml") else "warning"
        checked = subprocess.run(
            [str(BIN / "shellcheck"), "--shell=bash", f"--severity={level}", "-"],
            input=script,
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, f"{name}:\n{checked.stdout}"


def test_applies_are_serialised_per_project_or_target() -> None:
    for name, job in [("polaris-apply.yml", None), ("polaris-matrix.yml", "reconcile")]:
        workflow = yaml.safe_load((GITHUB / name).read_text())
        scope = workflow["jobs"][job] if job else workflow
        group = scope["concurrency"]
        assert group["cancel-in-progress"] is False, "a queued apply must not be dropped"
        assert "POLARIS_PROJECT_ID" in group["group"] or "matrix.target" in group["group"]


def test_pull_request_plan_keeps_one_sticky_comment_and_changes_are_not_a_failure(
    runner: Runner,
) -> None:
    first = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert not first.failed, first
    assert first.step("Validate").outcome == "success"
    plan = first.step("Plan")
    assert plan.outputs["exitcode"] == "2" and plan.outputs["changes"] == "true"
    assert Path(plan.outputs["plan-json"]).is_file()
    comments = runner.gh["comments"]
    assert len(comments) == 1 and comments[0]["issue"] == 7
    body = comments[0]["body"]
    assert body.startswith(PLAN_MARKER + "\n### Polaris reconciler plan")
    assert "**Plan: 6 to create, 0 to update, 0 to delete.**" in body
    assert body.removeprefix(PLAN_MARKER + "\n") in first.summary, "comment == job summary"
    assert DEMO_SECRETS["DEMO_AWS_SECRET_ACCESS_KEY"] not in body + first.summary

    second = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert not second.failed
    comments = runner.gh["comments"]
    assert len(comments) == 1, "updated in place, not posted again"
    assert comments[0]["edits"] == 1


def test_a_pull_request_from_a_fork_is_validated_but_not_planned(runner: Runner) -> None:
    runner.github["event"]["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    run = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert not run.failed
    assert run.step("Validate").outcome == "success"
    assert run.step("Plan").outcome == "skipped"
    assert run.step("Post or update the plan comment").outcome == "skipped"
    assert "### Manifests are valid" in run.summary


def test_a_plan_error_fails_the_job_and_still_updates_the_comment(bare_runner: Runner) -> None:
    # No security-audit connection: the manifests say another team manages it, so plan errs.
    runner = bare_runner
    run = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert run.failed
    plan = run.step("Plan")
    assert plan.outcome == "failure" and plan.outputs["exitcode"] == "1"
    assert run.step("Post or update the plan comment").outcome == "success"
    (comment,) = runner.gh["comments"]
    assert "> **error:** <code>Connection/security-audit</code>" in comment["body"]


def test_an_invalid_manifest_fails_validation_with_an_annotation(
    runner: Runner, workspace: Path
) -> None:
    (workspace / "broken.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c1}\n"
        "spec: {type: s3, bucket: b, buckt: b, awsEndpoint: e}\n"
    )
    run = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    validate = run.step("Validate")
    assert validate.outcome == "failure"
    assert "::error file=manifests/broken.yaml,line=4," in validate.output
    assert run.step("Plan").outcome == "skipped"


def test_merge_applies_then_plan_and_drift_are_clean_and_drift_opens_one_issue(
    runner: Runner, client: PolarisClient
) -> None:
    runner.github["event_name"] = "push"
    applied = runner.run_workflow(GITHUB / "polaris-apply.yml", "apply")
    assert not applied.failed, applied.steps[-1].output
    assert applied.step("Apply").outputs["exitcode"] == "0"
    assert "**Apply complete:" in applied.summary

    runner.github["event_name"] = "pull_request"
    plan = runner.run_workflow(GITHUB / "polaris-plan.yml", "plan")
    assert plan.step("Plan").outputs["exitcode"] == "0"
    assert "No changes" in runner.gh["comments"][0]["body"] or "0 to create" in plan.summary

    runner.github["event_name"] = "schedule"
    clean = runner.run_workflow(GITHUB / "polaris-drift.yml", "drift")
    assert not clean.failed, clean.steps
    assert clean.step("Drift").outputs["exitcode"] == "0"
    assert runner.gh["issues"] == []

    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    drifted = runner.run_workflow(GITHUB / "polaris-drift.yml", "drift")
    assert drifted.failed
    assert drifted.step("Drift").outputs["exitcode"] == "2"
    assert drifted.step("Fail on drift").outcome == "failure"
    issues = runner.gh["issues"]
    assert len(issues) == 1 and "<code>Connection/weblogs-s3</code>" in issues[0]["body"]
    assert "#### changed (fails): 1" in issues[0]["body"]
    again = runner.run_workflow(GITHUB / "polaris-drift.yml", "drift")
    assert again.failed
    issues = runner.gh["issues"]
    assert len(issues) == 1 and len(issues[0]["comments"]) == 1, "one issue, updated"


def test_scheduled_drift_after_jobs_moved_to_history_passes(
    runner: Runner, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    runner.github["event_name"] = "push"
    assert not runner.run_workflow(GITHUB / "polaris-apply.yml", "apply").failed
    history = workspace.parent / "history"
    history.mkdir()
    (workspace / "guide" / "koalas-job.yaml").rename(history / "koalas-job.yaml")
    koalas = next(j for j in client.iter_jobs() if j["target"]["tableName"] == "Koalas")
    emulator.expire_job(koalas["id"])
    runner.github["event_name"] = "schedule"
    run = runner.run_workflow(GITHUB / "polaris-drift.yml", "drift")
    assert not run.failed, run.step("Drift").output
    assert run.step("Drift").outputs["exitcode"] == "0"
    assert "#### history: 1" in run.summary


def test_the_matrix_plans_each_target_of_reconciler_yaml_with_its_own_comment_then_applies(
    runner: Runner,
) -> None:
    # Two targets; the emulator has one project, so both point at it (with their own key names).
    (runner.workdir / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n"
        + "".join(
            f"  {name}:\n    url: {runner.vars['POLARIS_URL']}\n    project: {DEMO_PROJECT_ID}\n"
            f"    apiKeyEnv: POLARIS_{name.upper()}_API_KEY\n    paths: [manifests]\n"
            for name in ("dev", "prod")
        )
    )
    runner.secrets |= {"POLARIS_DEV_API_KEY": DEMO_API_KEY, "POLARIS_PROD_API_KEY": DEMO_API_KEY}
    runner.vars.clear()  # the URL and project come from reconciler.yaml only
    for target in ("dev", "prod"):
        run = runner.run_workflow(
            GITHUB / "polaris-matrix.yml", "reconcile", matrix={"target": target}
        )
        assert not run.failed, run
        assert run.step("Plan").outputs["exitcode"] == "2"
        assert run.step("Apply").outcome == "skipped"
        assert f"Target {target}: project {DEMO_PROJECT_ID}" in run.step("Plan").output
    bodies = [c["body"] for c in runner.gh["comments"]]
    assert len(bodies) == 2
    assert "Target: **dev**" in bodies[0] and "Target: **prod**" in bodies[1]
    runner.github["event_name"] = "push"
    run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "reconcile", matrix={"target": "dev"})
    assert not run.failed, run
    assert run.step("Plan").outcome == "skipped"
    assert "**Apply complete:" in run.summary
    # A job sees only its own target's key (its environment's secret): prod's run without it fails.
    runner.secrets.pop("POLARIS_PROD_API_KEY")
    run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "reconcile", matrix={"target": "prod"})
    assert run.failed
    assert "no API key: set POLARIS_PROD_API_KEY" in run.step("Apply").output


def test_the_gitlab_template_runs_the_same_sequence(
    runner: Runner, workspace: Path, client: PolarisClient, tmp_path: Path
) -> None:
    variables = {
        "POLARIS_URL": runner.vars["POLARIS_URL"],
        "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
        "POLARIS_API_KEY": DEMO_API_KEY,
        **DEMO_SECRETS,
    }
    repository = workspace.parent

    def job(name: str) -> subprocess.CompletedProcess[str]:
        return run_gitlab_job(GITLAB, name, repository, variables, tmp_path)

    # With a token, the plan is one merge-request note kept up to date, drift one issue.
    variables |= {
        "POLARIS_GITLAB_TOKEN": "glpat-fake",
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "12",
        "CI_MERGE_REQUEST_IID": "3",
    }
    assert job("polaris-validate").returncode == 0
    assert (repository / "reconciler-reports" / "validate.xml").is_file()
    plan = job("polaris-plan")
    assert plan.returncode == 0, "exit 2 (changes) is not a failure"
    assert "**Plan: 6 to create" in plan.stdout
    assert job("polaris-plan").returncode == 0
    (note,) = gitlab_state(tmp_path)["notes"]
    assert note["mr"] == 3 and note["edits"] == 1
    assert note["body"].startswith("<!-- polaris-reconciler: plan -->\n### Polaris reconciler plan")
    applied = job("polaris-apply")
    assert applied.returncode == 0, applied.stderr
    assert "**Apply complete:" in applied.stdout
    assert job("polaris-drift").returncode == 0
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    drift = job("polaris-drift")
    assert drift.returncode == 2
    assert "<testsuites" in (repository / "reconciler-reports" / "drift.xml").read_text()
    assert gitlab_state(tmp_path)["issues"][0]["labels"] == ["polaris-drift"]
    assert job("polaris-drift").returncode == 2
    (issue,) = gitlab_state(tmp_path)["issues"]
    assert "<code>Connection/weblogs-s3</code>" in issue["description"] and len(issue["notes"]) == 1


def test_the_pre_commit_hook_validates_all_manifests(workspace: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    command = [str(BIN / hook["entry"].split()[0]), *hook["entry"].split()[1:], *hook["args"]]
    env = {"PATH": str(BIN), "HOME": str(workspace.parent)}
    ok = subprocess.run(command, cwd=workspace.parent, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Valid: 7 resources" in ok.stdout
    (workspace / "bad.yaml").write_text("kind: Connection\n")
    bad = subprocess.run(command, cwd=workspace.parent, capture_output=True, text=True, env=env)
    assert bad.returncode == 1


def test_shell_completion_as_the_readme_documents_it() -> None:
    env = {"PATH": str(BIN), "COMP_WORDS": "reconciler drift --fa", "COMP_CWORD": "2"}
    done = subprocess.run(
        [str(BIN / "reconciler")],
        env={**env, "_RECONCILER_COMPLETE": "bash_complete"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["plain,--fail-on"]
    assert "_RECONCILER_COMPLETE=bash_source reconciler" in (ROOT / "README.md").read_text()
