"""Steps a user takes in the tests: plan, apply and edit manifests, through the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli import run
from tests.fixtures import external_connection_exists


def write(directory: Path, name: str, text: str) -> Path:
    """Write `text` to `directory/name`, making directories on the way; return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def koalas_job_held(client: Any, emulator: Any) -> str:
    """Apply manifests/ with jobs held pending, and return the Koalas job's id.

    Held, because a job can only fail (or change at all) while it runs: a completed job never
    changes again.
    """
    external_connection_exists(client)
    emulator.hold_jobs()
    apply_all()
    return str(changes_by_name(plan_json())["koalas-demo-file"]["jobId"])


def plan_json(*args: str) -> dict[str, Any]:
    """`reconciler plan --format json ARGS`, which must succeed."""
    result = run("plan", "--format", "json", *args)
    assert result.exit_code in (0, 2), result.stderr
    return dict(result.json())


def changes_by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A plan's changes by resource name."""
    return {change["name"]: change for change in plan["changes"]}


def apply_all(*args: str) -> None:
    """`reconciler apply --auto-approve ARGS`, which must succeed."""
    result = run("apply", "--auto-approve", *args)
    assert result.exit_code == 0, result.stdout + result.stderr


def edit(path: Path, old: str, new: str) -> None:
    """Replace text in a manifest, which must contain it."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
