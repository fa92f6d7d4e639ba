"""`reconciler validate` as a user meets it: examples, the guide's bodies, YAML rules, env and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import kinds
from reconciler.client import request_body
from reconciler.kinds.base import SecretsField
from reconciler.model import Kind, ManifestErrors
from reconciler.validate import load_manifests
from tests.cli import run
from tests.guide import ACCESS_KEYS as DEMO_ENV
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB
from tests.steps import write

ROOT = Path(__file__).resolve().parents[2]


def test_every_example_in_manifests_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    result = run("validate", str(ROOT / "manifests"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Valid:" in result.stdout


def test_validate_passes_on_a_fresh_clone_without_secrets_and_warns_about_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in DEMO_ENV:
        monkeypatch.delenv(name, raising=False)
    result = run("validate", str(ROOT / "manifests"))
    assert result.exit_code == 0
    assert "warning: environment variable DEMO_AWS_SECRET_ACCESS_KEY is not set" in result.stderr
    assert "demo-conn.yaml:17:" in result.stderr


def test_every_example_file_starts_with_a_schema_line() -> None:
    examples = [*(ROOT / "manifests").rglob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")]
    assert len(examples) > 6
    for path in sorted(examples):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("=", 1)[1]).resolve()
        assert target.is_file(), f"{path} points at missing schema {target}"


def test_the_guide_example_round_trips_to_the_exact_request_bodies_the_guide_shows() -> None:
    manifests = load_manifests([str(ROOT / "manifests" / "guide")], DEMO_ENV)
    connection = manifests.of_kind(Kind.CONNECTION)[0]
    job = manifests.of_kind(Kind.INGESTION_JOB)[0]
    # Secret values stay wrapped until the client builds the request body.
    assert request_body({"name": connection.name, **connection.spec}) == GUIDE_CONNECTION
    assert json.dumps(dict(job.spec), sort_keys=True) == json.dumps(GUIDE_JOB, sort_keys=True)


def test_expanded_secrets_are_known_so_every_output_can_hide_them() -> None:
    manifests = load_manifests([str(ROOT / "manifests" / "guide")], DEMO_ENV)
    assert manifests.secrets == {
        DEMO_ENV["DEMO_AWS_SECRET_ACCESS_KEY"],
        DEMO_ENV["DEMO_AWS_ACCESS_KEY_ID"],
    }


def test_unset_variable_is_an_error_naming_file_and_line_outside_validate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c1}\nspec:\n"
        "  type: s3\n  bucket: b\n  awsEndpoint: s3.us-east-1.amazonaws.com\n"
        "  secrets:\n    type: access_key\n    accessKeyId: ${env:KEY_ID_FOR_TEST}\n"
        "    accessKeySecret: ${env:SECRET_FOR_TEST}\n",
    )
    from reconciler.model import ManifestErrors

    with pytest.raises(ManifestErrors) as failed:
        load_manifests([str(path)], {"SECRET_FOR_TEST": "s3cr3t"})
    (error,) = failed.value.errors
    assert str(error).startswith(
        f"{path}:10:18: error: environment variable KEY_ID_FOR_TEST is not set"
    )


def test_an_env_reference_is_a_secret_only_where_the_documents_kind_keeps_secrets(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t1}\nspec:\n"
        "  type: detail\n  secrets:\n    key: ${env:SECRET_FOR_TEST}\n",
    )
    from reconciler.model import ManifestErrors

    with pytest.raises(ManifestErrors) as failed:
        load_manifests([str(path)], {"SECRET_FOR_TEST": "s3cr3t"})
    messages = [str(error) for error in failed.value.errors]
    assert any(
        f"{path}:7:10: error: ${{env:SECRET_FOR_TEST}} is only allowed as a value in spec.secrets"
        in message
        for message in messages
    ), messages
    assert kinds.of(Kind.CONNECTION).secrets_at == SecretsField("secrets", frozenset({"type"}))
    assert [kind.kind for kind in kinds.ordered() if kind.secrets_at] == [Kind.CONNECTION]


def test_yaml_1_1_surprises_stay_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata:\n  name: c1\n"
        "  annotations: {a: on, b: no, c: 2024-01-01, d: '1:20', e: 1:20}\n"
        "spec: {type: s3, bucket: b, awsEndpoint: s3.us-east-1.amazonaws.com, description: yes}\n",
    )
    (resource,) = load_manifests([str(path)], {}).resources
    assert resource.annotations == {
        "a": "on",
        "b": "no",
        "c": "2024-01-01",
        "d": "1:20",
        "e": "1:20",
    }
    assert resource.spec["description"] == "yes"


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c1}\nspec: {type: s3}\n",
    )
    write(
        tmp_path,
        "b.yaml",
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t1}\nspec: {type: nope}\n",
    )
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 3
    assert errors[0].startswith(f"{tmp_path / 'a.yaml'}:4:")
    assert errors[-1].startswith(f"{tmp_path / 'b.yaml'}:4:")
    assert errors[0].endswith("(Connection/c1)")


def test_json_format_prints_the_same_errors_as_a_list_beside_a_format_version(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c1}\nspec: {type: s3}\n",
    )
    result = run("validate", "--format", "json", str(path))
    assert result.exit_code == 1
    document = result.json()
    assert (document["formatVersion"], document["valid"]) == ("1", False)
    errors = document["problems"]
    assert isinstance(errors, list) and len(errors) == 2
    first = errors[0]
    assert (first["file"], first["line"], first["col"]) == (str(path), 4, 1)
    assert (first["severity"], first["resource"]) == ("error", "Connection/c1")
    assert first["message"].startswith("missing required field 'spec.awsEndpoint'")


def test_a_missing_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "no such file or directory" in result.stdout


def test_usage_errors_exit_1_not_2() -> None:
    result = run("validate", "--format", "yaml")
    assert result.exit_code == 1
    assert "Invalid value for '--format'" in result.stderr


def test_an_unexpected_internal_error_is_one_line_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciler.manager

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    # What the CLI's Loader calls.
    monkeypatch.setattr(reconciler.manager, "load_manifests", explode)
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "internal error: RuntimeError: boom (this is a bug in the reconciler; run with --debug for details)"
    ]


def test_a_literal_secret_is_never_echoed_in_the_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c1}\nspec:\n"
        "  type: s3\n  bucket: b\n  awsEndpoint: e\n"
        "  secrets: {type: access_key, accessKeyId: AKIALITERAL, accessKeySecret: TOPSECRETVALUE}\n",
    )
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "TOPSECRETVALUE" not in result.stdout + result.stderr
    assert "AKIALITERAL" not in result.stdout + result.stderr


def test_two_jobs_with_the_same_spec_are_refused_because_they_would_be_one_job(
    tmp_path: Path,
) -> None:
    job = (ROOT / "manifests" / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    conn = (ROOT / "manifests" / "guide" / "demo-conn.yaml").read_text(encoding="utf-8")
    write(tmp_path, "conn.yaml", conn)
    write(
        tmp_path,
        "jobs.yaml",
        job + "---\n" + job.replace("name: koalas-demo-file", "name: koalas-copy"),
    )
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert (
        "IngestionJob/koalas-copy has the same spec as IngestionJob/koalas-demo-file"
        in result.stdout
    )


JOB_SPELLINGS = {
    "the same": "uris: [s3://b/x.json, s3://b/y.json]",
    "uris in another order": "uris: [s3://b/y.json, s3://b/x.json]",
    "other objects": "uris: [s3://b/z.json]",
    "a prefix": "prefixes: [x/]",
    "a pattern": "pattern: 'x/*.json'",
}


def jobs_file(tmp_path: Path, spellings: dict[str, str], mapping: str = '"n"') -> Path:
    """A connection, a table and one job per spelling of its objects, all else alike."""
    docs = [
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: c}\n"
        "spec: {type: s3, bucket: b, awsEndpoint: s3.us-east-1.amazonaws.com}\n",
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t}\nspec:\n  type: detail\n"
        "  schema: [{name: n, dataType: long}]\n",
    ]
    for number, objects in enumerate(spellings.values()):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: j{number}}}\n"
            "spec:\n  type: batch\n  target: {type: table, tableName: t}\n  source:\n"
            f"    type: s3\n    connectionName: c\n    {objects}\n"
            "    formatSettings: {format: nd-json}\n"
            "    inputSchema: [{name: ts, dataType: string}, {name: n, dataType: long}]\n"
            "  mappings:\n    - {columnName: __time, expression: 'TIME_PARSE(\"ts\")'}\n"
            f"    - {{columnName: n, expression: '{mapping}'}}\n"
        )
    return write(tmp_path, "jobs.yaml", "---\n".join(docs))


def same_spec_errors(path: Path, *, keep_compared: bool) -> list[str]:
    try:
        load_manifests([str(path)], {}, keep_compared=keep_compared)
    except ManifestErrors as failed:
        return [str(error) for error in failed.errors]
    return []


def test_jobs_whose_objects_are_spelled_in_another_order_are_one_spec_to_validate_and_plan(
    tmp_path: Path,
) -> None:
    path = jobs_file(tmp_path, JOB_SPELLINGS)

    offline = same_spec_errors(path, keep_compared=False)

    assert offline == same_spec_errors(path, keep_compared=True)
    assert len(offline) == 1
    assert "IngestionJob/j1 has the same spec as IngestionJob/j0" in offline[0]


def test_jobs_alike_in_table_connection_and_objects_but_not_in_mappings_are_two_specs(
    tmp_path: Path,
) -> None:
    alike = {"first": JOB_SPELLINGS["the same"], "second": JOB_SPELLINGS["uris in another order"]}
    path = jobs_file(tmp_path, alike)
    text = path.read_text()
    last = text.rindex("expression: '\"n\"'")
    path.write_text(text[:last] + "expression: 'CAST(\"n\" AS BIGINT)'" + text[last + 17 :])

    assert same_spec_errors(path, keep_compared=False) == []
    assert same_spec_errors(path, keep_compared=True) == []
