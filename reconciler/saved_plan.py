"""Plans saved by `plan --out` and applied later: what they hold and how their integrity is kept.

A saved plan holds the plan exactly as `Plan.to_json` serializes it (changes with their before
and desired bodies and their requests, secrets by reference), the manifest paths and options it
was made with, the project it is for, the digests of what the plan's checksum covers (plan.digests), and a digest
of all of that. apply plans again and carries the saved plan out only when the new plan is the
same in every part: manifests, live state, options and each change's action and requests
(Terraform's saved plans are stale the same way); otherwise it names what differs.

The integrity field is a plain sha256 anyone can recompute: it catches accidents (a truncated
download, an editor's stray keystroke), not someone who can rewrite CI artifacts. Such a person
can also write a whole new plan file; what protects the project then is who may write artifacts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.model import SENSITIVE
from reconciler.output import Output
from reconciler.plan import Plan, digest, effect, options_json
from reconciler.redact import Redactor
from reconciler.values import PlanOptions

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
    digests: Mapping[str, str]  # plan.digests as saved (empty in files from before they were)
    changes: tuple[Mapping[str, Any], ...]  # each change's effect (plan.effect), as reviewed

    def differences(self, plan: Plan) -> list[str]:
        """What differs between this reviewed plan and `plan`, made again from the same files
        with the options this file holds; empty when `plan` may be carried out in its place."""
        found = []
        if self.digests:
            if self.digests.get("options") != plan.digests.get("options"):
                found.append(self._options_changed())
            for part, what in (("manifests", "the manifests"), ("live", "the live state")):
                if self.digests.get(part) != plan.digests.get(part):
                    found.append(f"{what} changed since the plan was made")
        found += _changes_differ(self.changes, [effect(c.to_json()) for c in plan.changes])
        if not found and self.digests.get("changes", plan.digests.get("changes")) != (
            plan.digests.get("changes")
        ):
            found.append(
                "a change sends other values than reviewed where the saved plan hides them"
            )
        if not found and self.checksum != plan.checksum:
            found.append("the checksums differ")
        return found

    def _options_changed(self) -> str:
        """Which options this file says, against those the plan was reviewed with: those are
        found among the few possible values by their digest."""
        now = options_json(self.options)
        for flags in itertools.product((False, True), repeat=len(now)):
            reviewed = dict(zip(now, flags, strict=True))
            if digest(reviewed) == self.digests.get("options"):
                return "; ".join(
                    f"option {_SNAKE[name]}: {_bool(reviewed[name])} in the reviewed plan, "
                    f"{_bool(now[name])} now"
                    for name in now
                    if now[name] != reviewed[name]
                )
        return "the options are not those the plan was reviewed with"


_SNAKE = {
    "resubmitCanceled": "resubmit-canceled",
    "rotateSecrets": "rotate-secrets",
    "prune": "prune",
}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _shown_as(saved: Any, fresh: Any) -> bool:
    """Whether `saved`, as the saved plan shows it, is `fresh` seen through the redactor: equal,
    except where a string shows SENSITIVE in place of text it hid (the digest covers that text)."""
    if isinstance(saved, Mapping) and isinstance(fresh, Mapping):
        if saved.keys() == fresh.keys():
            return all(_shown_as(saved[k], fresh[k]) for k in saved)
        return _keys_shown_as(saved, fresh)
    if isinstance(saved, list) and isinstance(fresh, list):
        return len(saved) == len(fresh) and all(map(_shown_as, saved, fresh))
    if isinstance(saved, str) and isinstance(fresh, str) and SENSITIVE in saved and saved != fresh:
        hidden = ".+?".join(re.escape(part) for part in saved.split(SENSITIVE))
        return re.fullmatch(hidden, fresh, re.DOTALL) is not None
    return bool(saved == fresh)


def _keys_shown_as(saved: Mapping[str, Any], fresh: Mapping[str, Any]) -> bool:
    """`_shown_as` for objects whose keys the redactor changed (a key holding a secret's text;
    two such keys may even have become one): every other key is equal, and every fresh key left
    hides behind a saved key that shows SENSITIVE (the digest covers what the file hides)."""
    hidden = [key for key in saved if SENSITIVE in key]
    plain = [key for key in saved if SENSITIVE not in key]
    if not hidden or any(k not in fresh or not _shown_as(saved[k], fresh[k]) for k in plain):
        return False
    rest = [key for key in fresh if key not in plain]
    behind = {key: [h for h in hidden if _shown_as(h, key)] for key in rest}
    # Of keys that became one, the saved value is the last one's: one of them must have it.
    return all(behind.values()) and all(
        any(h in behind[key] and _shown_as(saved[h], fresh[key]) for key in rest) for h in hidden
    )


def _changes_differ(
    reviewed: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Each change that is new, gone, or carried out otherwise, by `Kind/name`. A saved name may
    show SENSITIVE where it held a secret's text: changes pair up in plan order, each saved one
    with the first fresh one of its kind that it is shown as."""
    unpaired = list(fresh)
    pairs = []
    for old in reviewed:
        new = next(
            (c for c in unpaired if c["kind"] == old["kind"] and _shown_as(old["name"], c["name"])),
            None,
        )
        if new is not None:
            unpaired.remove(new)
        pairs.append((old, new))
    found = []
    for old, new in pairs:
        if new is None:
            found.append(
                f"{old['kind']}/{old['name']}: {old['action']} in the reviewed plan, not now"
            )
        elif old["action"] != new["action"]:
            found.append(
                f"{new['kind']}/{new['name']}: {old['action']} in the reviewed plan, "
                f"{new['action']} now"
            )
        elif not _shown_as(old["requests"], new["requests"]):
            found.append(
                f"{new['kind']}/{new['name']}: {new['action']} sends other requests than the "
                "reviewed plan"
            )
    found += [
        f"{c['kind']}/{c['name']}: {c['action']} now, not in the reviewed plan" for c in unpaired
    ]
    return found


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
        "options": options_json(options),
        "digests": dict(plan.digests),
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
    reviewed = saved.get("plan") or {}
    changes = reviewed.get("changes") if isinstance(reviewed, dict) else None
    digests = saved.get("digests") or {}
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise SavedPlanError(f"{where} holds no list of changes; make a new plan")
    if not isinstance(digests, dict):
        raise SavedPlanError(f"{where} holds digests that are not an object; make a new plan")
    return SavedPlan(
        paths=tuple(str(home / p) for p in stored),
        url=saved.get("url"),
        project=saved.get("project"),
        options=PlanOptions(
            bool(chosen.get("resubmitCanceled")),
            bool(chosen.get("rotateSecrets")),
            bool(chosen.get("prune")),
        ),
        checksum=str(reviewed.get("checksum")),
        digests={str(k): str(v) for k, v in digests.items()},
        changes=tuple(effect(change) for change in changes),
    )
