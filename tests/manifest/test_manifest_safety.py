"""Manifests written by whoever opens a pull request: nothing they write may leak, misroute or hide."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.client import request_body
from reconciler.emulator import Emulator
from reconciler.model import LOCK_TABLE, Kind, ManifestErrors, Secret
from reconciler.validate import load_manifests
from tests.cli import run
from tests.fixtures import DEMO_SECRETS
from tests.guide import ACCESS_KEYS
from tests.steps import write

ROOT = Path(__file__).resolve().parents[2]
HEADER = "apiVersion: reconciler/v1\n"
ENDPOINT = "awsEndpoint: s3.us-east-1.amazonaws.com"


def connection(name: str = "c1", extra: str = "") -> str:
    return f"{HEADER}kind: Connection\nmetadata: {{name: {name}}}\nspec: {{type: s3, bucket: b, {ENDPOINT}{extra}}}\n"


def secret_connection(key_id: str, secret: str) -> str:
    return (
        f"{HEADER}kind: Connection\nmetadata: {{name: c1}}\nspec:\n  type: s3\n  bucket: b\n"
        f"  {ENDPOINT}\n  secrets:\n    type: access_key\n    accessKeyId: {key_id}\n"
        f"    accessKeySecret: {secret}\n"
    )


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ManifestErrors) as failed:
        load_manifests([str(path)], env or {})
    return [str(error) for error in failed.value.errors]


# A secret is a type -------------------------------------------------------------------------------


def test_a_secret_shows_as_sensitive_in_every_form_but_the_request_body() -> None:
    secret = Secret("hunter2-the-real-value")
    forms = [str(secret), repr(secret), f"{secret}", f"{secret!r}", json.dumps({"k": secret})]
    forms.append("| `" + secret + "` |")  # a Markdown table cell
    for form in forms:
        assert "hunter2" not in form
        assert "(sensitive)" in form
    assert request_body({"secrets": {"accessKeySecret": secret}, "n": [secret]}) == {
        "secrets": {"accessKeySecret": "hunter2-the-real-value"},
        "n": ["hunter2-the-real-value"],
    }


def test_secrets_are_read_as_secret_values_and_known_for_redaction() -> None:
    manifests = load_manifests([str(ROOT / "manifests" / "guide")], ACCESS_KEYS)
    (conn,) = manifests.of_kind(Kind.CONNECTION)
    secrets = conn.spec["secrets"]
    assert isinstance(secrets["accessKeySecret"], Secret)
    assert secrets["accessKeySecret"].reveal() == ACCESS_KEYS["DEMO_AWS_SECRET_ACCESS_KEY"]
    assert secrets["type"] == "access_key"
    assert ACCESS_KEYS["DEMO_AWS_SECRET_ACCESS_KEY"] not in repr(conn)
    assert manifests.secrets == set(ACCESS_KEYS.values())


def test_apply_sends_the_real_secret_values_to_polaris(
    emulator: Emulator, served: object, workspace: Path
) -> None:
    result = run("apply", "--auto-approve", str(workspace / "guide"))
    assert result.exit_code == 0, result.stdout + result.stderr
    stored = emulator.store.connections["demo-conn"]["secrets"]
    assert stored["accessKeySecret"] == DEMO_SECRETS["DEMO_AWS_SECRET_ACCESS_KEY"]
    assert stored["accessKeyId"] == DEMO_SECRETS["DEMO_AWS_ACCESS_KEY_ID"]


# Names that cannot hurt --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "why"),
    [
        ("Connection", "'.'", "'.' and '..' name the collection"),
        ("Connection", "'..'", "'.' and '..' name the collection"),
        ("Table", "'..'", "'.' and '..' name the collection"),
        ("Table", "'a/b'", "contains '/'"),
        ("Table", "'a\\\\b'", "contains '\\'"),
        ("Table", '"a\\rNo changes."', "control character"),
        ("IngestionJob", '"x\\u001b[2J"', "control character"),
        ("IngestionJob", "' padded'", "begins or ends with whitespace"),
        ("Table", "'padded '", "begins or ends with whitespace"),
    ],
)
def test_a_name_the_api_would_route_wrongly_is_refused_with_the_reason(
    tmp_path: Path, kind: str, name: str, why: str
) -> None:
    path = write(
        tmp_path, "r.yaml", f"{HEADER}kind: {kind}\nmetadata:\n  name: {name}\nspec: {{}}\n"
    )
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:4:") and why in e for e in errors), errors


def test_the_lock_table_name_is_reserved(tmp_path: Path) -> None:
    path = write(
        tmp_path, "t.yaml", f"{HEADER}kind: Table\nmetadata:\n  name: {LOCK_TABLE}\nspec: {{}}\n"
    )
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:4:") and "reserved" in e for e in errors), errors


def test_a_name_from_a_variable_is_checked_after_expansion(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", connection("'${var:NAME}'"))
    with pytest.raises(ManifestErrors) as failed:
        load_manifests([str(path)], {}, variables={"NAME": ".."})
    assert any("'.' and '..'" in str(e) for e in failed.value.errors)
    (ok,) = load_manifests([str(path)], {}, variables={"NAME": "conn-dev"}).resources
    assert ok.name == "conn-dev"


# Smaller surprises -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tagged",
    [
        "spec: !!python/object:os.system {type: s3, bucket: b, awsEndpoint: e}",
        "spec: !include other.yaml",
        "spec: {type: s3, bucket: b, awsEndpoint: e, prefix: !!str x}",
        "metadata: !!map {name: c1}",
    ],
)
def test_yaml_tags_are_refused_wherever_they_appear(tmp_path: Path, tagged: str) -> None:
    text = f"{HEADER}kind: Connection\nmetadata: {{name: c1}}\n{tagged}\n"
    if tagged.startswith("metadata"):
        text = (
            f"{HEADER}kind: Connection\n{tagged}\nspec: {{type: s3, bucket: b, awsEndpoint: e}}\n"
        )
    path = write(tmp_path, "c.yaml", text)
    errors = errors_of(path)
    assert any("YAML tag" in e and "not allowed" in e for e in errors), errors


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400"])
def test_numbers_json_cannot_carry_are_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "c.yaml", connection(extra=f", description: {value}"))
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:4:") and "finite number" in e for e in errors), errors


def test_a_negative_max_parse_exceptions_is_refused() -> None:
    job = (ROOT / "manifests" / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    job = job.replace("spec:\n", "spec:\n  maxParseExceptions: -5\n", 1)
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(ROOT / "manifests" / "guide" / "demo-conn.yaml", directory)
        path = write(Path(directory), "job.yaml", job)
        errors = errors_of(Path(directory), ACCESS_KEYS)
    assert any("maxParseExceptions must be at least 0 (got -5)" in e for e in errors), errors
    assert any(e.startswith(f"{path}:") for e in errors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${BUCKET}", "'${BUCKET}' is not a reference"),
        ("${ENV:X}", "'${ENV:X}' is not a reference"),
        ("a-${env:X", "'${' without a closing '}'"),
    ],
)
def test_unknown_interpolation_forms_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "c.yaml", connection(extra=f", description: '{text}'"))
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:4:") and message in e for e in errors), errors


def test_a_doubled_dollar_is_a_literal_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", connection(extra=", description: 'cost $${env:X} and $$ $5'"))
    (resource,) = load_manifests([str(path)], {}).resources
    assert resource.spec["description"] == "cost ${env:X} and $$ $5"


def test_an_empty_secret_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", secret_connection("${env:KEY_ID}", "${env:SECRET}"))
    errors = errors_of(path, {"KEY_ID": "AKIA0000", "SECRET": ""})
    assert any(e.startswith(f"{path}:11:") and "SECRET is empty" in e for e in errors), errors


def test_a_secret_that_is_not_valid_utf8_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", secret_connection("${env:KEY_ID}", "${env:SECRET}"))
    broken = os.fsdecode(b"abc\xff\xfedef")  # what os.environ holds for invalid UTF-8
    errors = errors_of(path, {"KEY_ID": "AKIA0000", "SECRET": broken})
    assert any("SECRET is not valid UTF-8" in e for e in errors), errors
    assert not any("abc" in e for e in errors)


def test_a_quote_inside_a_sql_string_literal_is_not_a_column(tmp_path: Path) -> None:
    job = (ROOT / "manifests" / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    assert "expression: CONCAT" not in job
    job += "    - columnName: quoted\n      expression: CONCAT(\"city\", 'say \"hi\" it''s')\n"
    write(tmp_path, "job.yaml", job)
    shutil.copy(ROOT / "manifests" / "guide" / "demo-conn.yaml", tmp_path)
    resources = load_manifests([str(tmp_path)], ACCESS_KEYS).resources
    assert len(resources) == 2
    bad = job.replace('CONCAT("city"', 'CONCAT("citty"')
    write(tmp_path, "job.yaml", bad)
    errors = errors_of(tmp_path, ACCESS_KEYS)
    assert any('refers to "citty"' in e for e in errors), errors
    assert not any('"hi"' in e for e in errors)


# Files are never skipped in silence --------------------------------------------------------------


def test_a_dangling_symlink_under_a_manifest_path_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", connection())
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'gone.yaml'}:1:1: error: broken symbolic link" in result.stdout


def test_a_symlink_loop_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", connection())
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path)
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'a.yaml'}:1:1: error: symbolic link loop" in result.stdout
    assert f"{tmp_path / 'sub' / 'back'}:1:1: error: directory already read" in result.stdout


def test_a_fifo_is_an_error_and_is_never_opened(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", connection())
    os.mkfifo(tmp_path / "pipe.yaml")
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'pipe.yaml'}:1:1: error: not a regular file" in result.stdout
    explicit = run("validate", str(tmp_path / "pipe.yaml"))
    assert "not a regular file" in explicit.stdout


def test_an_upper_case_suffix_that_looks_like_a_manifest_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", connection())
    write(tmp_path, "more/Other.YAML", connection("c2"))
    write(tmp_path, "more/third.Yml", connection("c3"))
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert (
        f"{tmp_path / 'more' / 'Other.YAML'}:1:1: error: rename it to Other.yaml" in result.stdout
    )
    assert f"{tmp_path / 'more' / 'third.Yml'}:1:1: error: rename it to third.yml" in result.stdout


@pytest.fixture
def as_nobody() -> Iterator[Path]:
    """A world-readable scratch directory, and file permissions enforced even for root."""
    directory = Path(tempfile.mkdtemp())
    directory.chmod(0o755)
    try:
        if os.geteuid() == 0:
            os.chown(directory, 65534, 65534)
            os.setegid(65534)
            os.seteuid(65534)  # root ignores permissions; nobody does not
        yield directory
    finally:
        if os.getuid() == 0:
            os.seteuid(0)
            os.setegid(0)
        for path in directory.rglob("*"):
            path.chmod(0o755)
        shutil.rmtree(directory)


def test_unreadable_directories_and_files_are_errors(as_nobody: Path) -> None:
    write(as_nobody, "ok.yaml", connection())
    locked = as_nobody / "locked"
    write(locked, "hidden.yaml", connection("c2"))
    unreadable = write(as_nobody, "secret.yaml", connection("c3"))
    locked.chmod(0o000)
    unreadable.chmod(0o000)
    result = run("validate", str(as_nobody))
    assert result.exit_code == 1
    assert f"{locked}:1:1: error: cannot list directory: permission denied" in result.stdout
    assert f"{unreadable}:1:1: error: cannot read file: permission denied" in result.stdout.lower()


def test_rotating_secrets_sends_the_new_values(
    emulator: Emulator, served: object, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("apply", "--auto-approve", str(workspace / "guide")).exit_code == 0
    monkeypatch.setenv("DEMO_AWS_SECRET_ACCESS_KEY", "rotated-secret-value-0001")
    result = run("apply", "--auto-approve", "--rotate-secrets", str(workspace / "guide"))
    assert result.exit_code == 0, result.stdout + result.stderr
    stored = emulator.store.connections["demo-conn"]["secrets"]
    assert stored["accessKeySecret"] == "rotated-secret-value-0001"
    assert "rotated-secret-value-0001" not in result.stdout + result.stderr


def test_a_job_cannot_send_a_name_that_routes_wrongly_and_errors_never_echo_a_forged_name(
    tmp_path: Path,
) -> None:
    job = (ROOT / "manifests" / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    assert "tableName: Koalas" in job
    write(tmp_path, "job.yaml", job.replace("tableName: Koalas", "tableName: '..'"))
    shutil.copy(ROOT / "manifests" / "guide" / "demo-conn.yaml", tmp_path)
    errors = errors_of(tmp_path, ACCESS_KEYS)
    assert any("spec.target.tableName '..' cannot be used" in e for e in errors), errors
    forged = write(
        tmp_path / "more",
        "t.yaml",
        f'{HEADER}kind: Table\nmetadata:\n  name: "t\\rok"\nspec: {{type: s3}}\n',
    )
    result = run("validate", str(forged))
    assert result.exit_code == 1
    assert "\r" not in result.stdout + result.stderr


def test_a_symlink_in_the_repository_that_leads_outside_it_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: object
) -> None:
    repository, outside = tmp_path / "repository", tmp_path / "outside"
    hidden = "a-value-of-a-file-outside-the-repository"
    write(outside, "secret.yaml", connection("stolen").replace("type: s3", f"type: {hidden}"))
    write(repository, "manifests/ok.yaml", connection())
    (repository / "manifests" / "linked.yaml").symlink_to(outside / "secret.yaml")
    (repository / "manifests" / "linked-dir").symlink_to(outside)
    monkeypatch.chdir(repository)
    for command in (["validate"], ["plan"], ["validate", "manifests/linked.yaml"]):
        result = run(*command)
        assert result.exit_code == 1
        assert hidden not in result.stdout + result.stderr
        assert (
            f"{Path('manifests', 'linked.yaml')}:1:1: error: a symbolic link that leads outside "
            "the current directory; it is not read"
        ) in result.stdout + result.stderr
    # A directory outside, named on the command line, is the operator's choice: it is read.
    named = run("validate", str(outside))
    assert f'(got "{hidden}")' in named.stdout
