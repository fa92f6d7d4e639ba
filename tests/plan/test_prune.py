"""Prune: deletes what no manifest declares, but never empties a project by mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from tests.cli import run
from tests.fleet import write_fleet


def nine_connections(tmp_path: Path) -> Path:
    """Nine applied connections, declared in one file."""
    fleet = write_fleet(tmp_path / "fleet", connections=9, jobs_per_connection=0)
    (fleet / "all.yaml").write_text(
        "---\n".join(path.read_text() for path in sorted(fleet.glob("fleet-*.yaml")))
    )
    for path in fleet.glob("fleet-*.yaml"):
        path.unlink()
    assert run("apply", str(fleet), "--auto-approve").exit_code == 0
    return fleet


def connection_names(client: PolarisClient) -> list[str]:
    return sorted(c["name"] for c in client.list_connections())


def test_an_emptied_manifest_file_and_prune_delete_nothing_and_say_why(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = nine_connections(tmp_path)
    (fleet / "all.yaml").write_text("# everything moved elsewhere\n")
    for extra in ([], ["--force"]):
        refused = run("apply", str(fleet), "--prune", "--auto-approve", *extra)
        assert refused.exit_code == 1
        assert (
            "refusing to apply: prune would delete all 9 connections of the project "
            "(no manifest declares any of them); pass --allow-empty if you mean it"
        ) in refused.stderr
        assert "declared by no manifest" in refused.stderr  # the plan shows what and why
    assert len(connection_names(client)) == 9
    emptied = run("apply", str(fleet), "--prune", "--auto-approve", "--force", "--allow-empty")
    assert emptied.exit_code == 0, emptied.stderr
    assert connection_names(client) == []


def test_below_ten_connections_prune_deletes_at_most_three_and_at_most_half(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = nine_connections(tmp_path)
    text = (fleet / "all.yaml").read_text().split("---\n")
    (fleet / "all.yaml").write_text("---\n".join(text[:5]))  # 4 of 9 no longer declared
    refused = run("apply", str(fleet), "--prune", "--auto-approve")
    assert refused.exit_code == 1
    assert (
        "too many deletions: 4 of 9 connections (44%); with fewer than 10 connections prune "
        "deletes at most 3 and at most half of them; pass --force if this is intended"
    ) in refused.stderr
    assert len(connection_names(client)) == 9
    (fleet / "all.yaml").write_text("---\n".join(text[:6]))  # 3 of 9: allowed
    pruned = run("apply", str(fleet), "--prune", "--auto-approve")
    assert pruned.exit_code == 0, pruned.stderr
    assert connection_names(client) == [f"fleet-{i}" for i in range(6)]


def test_a_saved_plan_that_empties_the_project_is_refused_the_same_way(
    served: Any, tmp_path: Path, client: PolarisClient
) -> None:
    fleet = nine_connections(tmp_path)
    (fleet / "all.yaml").write_text("")
    saved = run("plan", str(fleet), "--prune", "--out", str(tmp_path / "plan.json"))
    assert saved.exit_code == 0, saved.stderr
    assert saved.stdout.count("declared by no manifest") == 9
    refused = run("apply", str(tmp_path / "plan.json"), "--auto-approve", "--force")
    assert refused.exit_code == 1
    assert "prune would delete all 9 connections of the project" in refused.stderr
    assert len(connection_names(client)) == 9
