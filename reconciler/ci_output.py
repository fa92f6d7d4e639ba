"""Output for CI systems: GitHub workflow-command annotations and JUnit XML.

Annotations (`::error file=F,line=L::message`) make GitHub show a problem on the line of the diff
it belongs to. Their escaping follows GitHub's runner (`CommandExtensions` in actions/runner):
in the message `%`, CR and LF are percent-encoded; in a property value `:` and `,` are too, since
they separate properties. JUnit XML is what CI dashboards (GitLab, Jenkins, ...) read as tests:
one test case per manifest file for validate, one per resource for drift.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from reconciler.model import Action, Location, ManifestError

if TYPE_CHECKING:  # only for types: `reconciler validate` writes its output without the planner
    from reconciler.drift import DriftReport
    from reconciler.plan import Plan

# Where each declared resource is, by (kind, name): plans and drift entries only know the file.
Locations = Mapping[tuple[str, str], Location]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# XML 1.0 cannot hold these characters at all, escaped or not (names come from the server).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape_data(text: str) -> str:
    """A workflow-command message, percent-encoded as GitHub's runner decodes it.

    Other control characters (a terminal escape in a name from the server) are encoded the same
    way; the runner leaves them as text, so they reach the log visible and harmless.
    """
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _CONTROL.sub(lambda match: f"%{ord(match.group()):02X}", text)


def escape_property(text: str) -> str:
    """A workflow-command property value (file, title): the message escapes plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str, message: str, *, location: Location | None = None, title: str | None = None
) -> str:
    """One `::error|warning|notice ...::message` line."""
    properties: list[str] = []
    if location is not None:
        properties.append(f"file={escape_property(location.file)}")
        properties += [f"line={location.line}", f"col={location.col}"]
    if title:
        properties.append(f"title={escape_property(title)}")
    head = f"{level} {','.join(properties)}" if properties else level
    return f"::{head}::{escape_data(message)}"


def validate_annotations(problems: Iterable[ManifestError]) -> list[str]:
    """An annotation for every validation error and warning, on its line."""
    return [
        annotation(
            "error" if problem.severity == "error" else "warning",
            problem.message,
            location=problem.location,
            title=problem.resource or "reconciler validate",
        )
        for problem in problems
    ]


def plan_annotations(plan: Plan, locations: Locations) -> list[str]:
    """A notice on every resource that would change; warnings and errors as such."""
    lines: list[str] = []
    for change in plan.changes:
        where = locations.get((str(change.kind), change.name))
        if change.action not in (Action.NOOP, Action.SKIP):
            detail = "\n".join(
                [change.reason]
                + [f"{item.op} {item.path}" for item in change.diff]
                + [f"note: {note}" for note in change.notes]
            )
            lines.append(
                annotation("notice", detail, location=where, title=f"{change.ref}: {change.action}")
            )
        lines += [
            annotation("warning", warning, location=where, title=change.ref)
            for warning in change.warnings
        ]
    lines += [
        annotation(
            "error",
            error.message,
            location=locations.get((str(error.kind), error.name)),
            title=f"{error.kind}/{error.name}",
        )
        for error in plan.errors
    ]
    return lines


def drift_annotations(report: DriftReport, locations: Locations) -> list[str]:
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
            )
        )
    return lines


def validate_junit(files: Iterable[str], problems: Iterable[ManifestError]) -> str:
    """JUnit XML with one test case per manifest file; its errors are the failures."""
    by_file: dict[str, list[ManifestError]] = {str(file): [] for file in files}
    for problem in problems:
        by_file.setdefault(problem.location.file, []).append(problem)
    cases = []
    for file, found in sorted(by_file.items()):
        errors = [p for p in found if p.severity == "error"]
        case = _case("reconciler.validate", file)
        if errors:
            failure = ET.SubElement(
                case, "failure", message=_xml(errors[0].message), type="ManifestError"
            )
            failure.text = _xml("\n".join(str(p) for p in errors))
        warnings = [p for p in found if p.severity != "error"]
        if warnings:
            ET.SubElement(case, "system-out").text = _xml("\n".join(str(p) for p in warnings))
        cases.append(case)
    return _document("reconciler validate", cases)


def drift_junit(report: DriftReport) -> str:
    """JUnit XML with one test case per resource: failing statuses fail, ignored ones are skipped."""
    cases = []
    for entry in report.entries:
        case = _case(f"reconciler.drift.{entry.kind}", entry.name)
        if entry.status == "ignored":
            ET.SubElement(case, "skipped", message=_xml(entry.detail))
        elif report.fails(entry):
            failure = ET.SubElement(case, "failure", message=_xml(entry.detail), type=entry.status)
            failure.text = _xml(f"{entry.kind}/{entry.name}: {entry.status}: {entry.detail}")
        elif entry.status != "in-sync":
            ET.SubElement(case, "system-out").text = _xml(f"{entry.status}: {entry.detail}")
        cases.append(case)
    return _document("reconciler drift", cases)


def _case(classname: str, name: str) -> ET.Element:
    return ET.Element("testcase", classname=_xml(classname), name=_xml(name), time="0")


def _document(name: str, cases: list[ET.Element]) -> str:
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


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids (even escaped) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)
