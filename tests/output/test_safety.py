"""Output a pull request cannot forge: escaped names, bounded Markdown, names that route nowhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import ApplyResult, Request
from reconciler.client import ClientConfig, PolarisClient, ProjectNotFoundError
from reconciler.emulator import DEMO_API_KEY, Emulator
from reconciler.escape import fence, markdown, terminal
from reconciler.kinds.ingestion_job import LiveJob
from reconciler.live import LiveState
from reconciler.model import Kind, Location, Resource
from reconciler.plan import Action, make_plan
from reconciler.render import MARKDOWN_LIMIT, PlanMarkdown, render_apply, render_requests
from reconciler.values import Change, Outcome
from tests.cli import run
from tests.fixtures import IN_PROCESS_HOSTS

FORGED = "No changes. Live state matches the manifests."
# What a name could hold to break out of a comment and add rows to a table. A manifest name cannot
# hold "/" (validation refuses it), so closing tags come only from the server's names.
BREAKOUT = "evil`</code></summary></details>| create | 0 |<img src=x>[x](y)@team #1"
MANIFEST_BREAKOUT = "evil`<!--| create | 0 |<img src=x>[x](y)@team #1"


def table_manifest(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "apiVersion: reconciler/v1\nkind: Table\n"
        f'metadata: {{name: "{escaped}"}}\n'
        "spec:\n  type: detail\n  schema:\n    - {name: __time, dataType: timestamp}\n"
    )


def assert_no_forged_markdown(text: str) -> None:
    """Every tag is balanced, and nothing BREAKOUT tried to add is there as structure."""
    for tag in ("details", "summary", "code"):
        assert text.count(f"<{tag}>") == text.count(f"</{tag}>"), tag
    for forged in ("| create | 0 |", "<img", "](y)", "@team", "`</code>", "<!--"):
        assert forged not in text, forged


# The two escape functions ---------------------------------------------------------------------


def test_terminal_text_shows_control_and_invisible_characters_as_escapes() -> None:
    assert terminal("a\rb\nc\td\x1b[2Ke\x00f\u202eg\x85h") == (
        "a\\rb\\nc\\td\\e[2Ke\\x00f\\u202eg\\x85h"
    )
    assert terminal("plain: ümlaut, 日本, emoji 🙂") == "plain: ümlaut, 日本, emoji 🙂"


def test_markdown_text_starts_no_structure_and_shows_every_character() -> None:
    escaped = markdown(BREAKOUT + "\n# heading\r\\*")
    assert not re.search(r"[<>|`\[\]@*\\\n\r]", escaped.replace("&#", "").replace("\\n", ""))
    assert "&lt;/details&gt;" in escaped and "&#124;" in escaped and "&#96;" in escaped
    assert markdown("demo-conn/a.b") == "demo-conn/a.b"  # ordinary names stay readable


def test_a_fence_is_longer_than_any_backtick_run_inside_it() -> None:
    block = fence(["+ name: ````", "```", "line\rover"], "diff")
    lines = block.split("\n")
    assert lines[0] == "`````diff" and lines[-1] == "`````"
    assert "line\\rover" in block


# Names in every renderer ----------------------------------------------------------------------


def test_a_carriage_return_in_a_live_name_cannot_overwrite_a_plan_line(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    client.create_table(
        {
            "name": f"x\r{FORGED}\x1b[2K",
            "type": "detail",
            "schema": [{"name": "__time", "dataType": "timestamp"}],
        }
    )
    for command in ("plan", "drift"):
        result = run(command)
        assert "\r" not in result.stdout and "\x1b" not in result.stdout
        assert f"x\\r{FORGED}\\e[2K" in result.stdout


def test_a_name_cannot_break_out_of_the_markdown_of_plan_apply_drift_or_validate(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    client.create_table(
        {
            "name": BREAKOUT,
            "type": "detail",
            "schema": [{"name": "__time", "dataType": "timestamp"}],
        }
    )
    evil = workspace / "evil"
    evil.mkdir()
    (evil / "evil.yaml").write_text(table_manifest(MANIFEST_BREAKOUT), encoding="utf-8")
    for command in ("plan", "drift"):
        result = run(command, "--format", "markdown", str(evil))
        assert "&lt;/summary&gt;&lt;/details&gt;&#124; create &#124; 0 &#124;" in result.stdout
        assert "&lt;!--&#124; create &#124; 0 &#124;" in result.stdout
        assert_no_forged_markdown(result.stdout)
    applied = run("apply", "--auto-approve", "--format", "markdown", str(evil))
    assert applied.exit_code == 0, applied.stderr
    assert "&lt;!--" in applied.stdout
    assert_no_forged_markdown(applied.stdout)
    (evil / "broken.yaml").write_text(
        table_manifest(MANIFEST_BREAKOUT + "2").replace(
            "type: detail", "type: detail\n  colour: '`red`'"
        ),
        encoding="utf-8",
    )
    validated = run("validate", "--format", "markdown", str(evil))
    assert validated.exit_code == 1
    assert "`" not in validated.stdout
    assert "&lt;!--" in validated.stdout
    assert_no_forged_markdown(validated.stdout)


def test_a_name_that_is_a_dot_segment_never_reaches_another_endpoint(
    emulator: Emulator, client: PolarisClient
) -> None:
    emulator.reset_requests()
    assert client.get_connection(".") is None
    client.delete_connection("..")
    # The emulator sees the decoded name: the request reached that one connection, not the
    # collection or the project.
    paths = [path for _, path, *_ in emulator.requests]
    assert paths[0].endswith("/connections/.") and paths[1].endswith("/connections/..")


def test_a_live_connection_named_dot_dot_is_reported_and_never_pruned(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    for name in ("..", "."):
        client.create_connection(
            {"name": name, "type": "s3", "bucket": "b", "awsEndpoint": "s3.amazonaws.com"}
        )
    result = run("plan", "--prune", "--format", "json")
    changes = {c["name"]: c for c in result.json()["changes"]}
    for name in ("..", "."):
        assert changes[name]["action"] == "skip"
        assert "left alone" in changes[name]["reason"]


# Bounded Markdown -----------------------------------------------------------------------------


def assert_bounded(text: str, see_all: str) -> None:
    assert_bounded_by(text, MARKDOWN_LIMIT, see_all)


def assert_bounded_by(text: str, limit: int, see_all: str) -> None:
    assert len(text) <= limit
    last = text.rstrip().split("\n")[-1]
    assert last.startswith("**Truncated:**") and see_all in last, last


def test_a_plan_with_5000_double_ingestion_warnings_stays_under_the_comment_limit() -> None:
    location = Location("jobs.yaml")
    connections = {
        "conn": {
            "name": "conn",
            "type": "s3",
            "bucket": "bucket",
            "awsEndpoint": "s3.amazonaws.com",
        }
    }
    resources, jobs = [], []
    for i in range(1_000):  # each new job appends objects five completed jobs already ingested
        table = f"events-{i:04d}"
        spec = {
            "type": "batch",
            "target": {"type": "table", "tableName": table},
            "source": {
                "type": "s3",
                "connectionName": "conn",
                "uris": [f"s3://bucket/day-{i}.json"],
                "formatSettings": {"format": "nd-json"},
                "inputSchema": [{"name": "ts", "dataType": "string"}],
            },
            "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("ts") + 1'}],
        }
        resources.append(Resource(Kind.INGESTION_JOB, f"job-{i:04d}", spec, location))
        for n in range(5):
            old = {**spec, "mappings": [{"columnName": "__time", "expression": f"{n}"}]}
            body = {
                "id": f"{i:04d}{n:04d}-0000-0000-0000-000000000000",
                "executionStatus": "completed",
                **old,
            }
            jobs.append(LiveJob.of(body, connections))
    live = LiveState(connections, {}, tuple(jobs))
    plan = make_plan(resources, live)
    assert sum(len(c.warnings) for c in plan.changes) == 5_000
    text = PlanMarkdown().render(plan)
    assert "DOUBLE INGESTION" in text
    assert_bounded(text, "`reconciler plan --format json`")
    assert "1,000 resource(s)" in text.split("**Truncated:**")[-1]


def many(kind_yaml: str, count: int) -> str:
    return "".join(kind_yaml.format(i=i) for i in range(count))


EXTERNAL = (
    "---\napiVersion: reconciler/v1\nkind: Connection\n"
    "metadata: {{name: external-{i:04d}}}\npolicy: {{manage: external}}\n"
    "spec: {{type: s3, bucket: b{i}, awsEndpoint: s3.amazonaws.com}}\n"
)
MISSING = (
    "---\napiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: missing-{i:04d}}}\n"
    "spec: {{type: s3, bucket: b{i}, awsEndpoint: s3.amazonaws.com, description: '{pad}'}}\n"
)
INVALID = (
    "---\napiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: bad-{i:04d}}}\n"
    "spec: {{type: s3, bucket: b{i}, awsEndpoint: s3.amazonaws.com, colour: red}}\n"
)


@pytest.mark.parametrize(
    ("command", "manifests", "see_all"),
    [
        ("plan", EXTERNAL, "`reconciler plan --format json`"),
        ("drift", MISSING.replace("{pad}", "x" * 50), "`reconciler drift --format json`"),
        ("validate", INVALID, "`reconciler validate --format json`"),
    ],
    ids=["5000-missing-external-connections", "drift-of-5000", "validate-5000-errors"],
)
def test_markdown_of_every_command_with_5000_problems_stays_under_the_comment_limit(
    served: Any, tmp_path: Path, command: str, manifests: str, see_all: str
) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(many(manifests, 5_000), encoding="utf-8")
    result = run(command, "--format", "markdown", str(path))
    assert result.exit_code in (1, 2), result.stderr
    assert_bounded(result.stdout, see_all)
    assert result.stdout.startswith("### ")


def test_apply_markdown_of_5000_failures_stays_under_the_comment_limit() -> None:
    outcomes = [
        Outcome(
            Change(Kind.CONNECTION, f"conn-{i:04d}", Action.CREATE, "not found in project"),
            "failed",
            f"POST /connections failed (400): {'bucket name rejected; ' * 8}",
        )
        for i in range(5_000)
    ]
    text = render_apply(ApplyResult(outcomes), "markdown")
    assert "Apply failed: 0 done, 5000 failed" in text
    assert_bounded(text, "`reconciler apply --format json` or in the job log")


def test_a_project_id_of_dots_stays_one_path_segment(emulator: Emulator) -> None:
    config = ClientConfig(
        "http://polaris.test", "..", DEMO_API_KEY, insecure=True, allowed_hosts=IN_PROCESS_HOSTS
    )
    with (
        PolarisClient(config, transport=emulator.transport()) as client,
        pytest.raises(ProjectNotFoundError),
    ):
        client.list_connections()
    assert emulator.requests[-1][1] == "/v1/projects/../connections"


def test_import_shows_live_names_as_escaped_text(
    served: Any, tmp_path: Path, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client.create_table(
        {
            "name": f"x/\r{FORGED}",
            "type": "detail",
            "schema": [{"name": "__time", "dataType": "timestamp"}],
        }
    )
    result = run("import", "--out", "imported")
    assert result.exit_code == 0, result.stderr
    assert "\r" not in result.stderr
    assert any(line.startswith("skipped Table/x/") for line in result.stderr.splitlines())


def test_the_requests_a_markdown_plan_shows_stay_under_the_limit_they_are_given() -> None:
    planned = [
        (
            Change(Kind.CONNECTION, f"conn-{i:04d}", Action.CREATE, "not found in project"),
            [Request("POST", "/connections", {"name": f"conn-{i:04d}", "description": "d" * 200})],
        )
        for i in range(2_000)
    ]
    text = render_requests(planned, "markdown", limit=20_000)
    assert len(text) <= 20_000
    assert_bounded_by(text, 20_000, "`reconciler plan --show-requests --format json`")
