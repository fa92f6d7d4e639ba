"""The README and the documentation site say what the tool does: the command reference is the
command line's own, the defaults and formats they state are the ones the code has, and the site
refuses to build with a broken link or a missing page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from reconciler.cli import cli
from reconciler.model import DEFAULT_FAIL_ON
from tests.cli import run

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text("utf-8")
DOCS = ROOT / "docs"


def commands() -> dict[str, click.Command]:
    ctx = click.Context(cli, info_name="reconciler")
    found = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}


# --- the README ---------------------------------------------------------------------------------


def test_the_readme_says_what_the_tool_is_before_anything_else() -> None:
    first = README.split("\n\n")[1]  # the paragraph under the title
    assert first.startswith(
        "Manage Imply Polaris connections, tables, batch ingestion jobs and streaming"
    )
    assert first.count(". ") + first.count(".\n") <= 2  # two sentences


def test_the_readme_keeps_the_two_commands_and_stays_short() -> None:
    assert "make demo" in README and "make test" in README
    assert len(README.splitlines()) <= 165  # "at most about 150", with room for the install figures
    assert "before:" not in README  # benchmark history lives in docs/development/benchmarks.md


def test_every_relative_link_in_the_readme_points_at_a_file_of_the_repository() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    relative = [link for link in links if "://" not in link]
    assert relative
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert not missing


def test_the_readme_command_table_lists_every_command() -> None:
    for name in commands():
        assert f"| `reconciler {name}" in README, name


# --- the command reference ----------------------------------------------------------------------


def test_the_cli_reference_in_docs_is_what_the_command_line_generates() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_every_command_and_option_that_help_lists_is_in_the_cli_reference() -> None:
    page = (DOCS / "reference" / "cli.md").read_text("utf-8")
    for name, command in commands().items():
        assert f"## `reconciler {name}`" in page
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert f"`{', '.join(param.opts)}" in page, f"{name} {param.opts}"


# --- facts the docs state -----------------------------------------------------------------------


def test_the_drift_fail_on_default_the_docs_state_is_the_one_help_shows() -> None:
    shown = run("drift", "--help").stdout
    default = ",".join(sorted(DEFAULT_FAIL_ON))
    assert default in " ".join(shown.split()).replace(" ", "").replace("-\n", "")
    stated = []
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        text = " ".join(page.read_text("utf-8").split())
        for mention in re.finditer(r"--fail-on", text):
            nearby = text[mention.start() : mention.start() + 200]
            stated += [(page.name, value) for value in re.findall(r"default(?: is)? `([a-z,-]+)`", nearby)]  # fmt: skip
    assert stated
    assert all(value == default for _, value in stated), stated


def test_plan_json_carries_each_changes_requests_and_show_requests_adds_a_top_level_list(
    served: Any, workspace: Path
) -> None:
    # What docs/reference/output-formats.md says about `requests`, checked against the plan.
    plain = run("plan", "--format", "json", str(workspace / "guide")).json()
    creates = [change for change in plain["changes"] if change["action"] == "create"]
    assert creates and all(change["requests"] for change in creates)
    assert "requests" not in plain
    shown = run("plan", "--format", "json", "--show-requests", str(workspace / "guide")).json()
    by_resource = {(item["kind"], item["name"]): item["requests"] for item in shown["requests"]}
    for change in creates:
        assert by_resource[(change["kind"], change["name"])] == change["requests"]
    assert "${env:DEMO_AWS_SECRET_ACCESS_KEY}" in str(shown)
    page = " ".join((DOCS / "reference" / "output-formats.md").read_text("utf-8").split())
    assert "Those are always there; `--show-requests` adds nothing to a change" in page


# --- the site -----------------------------------------------------------------------------------


def build_copy(tmp_path: Path) -> Path:
    """A copy of what the site is built from, to break on purpose."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for name in ("docs", "scripts"):
        shutil.copytree(ROOT / name, copy / name)
    return copy


def mkdocs_build(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(directory / "site")],
        cwd=directory,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "breakage",
    ["a link to a page that does not exist", "a page the navigation leaves out"],
)
def test_the_site_refuses_to_build_with(breakage: str, tmp_path: Path) -> None:
    copy = build_copy(tmp_path)
    if breakage.startswith("a link"):
        page = copy / "docs" / "guide" / "targets.md"
        page.write_text(page.read_text("utf-8") + "\nSee [nothing](no-such-page.md).\n", "utf-8")
        culprit = "no-such-page.md"
    else:
        (copy / "docs" / "orphan.md").write_text("# Orphan\n", "utf-8")
        culprit = "orphan.md"
    done = mkdocs_build(copy)
    assert done.returncode != 0
    assert culprit in done.stderr
