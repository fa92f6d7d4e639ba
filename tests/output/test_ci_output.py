"""Output for CI systems: GitHub annotations on the diff's lines, JUnit XML for dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from reconciler.ci_output import annotation
from reconciler.client import PolarisClient
from reconciler.escape import annotation_message as escape_data
from reconciler.escape import annotation_property as escape_property
from reconciler.model import Location
from tests.cli import run
from tests.fixtures import external_connection_exists

BAD = Path(__file__).resolve().parents[1] / "bad_manifests" / "19-misspelled-field.yaml"


def test_annotation_messages_and_properties_use_githubs_escaping() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("\x1b[31mred\t") == "%1B[31mred%09"
    line = annotation(
        "error", "line one\nline two: 50%", location=Location("dir,x/a:b.yaml", 7, 3), title="T, x"
    )
    assert line == (
        "::error file=dir%2Cx/a%3Ab.yaml,line=7,col=3,title=T%2C x::line one%0Aline two: 50%25"
    )
    assert "\n" not in line


def test_validate_in_github_format_puts_each_error_on_its_file_and_line() -> None:
    result = run("validate", "--format", "github", str(BAD))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith(f"::error file={BAD},line=8,col=3,title=Connection/c1::unknown field")
        for line in lines
    ), result.stdout


def test_validate_junit_has_one_case_per_file_and_fails_the_invalid_one(
    workspace: Path, tmp_path: Path
) -> None:
    (workspace / "bad.yaml").write_bytes(BAD.read_bytes())
    report = tmp_path / "validate.xml"
    assert run("validate", "--junit", str(report), str(workspace)).exit_code == 1
    root = ET.fromstring(report.read_text(encoding="utf-8"))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert len(cases) == 6
    failure = cases[str(workspace / "bad.yaml")].find("failure")
    assert failure is not None and "unknown field 'spec.buckt'" in str(failure.get("message"))
    assert root.get("failures") == "1"
    assert cases[str(workspace / "weblogs" / "jobs.yaml")].find("failure") is None


def test_plan_in_github_format_notes_each_change_on_its_manifest(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("plan", "--format", "github", "--detailed-exitcode")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    koalas = [line for line in lines if "IngestionJob/koalas-demo-file" in line]
    assert koalas[0].startswith(
        "::notice file=manifests/guide/koalas-job.yaml,line=4,col=1,"
        "title=IngestionJob/koalas-demo-file%3A create::no live job with this spec%0A"
        "note: target table: Koalas (created by this job); mode: append%0A"
    )
    assert lines[-1].startswith("Plan: 6 to create")
    assert "test-secret-value" not in result.stdout


def test_drift_annotations_and_junit_follow_fail_on_and_ignore(
    served: Any, workspace: Path, client: PolarisClient, tmp_path: Path
) -> None:
    external_connection_exists(client)
    assert run("apply", "--auto-approve").exit_code == 0
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    # A hostile name from the server: markup and a character XML 1.0 cannot hold.
    client.create_table({"name": "evil.<x>&\x1b", "type": "detail"})
    client.create_connection(
        {"type": "s3", "name": "other-tool", "bucket": "b", "awsEndpoint": "e"}
    )
    report = tmp_path / "drift.xml"
    result = run(
        "drift", "--format", "github", "--junit", str(report), "--ignore", "other-*",
    )  # fmt: skip
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert any(
        line.startswith(
            "::error file=manifests/weblogs/connections.yaml,line=4,col=1,"
            "title=Connection/weblogs-s3%3A changed::bucket differ"
        )
        for line in lines
    ), result.stdout
    assert any(line.startswith("::warning title=Table/evil.<x>&%1B%3A unmanaged") for line in lines)
    root = ET.fromstring(report.read_text(encoding="utf-8"))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["weblogs-s3"].find("failure") is not None
    assert cases["evil.<x>&\ufffd"].find("failure") is None, "unmanaged does not fail by default"
    assert cases["other-tool"].find("skipped") is not None
    assert root.get("failures") == "1" and root.get("skipped") == "1"


def test_plan_and_drift_in_github_format_annotate_invalid_manifests_too(
    served: Any, workspace: Path
) -> None:
    (workspace / "bad.yaml").write_bytes(BAD.read_bytes())
    for command in ("plan", "drift"):
        result = run(command, "--format", "github")
        assert result.exit_code == 1
        assert f"::error file={workspace.name}/bad.yaml,line=8,col=3," in result.stdout
        assert "nothing was sent" in result.stderr
