"""Plans a reviewer can act on: what a new job reads and writes, the requests apply would send."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, external_connection_exists


def test_a_new_job_shows_its_table_connection_format_and_objects(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    text = run("plan").stdout
    block = text[text.index("IngestionJob/web-requests-2026-11-01-to-03") :]
    assert "note: target table: web_requests (created by this apply); mode: append" in block
    assert "note: connection: weblogs-s3" in block
    assert 'note: format: csv, columns ["ts", "service",' in block and "skipHeaderRows 1" in block
    assert (
        "note: objects: every object under 3 prefix(es): logs/edge/2026/11/01/, "
        "logs/edge/2026/11/02/, logs/edge/2026/11/03/ (listed by Polaris when the job runs)"
    ) in block
    koalas = text[text.index("IngestionJob/koalas-demo-file") :]
    assert "target table: Koalas (created by this job)" in koalas
    assert "objects: 1 object(s): s3://demo-bucket/polaris-ingest/demo-file.json.gz" in koalas
    audit = text[text.index("IngestionJob/audit-events-2026-q4") :]
    assert "connection: security-audit (bucket " in audit, "a live connection shows its bucket"
    assert "every object matching exports/2026/q4/**.json" in audit
    markdown = run("plan", "--format", "markdown").stdout
    assert "- note: target table: web_requests" in markdown


def test_show_requests_prints_each_body_apply_would_send_without_secrets(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    first = run("plan", "--show-requests")
    assert first.exit_code == 0
    requests = first.stdout[first.stdout.index("Requests apply would send") :]
    assert "POST /connections  (Connection/demo-conn)" in requests
    # A secret shows as where it comes from, so a reviewer sees which variable is sent.
    assert '"accessKeySecret": "${env:DEMO_AWS_SECRET_ACCESS_KEY}"' in requests
    assert "POST /jobs  (IngestionJob/koalas-demo-file)" in requests
    assert "POST /tables  (Table/web_requests)" in requests
    for secret in DEMO_SECRETS.values():
        assert secret not in first.stdout + first.stderr
    assert run("apply", "--auto-approve").exit_code == 0
    client.update_connection("weblogs-s3", {"type": "s3", "bucket": "moved-bucket"})
    second = run("plan", "--show-requests", "--rotate-secrets", "--format", "json")
    payload = second.json()
    by_name = {entry["name"]: entry["requests"] for entry in payload["requests"]}
    assert by_name["weblogs-s3"] == [
        {
            "method": "PATCH",
            "path": "/connections/weblogs-s3",
            "body": {"type": "s3", "bucket": "acme-weblogs"},
        }
    ]
    assert by_name["demo-conn"][0]["body"]["secrets"] == {
        "type": "access_key",
        "accessKeyId": "${env:DEMO_AWS_ACCESS_KEY_ID}",
        "accessKeySecret": "${env:DEMO_AWS_SECRET_ACCESS_KEY}",
    }
    assert "koalas-demo-file" not in by_name, "nothing is sent for a job already ingested"
    assert payload["summary"]["update"] == 2


def test_verbose_logs_the_final_url_sent_with_its_query_string(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    result = run("-v", "plan")
    assert result.exit_code == 0
    pattern = (
        r"GET http://127\.0\.0\.1:\d+/v1/projects/[0-9a-f-]+/jobs\?sortColumn=created_date_time"
        r"&sortOrder=DESC&type=batch&paginationLimit=1000&paginationOffset=0 -> 200"
    )
    assert re.search(pattern, result.stderr), result.stderr


def test_show_requests_in_markdown_keeps_each_body_inside_its_code_block(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    tables = workspace / "weblogs" / "tables.yaml"
    tables.write_text(
        tables.read_text().replace(
            "description: One row per HTTP request served at the edge",
            "description: 'ends the block ``` and ```` too'",
        )
    )
    result = run("plan", "--format", "markdown", "--show-requests")
    assert result.exit_code == 0, result.stderr
    block = result.stdout[result.stdout.index("POST /tables") :]
    assert "`````json" in block, "a fence longer than the longest run of backticks in the body"
