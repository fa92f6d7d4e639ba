"""Output for CI systems: GitHub workflow-command annotations and JUnit XML.

Annotations (`::error file=F,line=L::message`) make GitHub show a problem on the line of the diff
it belongs to. JUnit XML is what CI dashboards (GitLab, Jenkins, ...) read as tests: one test case
per manifest file for validate, one per resource for drift. Every text in either goes through an
`Output`: redacted first, then percent-encoded as GitHub's runner decodes it, or handed to the
XML serializer, which escapes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from reconciler.model import Location, ManifestError
from reconciler.output import Output, Redact, unchanged

# xml.etree.ElementTree (with pyexpat under it) is imported by the JUnit functions, when --junit
# asks for XML: `reconciler validate` without it starts without them.
if TYPE_CHECKING:  # only for types: `reconciler validate` writes its output without the planner
    import xml.etree.ElementTree as ET

    from reconciler.drift import DriftReport
    from reconciler.plan import Plan

# Where each declared resource is, by (kind, name): plans and drift entries only know the file.
Locations = Mapping[tuple[str, str], Location]


def annotation(
    level: str,
    message: str,
    *,
    location: Location | None = None,
    title: str | None = None,
    redact: Redact = unchanged,
) -> str:
    """One `::error|warning|notice ...::message` line, redacted before it is encoded."""
    out = Output(redact)
    properties: list[str] = []
    if location is not None:
        properties.append(f"file={out.annotation_property(location.file)}")
        properties += [f"line={location.line}", f"col={location.col}"]
    if title:
        properties.append(f"title={out.annotation_property(title)}")
    head = f"{level} {','.join(properties)}" if properties else level
    return f"::{head}::{out.annotation_message(message)}"


def validate_annotations(
    problems: Iterable[ManifestError], redact: Redact = unchanged
) -> list[str]:
    """An annotation for every validation error and warning, on its line."""
    return [
        annotation(
            "error" if problem.severity == "error" else "warning",
            problem.message,
            location=problem.location,
            title=problem.resource or "reconciler validate",
            redact=redact,
        )
        for problem in problems
    ]


def plan_annotations(plan: Plan, locations: Locations, redact: Redact = unchanged) -> list[str]:
    """A notice on every resource that would change; warnings and errors as such."""
    lines: list[str] = []
    for change in plan.changes:
        where = locations.get((str(change.kind), change.name))
        if change.action.changes_something:
            detail = "\n".join(
                [change.reason]
                + [f"{item.op} {item.dotted}" for item in change.diff]
                + [f"note: {note}" for note in change.notes]
            )
            title = f"{change.ref}: {change.action}"
            lines.append(annotation("notice", detail, location=where, title=title, redact=redact))
        lines += [
            annotation("warning", warning, location=where, title=change.ref, redact=redact)
            for warning in change.warnings
        ]
    lines += [
        annotation(
            "error",
            error.message,
            location=locations.get((str(error.kind), error.name)),
            title=f"{error.kind}/{error.name}",
            redact=redact,
        )
        for error in plan.errors
    ]
    return lines


def drift_annotations(
    report: DriftReport, locations: Locations, redact: Redact = unchanged
) -> list[str]:
    """An error on every resource whose status fails the run, a warning on other drift."""
    lines: list[str] = []
    for entry in report.entries:
        if entry.status in ("in-sync", "ignored"):
            continue
        level = "error" if report.fails(entry) else "warning"
        lines.append(
            annotation(
                level,
                entry.detail,
                location=locations.get((entry.kind, entry.name)),
                title=f"{entry.kind}/{entry.name}: {entry.status}",
                redact=redact,
            )
        )
    return lines


def validate_junit(
    files: Iterable[str], problems: Iterable[ManifestError], redact: Redact = unchanged
) -> str:
    """JUnit XML with one test case per manifest file; its errors are the failures."""
    import xml.etree.ElementTree as ET  # deferred: see the note on imports above

    xml = Output(redact).xml
    by_file: dict[str, list[ManifestError]] = {str(file): [] for file in files}
    for problem in problems:
        by_file.setdefault(problem.location.file, []).append(problem)
    cases = []
    for file, found in sorted(by_file.items()):
        errors = [p for p in found if p.severity == "error"]
        case = _case(xml("reconciler.validate"), xml(file))
        if errors:
            failure = ET.SubElement(
                case, "failure", message=xml(errors[0].message), type="ManifestError"
            )
            failure.text = xml("\n".join(str(p) for p in errors))
        warnings = [p for p in found if p.severity != "error"]
        if warnings:
            ET.SubElement(case, "system-out").text = xml("\n".join(str(p) for p in warnings))
        cases.append(case)
    return _document("reconciler validate", cases)


def drift_junit(report: DriftReport, redact: Redact = unchanged) -> str:
    """JUnit XML with one test case per resource: failing statuses fail, ignored ones are skipped."""
    import xml.etree.ElementTree as ET  # deferred: see the note on imports above

    xml = Output(redact).xml
    cases = []
    for entry in report.entries:
        case = _case(xml(f"reconciler.drift.{entry.kind}"), xml(entry.name))
        if entry.status == "ignored":
            ET.SubElement(case, "skipped", message=xml(entry.detail))
        elif report.fails(entry):
            failure = ET.SubElement(case, "failure", message=xml(entry.detail), type=entry.status)
            failure.text = xml(f"{entry.kind}/{entry.name}: {entry.status}: {entry.detail}")
        elif entry.status != "in-sync":
            ET.SubElement(case, "system-out").text = xml(f"{entry.status}: {entry.detail}")
        cases.append(case)
    return _document("reconciler drift", cases)


def _case(classname: str, name: str) -> ET.Element:
    """A test case; `classname` and `name` are already redacted (`Output.xml`)."""
    import xml.etree.ElementTree as ET  # deferred: see the note on imports above

    return ET.Element("testcase", classname=classname, name=name, time="0")


def _document(name: str, cases: list[ET.Element]) -> str:
    import xml.etree.ElementTree as ET  # deferred: see the note on imports above

    counts = {
        "tests": len(cases),
        "failures": sum(case.find("failure") is not None for case in cases),
        "errors": 0,
        "skipped": sum(case.find("skipped") is not None for case in cases),
    }
    root = ET.Element("testsuites", {k: str(v) for k, v in counts.items()})
    suite = ET.SubElement(
        root, "testsuite", {"name": name, **{k: str(v) for k, v in counts.items()}}
    )
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
