"""Outputs: small classes and functions over the same data (text for terminals, JSON, Markdown).

Every value that came from a manifest or from the server goes through one `Output`: redacted
first, then escaped for the edge it is written to (terminal, Markdown, JSON), and cut only after
it is redacted: a cut never leaves a piece of a secret, and nothing a manifest says can forge a
line of a terminal or structure of a pull-request comment. Markdown from every command stays under MARKDOWN_LIMIT and ends by saying
what it left out and how to see everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.ci_output import annotation
from reconciler.model import DRIFT_STATUSES as STATUSES
from reconciler.model import Action, ManifestError
from reconciler.output import Output, Redact, unchanged
from reconciler.redact import shorten
from reconciler.values import FieldOp

# Only for types: `reconciler validate` renders its problems here without loading the planner,
# the API client and httpx.
if TYPE_CHECKING:
    from reconciler.apply import ApplyResult
    from reconciler.drift import DriftReport
    from reconciler.plan import Plan
    from reconciler.values import Change, FieldChange, Request

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin
VALUE_LIMIT = 120  # characters of one value in a diff line
FAILURE_FORMAT_VERSION = "1"  # of `validate --format json` and of any failure in JSON
DIFF_LINES = 40  # diff lines shown per resource in Markdown; the JSON plan has all of them

SYMBOLS = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.REPLACE: ("-/+", "magenta"),
    Action.DELETE: ("-", "red"),
    Action.NOOP: ("=", None),
    Action.RESUBMIT: ("↻", "cyan"),
    Action.SKIP: ("·", None),
    Action.SUSPEND: ("‖", "yellow"),
    Action.RESUME: ("▶", "green"),
}
ANSI = {"green": "32", "yellow": "33", "magenta": "35", "red": "31", "cyan": "36", "bold": "1"}


def _value(value: Any, out: Output) -> str:
    # Redacted before it is encoded and cut: a cut secret would leave a prefix the redactor
    # cannot recognise, and an encoded one a form it does not know.
    return shorten(out.json(value, indent=None, sort_keys=True), VALUE_LIMIT)


def diff_line(change: FieldChange, redact: Redact = unchanged) -> str:
    """One field-level difference, redacted and with long values cut (not yet escaped)."""
    out = Output(redact)
    path = out.plain(change.dotted)
    if change.op is FieldOp.ADD:
        return f"+ {path}: {_value(change.after, out)}"
    if change.op is FieldOp.REMOVE:
        return f"- {path}: {_value(change.before, out)}"
    return f"~ {path}: {_value(change.before, out)} -> {_value(change.after, out)}"


def summary_sentence(plan: Plan) -> str:
    """`Plan: 2 to create, 1 to update, 0 to delete, 1 to resubmit.`, like Terraform's last line."""
    counts = plan.summary()
    parts = [f"{counts['create']} to create", f"{counts['update']} to update"]
    if counts["replace"]:
        parts.append(f"{counts['replace']} to replace")
    parts.append(f"{counts['delete']} to delete")
    for action in ("resubmit", "suspend", "resume"):
        if counts.get(action):
            parts.append(f"{counts[action]} to {action}")
    return f"Plan: {', '.join(parts)}."


# Bounded Markdown ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """Items of one sort (warnings, resources, rows), shown in order while they fit."""

    noun: str  # what one item is, for the notice: "warning", "resource", "error"
    items: Sequence[str]
    header: str = ""  # written before the first item shown (a table head, <details>)
    footer: str = ""  # written after the last item shown (</details>)
    separator: str = "\n"


class BoundedMarkdown:
    """A Markdown document that never exceeds `limit` and always says what it left out."""

    NOTICE_ROOM = 600  # the notice is at most this long; it is always kept free

    def __init__(self, head: Sequence[str], see_all: str, limit: int = MARKDOWN_LIMIT) -> None:
        self.body = "\n".join(head)
        self.see_all = see_all
        self.limit = limit
        self.left_out: Counter[str] = Counter()

    def add(self, section: Section) -> None:
        """Add as many items of `section` as fit; count the rest."""
        shown = 0
        room = self.limit - self.NOTICE_ROOM - len(section.footer) - 2
        for item in section.items:
            start = f"\n\n{section.header}" if not shown else section.separator
            if self.left_out or len(self.body) + len(start) + len(item) > room:
                self.left_out[section.noun] += 1
                continue
            self.body += start + item
            shown += 1
        if shown and section.footer:
            self.body += "\n" + section.footer

    def render(self) -> str:
        """The document, ending with what was left out and how to see all of it."""
        if not self.left_out:
            return self.body
        counts = " and ".join(f"{n:,} {noun}(s)" for noun, n in self.left_out.items())
        notice = (
            f"\n\n**Truncated:** {counts} not shown, to stay under {self.limit:,} characters. "
            f"See everything with {self.see_all}."
        )
        return self.body + notice


# Plans ----------------------------------------------------------------------------------------


class PlanText:
    """Aligned, optionally coloured lines for a terminal or a CI log."""

    def __init__(
        self, color: bool = False, show_noop: bool = True, redact: Redact = unchanged
    ) -> None:
        self.color = color
        self.show_noop = show_noop
        self.redact = redact
        self.out = Output(redact)

    def paint(self, text: str, color: str | None) -> str:
        """Wrap `text` in an ANSI colour when colour is on."""
        return f"\033[{ANSI[color]}m{text}\033[0m" if self.color and color else text

    def text(self, value: object) -> str:
        """A value from a manifest or the server, safe to print on one terminal line."""
        return self.out.terminal(value)

    def render(self, plan: Plan) -> str:
        """The whole plan as text."""
        shown = [c for c in plan.changes if self.show_noop or c.action is not Action.NOOP]
        refs = {id(c): self.text(c.ref) for c in shown}
        width = max((len(ref) for ref in refs.values()), default=0)
        lines: list[str] = []
        for change in shown:
            symbol, color = SYMBOLS[change.action]
            reason = self.text(change.reason)
            head = f"{symbol:>3} {refs[id(change)]:<{width}}  {change.action:<8}  {reason}"
            lines.append(self.paint(head, color))
            lines.extend(f"        {self.text(diff_line(d, self.redact))}" for d in change.diff)
            lines.extend(f"        note: {self.text(note)}" for note in change.notes)
            lines.extend(
                self.paint(f"        WARNING: {self.text(w)}", "red") for w in change.warnings
            )
        for test in plan.preflight:
            failed = test.result == "failed"
            lines.append(self.paint(f"preflight: {self.text(test)}", "red" if failed else None))
        for kind, name in plan.unmanaged:
            if not any(c.kind == kind and c.name == name for c in plan.changes):
                lines.append(
                    f"  ? {self.text(f'{kind}/{name}')}  unmanaged: exists in the project, "
                    "no manifest declares it"
                )
        for error in plan.errors:
            lines.append(self.paint(f"error: {self.text(error)}", "red"))
        if not plan.has_changes and not plan.errors:
            lines.append("No changes. Live state matches the manifests.")
        lines.append(self.paint(summary_sentence(plan), "bold"))
        return "\n".join(lines)


class PlanJson:
    """The machine-readable plan, as the README (Commands) documents it."""

    def __init__(self, redact: Redact = unchanged) -> None:
        self.out = Output(redact)

    def render(self, plan: Plan) -> str:
        """The plan as one JSON object, redacted before it is encoded."""
        return self.out.json(plan.to_json())


class PlanMarkdown:
    """A pull-request comment: summary table first, then errors, warnings and a block per resource."""

    def __init__(self, limit: int = MARKDOWN_LIMIT, redact: Redact = unchanged) -> None:
        self.limit = limit
        self.redact = redact
        self.out = Output(redact)

    def md(self, value: object) -> str:
        """A value from a manifest or the server as inline Markdown that shows just that."""
        return self.out.markdown(value)

    def render(self, plan: Plan) -> str:
        """The plan as Markdown, cut below the comment limit with a visible notice."""
        head = ["### Polaris reconciler plan", "", "| action | count |", "|---|---:|"]
        head += [f"| {action} | {count} |" for action, count in plan.summary().items()]
        head += ["", f"**{summary_sentence(plan)}**"]
        doc = BoundedMarkdown(head, "`reconciler plan --format json`", self.limit)
        doc.add(
            Section(
                "error",
                [
                    f"> **error:** <code>{self.md(f'{e.kind}/{e.name}')}</code>: {self.md(e.message)}"
                    for e in plan.errors
                ],
                separator="\n>\n",
            )
        )
        doc.add(
            Section(
                "warning",
                [
                    f"> :warning: **<code>{self.md(c.ref)}</code>**: {self.md(w)}"
                    for c in plan.changes
                    for w in c.warnings
                ],
                separator="\n>\n",
            )
        )
        doc.add(
            Section(
                "preflight test",
                [
                    f"| <code>{self.md(t.connection)}</code> | {self.md(t.result)} "
                    f"| {self.md(t.message)} |"
                    for t in plan.preflight
                ],
                header="| preflight: connection | test | message |\n|---|---|---|\n",
            )
        )
        doc.add(
            Section(
                "resource",
                [self.block(c) for c in plan.changes if c.action is not Action.NOOP],
                separator="\n\n",
            )
        )
        noop = [c for c in plan.changes if c.action is Action.NOOP]
        doc.add(
            Section(
                "unchanged resource",
                [f"- <code>{self.md(c.ref)}</code>: {self.md(c.reason)}" for c in noop],
                header=f"<details><summary>{len(noop)} unchanged</summary>\n\n",
                footer="\n</details>",
            )
        )
        shown = {(c.kind, c.name) for c in plan.changes}
        unmanaged = [(k, n) for k, n in plan.unmanaged if (k, n) not in shown]
        doc.add(
            Section(
                "unmanaged resource",
                [f"- <code>{self.md(f'{kind}/{name}')}</code>" for kind, name in unmanaged],
                header=(
                    f"<details><summary>{len(unmanaged)} unmanaged: in the project, "
                    "no manifest declares them</summary>\n\n"
                ),
                footer="\n</details>",
            )
        )
        return doc.render()

    def block(self, change: Change) -> str:
        """One resource as a collapsed details block."""
        lines = [
            f"<details><summary><code>{change.action}</code> <code>{self.md(change.ref)}</code>: "
            f"{self.md(change.reason)}</summary>",
            "",
        ]
        if change.file:
            lines.append(f"File: <code>{self.md(change.file)}</code>")
        if change.diff:
            diff = [diff_line(item, self.redact) for item in change.diff[:DIFF_LINES]]
            more = len(change.diff) - DIFF_LINES
            if more > 0:
                diff.append(f"# ... {more} more field(s): see the JSON plan")
            lines += ["", self.out.fence(diff, "diff")]
        lines += [f"- note: {self.md(note)}" for note in change.notes]
        lines += [f"- **WARNING:** {self.md(warning)}" for warning in change.warnings]
        return "\n".join([*lines, "", "</details>"])


# Apply ----------------------------------------------------------------------------------------


def render_apply(
    result: ApplyResult, fmt: str, redact: Redact = unchanged, limit: int = MARKDOWN_LIMIT
) -> str:
    """What apply did, as text, JSON or Markdown."""
    out = Output(redact)
    counts = {status: result.count(status) for status in ("done", "failed", "skipped", "unchanged")}
    sentence = "Apply {}: {}.".format(
        "interrupted" if result.interrupted else "failed" if result.failed else "complete",
        ", ".join(f"{n} {status}" for status, n in counts.items()),
    )
    if fmt == "json":
        payload = {
            "formatVersion": "1",
            "summary": counts,
            "results": [outcome.to_json() for outcome in result.outcomes],
        }
        return out.json(payload)
    rows = [o for o in result.outcomes if o.status != "unchanged"]
    if fmt == "markdown":
        md = out.markdown

        doc = BoundedMarkdown(
            ["### Polaris reconciler apply", "", f"**{sentence}**"],
            "`reconciler apply --format json` or in the job log",
            limit,
        )
        doc.add(
            Section(
                "resource",
                [
                    f"| <code>{md(o.change.ref)}</code> | {o.change.action} | {o.status} "
                    f"| {md(o.message)} |"
                    for o in rows
                ],
                header="| resource | action | status | detail |\n|---|---|---|---|\n",
            )
        )
        return doc.render()

    text = out.terminal
    refs = {id(o): text(o.change.ref) for o in result.outcomes}
    width = max((len(refs[id(o)]) for o in rows), default=0)
    lines = [
        f"{o.status:<8} {refs[id(o)]:<{width}}  {o.change.action:<8}  {text(o.message)}"
        for o in rows
    ]
    followed = [
        (o, row)
        for o in result.outcomes
        if o.report is not None and (row := o.report.row(o.status == "failed")) is not None
    ]
    if followed:
        lines += ["", f"{'job':<38} {'status':<10} {'rows ingested':>13}  resource"]
        for o, (job_id, status, rows_in) in followed:
            lines.append(
                f"{text(job_id):<38} {text(status):<10} {text(rows_in):>13}  {refs[id(o)]}"
            )
    lines.append(sentence)
    return "\n".join(lines)


def render_requests(
    planned: list[tuple[Change, list[Request]]],
    fmt: str,
    redact: Redact = unchanged,
    limit: int = MARKDOWN_LIMIT,
) -> str:
    """`plan --show-requests`: each call apply would make, bodies with secrets redacted."""
    out = Output(redact)
    if fmt == "json":
        return out.json(
            [
                {"kind": str(c.kind), "name": c.name, "requests": [r.to_json() for r in calls]}
                for c, calls in planned
            ]
        )
    title = "Requests apply would send (secret values redacted):"
    if not any(calls for _, calls in planned):
        return "Requests apply would send: none."
    shown: list[str] = []
    for change, calls in planned:
        for call in calls:
            body = call.to_json().get("body")
            text = out.json(body, sort_keys=True)
            if fmt == "markdown":
                block = [
                    f"<details><summary><code>{call.method} {out.markdown(call.path)}</code> "
                    f"<code>{out.markdown(change.ref)}</code></summary>",
                    "",
                ]
                if body is not None:
                    block += [out.fence(text.splitlines(), "json"), ""]
                shown.append("\n".join([*block, "</details>"]))
            else:
                lines = [f"{call.method} {out.terminal(call.path)}  ({out.terminal(change.ref)})"]
                if body is not None:
                    lines += [f"    {out.terminal(line)}" for line in text.splitlines()]
                shown.append("\n".join(lines))
    if fmt != "markdown":
        return "\n".join([title, "", *shown])
    doc = BoundedMarkdown(
        [f"#### {title}"], "`reconciler plan --show-requests --format json`", limit
    )
    doc.add(Section("request", shown, separator="\n\n"))
    return doc.render()


# Drift ----------------------------------------------------------------------------------------


def render_drift(
    report: DriftReport, fmt: str, redact: Redact = unchanged, limit: int = MARKDOWN_LIMIT
) -> str:
    """The drift report as text, JSON or Markdown (grouped by status, failing groups first)."""
    from reconciler.drift import FORMAT_VERSION as DRIFT_FORMAT_VERSION  # loaded with `report`

    entries = report.entries
    out = Output(redact)
    if fmt == "json":
        payload = {
            "formatVersion": DRIFT_FORMAT_VERSION,
            "drift": [e.to_json() for e in entries],
            "failOn": sorted(report.fail_on),
            "failed": report.failed,
        }
        return out.json(payload)
    if fmt == "markdown":
        return _drift_markdown(report, out, limit)
    text = out.terminal

    drifted = [e for e in entries if e.status != "in-sync"]
    refs = [text(f"{e.kind}/{e.name}") for e in entries]
    width = max((len(ref) for ref in refs), default=0)
    lines = [
        f"{e.status:<9}  {ref:<{width}}  {text(e.detail)}"
        for e, ref in zip(entries, refs, strict=True)
    ]
    failing = sum(report.fails(e) for e in entries)
    lines.append(
        f"Drift: {len(drifted)} drifted ({failing} failing), {len(entries) - len(drifted)} in sync."
    )
    return "\n".join(lines)


def _drift_markdown(report: DriftReport, out: Output, limit: int) -> str:
    counts = ", ".join(
        f"{report.count(status)} {status}" for status in STATUSES if report.count(status)
    )
    verdict = "fails" if report.failed else "passes"
    head = [
        "### Polaris drift report",
        "",
        f"**Drift {verdict}** (failing statuses: {', '.join(sorted(report.fail_on))}). "
        f"{counts or 'nothing declared or found'}.",
    ]
    if not any(e.status != "in-sync" for e in report.entries):
        return "\n".join([*head, "", "Live state matches the manifests."])
    doc = BoundedMarkdown(head, "`reconciler drift --format json`", limit)
    order = sorted(
        (s for s in STATUSES if s != "in-sync"),
        key=lambda s: (s not in report.fail_on, STATUSES.index(s)),
    )
    for status in order:
        group = [e for e in report.entries if e.status == status]
        mark = " (fails)" if status in report.fail_on else ""
        rows = [
            f"| <code>{out.markdown(f'{e.kind}/{e.name}')}</code> | {out.markdown(e.detail)} |"
            for e in group
        ]
        header = f"#### {status}{mark}: {len(group)}\n\n| resource | detail |\n|---|---|\n"
        doc.add(Section(f"{status} resource", rows, header=header))
    return doc.render()


# Validate -------------------------------------------------------------------------------------


def render_problems(
    problems: Sequence[ManifestError],
    fmt: str,
    *,
    valid: bool,
    redact: Redact = unchanged,
    limit: int = MARKDOWN_LIMIT,
) -> list[str]:
    """Validation problems as JSON, Markdown, or one text line each."""
    out = Output(redact)
    if fmt == "json":
        payload: dict[str, Any] = {
            "formatVersion": FAILURE_FORMAT_VERSION,
            "valid": valid,
            "problems": [problem.to_json() for problem in problems],
        }
        if not valid:
            errors = sum(1 for p in problems if p.severity == "error")
            payload["error"] = {"code": "manifest", "message": f"{errors} error(s) found"}
        return [out.json(payload)]
    if fmt == "markdown":
        errors = sum(1 for p in problems if p.severity == "error")
        title = "Manifests are valid" if valid else f"Manifests are invalid: {errors} error(s)"
        doc = BoundedMarkdown([f"### {title}"], "`reconciler validate --format json`", limit)
        noun = "warning" if valid else "problem"
        doc.add(Section(noun, [f"- {out.markdown(problem)}" for problem in problems]))
        return [doc.render()]
    return [out.terminal(problem) for problem in problems]


# Failures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failed:
    """A run that failed, as its stdout reports it: never blank, in the format asked for."""

    command: str  # plan, apply, drift, ...
    code: str  # an ErrorCode value
    message: str
    hint: str  # what to do about it
    problems: Sequence[ManifestError] = ()
    status: int | None = None  # the HTTP status Polaris answered with, if it answered
    computed: dict[str, Any] | None = None  # what the command computed before it failed


def render_failure(
    failed: Failed, fmt: str, redact: Redact = unchanged, limit: int = MARKDOWN_LIMIT
) -> str:
    """The failure as JSON (beside what was computed), Markdown, a GitHub annotation or text."""
    out = Output(redact)
    if fmt == "json":
        error: dict[str, Any] = {"code": failed.code, "message": failed.message}
        if failed.status is not None:
            error["status"] = failed.status
        if failed.problems:
            error["problems"] = [p.to_json() for p in failed.problems]
        payload = {
            "formatVersion": FAILURE_FORMAT_VERSION,
            **(failed.computed or {}),
            "error": error,
        }
        return out.json(payload)
    if fmt == "markdown":
        head = [
            f"### Polaris reconciler {out.markdown(failed.command)} failed",
            "",
            f"> **error:** {out.markdown(failed.message)}",
            "",
            f"**What to do:** {failed.hint}",  # the reconciler's own words, Markdown as written
        ]
        doc = BoundedMarkdown(head, "the job log", limit)
        doc.add(Section("problem", [f"- {out.markdown(p)}" for p in failed.problems]))
        return doc.render()
    if fmt == "github":
        return annotation(
            "error", failed.message, title=f"reconciler {failed.command}", redact=redact
        )
    # text: the line stderr shows, for a stdout that goes to a file or a pipe
    return "\n".join(out.terminal(line) for line in f"error: {failed.message}".split("\n"))
