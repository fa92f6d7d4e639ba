"""The example CI definitions work when copied: they lint, and their steps give the right results.

Each test runs the exact steps of a workflow in examples/github/ (and this repository's action.yml,
which they use) or a job of examples/gitlab/, against the emulator on loopback, as a user who
copied them into a repository of manifests would see them run.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import reconciler
from reconciler.client import PolarisClient
from reconciler.emulator import ALL_PERMISSIONS, DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from tests.actions import BIN, ROOT, Runner, gitlab_state, run_gitlab_job
from tests.conformance import ConformanceLog
from tests.fixtures import DEMO_SECRETS, external_connection_exists

GITHUB = ROOT / "examples" / "github"
GITLAB = ROOT / "examples" / "gitlab" / "polaris-reconciler.gitlab-ci.yml"
WORKFLOWS = sorted(GITHUB.glob("*.yml"))
PLAN_MARKER = "<!-- polaris-reconciler: plan -->"
# A key with none of the Manage* permissions: what the workflows give pull-request plans and drift.
READ_ONLY_KEY = "pok_readOnly0Plan0Key0For0Pull0Requests"
LEFT_AS_IT_WAS = "was left as it was"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The shared emulator fixture's, with a read-only key beside the demo (apply) key."""
    log = ConformanceLog()
    keys = {DEMO_API_KEY: sorted(ALL_PERMISSIONS), READ_ONLY_KEY: []}
    emulator = Emulator(api_keys=keys, response_observer=log)
    yield emulator
    emulator.store.close()
    assert not log.violations, "\n".join(log.violations)


@pytest.fixture
def bare_runner(served: Any, workspace: Path, tmp_path: Path) -> Runner:
    """A repository of manifests (the demo set) whose workflows run against the emulator."""
    return Runner(
        workdir=workspace.parent,
        temp=tmp_path / "runner",
        vars={"POLARIS_URL": served.url, "POLARIS_PROJECT_ID": DEMO_PROJECT_ID},
        secrets={
            "POLARIS_API_KEY": DEMO_API_KEY,
            "POLARIS_PLAN_API_KEY": READ_ONLY_KEY,
            **DEMO_SECRETS,
        },
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
    for name, job in [("polaris-apply.yml", None), ("polaris-matrix.yml", "apply")]:
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


def two_targets(runner: Runner, url: str | None = None) -> None:
    """A reconciler.yaml of two targets; the emulator has one project, so both point at it."""
    url = url or runner.vars["POLARIS_URL"]
    (runner.workdir / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n"
        + "".join(
            f"  {name}:\n    url: {url}\n    project: {DEMO_PROJECT_ID}\n"
            f"    apiKeyEnv: POLARIS_{name.upper()}_API_KEY\n    paths: [manifests]\n"
            for name in ("dev", "prod")
        )
    )


def test_the_matrix_plans_each_target_of_reconciler_yaml_with_its_own_comment_then_applies(
    runner: Runner,
) -> None:
    two_targets(runner)
    # Pull requests: the read-only plan key only; the apply keys are environment secrets that
    # only the apply job (on main) can see.
    runner.secrets.pop("POLARIS_API_KEY")
    runner.vars.pop("POLARIS_PROJECT_ID")  # the project comes from reconciler.yaml
    for target in ("dev", "prod"):
        run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "plan", matrix={"target": target})
        assert not run.failed, run
        assert run.step("Plan").outputs["exitcode"] == "2"
        assert f"Target {target}: project {DEMO_PROJECT_ID}" in run.step("Plan").output
    bodies = [c["body"] for c in runner.gh["comments"]]
    assert len(bodies) == 2
    assert "Target: **dev**" in bodies[0] and "Target: **prod**" in bodies[1]
    runner.github["event_name"] = "push"
    runner.secrets |= {"POLARIS_DEV_API_KEY": DEMO_API_KEY}  # dev's environment
    run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "apply", matrix={"target": "dev"})
    assert not run.failed, run
    assert "**Apply complete:" in run.summary
    # A job sees only its own target's key (its environment's secret): prod's run without it fails.
    run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "apply", matrix={"target": "prod"})
    assert run.failed
    assert "no API key: set POLARIS_PROD_API_KEY" in run.step("Apply").output


def test_no_pull_request_job_is_given_an_apply_key() -> None:
    # What a pull request's code can reach: the env of its jobs and the inputs of their steps.
    pull_request_jobs = [
        (GITHUB / "polaris-plan.yml", "plan"),
        (GITHUB / "polaris-matrix.yml", "plan"),
    ]
    for path, job_id in pull_request_jobs:
        workflow = yaml.safe_load(path.read_text())
        job = workflow["jobs"][job_id]
        assert "environment" not in job, "an environment holds an apply key"
        text = yaml.safe_dump({"env": workflow.get("env"), "job": job})
        keys = set(re.findall(r"secrets\.(\w*API_KEY\w*)", text))
        assert keys == {"POLARIS_PLAN_API_KEY"}, (path.name, keys)
        assert "${{ vars.POLARIS_URL }}" in yaml.safe_dump(workflow.get("env")), path.name
    matrix = yaml.safe_load((GITHUB / "polaris-matrix.yml").read_text())
    assert matrix["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert matrix["jobs"]["apply"]["if"] == "github.event_name == 'push'"
    assert matrix["jobs"]["apply"]["environment"] == "${{ matrix.target }}"
    apply = yaml.safe_load((GITHUB / "polaris-apply.yml").read_text())
    assert "pull_request" not in apply[True]  # YAML 1.1 reads the key `on` as true
    # The apply key is an environment's secret, out of reach of a branch's edited workflow.
    assert apply["jobs"]["apply"]["environment"] == "polaris-apply"


def test_the_action_gives_the_api_key_input_to_the_reconciler_and_to_no_other_variable(
    runner: Runner,
) -> None:
    # reconciler.yaml names an apiKeyEnv that holds another secret: the key sent is the input's.
    two_targets(runner)
    runner.secrets.pop("POLARIS_API_KEY")
    runner.secrets["POLARIS_DEV_API_KEY"] = "pok_an_apply_key_that_must_not_be_used"
    run = runner.run_workflow(GITHUB / "polaris-matrix.yml", "plan", matrix={"target": "dev"})
    assert not run.failed, run
    assert run.step("Plan").outputs["exitcode"] == "2"
    assert READ_ONLY_KEY not in run.step("Plan").output + run.summary
    assert list(runner.temp.glob("polaris-key.*")) == [], "the key file is removed"


@pytest.mark.parametrize("layout", ["single target", "two targets"])
@pytest.mark.parametrize("failure", ["unset secret variable", "401", "unreachable"])
def test_a_failing_plan_never_replaces_the_last_plan_comment_with_an_empty_one(
    runner: Runner, layout: str, failure: str
) -> None:
    if layout == "two targets":
        two_targets(runner)
        workflow, job, matrix = GITHUB / "polaris-matrix.yml", "plan", {"target": "dev"}
        marker = "<!-- polaris-reconciler: plan dev -->"
    else:
        workflow, job, matrix, marker = GITHUB / "polaris-plan.yml", "plan", None, PLAN_MARKER
    good = runner.run_workflow(workflow, job, matrix=matrix)
    assert not good.failed, good
    (comment,) = runner.gh["comments"]
    last_good = comment["body"]

    if failure == "unset secret variable":
        # The pull request uses a variable the workflow does not pass: validate only warns.
        conn = runner.workdir / "manifests" / "guide" / "demo-conn.yaml"
        conn.write_text(
            conn.read_text().replace("DEMO_AWS_SECRET_ACCESS_KEY", "DEMO_AWS_NEW_SECRET")
        )
    elif failure == "401":
        runner.secrets["POLARIS_PLAN_API_KEY"] = "pok_revoked0Key"
    else:
        closed = closed_port_url()
        runner.vars["POLARIS_URL"] = closed
        if layout == "two targets":
            two_targets(runner, closed)
    failed = runner.run_workflow(workflow, job, matrix=matrix)
    assert failed.failed
    assert failed.step("Plan").outputs["exitcode"] == "1"
    (comment,) = runner.gh["comments"]
    body = comment["body"]
    assert body.startswith(marker)
    assert body.removeprefix(marker).strip(), "the comment is never just the hidden marker"
    if comment["edits"] == 0:  # the plan wrote no report: the last comment stays, and we say so
        assert body == last_good
        assert LEFT_AS_IT_WAS in failed.summary
    else:  # the plan reported its failure in Markdown: that is the new comment
        assert body != last_good and "error" in body.lower()
    assert DEMO_SECRETS["DEMO_AWS_SECRET_ACCESS_KEY"] not in body + failed.summary
    assert READ_ONLY_KEY not in body + failed.summary + failed.step("Plan").output


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_the_comment_step_leaves_the_last_comment_when_the_report_is_empty(
    runner: Runner, tmp_path: Path
) -> None:
    # The step as copied, on its own: a report file that is empty or holds only blank lines.
    workflow = yaml.safe_load((GITHUB / "polaris-plan.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["plan"]["steps"] if "gh api" in s.get("run", "")]
    report = tmp_path / "report.md"
    for content in ["", "\n \n"]:
        report.write_text(content)
        summary = tmp_path / "summary.md"
        summary.write_text("")
        env = runner.base_env() | {
            "GH_TOKEN": "t",
            "PR": "7",
            "REPORT": str(report),
            "MARKER": PLAN_MARKER,
            "GITHUB_REPOSITORY": "acme/polaris-config",
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert runner.gh["calls"] == [], "gh was not asked to post anything"
        assert LEFT_AS_IT_WAS in summary.read_text()


def test_the_action_installs_the_pinned_version_and_the_workflows_pin_one(tmp_path: Path) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    (install,) = [s for s in action["runs"]["steps"] if s.get("id") == "install"]
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text('#!/bin/sh\necho "$@" >> "$RECORD"\n')
    (fake / "reconciler").write_text("#!/bin/sh\necho reconciler 0.1.0\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    record = tmp_path / "record"

    def installs(**inputs: str) -> str:
        record.write_text("")
        env = {"PATH": f"{fake}:/usr/bin:/bin", "RECORD": str(record), "ACTION_PATH": "/action"}
        env |= {"INSTALL": inputs.get("install", ""), "VERSION": inputs.get("version", "")}
        subprocess.run(["bash", "-e", "-c", install["run"]], env=env, check=True)
        return record.read_text().split()[-1]

    assert installs(version="0.1.0") == "polaris-reconciler==0.1.0"
    assert installs() == "/action"
    assert installs(version="0.1.0", install="git+https://x/y@v0.1.0") == "git+https://x/y@v0.1.0"
    assert any(s.get("uses", "").startswith("actions/cache@") for s in action["runs"]["steps"])

    version = reconciler.__version__
    for workflow in WORKFLOWS:
        text = workflow.read_text()
        uses = text.count("uses: polaris-reconciler/polaris-reconciler@v0")
        assert uses and text.count(f'version: "{version}"') == uses, workflow.name
        assert not re.search(r"[.)]# ", text), f"{workflow.name}: two comment lines run together"
    gitlab = yaml.safe_load(GITLAB.read_text())
    assert gitlab["variables"]["RECONCILER_VERSION"] == version
    (line,) = [x for x in gitlab[".polaris-reconciler"]["before_script"] if "pip install" in x]
    assert "polaris-reconciler==$RECONCILER_VERSION" in line


def test_a_change_to_reconciler_yaml_runs_the_plan_and_the_apply() -> None:
    for name in ("polaris-plan.yml", "polaris-apply.yml", "polaris-matrix.yml"):
        triggers = yaml.safe_load((GITHUB / name).read_text())[True]  # `on`, as YAML 1.1 reads it
        for event in ("pull_request", "push"):
            if event in triggers:
                assert "reconciler.yaml" in triggers[event]["paths"], (name, event)


def test_the_gitlab_template_runs_the_same_sequence(
    runner: Runner, workspace: Path, client: PolarisClient, tmp_path: Path
) -> None:
    variables = {
        "POLARIS_URL": runner.vars["POLARIS_URL"],
        "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
        "POLARIS_API_KEY": DEMO_API_KEY,
        "POLARIS_PLAN_API_KEY": READ_ONLY_KEY,
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


@pytest.mark.parametrize("layout", ["single target", "two targets"])
@pytest.mark.parametrize("failure", ["unset secret variable", "401", "unreachable"])
def test_a_failing_gitlab_plan_never_replaces_the_last_note_with_an_empty_one(
    runner: Runner, workspace: Path, tmp_path: Path, layout: str, failure: str
) -> None:
    repository = workspace.parent
    variables = {
        "POLARIS_URL": runner.vars["POLARIS_URL"],
        "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
        "POLARIS_PLAN_API_KEY": READ_ONLY_KEY,  # no apply key in a merge-request pipeline
        **DEMO_SECRETS,
        "POLARIS_GITLAB_TOKEN": "glpat-fake",
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "12",
        "CI_MERGE_REQUEST_IID": "3",
    }
    if layout == "two targets":
        two_targets(runner)
        variables["POLARIS_TARGET"] = "dev"

    def plan() -> subprocess.CompletedProcess[str]:
        return run_gitlab_job(GITLAB, "polaris-plan", repository, variables, tmp_path)

    good = plan()
    assert good.returncode == 0, good.stdout + good.stderr
    (note,) = gitlab_state(tmp_path)["notes"]
    last_good = note["body"]
    if failure == "unset secret variable":
        conn = workspace / "guide" / "demo-conn.yaml"
        conn.write_text(
            conn.read_text().replace("DEMO_AWS_SECRET_ACCESS_KEY", "DEMO_AWS_NEW_SECRET")
        )
    elif failure == "401":
        variables["POLARIS_PLAN_API_KEY"] = "pok_revoked0Key"
    else:
        variables["POLARIS_URL"] = closed_port_url()
        if layout == "two targets":
            two_targets(runner, variables["POLARIS_URL"])
    failed = plan()
    assert failed.returncode == 1
    (note,) = gitlab_state(tmp_path)["notes"]
    assert note["body"].removeprefix(PLAN_MARKER).strip(), "never just the hidden marker"
    if note["edits"] == 0:
        assert note["body"] == last_good and LEFT_AS_IT_WAS in failed.stdout
    else:
        assert note["body"] != last_good and "error" in note["body"].lower()
    assert READ_ONLY_KEY not in failed.stdout + failed.stderr + note["body"]


def run_hook(repository: Path, changed: list[str]) -> subprocess.CompletedProcess[str]:
    """The hook as pre-commit runs it: entry, args, then the file names if it passes them."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    selected = [name for name in changed if re.search(hook["files"], name)]
    assert selected, "pre-commit runs the hook only when a file it matches changed"
    entry = hook["entry"].split()
    command = [str(BIN / entry[0]), *entry[1:], *hook.get("args", [])]
    if hook.get("pass_filenames", True):
        command += selected
    env = {"PATH": str(BIN), "HOME": str(repository)}
    return subprocess.run(command, cwd=repository, capture_output=True, text=True, env=env)


def test_the_pre_commit_hook_validates_all_manifests(workspace: Path) -> None:
    repository = workspace.parent
    ok = run_hook(repository, ["manifests/guide/demo-conn.yaml"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Valid: 7 resources" in ok.stdout
    (workspace / "bad.yaml").write_text("kind: Connection\n")
    bad = run_hook(repository, ["manifests/bad.yaml"])
    assert bad.returncode == 1


def test_the_pre_commit_hook_checks_every_target_of_reconciler_yaml(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "environments", repository)
    ok = run_hook(repository, ["reconciler.yaml", "manifests/events.yaml"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Valid for target dev" in ok.stdout and "Valid for target prod" in ok.stdout
    # A mistake only one target's vars reveal fails the commit.
    config = repository / "reconciler.yaml"
    config.write_text(re.sub(r"\n\s+table: events\s*$", "\n", config.read_text()))
    bad = run_hook(repository, ["reconciler.yaml"])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "prod" in bad.stdout + bad.stderr


def test_the_pre_commit_hook_checks_a_single_target_repository(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    shutil.copytree(ROOT / "manifests", repository / "manifests")
    (repository / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n  prod:\n"
        "    url: https://acme.us-east-1.aws.api.imply.io\n"
        f"    project: {DEMO_PROJECT_ID}\n    apiKeyEnv: POLARIS_API_KEY\n    paths: [manifests]\n"
    )
    ok = run_hook(repository, ["manifests/guide/demo-conn.yaml"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Valid" in ok.stdout and "7 resources" in ok.stdout


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
