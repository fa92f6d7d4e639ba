"""Saved plans: `apply plan.json` carries out the reviewed changes with the reviewed options, or nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from reconciler.model import Kind
from reconciler.plan import digest, effect, make_plan
from reconciler.values import PlanOptions
from tests.builders import (
    detail_table,
    job_spec,
    live_connection,
    live_state,
    resource,
    s3,
    secrets,
)
from tests.cli import run
from tests.fixtures import external_connection_exists

UNDECLARED = {"name": "old-0", "type": "s3", "bucket": "b", "awsEndpoint": "s3.amazonaws.com"}


def rewrite(path: Path, edit: Any) -> None:
    """Edit a saved plan by hand and recompute its plain sha256 integrity field, as anyone can."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    edit(saved)
    content = {key: value for key, value in saved.items() if key != "integrity"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    saved["integrity"] = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    path.write_text(json.dumps(saved, indent=2), encoding="utf-8")


def saved_without_prune(client: PolarisClient) -> Path:
    """The guide's plan saved without --prune, while a connection no manifest declares exists."""
    external_connection_exists(client)
    client.create_connection(UNDECLARED)
    made = run("plan", "--out", "plan.json")
    assert made.exit_code == 0, made.stderr
    return Path("plan.json")


def test_a_saved_plan_whose_options_were_edited_and_rehashed_is_refused_naming_the_option(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    plan = saved_without_prune(client)
    rewrite(plan, lambda saved: saved["options"].update(prune=True))
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "the saved plan is stale" in result.stderr
    assert "option prune: false in the reviewed plan, true now" in result.stderr
    assert "Connection/old-0: delete now, not in the reviewed plan" in result.stderr
    assert client.get_connection("old-0") is not None


def test_a_saved_plan_whose_change_was_edited_and_rehashed_is_refused_naming_the_change(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    plan = saved_without_prune(client)

    def drop_weblogs(saved: dict[str, Any]) -> None:
        changes = saved["plan"]["changes"]
        saved["plan"]["changes"] = [c for c in changes if c["name"] != "weblogs-s3"]

    rewrite(plan, drop_weblogs)
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Connection/weblogs-s3: create now, not in the reviewed plan" in result.stderr
    assert client.get_connection("weblogs-s3") is None


def test_a_saved_plan_whose_request_body_was_edited_and_rehashed_is_refused(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    plan = saved_without_prune(client)

    def other_bucket(saved: dict[str, Any]) -> None:
        for change in saved["plan"]["changes"]:
            if change["name"] == "weblogs-s3":
                change["requests"][0]["body"]["bucket"] = "attacker-bucket"

    rewrite(plan, other_bucket)
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Connection/weblogs-s3: create sends other requests than the reviewed plan" in (
        result.stderr
    )
    assert client.get_connection("weblogs-s3") is None


def test_a_saved_plan_made_with_prune_is_applied_with_prune(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    external_connection_exists(client)
    client.create_connection(UNDECLARED)
    assert run("plan", "--prune", "--out", "plan.json").exit_code == 0
    result = run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert client.get_connection("old-0") is None


def test_the_change_set_digest_is_that_of_the_changes_as_a_saved_plan_holds_them() -> None:
    # A saved plan is checked against its JSON (`effect` of each entry); the plan digests its
    # changes without making that JSON. Both must agree, requests and secrets included.
    resources = [
        resource(Kind.CONNECTION, "zoo", s3(secrets=secrets())),
        resource(Kind.CONNECTION, "kept", s3()),
        resource(Kind.TABLE, "t", detail_table()),
        resource(Kind.INGESTION_JOB, "j", job_spec()),
    ]
    live = live_state(
        connections={"kept": live_connection("kept"), "gone": live_connection("gone")}
    )
    plan = make_plan(resources, live, PlanOptions(prune=True))
    assert {str(c.action) for c in plan.changes} >= {"create", "noop", "delete"}
    entries = [effect(change.to_json()) for change in plan.changes]
    assert plan.digests["changes"] == digest(entries)
