"""Rendering small synthetic plans: symbols per action, escaping of hostile names, drift statuses.

Each case renders a plan built by hand (tests/builders.py) and looks for one thing a reader sees.
"""

from __future__ import annotations

import json

import pytest

from reconciler.drift import status_of
from reconciler.model import Action, Kind, Reason
from reconciler.plan import Plan
from reconciler.render import PlanJson, PlanMarkdown, PlanText
from reconciler.values import MISSING, FieldChange, PlanError
from tests.builders import change, plan_of

HOSTILE = "evil\x1b[2J\rname|`x`<script>*[a](b)\u202egnp.exe"


def text(plan: Plan, **options: bool) -> str:
    return PlanText(**options).render(plan)


@pytest.mark.parametrize(
    ("action", "symbol"),
    [
        pytest.param(Action.CREATE, "+", id="a create is +"),
        pytest.param(Action.UPDATE, "~", id="an update is ~"),
        pytest.param(Action.REPLACE, "-/+", id="a replace is -/+"),
        pytest.param(Action.DELETE, "-", id="a delete is -"),
        pytest.param(Action.NOOP, "=", id="a noop is ="),
        pytest.param(Action.RESUBMIT, "↻", id="a resubmit is ↻"),
        pytest.param(Action.SKIP, "·", id="a skip is ·"),
    ],
)
def test_text_shows_each_action_with_its_symbol(action: Action, symbol: str) -> None:
    first = text(plan_of(change(action=action))).splitlines()[0]
    assert first.split()[:3] == [symbol, "Connection/c", str(action)]


@pytest.mark.parametrize(
    ("plan", "line"),
    [
        pytest.param(plan_of(change(action=Action.CREATE)), "Plan: 1 to create, 0 to update, 0 to delete.",
                     id="the summary counts creates, updates and deletes"),
        pytest.param(plan_of(change(action=Action.REPLACE)),
                     "Plan: 0 to create, 0 to update, 1 to replace, 0 to delete.",
                     id="the summary counts replaces when there are some"),
        pytest.param(plan_of(change(action=Action.RESUBMIT)),
                     "Plan: 0 to create, 0 to update, 0 to delete, 1 to resubmit.",
                     id="the summary counts resubmits when there are some"),
        pytest.param(plan_of(change()), "No changes. Live state matches the manifests.",
                     id="a plan of noops says there is nothing to do"),
        pytest.param(plan_of(change(action=Action.UPDATE, diff=(FieldChange(("bucket",), "a", "b"),))),
                     '        ~ bucket: "a" -> "b"', id="a changed field shows before and after"),
        pytest.param(plan_of(change(action=Action.UPDATE, diff=(FieldChange(("prefix",), MISSING, "p/"),))),
                     '        + prefix: "p/"', id="an added field shows its value"),
        pytest.param(plan_of(change(action=Action.UPDATE, diff=(FieldChange(("prefix",), "p/", MISSING),))),
                     '        - prefix: "p/"', id="a removed field shows its old value"),
        pytest.param(plan_of(change(notes=("secrets: write-only",))), "        note: secrets: write-only",
                     id="a note is shown under its change"),
        pytest.param(plan_of(change(action=Action.CREATE, warnings=("DOUBLE INGESTION",))),
                     "        WARNING: DOUBLE INGESTION", id="a warning is shown under its change"),
        pytest.param(plan_of(unmanaged=((Kind.TABLE, "u"),)),
                     "  ? Table/u  unmanaged: exists in the project, no manifest declares it",
                     id="an unmanaged resource is listed"),
        pytest.param(plan_of(errors=(PlanError(Kind.TABLE, "t", "cannot", "t.yaml"),)),
                     "error: t.yaml: Table/t: cannot", id="an error names its file and resource"),
    ],
)  # fmt: skip
def test_text_shows(plan: Plan, line: str) -> None:
    assert line in text(plan).splitlines()


def test_text_hides_noops_when_asked() -> None:
    plan = plan_of(change(name="kept"), change(name="created", action=Action.CREATE))
    assert "Connection/kept" not in text(plan, show_noop=False)


def test_text_is_coloured_only_when_asked() -> None:
    plan = plan_of(change(action=Action.CREATE))
    assert ("\033[" in text(plan), "\033[32m" in text(plan, color=True)) == (False, True)


HOSTILE_PLAN = plan_of(
    change(name=HOSTILE, action=Action.CREATE, reason=HOSTILE, warnings=(HOSTILE,),
           notes=(HOSTILE,), diff=(FieldChange((HOSTILE,), MISSING, HOSTILE),)),
    errors=(PlanError(Kind.TABLE, HOSTILE, HOSTILE),),
    unmanaged=((Kind.TABLE, HOSTILE),),
)  # fmt: skip


@pytest.mark.parametrize(
    "character", ["\x1b", "\r", "\u202e"], ids=["escape", "carriage return", "a bidi override"]
)
def test_text_never_writes_a_control_character_a_name_holds(character: str) -> None:
    assert character not in text(HOSTILE_PLAN, color=False)


def test_text_shows_control_characters_as_escapes() -> None:
    assert "evil\\e[2J\\rname" in text(HOSTILE_PLAN).splitlines()[0]


def test_text_passes_every_value_through_the_redactor() -> None:
    shown = PlanText(redact=lambda s: s.replace("evil", "(sensitive)")).render(HOSTILE_PLAN)
    assert "evil" not in shown


@pytest.mark.parametrize(
    "raw",
    ["<script>", "name|", "`x`", "[a](b)", "\x1b", "\r", "\u202e"],
    ids=[
        "an html tag",
        "a table cell",
        "a code span",
        "a link",
        "an escape",
        "a carriage return",
        "a bidi override",
    ],
)
def test_markdown_never_writes_structure_a_name_holds(raw: str) -> None:
    markdown = PlanMarkdown().render(HOSTILE_PLAN)
    outside_fences = markdown.split("```")[::2]
    assert not any(raw in part for part in outside_fences)


def test_markdown_shows_a_hostile_name_as_its_characters() -> None:
    assert (
        "evil&#92;e&#91;2J&#92;rname&#124;&#96;x&#96;&lt;script&gt;&#42;&#91;a&#93;(b)"
        in PlanMarkdown().render(HOSTILE_PLAN)
    )


@pytest.mark.parametrize(
    ("plan", "line"),
    [
        pytest.param(plan_of(change(action=Action.CREATE)), "| create | 1 |",
                     id="the summary table counts each action"),
        pytest.param(plan_of(change(action=Action.CREATE)),
                     "<details><summary><code>create</code> <code>Connection/c</code>: r</summary>",
                     id="a change is a details block named by its action"),
        pytest.param(plan_of(change()), "<details><summary>1 unchanged</summary>",
                     id="noops are folded away"),
        pytest.param(plan_of(change(action=Action.CREATE, warnings=("W",))),
                     "> :warning: **<code>Connection/c</code>**: W", id="warnings are quoted first"),
        pytest.param(plan_of(errors=(PlanError(Kind.TABLE, "t", "no"),)),
                     "> **error:** <code>Table/t</code>: no", id="errors are quoted"),
    ],
)  # fmt: skip
def test_markdown_shows(plan: Plan, line: str) -> None:
    assert line in PlanMarkdown().render(plan).splitlines()


def test_a_diff_value_cannot_close_its_markdown_fence() -> None:
    plan = plan_of(
        change(action=Action.UPDATE, diff=(FieldChange(("description",), "a", "```\n# x"),))
    )
    block = PlanMarkdown().render(plan).split("```diff\n")[1]
    assert block.startswith('~ description: "a" -> "```\\n# x"\n```')


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(plan_of(), id="an empty plan"),
        pytest.param(HOSTILE_PLAN, id="a hostile plan"),
        pytest.param(plan_of(change(action=Action.CREATE), checksum="sha256:x"), id="a create"),
    ],
)
def test_json_is_the_plans_own_json(plan: Plan) -> None:
    assert json.loads(PlanJson().render(plan)) == plan.to_json()


DRIFT = [
    pytest.param(Action.NOOP, Reason.UP_TO_DATE, "in-sync", id="up to date is in sync"),
    pytest.param(Action.NOOP, Reason.EXTERNAL, "in-sync", id="an external resource present is in sync"),
    pytest.param(Action.NOOP, Reason.INGESTED, "in-sync", id="an ingested job is in sync"),
    pytest.param(Action.CREATE, Reason.NOT_FOUND, "missing", id="not found is missing"),
    pytest.param(Action.CREATE, Reason.SPEC_CHANGED, "missing", id="a changed job spec is missing"),
    pytest.param(Action.UPDATE, Reason.FIELDS_DIFFER, "changed", id="differing fields are changed"),
    pytest.param(Action.UPDATE, Reason.ROTATE_SECRETS, "changed", id="a rotation is changed"),
    pytest.param(Action.REPLACE, Reason.TYPE_CHANGES, "changed", id="a type change is changed"),
    pytest.param(Action.RESUBMIT, Reason.FAILED, "failed", id="a failed job is failed"),
    pytest.param(Action.RESUBMIT, Reason.UNKNOWN_STATUS, "unknown", id="an unknown status is unknown"),
    pytest.param(Action.SKIP, Reason.CANCELED, "in-sync", id="a canceled job is in sync"),
    pytest.param(Action.SKIP, Reason.IN_USE, "unmanaged", id="a connection prune keeps is unmanaged"),
    pytest.param(Action.SKIP, Reason.UNADDRESSABLE, "unmanaged",
                 id="a connection prune cannot address is unmanaged"),
    pytest.param(Action.DELETE, Reason.NOT_DECLARED, "unmanaged", id="a connection prune deletes is unmanaged"),
]  # fmt: skip


@pytest.mark.parametrize(("action", "why", "status"), DRIFT)
def test_drift_status(action: Action, why: Reason, status: str) -> None:
    assert status_of(change(action=action, why=why))[0] == status
