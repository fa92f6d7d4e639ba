"""Data identity: a job is what it reads and how, so no object is ingested twice by accident.

Each scenario is one an adversarial user tried: a renamed connection, a second connection on the
same bucket, a brace pattern, a revert to a failed version, statuses the tool does not know.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.emulator.samples import koalas_rows, write_nd_json
from reconciler.live import read_live
from reconciler.model import Kind
from reconciler.plan import Action, make_plan
from reconciler.validate import load_manifests
from reconciler.values import ApplyOptions, Outcome
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, ROOT, external_connection_exists
from tests.guide import GUIDE_JOB
from tests.steps import apply_all, changes_by_name, edit, koalas_job_held, plan_json

KOALAS_URI = "s3://demo-bucket/polaris-ingest/demo-file.json.gz"
SECOND_CONNECTION = """---
apiVersion: reconciler/v1
kind: Connection
metadata:
  name: demo-conn-role
spec:
  type: s3
  bucket: demo-bucket
  awsEndpoint: {endpoint}
  awsAssumedRoleArn: arn:aws:iam::012345678901:role/demo-role
{extra}"""


def job_count(client: PolarisClient) -> int:
    return len(list(client.iter_jobs()))


def add_second_connection(workspace: Path, endpoint: str, extra: str = "") -> None:
    """A second connection on the guide's bucket, authenticated by role instead of keys."""
    path = workspace / "guide" / "demo-conn.yaml"
    path.write_text(
        path.read_text(encoding="utf-8") + SECOND_CONNECTION.format(endpoint=endpoint, extra=extra),
        encoding="utf-8",
    )


def refused(*args: str) -> str:
    """Run apply, which must refuse and name the flag that would allow it; return stderr."""
    result = run("apply", "--auto-approve", *args)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "--allow-reingest" in result.stderr
    return result.stderr


def test_renamed_connection_never_ingests_twice(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    before = job_count(client)
    edit(workspace / "guide" / "demo-conn.yaml", "name: demo-conn\n", "name: demo-conn-v2\n")
    edit(
        workspace / "guide" / "koalas-job.yaml",
        "connectionName: demo-conn\n",
        "connectionName: demo-conn-v2\n",
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "noop", koalas
    assert "through connection demo-conn (same endpoint, bucket and prefix" in koalas["reason"]
    apply_all()
    assert client.get_connection("demo-conn-v2") is not None
    assert job_count(client) == before


def test_a_job_moved_to_a_second_connection_on_the_same_bucket_is_not_ingested_again(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    before = job_count(client)
    # The same endpoint, spelled with a scheme, capitals and a trailing dot.
    add_second_connection(workspace, "https://S3.us-east-1.amazonaws.com.")
    edit(
        workspace / "guide" / "koalas-job.yaml",
        "connectionName: demo-conn\n",
        "connectionName: demo-conn-role\n",
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "noop", koalas
    apply_all()
    assert job_count(client) == before


def test_the_same_objects_through_a_connection_with_a_prefix_are_double_ingestion(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    live_job = changes_by_name(plan_json())["koalas-demo-file"]["jobId"]
    before = job_count(client)
    add_second_connection(workspace, "s3.us-east-1.amazonaws.com", "  prefix: polaris-ingest/\n")
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, "connectionName: demo-conn\n", "connectionName: demo-conn-role\n")
    edit(
        koalas_file,
        f"uris:\n      - {KOALAS_URI}\n",
        "objects: [polaris-ingest/demo-file.json.gz]\n",
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and koalas["reingest"] is True
    (warning,) = koalas["warnings"]
    assert warning.startswith(f"DOUBLE INGESTION: job {live_job} (completed, connection demo-conn)")
    assert "for example polaris-ingest/demo-file.json.gz" in warning
    refused()
    assert job_count(client) == before
    apply_all("--allow-reingest")
    assert job_count(client) == before + 1


def test_a_brace_pattern_after_one_of_its_objects_was_ingested_is_double_ingestion(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, KOALAS_URI, "s3://demo-bucket/penguins/adelaide.json")
    apply_all()
    before = job_count(client)
    edit(
        koalas_file,
        "uris:\n      - s3://demo-bucket/penguins/adelaide.json\n",
        'pattern: "penguins/{adelaide,gentoo}.json"\n',
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and koalas["reingest"] is True
    assert "for example penguins/adelaide.json" in koalas["warnings"][0]
    refused()
    assert job_count(client) == before


def test_a_pattern_that_reads_other_objects_is_a_plain_create(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, KOALAS_URI, "s3://demo-bucket/penguins/adelaide.json")
    apply_all()
    edit(
        koalas_file,
        "uris:\n      - s3://demo-bucket/penguins/adelaide.json\n",
        'pattern: "penguins/{emperor,gentoo}.json"\n',
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and "warnings" not in koalas
    before = job_count(client)
    apply_all()
    assert job_count(client) == before + 1


def test_reverting_to_a_failed_version_after_a_fixed_one_completed_is_never_resubmitted_silently(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    v1 = koalas_job_held(client, emulator)
    emulator.fail_job(v1, code="cannot_parse_source", message="bad expression")
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, "expression: '\"city\"'", "expression: 'UPPER(\"city\")'")
    fixed = changes_by_name(plan_json())["koalas-demo-file"]
    assert fixed["action"] == "create" and "warnings" not in fixed  # v1 ingested nothing
    apply_all()
    v2 = changes_by_name(plan_json())["koalas-demo-file"]["jobId"]
    emulator.complete_job(v2)
    edit(koalas_file, "expression: 'UPPER(\"city\")'", "expression: '\"city\"'")
    reverted = changes_by_name(plan_json())["koalas-demo-file"]
    assert (reverted["action"], reverted["jobId"]) == ("resubmit", v1)
    assert reverted["reingest"] is True
    assert reverted["warnings"][0].startswith(f"DOUBLE INGESTION: job {v2} (completed")
    before = job_count(client)
    refused()
    assert job_count(client) == before


def test_a_job_with_an_unknown_status_is_never_resubmitted_without_a_flag(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    job_id = koalas_job_held(client, emulator)
    emulator.set_job_status(job_id, "unknown")
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert (koalas["action"], koalas["status"], koalas["reingest"]) == ("resubmit", "unknown", True)
    assert koalas["warnings"][0].startswith(f"UNKNOWN STATUS: job {job_id}")
    before = job_count(client)
    assert "UNKNOWN STATUS" in refused()
    assert job_count(client) == before


def test_a_live_job_whose_connection_is_gone_makes_overlap_uncertain_and_apply_refuses(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    client.create_connection(
        {"type": "s3", "name": "old-conn", "bucket": "demo-bucket", "awsEndpoint": "s3.x"}
    )
    old = client.create_job(
        {**GUIDE_JOB, "source": {**GUIDE_JOB["source"], "connectionName": "old-conn"}}
    )
    assert client.get_job(old["id"])["executionStatus"] == "completed"  # type: ignore[index]
    client.delete_connection("old-conn")
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["action"] == "create" and koalas["reingest"] is True
    (warning,) = koalas["warnings"]
    assert warning.startswith(f"POSSIBLE DOUBLE INGESTION: job {old['id']} (completed")
    assert "connection old-conn no longer exists" in warning
    before = job_count(client)
    refused()
    assert job_count(client) == before


def test_a_live_pattern_the_tool_cannot_analyse_makes_overlap_uncertain(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    client.create_connection(
        {"type": "s3", "name": "other", "bucket": "other-bucket", "awsEndpoint": "s3.x"}
    )
    source = {k: v for k, v in GUIDE_JOB["source"].items() if k != "uris"}
    client.create_job(
        {**GUIDE_JOB, "source": {**source, "connectionName": "other", "pattern": "a/{b,{c}}"}}
    )
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["reingest"] is True
    assert (
        "its selector cannot be analysed (pattern 'a/{b,{c}}': Cannot nest groups)"
        in (koalas["warnings"][0])
    )
    refused()


@pytest.mark.parametrize(
    ("status", "drift_status", "changes"),
    [
        ("pending", "in-sync", False),
        ("running", "in-sync", False),
        ("completed", "in-sync", False),
        ("failed", "failed", True),
        ("canceled", "in-sync", False),
        ("unknown", "unknown", True),
    ],
)
def test_plan_and_drift_agree_on_every_job_status(
    served: Any,
    workspace: Path,
    client: PolarisClient,
    emulator: Emulator,
    status: str,
    drift_status: str,
    changes: bool,
) -> None:
    job_id = koalas_job_held(client, emulator)
    if status == "failed":
        emulator.fail_job(job_id)
    elif status == "canceled":
        client.cancel_job(job_id)
    elif status == "completed":
        emulator.complete_job(job_id)
    elif status != "pending":
        emulator.set_job_status(job_id, status)
    planned = run("plan", "--detailed-exitcode")
    drift = run("drift", "--format", "json")
    assert planned.exit_code == (2 if changes else 0), planned.stdout
    assert drift.exit_code == planned.exit_code, drift.stdout
    entry = next(e for e in drift.json()["drift"] if e["name"] == "koalas-demo-file")
    assert entry["status"] == drift_status
    if status == "canceled":
        assert "canceled" in entry["detail"] and "--resubmit-canceled" in entry["detail"]


def test_flipping_is_aggregation_after_plan_out_makes_the_saved_plan_stale(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    apply_all()
    assert run("plan", "--out", "plan.json").exit_code == 0
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, "isAggregation: true", "isAggregation: false")
    before = job_count(client)
    result = run("apply", "--auto-approve", "plan.json")
    assert result.exit_code == 1
    assert "the saved plan is stale" in result.stderr
    assert job_count(client) == before
    flipped = changes_by_name(plan_json())["koalas-demo-file"]
    assert flipped["action"] == "create" and flipped["reingest"] is True
    assert "mappings" in str(flipped["diff"])
    edit(koalas_file, "isAggregation: false", "isAggregation: true")
    assert changes_by_name(plan_json())["koalas-demo-file"]["action"] == "noop"


def apply_guide_after(client: PolarisClient, meanwhile: dict[str, Any], **options: Any) -> Outcome:
    """Plan the guide's manifests, let another apply submit `meanwhile`, then apply the plan."""
    manifests = load_manifests([str(ROOT / "manifests" / "guide")], DEMO_SECRETS)
    live = read_live(client, manifests.resources)
    plan = make_plan(manifests.resources, live)
    assert {c.name: c.action for c in plan.changes}["koalas-demo-file"] is Action.CREATE
    client.create_connection(
        {
            "name": "elsewhere",
            "type": "s3",
            "bucket": "demo-bucket",
            "awsEndpoint": "S3.US-EAST-1.amazonaws.com",
        }
    )
    client.create_job(
        {**meanwhile, "source": {**meanwhile["source"], "connectionName": "elsewhere"}}
    )
    applier = Applier(
        PolarisProvider(client, ApplyOptions(**options), sleep=lambda s: None, live=live)
    )
    result = applier.run(plan)
    return next(o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB)


def test_apply_refuses_a_job_when_one_reading_the_same_objects_appeared_since_the_plan(
    client: PolarisClient,
) -> None:
    schema = [*GUIDE_JOB["source"]["inputSchema"], {"dataType": "string", "name": "country"}]
    other = {**GUIDE_JOB, "source": {**GUIDE_JOB["source"], "inputSchema": schema}}
    koalas = apply_guide_after(client, other)
    (meanwhile,) = client.iter_jobs()
    assert koalas.status == "failed"
    assert koalas.message.startswith(
        f"refused: job {meanwhile['id']} (completed, connection elsewhere) was submitted after "
        "the plan was made and reads objects this job reads (for example "
        "polaris-ingest/demo-file.json.gz)"
    )
    assert "--allow-reingest" in koalas.message


def test_apply_with_allow_reingest_submits_despite_a_job_that_appeared_since_the_plan(
    client: PolarisClient,
) -> None:
    schema = [*GUIDE_JOB["source"]["inputSchema"], {"dataType": "string", "name": "country"}]
    other = {**GUIDE_JOB, "source": {**GUIDE_JOB["source"], "inputSchema": schema}}
    koalas = apply_guide_after(client, other, allow_reingest=True)
    assert (koalas.status, koalas.message.split(" as job")[0]) == ("done", "submitted")
    assert job_count(client) == 2


def test_apply_finds_the_same_job_submitted_meanwhile_through_another_connection(
    client: PolarisClient,
) -> None:
    koalas = apply_guide_after(client, GUIDE_JOB)
    (meanwhile,) = client.iter_jobs()
    assert (koalas.status, koalas.message) == (
        "done",
        f"already submitted as job {meanwhile['id']}",
    )


def test_an_is_aggregation_that_contradicts_its_expression_is_a_warning_with_its_line(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    edit(workspace / "guide" / "koalas-job.yaml", "isAggregation: true", "isAggregation: false")
    result = run("validate", str(workspace))
    assert result.exit_code == 0
    assert (
        "koalas-job.yaml:39:7: warning: mapping for 'max_session_length' sets isAggregation: "
        "false, but its expression aggregates"
    ) in result.stderr


def test_two_new_jobs_reading_the_same_objects_into_one_table_are_double_ingestion(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    koalas = (workspace / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    (workspace / "guide" / "koalas-again.yaml").write_text(
        koalas.replace("name: koalas-demo-file", "name: koalas-again").replace(
            "expression: '\"city\"'", "expression: 'UPPER(\"city\")'"
        ),
        encoding="utf-8",
    )
    changes = changes_by_name(plan_json())
    for name, other in (("koalas-demo-file", "koalas-again"), ("koalas-again", "koalas-demo-file")):
        assert changes[name]["action"] == "create" and changes[name]["reingest"] is True
        assert changes[name]["warnings"] == [
            f"DOUBLE INGESTION: IngestionJob/{other}, also submitted by this plan, reads objects "
            "this job selects (for example polaris-ingest/demo-file.json.gz) into table Koalas; "
            "applying both appends the same rows twice (apply refuses without --allow-reingest)"
        ]
    refused()
    assert job_count(client) == 0


def test_a_pattern_the_tool_cannot_read_is_a_validation_error_with_its_line(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    edit(
        workspace / "guide" / "koalas-job.yaml",
        f"uris:\n      - {KOALAS_URI}\n",
        'pattern: "penguins/{a,{b}}.json"\n',
    )
    result = run("validate", str(workspace))
    assert result.exit_code == 1
    assert (
        "koalas-job.yaml:17:5: error: source.pattern 'penguins/{a,{b}}.json' is refused by "
        "Polaris's Java glob matcher (PatternSyntaxException: Cannot nest groups); {...} groups "
        "cannot nest: write the alternatives out ({a,b,c})"
    ) in result.stdout + result.stderr


def ingested_events(served: Any) -> int:
    """Input rows in the Koalas table (a rollup: each row counts its events in __count)."""
    with httpx.Client(
        base_url=f"{served.url}/v1/projects/{DEMO_PROJECT_ID}", auth=(DEMO_API_KEY, "")
    ) as api:
        answer = api.post("/query/sql", json={"query": 'SELECT SUM("__count") AS n FROM "Koalas"'})
        assert answer.status_code == 200, answer.text
        return int(answer.json()[0]["n"])


def test_every_object_is_ingested_once_through_renames_moves_and_brace_patterns(
    data_served: Any, workspace: Path, s3_dir: Path
) -> None:
    write_nd_json(s3_dir / "demo-bucket" / "penguins" / "adelaide.json", koalas_rows(100, seed=1))
    write_nd_json(s3_dir / "demo-bucket" / "penguins" / "gentoo.json", koalas_rows(40, seed=2))
    shutil.rmtree(workspace / "weblogs")  # its objects are not in s3_dir
    koalas_file, connections = workspace / "guide" / "koalas-job.yaml", workspace / "guide"
    edit(koalas_file, KOALAS_URI, "s3://demo-bucket/penguins/adelaide.json")
    apply_all()
    assert ingested_events(data_served) == 100
    # Renamed connection, then a second connection (a role) on the same bucket: nothing again.
    edit(connections / "demo-conn.yaml", "name: demo-conn\n", "name: demo-conn-v2\n")
    edit(koalas_file, "connectionName: demo-conn\n", "connectionName: demo-conn-v2\n")
    apply_all()
    add_second_connection(workspace, "S3.us-east-1.amazonaws.com")
    edit(koalas_file, "connectionName: demo-conn-v2\n", "connectionName: demo-conn-role\n")
    apply_all()
    assert ingested_events(data_served) == 100
    # A brace pattern that includes the ingested object is refused; one without it is not.
    edit(
        koalas_file,
        "uris:\n      - s3://demo-bucket/penguins/adelaide.json\n",
        'pattern: "penguins/{adelaide,gentoo}.json"\n',
    )
    assert "for example penguins/adelaide.json" in refused()
    assert ingested_events(data_served) == 100
    edit(koalas_file, "{adelaide,gentoo}", "{gentoo,emperor}")
    apply_all()
    assert ingested_events(data_served) == 140
    apply_all()
    assert ingested_events(data_served) == 140


def test_a_connection_moved_behind_gits_back_never_makes_its_jobs_look_missing(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    # Someone points the live connection at another bucket. Apply will move it back, so the job
    # that ran through it must still satisfy the manifest: planned as a create, it would ingest
    # the same objects again right after the connection update.
    external_connection_exists(client)
    apply_all()
    before = job_count(client)
    client.update_connection("demo-conn", {"type": "s3", "bucket": "moved-bucket"})
    changes = changes_by_name(plan_json())
    assert changes["demo-conn"]["action"] == "update"
    assert changes["koalas-demo-file"]["action"] == "noop", changes["koalas-demo-file"]
    apply_all()
    assert job_count(client) == before
