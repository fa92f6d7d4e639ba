"""Plan outputs: small classes over the same Plan data (text for terminals, JSON, Markdown for PRs)."""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.apply import ApplyResult, Request
from reconciler.normalize import FieldChange
from reconciler.plan import Action, Change, Plan

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin

SYMBOLS = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.REPLACE: ("-/+", "magenta"),
    Action.DELETE: ("-", "red"),
    Action.NOOP: ("=", None),
    Action.RESUBMIT: ("↻", "cyan"),
    Action.SKIP: ("·", None),
    Action.CANCEL: ("x", "red"),
}
ANSI = {"green": "32", "yellow": "33", "magenta": "35", "red": "31", "cyan": "36", "bold": "1"}


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _diff_line(change: FieldChange) -> str:
    if change.op == "add":
        return f"+ {change.path}: {_value(change.after)}"
    if change.op == "remove":
        return f"- {change.path}: {_value(change.before)}"
    return f"~ {change.path}: {_value(change.before)} -> {_value(change.after)}"


def summary_sentence(plan: Plan) -> str:
    """`Plan: 2 to create, 1 to update, 0 to delete, 1 to resubmit.`, like Terraform's last line."""
    counts = plan.summary()
    parts = [f"{counts['create']} to create", f"{counts['update']} to update"]
    if counts["replace"]:
        parts.append(f"{counts['replace']} to replace")
    parts.append(f"{counts['delete']} to delete")
    for action in ("resubmit", "cancel"):
        if counts.get(action):
            parts.append(f"{counts[action]} to {action}")
    return f"Plan: {', '.join(parts)}."


class PlanText:
    """Aligned, optionally coloured lines for a terminal or a CI log."""

    def __init__(self, color: bool = False, show_noop: bool = True) -> None:
        self.color = color
        self.show_noop = show_noop

    def paint(self, text: str, color: str | None) -> str:
        """Wrap `text` in an ANSI colour when colour is on."""
        return f"\033[{ANSI[color]}m{text}\033[0m" if self.color and color else text

    def render(self, plan: Plan) -> str:
        """The whole plan as text."""
        shown = [c for c in plan.changes if self.show_noop or c.action is not Action.NOOP]
        width = max((len(c.ref) for c in shown), default=0)
        lines: list[str] = []
        for change in shown:
            symbol, color = SYMBOLS[change.action]
            head = f"{symbol:>3} {change.ref:<{width}}  {change.action:<8}  {change.reason}"
            lines.append(self.paint(head, color))
            lines.extend(f"        {_diff_line(item)}" for item in change.diff)
            lines.extend(f"        note: {note}" for note in change.notes)
            lines.extend(self.paint(f"        WARNING: {w}", "red") for w in change.warnings)
        for test in plan.preflight:
            failed = test.result == "failed"
            lines.append(self.paint(f"preflight: {test}", "red" if failed else None))
        for kind, name in plan.unmanaged:
            if not any(c.kind == kind and c.name == name for c in plan.changes):
                lines.append(
                    f"  ? {kind}/{name}  unmanaged: exists in the project, no manifest declares it"
                )
        for error in plan.errors:
            lines.append(self.paint(f"error: {error}", "red"))
        if not plan.has_changes and not plan.errors:
            lines.append("No changes. Live state matches the manifests.")
        lines.append(self.paint(summary_sentence(plan), "bold"))
        return "\n".join(lines)


class PlanJson:
    """CONTRACT.md's machine-readable plan."""

    def render(self, plan: Plan) -> str:
        """The plan as one JSON object."""
        return json.dumps(plan.to_json(), indent=2, ensure_ascii=False, default=str)


class PlanMarkdown:
    """A pull-request comment: summary table first, then a collapsed block per resource."""

    def __init__(self, limit: int = MARKDOWN_LIMIT) -> None:
        self.limit = limit

    def render(self, plan: Plan) -> str:
        """The plan as Markdown, cut below the comment limit with a visible notice."""
        head = ["### Polaris reconciler plan", "", "| action | count |", "|---|---:|"]
        head += [f"| {action} | {count} |" for action, count in plan.summary().items()]
        head += ["", f"**{summary_sentence(plan)}**", ""]
        for error in plan.errors:
            head.append(f"> **error:** `{error.kind}/{error.name}`: {error.message}")
        warnings = [(c, w) for c in plan.changes for w in c.warnings]
        for change, warning in warnings:
            head.append(f"> :warning: **`{change.ref}`**: {warning}")
        if plan.preflight:
            head += ["", "| preflight: connection | test | message |", "|---|---|---|"]
            for test in plan.preflight:
                message = _escape(test.message).replace("|", "\\|")  # a pipe would end the cell
                head.append(f"| `{test.connection}` | {test.result} | {message} |")
            head.append("")
        blocks = [self.block(c) for c in plan.changes if c.action is not Action.NOOP]
        noop = [c for c in plan.changes if c.action is Action.NOOP]
        if noop:
            blocks.append(
                f"<details><summary>{len(noop)} unchanged</summary>\n\n"
                + "\n".join(f"- `{c.ref}`: {c.reason}" for c in noop)
                + "\n\n</details>"
            )
        body = "\n".join(head)
        for index, block in enumerate(blocks):
            notice = (
                f"\n\n**Truncated:** {len(blocks) - index} more resource(s) not shown; "
                "run `reconciler plan` locally or see the JSON plan for everything."
            )
            if len(body) + len(block) + len(notice) + 2 > self.limit:
                return body + notice
            body += "\n\n" + block
        return body

    @staticmethod
    def block(change: Change) -> str:
        """One resource as a collapsed details block."""
        lines = [
            f"<details><summary><code>{change.action}</code> {change.ref}: {_escape(change.reason)}</summary>",
            "",
        ]
        if change.file:
            lines.append(f"File: `{change.file}`")
        if change.diff:
            lines += ["", "```diff", *(_diff_line(item) for item in change.diff), "```"]
        lines += [f"- note: {note}" for note in change.notes]
        lines += [f"- **WARNING:** {warning}" for warning in change.warnings]
        return "\n".join([*lines, "", "</details>"])


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


RENDERERS: dict[str, type[PlanText] | type[PlanJson] | type[PlanMarkdown]] = {
    "text": PlanText,
    "json": PlanJson,
    "markdown": PlanMarkdown,
}


def render_apply(result: ApplyResult, fmt: str) -> str:
    """What apply did, as text, JSON or Markdown."""
    counts = {status: result.count(status) for status in ("done", "failed", "skipped", "unchanged")}
    sentence = "Apply {}: {}.".format(
        "failed" if result.failed else "complete",
        ", ".join(f"{n} {status}" for status, n in counts.items()),
    )
    if fmt == "json":
        payload = {
            "formatVersion": "1",
            "summary": counts,
            "results": [outcome.to_json() for outcome in result.outcomes],
        }
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    rows = [o for o in result.outcomes if o.status != "unchanged"]
    if fmt == "markdown":
        lines = ["### Polaris reconciler apply", "", f"**{sentence}**", ""]
        lines += ["| resource | action | status | detail |", "|---|---|---|---|"]
        lines += [
            f"| `{o.change.ref}` | {o.change.action} | {o.status} | {_escape(o.message)} |"
            for o in rows
        ]
        return "\n".join(lines)
    width = max((len(o.change.ref) for o in rows), default=0)
    lines = [
        f"{o.status:<8} {o.change.ref:<{width}}  {o.change.action:<8}  {o.message}" for o in rows
    ]
    jobs = [
        o
        for o in result.outcomes
        if (o.job is not None and o.metrics is not None) or (o.job and o.status == "failed")
    ]
    if jobs:
        lines += ["", f"{'job':<38} {'status':<10} {'rows ingested':>13}  resource"]
        for o in jobs:
            status = str((o.job or {}).get("executionStatus"))
            rows_in = (o.metrics or {}).get(
                "numRowsPersisted", (o.metrics or {}).get("numRowsProcessed", "-")
            )
            lines.append(f"{o.job_id or '-':<38} {status:<10} {rows_in!s:>13}  {o.change.ref}")
    lines.append(sentence)
    return "\n".join(lines)


def render_requests(planned: list[tuple[Change, list[Request]]], fmt: str) -> str:
    """`plan --show-requests`: each call apply would make, bodies with secrets redacted."""
    if fmt == "json":
        return json.dumps(
            [
                {"kind": str(c.kind), "name": c.name, "requests": [r.to_json() for r in calls]}
                for c, calls in planned
            ],
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    lines = []
    for change, calls in planned:
        for call in calls:
            body = call.to_json().get("body")
            text = json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True, default=str)
            if fmt == "markdown":
                lines += [
                    f"<details><summary><code>{call.method} {_escape(call.path)}</code> "
                    f"{_escape(change.ref)}</summary>",
                    "",
                ]
                # A fence longer than any run of backticks in the body, so no value can close it.
                fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", text))])
                lines += (
                    [f"{fence}json", text, fence, "", "</details>"]
                    if body is not None
                    else ["</details>"]
                )
            else:
                lines.append(f"{call.method} {call.path}  ({change.ref})")
                if body is not None:
                    lines += [f"    {line}" for line in text.splitlines()]
    if not lines:
        return "Requests apply would send: none."
    title = "Requests apply would send (secret values redacted):"
    return "\n".join([f"#### {title}" if fmt == "markdown" else title, "", *lines])
