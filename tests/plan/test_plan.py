"""`reconciler plan`: every action, every job status, and plans that never diff against themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from reconciler.live import read_live
from reconciler.plan import Action, make_plan
from reconciler.validate import load_manifests
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, external_connection_exists
from tests.steps import apply_all, changes_by_name, edit, koalas_job_held, plan_json


def test_a_fresh_project_plans_a_create_for_every_resource_with_a_reason(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    plan = plan_json()
    assert plan["formatVersion"] == "1"
    assert plan["summary"]["create"] == 6
    assert plan["summary"]["noop"] == 1  # the external connection
    conn = changes_by_name(plan)["demo-conn"]
    assert conn["action"] == "create" and conn["reason"] == "not found in project"
    assert conn["file"].endswith("guide/demo-conn.yaml")
    assert plan["checksum"].startswith("sha256:")


def test_detailed_exitcode_is_2_with_changes_and_0_after_apply(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    assert run("plan", "--detailed-exitcode").exit_code == 2
    apply_all()
    result = run("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    assert "Plan: 0 to create, 0 to update, 0 to delete." in result.stdout


def test_plan_then_apply_then_plan_shows_no_change_for_every_example(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    plan = plan_json()
    assert {c["action"] for c in plan["changes"]} == {"noop"}, json.dumps(plan, indent=1)


def test_renaming_a_job_manifest_never_submits_it_again(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    apply_all()
    jobs_before = len(list(client.iter_jobs()))
    edit(workspace / "guide" / "koalas-job.yaml", "name: koalas-demo-file", "name: koalas-renamed")
    koalas = changes_by_name(plan_json())["koalas-renamed"]
    assert koalas["action"] == "noop"
    assert "already ingested by job" in koalas["reason"]
    apply_all()
    assert len(list(client.iter_jobs())) == jobs_before


def test_a_failed_job_is_resubmitted_with_its_failure_code_and_message(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    job_id = koalas_job_held(client, emulator)
    emulator.fail_job(
        job_id, code="cannot_parse_source", message="could not parse demo-file.json.gz"
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "resubmit"
    assert koalas["reason"] == (
        f"job {job_id} failed (cannot_parse_source: could not parse demo-file.json.gz)"
    )
    assert "Plan: 0 to create, 0 to update, 0 to delete, 1 to resubmit." in run("plan").stdout


def test_a_canceled_job_is_skipped_unless_resubmit_canceled_is_given(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    job_id = koalas_job_held(client, emulator)
    client.cancel_job(job_id)
    assert changes_by_name(plan_json())["koalas-demo-file"]["action"] == "skip"
    assert (
        changes_by_name(plan_json("--resubmit-canceled"))["koalas-demo-file"]["action"]
        == "resubmit"
    )


def test_pending_and_running_jobs_are_noops_that_show_their_status(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    external_connection_exists(client)
    emulator.hold_jobs()
    apply_all()
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert (koalas["action"], koalas["status"]) == ("noop", "pending")
    emulator.set_job_status(koalas["jobId"], "running")
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert (koalas["action"], koalas["status"]) == ("noop", "running")
    assert "being ingested by job" in koalas["reason"]


def test_a_changed_job_appending_the_same_objects_warns_of_double_ingestion_and_apply_refuses(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    edit(
        workspace / "guide" / "koalas-job.yaml",
        "name: city\n",
        "name: city\n      - dataType: string\n        name: country\n",
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create"
    assert koalas["reingest"] is True
    assert koalas["warnings"][0].startswith("DOUBLE INGESTION: job ")
    assert "source.inputSchema" in json.dumps(koalas["diff"])
    text = run("plan").stdout
    assert "WARNING: DOUBLE INGESTION" in text
    refused = run("apply", "--auto-approve")
    assert refused.exit_code == 1
    assert "--allow-reingest" in refused.stderr
    jobs_before = len(list(client.iter_jobs()))
    apply_all("--allow-reingest")
    assert len(list(client.iter_jobs())) == jobs_before + 1


def test_a_replace_job_over_the_same_objects_is_not_double_ingestion(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    edit(
        workspace / "guide" / "koalas-job.yaml",
        "  createTableIfNotExists: true\n",
        "  createTableIfNotExists: true\n  ingestionMode: replace\n  replaceAll: true\n",
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and "warnings" not in koalas


def test_a_connection_changed_behind_gits_back_is_an_update_with_field_diffs(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    client.update_connection(
        "weblogs-s3", {"type": "s3", "prefix": "other/", "description": "edited in the UI"}
    )
    change = changes_by_name(plan_json())["weblogs-s3"]
    assert change["action"] == "update"
    assert change["reason"] == "description, prefix differ"
    assert {"path": "prefix", "op": "change", "before": "other/", "after": "logs/"} in change[
        "diff"
    ]
    apply_all()
    assert changes_by_name(plan_json())["weblogs-s3"]["action"] == "noop"


def test_secrets_are_not_compared_and_can_be_rotated_explicitly(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    demo = changes_by_name(plan_json())["demo-conn"]
    assert demo["action"] == "noop"
    assert demo["notes"] == ["secrets: write-only, not compared"]
    rotated = changes_by_name(plan_json("--rotate-secrets"))["demo-conn"]
    assert rotated["action"] == "update"
    assert rotated["reason"] == "re-sending secrets (--rotate-secrets)"


def test_unmanaged_connections_are_listed_and_pruned_only_on_request(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    client.create_connection({"type": "s3", "name": "left-over", "bucket": "b", "awsEndpoint": "e"})
    plan = plan_json()
    assert {"kind": "Connection", "name": "left-over"} in plan["unmanaged"]
    assert "left-over" not in changes_by_name(plan)
    assert "unmanaged" in run("plan").stdout
    pruned = changes_by_name(plan_json("--prune"))["left-over"]
    assert pruned["action"] == "delete"


def test_adding_a_table_column_is_an_update_and_removing_one_from_a_full_table_is_an_error(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    tables = workspace / "weblogs" / "tables.yaml"
    edit(
        tables,
        "    - name: latency_ms\n",
        "    - name: region\n      dataType: string\n    - name: latency_ms\n",
    )
    change = changes_by_name(plan_json())["web_requests"]
    assert change["action"] == "update"
    assert {
        "path": "schema.region",
        "op": "add",
        "after": {"name": "region", "dataType": "string"},
    } in change["diff"]
    apply_all()
    edit(tables, "    - name: bytes\n      dataType: long\n", "")
    result = run("plan")
    assert result.exit_code == 1
    assert "columns bytes would be changed or removed, but the table holds data" in result.stdout


def test_changing_a_table_type_is_a_plan_error_never_attempted(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    tables = workspace / "weblogs" / "tables.yaml"
    text = tables.read_text(encoding="utf-8").replace("type: detail", "type: aggregate")
    text = text.replace(
        "      dataType: string\n", "      dataType: string\n      type: dimension\n"
    )
    text = text.replace("      dataType: long\n", "      dataType: long\n      type: dimension\n")
    text = text.replace(
        "      dataType: double\n", "      dataType: double\n      type: dimension\n"
    )
    text = text.replace(
        "      dataType: timestamp\n", "      dataType: timestamp\n      type: dimension\n"
    )
    tables.write_text(text, encoding="utf-8")
    result = run("plan", "--format", "json")
    assert result.exit_code == 1
    (error,) = result.json()["errors"]
    assert error["message"].startswith("table type cannot change (detail -> aggregate)")


def test_a_missing_external_connection_is_a_plan_error(served: Any, workspace: Path) -> None:
    result = run("plan")
    assert result.exit_code == 1
    assert "Connection/security-audit: declared as managed elsewhere" in result.stdout


def test_markdown_plan_has_a_summary_table_and_stays_under_the_comment_limit(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    many = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: bulk-{i:04d}}}\n"
        f"spec: {{type: s3, bucket: bucket-with-a-long-name-{i:04d}, awsEndpoint: s3.us-east-1.amazonaws.com,"
        f" description: '{'x' * 200}'}}\n"
        for i in range(400)
    )
    (workspace / "bulk.yaml").write_text(many, encoding="utf-8")
    result = run("plan", "--format", "markdown")
    assert result.stdout.startswith("### Polaris reconciler plan\n\n| action | count |")
    assert len(result.stdout) < 60_000
    assert "**Truncated:**" in result.stdout


def test_a_saved_plan_holds_no_secret(served: Any, workspace: Path, client: PolarisClient) -> None:
    external_connection_exists(client)
    assert run("plan", "--out", "plan.json").exit_code == 0
    saved = Path("plan.json").read_text(encoding="utf-8")
    for secret in DEMO_SECRETS.values():
        assert secret not in saved
    assert json.loads(saved)["plan"]["checksum"].startswith("sha256:")


def test_plan_reads_jobs_beyond_the_first_page_of_1000(
    emulator: Emulator, client: PolarisClient, tmp_path: Path
) -> None:
    guide = Path(__file__).resolve().parents[2] / "manifests" / "guide"
    manifests = load_manifests([str(guide)], DEMO_SECRETS)
    client.create_connection(
        {"name": "demo-conn", **manifests.of_kind(manifests.resources[0].kind)[0].spec}
    )
    job_spec = dict(manifests.resources[1].spec)
    client.create_job(job_spec)
    for i in range(1_200):  # newer jobs push the matching one onto the second page
        client.create_job(
            {
                **job_spec,
                "source": {**job_spec["source"], "uris": [f"s3://demo-bucket/other-{i}.json"]},
            }
        )
    emulator.reset_requests()
    live = read_live(client, manifests.resources)
    plan = make_plan(manifests.resources, live)
    koalas = next(c for c in plan.changes if c.name == "koalas-demo-file")
    assert koalas.action is Action.NOOP
    list_calls = [  # the batch job list's pages (the streaming job list is one more call)
        r
        for r in emulator.requests
        if r[0] == "GET" and r[1].split("?")[0].endswith("/jobs") and "type=batch" in r[1]
    ]
    assert len(list_calls) == 2
