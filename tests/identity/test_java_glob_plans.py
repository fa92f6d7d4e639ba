"""What a user sees of Java's glob dialect: validation errors where Java refuses a pattern, and
plans that read `pattern` as Polaris does (so that no object is ingested twice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, external_connection_exists
from tests.steps import apply_all, changes_by_name, edit, plan_json

KOALAS_URI = "s3://demo-bucket/polaris-ingest/demo-file.json.gz"
URIS = f"uris:\n      - {KOALAS_URI}\n"


def with_pattern(workspace: Path, pattern: str) -> None:
    escaped = pattern.replace("\\", "\\\\").replace('"', '\\"')
    edit(workspace / "guide" / "koalas-job.yaml", URIS, f'pattern: "{escaped}"\n')


@pytest.mark.parametrize(
    ("pattern", "java", "fix"),
    [
        ("logs/a\\", "No character to escape", "write \\\\ for a backslash"),
        ("logs/[a/b]", "Explicit 'name separator' in class", "write / outside it"),
        ("logs/[z-a]", "Invalid range", "from a lower to a higher character"),
        ("logs/[a-b-c]", "Invalid range", "goes right after [ or [!, or last"),
        ("logs/[ab", "Missing ']", "close the [ with ]"),
        ("logs/{a,{b}}", "Cannot nest groups", "write the alternatives out"),
        ("logs/{a,b", "Missing '}", "close the { with }"),
        ("logs/[]", "Unclosed character class", "put a character in [...]"),
        ("logs/[!]x]", "Unclosed character class", "put a character in [...]"),
    ],
)
def test_a_pattern_java_refuses_is_a_validation_error_naming_its_line_and_the_fix(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, pattern: str, java: str, fix: str
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    with_pattern(workspace, pattern)
    result = run("validate", str(workspace))
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert "koalas-job.yaml:17:5: error: source.pattern" in out
    assert f"(PatternSyntaxException: {java}); " in out
    assert fix in out


def test_a_range_that_ends_in_a_backslash_is_refused_with_the_fix(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    with_pattern(workspace, "logs/[ -\\x5d]")  # Java: the range space to ]
    result = run("validate", str(workspace))
    assert result.exit_code == 1
    assert "write the last character of the range itself" in result.stdout + result.stderr


def test_a_caret_in_brackets_is_a_literal_so_the_pattern_still_selects_the_ingested_object(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    # In Java's glob [^d] is the set of ^ and d: it selects demo-file.json.gz again. Only [!d]
    # excludes d.
    external_connection_exists(client)
    apply_all()
    with_pattern(workspace, "polaris-ingest/[^d]emo-file.json.gz")
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and koalas["reingest"] is True
    assert koalas["warnings"][0].startswith("DOUBLE INGESTION: job ")
    assert "for example polaris-ingest/demo-file.json.gz" in koalas["warnings"][0]
    edit(workspace / "guide" / "koalas-job.yaml", "[^d]", "[!d]")
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and "warnings" not in koalas


def test_a_pattern_too_large_to_compare_is_possible_double_ingestion_not_an_error(
    served: Any, workspace: Path, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    external_connection_exists(client)
    apply_all()
    groups = "{a,b}" * 9  # 512 combinations
    with_pattern(workspace, f"elsewhere/{groups}*.json.gz")
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    validated = run("validate", str(workspace / "guide"))
    assert validated.exit_code == 0, validated.stdout + validated.stderr
    assert "warning: source.pattern" in validated.stdout + validated.stderr
    assert "POSSIBLE DOUBLE INGESTION" in validated.stdout + validated.stderr
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and koalas["reingest"] is True
    assert koalas["warnings"][0].startswith("POSSIBLE DOUBLE INGESTION: job ")
    assert "cannot be analysed" in koalas["warnings"][0]
    result = run("apply", "--auto-approve")
    assert result.exit_code == 1 and "--allow-reingest" in result.stderr
