"""reconciler.yaml targets and interpolation with a boundary: only reviewed values reach output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID
from tests.cli import run
from tests.steps import write

ROOT = Path(__file__).resolve().parents[2]
CI_TOKEN = "ci-deploy-token-4f9a1c0b7e"
HEADER = "apiVersion: reconciler/v1\n"


def connection(name: str, extra: str) -> str:
    return (
        f"{HEADER}kind: Connection\nmetadata:\n  name: {name}\nspec:\n  type: s3\n"
        f"  awsEndpoint: s3.us-east-1.amazonaws.com\n{extra}"
    )


def config(url: str, *, paths: str = "[manifests]", extra_target: str = "") -> str:
    return (
        f"{HEADER}targets:\n"
        f"  dev:\n    url: {url}\n    project: {DEMO_PROJECT_ID}\n    apiKeyEnv: DEV_POLARIS_KEY\n"
        f"    paths: {paths}\n    vars:\n      bucket: acme-dev\n      suffix: dev\n"
        f"{extra_target}"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Any) -> Path:
    """A manifests repository with a reconciler.yaml whose dev target is the served emulator."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLARIS_API_KEY")  # the target names its own key variable
    monkeypatch.setenv("DEV_POLARIS_KEY", DEMO_API_KEY)
    monkeypatch.setenv("CI_DEPLOY_TOKEN", CI_TOKEN)
    write(tmp_path, "reconciler.yaml", config(served.url))
    write(
        tmp_path,
        "manifests/conn.yaml",
        connection("events-${var:suffix}", "  bucket: ${var:bucket}\n  prefix: 'a/$${not}/'\n"),
    )
    return tmp_path


def test_a_target_chooses_the_project_key_manifests_and_variables(project: Path) -> None:
    result = run("plan", "--target", "dev", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (change,) = result.json()["changes"]
    assert (change["name"], change["action"]) == ("events-dev", "create")
    after = {entry["path"]: entry.get("after") for entry in change["diff"]}
    assert after["bucket"] == "acme-dev"  # variables are configuration: shown in plans
    assert after["prefix"] == "a/${not}/"
    assert "Target dev: project" in result.stderr and "bucket=acme-dev" in result.stderr


def test_var_overrides_a_declared_variable_for_one_run(project: Path) -> None:
    result = run("plan", "--target", "dev", "--var", "bucket=acme-other", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (change,) = result.json()["changes"]
    assert {e["path"]: e.get("after") for e in change["diff"]}["bucket"] == "acme-other"
    unknown = run("plan", "--target", "dev", "--var", "bukket=x")
    assert unknown.exit_code == 1
    assert "--var bukket: target dev declares no such variable" in unknown.stderr


def test_the_only_target_is_used_without_target_and_its_project_wins_over_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLARIS_PROJECT_ID", "elsewhere")  # a differing POLARIS_URL is an error
    result = run("apply", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "events-dev" in result.stdout


def test_several_targets_need_target_and_url_cannot_bypass_the_file(
    project: Path, served: Any
) -> None:
    second = f"  prod:\n    url: {served.url}\n    project: other\n    apiKeyEnv: PROD_KEY\n"
    write(project, "reconciler.yaml", config(served.url, extra_target=second))
    result = run("plan")
    assert result.exit_code == 1
    assert "declares targets dev, prod: choose one with --target" in result.stderr
    result = run("plan", "--target", "dev", "--url", "https://elsewhere.example.com")
    assert result.exit_code == 1
    assert "--url and --project cannot be combined with target dev" in result.stderr
    result = run("plan", "--target", "staging")
    assert "no target 'staging' in reconciler.yaml; it declares: dev, prod" in result.stderr


def test_validate_checks_every_target_with_its_own_variables(project: Path, served: Any) -> None:
    second = (
        f"  prod:\n    url: {served.url}\n    project: p\n    apiKeyEnv: PROD_KEY\n"
        "    vars: {bucket: acme-prod}\n"
    )
    write(project, "reconciler.yaml", config(served.url, extra_target=second))
    result = run("validate")
    assert result.exit_code == 1
    assert (
        f"{Path('manifests') / 'conn.yaml'}:4:9: error: variable suffix is not declared; declare "
        "it in the vars of target prod in reconciler.yaml or pass --var suffix=VALUE"
    ) in result.stdout
    assert run("validate", "--target", "dev").exit_code == 0


def test_env_references_outside_secrets_are_refused_and_never_expanded(project: Path) -> None:
    write(
        project,
        "manifests/leak.yaml",
        connection("leak", "  bucket: b\n  description: '${env:CI_DEPLOY_TOKEN}'\n")
        + "---\n"
        + connection("leak2", "  bucket: b\n").replace("type: s3", "type: ${env:CI_DEPLOY_TOKEN}"),
    )
    for args in (["validate", "--target", "dev"], ["plan", "--target", "dev"]):
        result = run(*args)
        assert result.exit_code == 1
        output = result.stdout + result.stderr
        assert CI_TOKEN not in output
        assert "${env:CI_DEPLOY_TOKEN} is only allowed as a value in spec.secrets" in output
        # The schema error quotes the reference as written, never a value.
        assert (
            "spec.type must be one of: s3, azure, kafka, confluent, confluent_schema_registry, "
            'kinesis, push_streaming (got "${env:CI_DEPLOY_TOKEN}")'
        ) in output


@pytest.mark.parametrize("variable", ["POLARIS_API_KEY", "DEV_POLARIS_KEY"])
def test_an_api_key_can_never_be_interpolated_even_into_a_secret(
    project: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("POLARIS_API_KEY", DEMO_API_KEY)
    secrets = (
        "  bucket: b\n  secrets:\n    type: access_key\n"
        f"    accessKeyId: ${{env:{variable}}}\n    accessKeySecret: ${{env:CI_DEPLOY_TOKEN}}\n"
    )
    write(project, "manifests/conn.yaml", connection("c1", secrets))
    result = run("plan", "--target", "dev")
    assert result.exit_code == 1
    assert f"${{env:{variable}}} holds the Polaris API key" in result.stderr
    assert DEMO_API_KEY not in result.stdout + result.stderr


def test_config_mistakes_are_located_with_a_fix(project: Path) -> None:
    write(
        project,
        "reconciler.yaml",
        f"{HEADER}targets:\n  dev:\n    url: ftp://x\n    project: p\n    apiKey: literal\n",
    )
    result = run("plan", "--target", "dev")
    assert result.exit_code == 1
    assert "reconciler.yaml:3:3: error: missing required field 'targets.dev.apiKeyEnv'" in (
        result.stderr
    )
    assert "reconciler.yaml:6:5: error: unknown field 'targets.dev.apiKey'" in result.stderr
    assert "reconciler.yaml:4:10: error: targets.dev.url does not match the API base URL" in (
        result.stderr
    )
    assert "literal" not in result.stderr.replace("unknown field", "")
    assert run("validate").exit_code == 1


def test_config_file_paths_are_relative_to_the_file(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    result = run("plan", "--config", str(project / "reconciler.yaml"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["changes"][0]["name"] == "events-dev"
    assert run("plan", "--target", "dev").exit_code == 1  # no reconciler.yaml here


def test_the_dev_prod_example_validates_for_every_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "examples" / "environments")
    result = run("validate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Valid for target dev: 2 resources" in result.stdout
    assert "Valid for target prod: 2 resources" in result.stdout


def test_without_a_config_the_polaris_variables_and_manifests_still_work(
    served: Any, workspace: Path
) -> None:
    assert not (workspace.parent / "reconciler.yaml").exists()
    result = run("plan", "--format", "json")  # exits 1: security-audit is external and missing
    assert "Reading live state of project" in result.stderr
    assert {c["name"] for c in result.json()["changes"]} >= {"demo-conn", "weblogs-s3"}


def test_malformed_var_and_target_without_a_config_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--var", "no-equals-sign")
    assert result.exit_code == 1
    assert "--var 'no-equals-sign' is not NAME=VALUE" in result.stderr
    result = run("plan", "--target", "dev")
    assert result.exit_code == 1
    assert "--target dev: there is no reconciler.yaml in the current directory" in result.stderr


def test_var_fills_variables_without_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "manifests/c.yaml", connection("c1", "  bucket: ${var:bucket}\n"))
    assert run("validate").exit_code == 1
    result = run("validate", "--var", "bucket=from-the-command-line")
    assert result.exit_code == 0, result.stdout


def test_an_api_key_outside_secrets_is_named_as_the_key_never_suggested_as_a_var(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLARIS_API_KEY", DEMO_API_KEY)
    write(
        project,
        "manifests/conn.yaml",
        connection("c1", "  bucket: b\n  description: ${env:POLARIS_API_KEY}\n"),
    )
    result = run("validate", "manifests")
    assert result.exit_code == 1
    output = result.stdout + result.stderr
    assert "${env:POLARIS_API_KEY} holds the Polaris API key" in output
    assert "${var:POLARIS_API_KEY}" not in output
    assert DEMO_API_KEY not in output


OUTSIDE_VALUE = "value-from-a-file-outside-the-repository"


@pytest.fixture
def outside(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory beside the repository, holding a manifest whose errors would quote a value."""
    directory = tmp_path_factory.mktemp("outside")
    write(
        directory,
        "secret.yaml",
        connection("stolen", "  bucket: b\n").replace("type: s3", f"type: {OUTSIDE_VALUE}"),
    )
    write(
        directory,
        "history/old.yaml",
        connection("old", f"  bucket: b\n  prefix: {{{OUTSIDE_VALUE}: 1}}\n"),
    )
    return directory


def shows_nothing_from_outside(result: Any) -> None:
    assert result.exit_code == 1, result.stdout + result.stderr
    assert OUTSIDE_VALUE not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("paths", "[../{outside}]", "../{outside}"),
        ("paths", "[manifests/../../{outside}]", "manifests/../../{outside}"),
        ("paths", "['{absolute}']", "{absolute}"),
        ("paths", "[manifests, '{absolute}/secret.yaml']", "{absolute}/secret.yaml"),
        ("history", "[../{outside}/history]", "../{outside}/history"),
        ("history", "['{absolute}/history']", "{absolute}/history"),
    ],
)
def test_reconciler_yaml_paths_that_leave_its_directory_are_errors_naming_the_path(
    project: Path, outside: Path, field: str, value: str, named: str
) -> None:
    names = {"outside": outside.name, "absolute": str(outside)}
    paths = value.format(**names) if field == "paths" else "[manifests]"
    extra = f"    history: {value.format(**names)}\n" if field == "history" else ""
    write(project, "reconciler.yaml", config("URL", paths=paths) + extra)
    (project / "reconciler.yaml").write_text(
        (project / "reconciler.yaml").read_text().replace("URL", "http://127.0.0.1:9"),
        encoding="utf-8",
    )
    for command in (["validate"], ["plan"], ["drift"], ["import"]):
        result = run(*command)
        shows_nothing_from_outside(result)
        assert f"targets.dev.{field}" in result.stderr + result.stdout
        assert named.format(**names) in result.stderr + result.stdout
        assert "outside the directory of reconciler.yaml" in result.stderr + result.stdout


def test_a_symbolic_link_in_a_manifest_path_may_not_lead_outside_the_repository(
    project: Path, outside: Path, served: Any
) -> None:
    (project / "manifests" / "linked.yaml").symlink_to(outside / "secret.yaml")
    (project / "manifests" / "linked-dir").symlink_to(outside / "history")
    (project / "elsewhere").symlink_to(outside)
    write(project, "reconciler.yaml", config("http://127.0.0.1:9", paths="[manifests, elsewhere]"))
    result = run("validate")
    shows_nothing_from_outside(result)
    output = result.stdout + result.stderr
    assert "targets.dev.paths[1]: elsewhere leads outside the directory of reconciler.yaml" in (
        output
    )
    write(project, "reconciler.yaml", config(served.url))
    for command in (["validate"], ["plan"]):
        result = run(*command)
        shows_nothing_from_outside(result)
        for name in ("manifests/linked.yaml", "manifests/linked-dir"):
            assert (
                f"{Path(name)}:1:1: error: a symbolic link that leads outside the directory of "
                "reconciler.yaml; it is not read"
            ) in result.stdout + result.stderr


def test_paths_that_stay_in_the_repository_however_spelt_are_read(project: Path) -> None:
    (project / "alias").symlink_to(project / "manifests")
    (project / "manifests" / "sub").mkdir()
    (project / "manifests" / "sub" / "inner").symlink_to(project / "manifests" / "sub")
    for paths in ("[./manifests]", "['manifests/../manifests']", "[alias]", "[alias/sub/inner]"):
        write(project, "reconciler.yaml", config("http://127.0.0.1:9", paths=paths))
        result = run("validate")
        assert "outside the directory" not in result.stdout + result.stderr, paths
    write(project, "reconciler.yaml", config("http://127.0.0.1:9", paths="[alias]"))
    (project / "manifests" / "sub" / "inner").unlink()
    assert run("validate").exit_code == 0


def test_a_reconciler_yaml_found_in_the_current_directory_may_not_be_a_link_to_elsewhere(
    project: Path, outside: Path
) -> None:
    write(outside, "reconciler.yaml", f"{HEADER}targets: {{{OUTSIDE_VALUE}: 1}}\n")
    (project / "reconciler.yaml").unlink()
    (project / "reconciler.yaml").symlink_to(outside / "reconciler.yaml")
    result = run("validate")
    shows_nothing_from_outside(result)
    assert "reconciler.yaml" in result.stderr and "--config" in result.stderr


def test_the_default_manifests_path_may_not_be_a_link_to_elsewhere(
    project: Path, outside: Path
) -> None:
    write(
        project,
        "reconciler.yaml",
        config("http://127.0.0.1:9").replace("    paths: [manifests]\n", ""),
    )
    assert run("validate").exit_code == 0
    (project / "manifests" / "conn.yaml").unlink()
    (project / "manifests").rmdir()
    (project / "manifests").symlink_to(outside)
    result = run("validate")
    shows_nothing_from_outside(result)
    assert "targets.dev.paths[0]: manifests leads outside the directory of reconciler.yaml" in (
        result.stderr
    )
