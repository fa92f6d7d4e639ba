"""Plans saved by `plan --out` and applied later: what they hold and how their integrity is kept.

A saved plan holds the plan exactly as `Plan.to_json` serializes it (changes with their before
and desired bodies and their requests, secrets by reference), the manifest paths and options it
was made with, the project it is for, and a digest of all of that. apply plans again and carries
the saved plan out only when the checksums agree (Terraform's saved plans are stale the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.output import Output
from reconciler.plan import Plan, PlanOptions
from reconciler.redact import Redactor

SAVED_PLAN_KIND = "reconciler-saved-plan"


class SavedPlanError(ReconcilerError):
    """A file that is not an intact saved plan."""

    code = ErrorCode.SAVED_PLAN


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan, read back and checked."""

    paths: tuple[str, ...]  # absolute
    url: str | None
    project: str | None
    options: PlanOptions
    checksum: str


def integrity(saved: Mapping[str, Any]) -> str:
    """A digest of everything in a saved plan but the digest itself: any edit changes it."""
    content = {key: value for key, value in saved.items() if key != "integrity"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def save(
    out: str, paths: Sequence[str], url: str | None, project: str | None, options: PlanOptions,
    plan: Plan, redactor: Redactor,
) -> None:  # fmt: skip
    """Write the plan to `out`, through the redactor (a plan never holds a secret value)."""
    home = Path(out).resolve().parent
    content: dict[str, Any] = {
        "kind": SAVED_PLAN_KIND,
        # Relative to the plan file, so apply finds the manifests from any directory.
        "paths": [os.path.relpath(Path(p).resolve(), home) for p in paths],
        "url": url,
        "project": project,
        "options": {
            "resubmitCanceled": options.resubmit_canceled,
            "rotateSecrets": options.rotate_secrets,
            "prune": options.prune,
        },
        "plan": json.loads(json.dumps(plan.to_json(), default=str)),
    }
    saved: dict[str, Any] = Output(redactor).data(content)  # redacted, then encoded
    saved["integrity"] = integrity(saved)
    try:
        Path(out).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise SavedPlanError(f"cannot write the plan to {out}: {error.strerror}") from None


def looks_saved(paths: Sequence[str]) -> bool:
    """Whether apply's arguments name a saved plan rather than manifests."""
    return len(paths) == 1 and paths[0].endswith(".json") and Path(paths[0]).is_file()


def load(file: str) -> SavedPlan:
    """Read a saved plan; refuse one that was edited or is not a saved plan."""
    where = Output().terminal(file)
    try:
        saved = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SavedPlanError(f"{where} is not a saved plan: {Output().terminal(error)}") from None
    if not isinstance(saved, dict) or saved.get("kind") != SAVED_PLAN_KIND:
        raise SavedPlanError(f"{where} is not a plan saved by `reconciler plan --out`")
    if saved.get("integrity") != integrity(saved):
        raise SavedPlanError(
            f"{where} was changed after `reconciler plan --out` saved it (its integrity checksum "
            "does not match); a saved plan is applied only as it was reviewed: make a new one"
        )
    home = Path(file).resolve().parent
    stored = saved.get("paths")
    if not isinstance(stored, list) or not all(isinstance(p, str) for p in stored):
        raise SavedPlanError(f"{where} names no manifest paths; make a new plan")
    chosen = saved.get("options") or {}
    return SavedPlan(
        paths=tuple(str(home / p) for p in stored),
        url=saved.get("url"),
        project=saved.get("project"),
        options=PlanOptions(
            bool(chosen.get("resubmitCanceled")),
            bool(chosen.get("rotateSecrets")),
            bool(chosen.get("prune")),
        ),
        checksum=str((saved.get("plan") or {}).get("checksum")),
    )
