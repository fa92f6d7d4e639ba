"""`reconciler import`: adopting a live project writes manifests that validate and plan to nothing."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.importer import dump
from reconciler.manifest import parse
from tests.cli import run
from tests.connections import SECRET_VALUES
from tests.fixtures import seed_project

REFERENCE = re.compile(r"\$\{env:(\w+)\}")


def export_secret_variables(out: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a user does after import: set every variable the manifests name."""
    names = sorted({m for f in out.rglob("*.yaml") for m in REFERENCE.findall(f.read_text())})
    for name in names:
        monkeypatch.setenv(name, f"value-of-{name}")
    return names


def test_import_of_a_seeded_project_validates_and_plans_with_zero_changes(
    served: Any,
    client: PolarisClient,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_project(client, emulator)
    out = tmp_path / "imported"
    started = time.monotonic()
    result = run("import", "--jobs", "--out", str(out))
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    # 50 connections; 10 tables + 8 created by jobs; 201 jobs less 5 failed and 1 repeated spec,
    # all finished: into the history path beside the output directory.
    assert "Wrote 68 manifest(s)" in result.stdout and "0 IngestionJob" in result.stdout
    assert "Wrote 195 finished job(s) to history path" in result.stdout
    assert result.stderr.count("failed; a manifest for it would be planned as resubmit") == 5
    assert "same spec as the newer job" in result.stderr
    history = tmp_path / "history"
    files = [*out.rglob("*.yaml"), *history.rglob("*.yaml")]
    assert len(files) == 263
    assert len(list((history / "jobs" / "events_0").glob("*.yaml"))) > 10, "grouped by table"
    text = "".join(f.read_text() for f in files)
    assert "seed-secret" not in text and "AKIASEED" not in text
    assert not [value for value in SECRET_VALUES if value in text]
    types = {m for m in re.findall(r"^  type: (\w+)$", text, re.MULTILINE)}
    assert types >= {"s3", "azure", "kafka", "confluent", "confluent_schema_registry"}
    assert {"kinesis", "push_streaming"} <= types
    assert "endpointUrl" not in text and "topicNameIsPattern: false" not in text
    kafka = (out / "connections" / "conn-24.yaml").read_text()
    assert "password: ${env:CONN_24_KAFKA_PASSWORD}" in kafka
    assert "CONN_24_KAFKA_PASSWORD" in kafka.split("apiVersion")[0], "comment names it"
    connection = (out / "connections" / "conn-01.yaml").read_text()
    assert "CONN_01_AWS_ACCESS_KEY_ID" in connection.split("apiVersion")[0], "comment names it"
    assert "accessKeyId: ${env:CONN_01_AWS_ACCESS_KEY_ID}" in connection
    assert "submittedOnTimestamp" not in text and "totalRows" not in text, "read-only fields"
    assert "maxParseExceptions" not in text and "partitioningGranularity: day" not in text
    validated = run("validate", str(out), str(history))
    assert validated.exit_code == 0, validated.stdout + validated.stderr
    assert "Valid: 263 resources" in validated.stdout
    export_secret_variables(out, monkeypatch)
    plan = run("plan", "--detailed-exitcode", str(out))
    assert plan.exit_code == 0, plan.stdout
    assert "No changes." in plan.stdout
    drift = run("drift", "--history", str(history), str(out))
    assert drift.exit_code == 0, drift.stdout
    assert elapsed < 60, f"import took {elapsed:.1f} s"


def test_import_never_overwrites_without_force(
    served: Any, client: PolarisClient, tmp_path: Path
) -> None:
    client.create_connection(
        {"type": "s3", "name": "only", "bucket": "b", "awsEndpoint": "e", "awsAssumedRoleArn": "r"}
    )
    out = tmp_path / "m"
    (out / "connections").mkdir(parents=True)
    mine = out / "connections" / "only.yaml"
    mine.write_text("# my own edits\n")
    refused = run("import", "--out", str(out))
    assert refused.exit_code == 1
    assert "already exist" in refused.stderr and "--force" in refused.stderr
    assert mine.read_text() == "# my own edits\n"
    assert run("import", "--out", str(out), "--force").exit_code == 0
    assert "awsAssumedRoleArn: r" in mine.read_text()


def test_hostile_names_stay_inside_out_and_cannot_break_the_yaml(
    served: Any, client: PolarisClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writable = [
        "..x", ".hidden", "line: [x]", "0o17", "yes", "#comment", "- item", "\"quoted'",
        "Ünïcode ✓", "koalas", "Koalas", "${env:POLARIS_API_KEY}", "$${var:x}",
    ]  # fmt: skip
    refused = ["../../escaped", "/etc/passwd", "a\\b", "line\nbreak", "\x1b[31mred", "..", " x"]
    for name in writable + refused:
        client.create_table({"name": name, "type": "detail", "description": f"{name}: {{a: 1}}"})
    client.create_table({"name": "leak", "type": "detail", "description": "${env:POLARIS_API_KEY}"})
    out = tmp_path / "out"
    result = run("import", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    files = [p.resolve() for p in out.rglob("*.yaml")]
    assert len(files) == len(writable) + 1
    assert all(out.resolve() in p.parents for p in files)
    assert not (tmp_path / "escaped.yaml").exists()
    assert len({p.name.lower() for p in files}) == len(files), "no clash on case-insensitive disks"
    assert result.stderr.count("its name cannot be written in a manifest") == len(refused)
    assert DEMO_API_KEY not in "".join(p.read_text() for p in files)
    validated = run("validate", str(out))
    assert validated.exit_code == 0, validated.stdout
    plan = run("plan", "--detailed-exitcode", "--format", "json", str(out))
    assert plan.exit_code == 0, plan.stdout
    assert sorted(c["name"] for c in plan.json()["changes"]) == sorted([*writable, "leak"])
    assert DEMO_API_KEY not in plan.stdout, "a ${...} in a live value is text, never expanded"


@pytest.mark.parametrize(
    "value", ["0o17", "1e3", ".5", "true", "null", "~", "", " padded ", "on", "2024-01-01", "1:20"]
)
def test_dumped_strings_read_back_as_the_same_strings(value: str) -> None:
    text = dump({"spec": {"description": value, value or "empty": [value]}})
    documents, errors = parse(text, "x.yaml")
    assert not errors
    assert documents[0].data == {"spec": {"description": value, value or "empty": [value]}}


def test_a_job_into_a_table_with_the_longest_name_imports_with_a_valid_handle(
    served: Any,
    client: PolarisClient,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = "t" * 255
    client.create_connection(
        {"type": "s3", "name": "c", "bucket": "b", "awsEndpoint": "e", "awsAssumedRoleArn": "r"}
    )
    job = client.create_job(
        {
            "type": "batch", "target": {"type": "table", "tableName": table},
            "createTableIfNotExists": True,
            "source": {
                "type": "s3", "connectionName": "c", "uris": ["s3://b/k.json"],
                "formatSettings": {"format": "nd-json"},
                "inputSchema": [{"name": "ts", "dataType": "string"}],
            },
            "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("ts")'}],
        }
    )  # fmt: skip
    emulator.complete_job(job["id"])
    out = tmp_path / "out"
    result = run("import", "--jobs", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    (manifest,) = (tmp_path / "history" / "jobs").rglob("*.yaml")  # a finished job
    assert f"name: {'t' * 200}-{job['id'][:8]}\n" in manifest.read_text()
    assert run("validate", str(out), str(tmp_path / "history")).exit_code == 0
    assert run("plan", "--detailed-exitcode", str(out)).exit_code == 0


def test_kind_and_name_choose_what_is_imported(
    served: Any, client: PolarisClient, emulator: Emulator, tmp_path: Path
) -> None:
    for name in ("sales-eu", "sales-us", "ops"):
        client.create_connection(
            {
                "type": "s3",
                "name": name,
                "bucket": "b",
                "awsEndpoint": "e",
                "awsAssumedRoleArn": "r",
            }
        )
    client.create_table({"name": "sales", "type": "detail"})
    # A streaming connection: imported too, with its secrets as placeholders.
    client.create_connection(
        {
            "type": "kafka",
            "name": "stream",
            "bootstrapServers": "broker.example.com:9092",
            "topicName": "events",
            "secrets": {"type": "sasl_plain", "username": "reader", "password": "p4ss"},
        }
    )
    out = tmp_path / "out"
    result = run("import", "--out", str(out), "--kind", "Connection", "--name", "sales-*")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.rglob("*.yaml")) == ["sales-eu.yaml", "sales-us.yaml"]
    everything = run("import", "--out", str(tmp_path / "all"))
    assert "skipped" not in everything.stderr
    assert "Wrote 5 manifest(s)" in everything.stdout
    stream = (tmp_path / "all" / "connections" / "stream.yaml").read_text()
    assert "username: ${env:STREAM_KAFKA_USERNAME}" in stream
    assert "p4ss" not in stream


def test_import_with_a_target_reads_its_project_and_writes_into_its_paths(
    served: Any, client: PolarisClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_connection(
        {"type": "s3", "name": "c", "bucket": "b", "awsEndpoint": "e", "awsAssumedRoleArn": "r"}
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLARIS_URL")  # the target's url and project come from the file only
    monkeypatch.setenv("PROD_KEY", DEMO_API_KEY)
    (tmp_path / "reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n  prod:\n"
        f"    url: {served.url}\n    project: {DEMO_PROJECT_ID}\n    apiKeyEnv: PROD_KEY\n"
        "    paths: [prod-manifests]\n"
    )
    result = run("import", "--target", "prod")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "prod-manifests" / "connections" / "c.yaml").is_file()
    assert "reconciler plan --target prod" in result.stdout
    assert run("validate", "--target", "prod").exit_code == 0
    assert run("plan", "--target", "prod", "--detailed-exitcode").exit_code == 0


def test_import_refuses_to_follow_a_link_out_of_the_output_directory(
    served: Any, client: PolarisClient, tmp_path: Path
) -> None:
    client.create_connection(
        {"type": "s3", "name": "c", "bucket": "b", "awsEndpoint": "e", "awsAssumedRoleArn": "r"}
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "connections").symlink_to(elsewhere)
    result = run("import", "--out", str(out))
    assert result.exit_code == 1
    assert "outside" in result.stderr and "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []


def one_finished_and_one_running_job(workspace: Path, emulator: Emulator) -> None:
    """The guide's job, completed, and a second one on other objects, still pending."""
    assert run("apply", "--auto-approve", "manifests/guide").exit_code == 0
    emulator.hold_jobs()
    job = workspace / "guide" / "koalas-job.yaml"
    job.write_text(job.read_text().replace("demo-file.json.gz", "demo-file-2.json.gz"))
    assert run("apply", "--auto-approve", "manifests/guide").exit_code == 0


def job_files(root: Path) -> list[str]:
    return sorted(p.read_text().split("\n")[1] for p in root.rglob("*.yaml") if "jobs" in p.parts)


def test_import_jobs_writes_finished_jobs_to_history_and_running_ones_to_the_active_path(
    served: Any, workspace: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_finished_and_one_running_job(workspace, emulator)
    result = run("import", "--jobs", "--out", "adopted")
    assert result.exit_code == 0, result.stderr
    assert len(job_files(Path("adopted"))) == 1 and "pending" in job_files(Path("adopted"))[0]
    assert len(job_files(Path("history"))) == 1 and "completed" in job_files(Path("history"))[0]
    assert "Wrote 1 finished job(s) to history path history" in result.stdout
    assert "reconciler drift --history history adopted" in result.stdout
    export_secret_variables(Path("adopted"), monkeypatch)
    assert run("plan", "--detailed-exitcode", "adopted").exit_code == 0
    drift = run(
        "drift", "--history", "history", "--fail-on", "missing,changed,failed,unmanaged", "adopted"
    )
    assert drift.exit_code == 0, drift.stdout


def test_import_jobs_writes_history_to_history_out_or_the_targets_history_path(
    served: Any, workspace: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_finished_and_one_running_job(workspace, emulator)
    assert run("import", "--jobs", "--out", "a", "--history-out", "kept").exit_code == 0
    assert len(job_files(Path("kept"))) == 1 and not Path("history").exists()
    monkeypatch.setenv("PROD_KEY", DEMO_API_KEY)
    monkeypatch.delenv("POLARIS_URL")
    Path("reconciler.yaml").write_text(
        "apiVersion: reconciler/v1\ntargets:\n  prod:\n"
        f"    url: {served.url}\n    project: {DEMO_PROJECT_ID}\n    apiKeyEnv: PROD_KEY\n"
        "    paths: [prod]\n    history: [prod-history]\n"
    )
    assert run("import", "--jobs", "--target", "prod").exit_code == 0
    assert len(job_files(Path("prod"))) == 1 and len(job_files(Path("prod-history"))) == 1


def test_a_history_out_inside_the_output_directory_is_refused(
    served: Any, workspace: Path, emulator: Emulator
) -> None:
    result = run("import", "--jobs", "--out", "adopted", "--history-out", "adopted/history")
    assert result.exit_code == 1
    assert "--history-out adopted/history overlaps --out adopted" in result.stderr


def test_import_without_jobs_does_not_mind_where_history_would_go(
    served: Any, workspace: Path
) -> None:
    result = run("import", "--out", "adopted", "--history-out", "adopted/history")
    assert result.exit_code == 0, result.stderr


def job_detail_requests(emulator: Emulator) -> int:
    """`GET /jobs/{id}` requests the emulator answered since its log was last reset."""
    return sum(
        method == "GET" and re.search(r"/jobs/[^/?]+$", path.split("?")[0]) is not None
        for method, path, _ in emulator.requests
    )


def test_a_second_import_reads_finished_jobs_from_the_job_cache(
    served: Any, workspace: Path, emulator: Emulator
) -> None:
    one_finished_and_one_running_job(workspace, emulator)
    shutil.rmtree(os.environ["XDG_CACHE_HOME"])  # what apply's plans cached: an import's own
    emulator.reset_requests()
    assert run("import", "--jobs", "--out", "first").exit_code == 0
    first = job_detail_requests(emulator)
    emulator.reset_requests()
    assert run("import", "--jobs", "--out", "second", "--history-out", "kept").exit_code == 0
    second = job_detail_requests(emulator)
    assert first == 2
    assert second == 1, "the finished job comes from the cache; the pending one is read again"
    assert job_files(Path("second")) == job_files(Path("first"))
    assert job_files(Path("kept")) == job_files(Path("history"))


def test_an_import_without_jobs_reads_no_batch_job_details(
    served: Any, workspace: Path, emulator: Emulator
) -> None:
    one_finished_and_one_running_job(workspace, emulator)
    shutil.rmtree(os.environ["XDG_CACHE_HOME"])
    emulator.reset_requests()
    assert run("import", "--out", "adopted").exit_code == 0
    assert job_detail_requests(emulator) == 0
    assert job_files(Path("adopted")) == [] and not Path("history").exists()
