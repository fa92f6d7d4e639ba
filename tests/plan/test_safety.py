"""`Plan.raise_if_unsafe`, as a table: (plan, allowances) -> refused or allowed, before any change."""

from __future__ import annotations

import re

import pytest

from reconciler.model import Action, Kind, Reason
from reconciler.plan import (
    SAFETY_RULES,
    EmptiesAKind,
    HasErrors,
    NeedsAllowCheckpointChange,
    NeedsAllowReingest,
    NeedsAllowReplace,
    Plan,
    TooManyDeletions,
    UnsafePlan,
)
from reconciler.values import Allowances, PlanError
from tests.builders import change, plan_of

NONE = Allowances()
EVERYTHING = Allowances(
    allow_replace=True, allow_reingest=True, force=True, allow_empty=True,
    allow_checkpoint_change=True,
)  # fmt: skip
CREATE = change(action=Action.CREATE)
REPLACE = change(action=Action.REPLACE)
REINGEST = change(Kind.INGESTION_JOB, "j", action=Action.CREATE, reingest=True)
MOVED = change(Kind.STREAMING_JOB, "s", action=Action.UPDATE, why=Reason.CHECKPOINT)
CONTINUES = change(Kind.STREAMING_JOB, "s", action=Action.UPDATE, why=Reason.CONTINUES)


def pruning(deletes: int, of: int) -> Plan:
    """A plan that deletes `deletes` of the project's `of` connections."""
    return plan_of(
        *(change(name=f"c{i}", action=Action.DELETE) for i in range(deletes)),
        population={Kind.CONNECTION: of},
    )


REFUSED = [
    pytest.param(plan_of(errors=(PlanError(Kind.TABLE, "t", "no"),)), EVERYTHING,
                 id="a plan with errors, whatever is allowed"),
    pytest.param(plan_of(REPLACE), NONE, id="a replace without allow-replace"),
    pytest.param(plan_of(REPLACE), Allowances(allow_reingest=True, force=True),
                 id="a replace with every other flag"),
    pytest.param(plan_of(REINGEST), NONE, id="double ingestion without allow-reingest"),
    pytest.param(plan_of(REINGEST), Allowances(allow_replace=True, force=True),
                 id="double ingestion with every other flag"),
    pytest.param(plan_of(MOVED), NONE, id="a streaming job moved to another topic without the flag"),
    pytest.param(plan_of(MOVED), Allowances(allow_replace=True, allow_reingest=True, force=True),
                 id="a streaming job moved to another topic with every other flag"),
    pytest.param(pruning(9, 9), Allowances(force=True), id="deleting every connection with force alone"),
    pytest.param(pruning(2, 2), Allowances(allow_empty=True),
                 id="deleting every connection of a small project with allow-empty alone"),
    pytest.param(pruning(4, 10), NONE, id="deleting 40% of 10 connections"),
    pytest.param(pruning(31, 100), NONE, id="deleting 31% of 100 connections"),
    pytest.param(pruning(4, 9), NONE, id="deleting more than 3 of fewer than 10 connections"),
    pytest.param(pruning(2, 3), NONE, id="deleting more than half of fewer than 10 connections"),
]  # fmt: skip

ALLOWED = [
    pytest.param(plan_of(), NONE, id="an empty plan"),
    pytest.param(plan_of(CREATE, change(name="d", action=Action.UPDATE)), NONE,
                 id="creates and updates"),
    pytest.param(plan_of(REPLACE), Allowances(allow_replace=True), id="a replace with allow-replace"),
    pytest.param(plan_of(REINGEST), Allowances(allow_reingest=True),
                 id="double ingestion with allow-reingest"),
    pytest.param(plan_of(change(Kind.INGESTION_JOB, "j", action=Action.RESUBMIT)), NONE,
                 id="a resubmit after a failure"),
    pytest.param(plan_of(MOVED), Allowances(allow_checkpoint_change=True),
                 id="a streaming job moved to another topic with allow-checkpoint-change"),
    pytest.param(plan_of(CONTINUES), NONE, id="a streaming job that continues from its checkpoint"),
    pytest.param(pruning(9, 9), Allowances(force=True, allow_empty=True),
                 id="deleting every connection with allow-empty and force"),
    pytest.param(pruning(3, 10), NONE, id="deleting 30% of 10 connections"),
    pytest.param(pruning(30, 100), NONE, id="deleting 30% of 100 connections"),
    pytest.param(pruning(3, 9), NONE, id="deleting 3 of 9 connections"),
    pytest.param(pruning(1, 3), NONE, id="deleting 1 of 3 connections"),
    pytest.param(pruning(2, 4), NONE, id="deleting half of 4 connections"),
    pytest.param(pruning(8, 10), Allowances(force=True), id="deleting 80% with force"),
    pytest.param(plan_of(change(action=Action.SKIP), population={Kind.CONNECTION: 1}), NONE,
                 id="a prune that only skips"),
]  # fmt: skip


@pytest.mark.parametrize(("plan", "allowed"), REFUSED)
def test_apply_refuses(plan: Plan, allowed: Allowances) -> None:
    with pytest.raises(UnsafePlan):
        plan.raise_if_unsafe(allowed)


@pytest.mark.parametrize(("plan", "allowed"), ALLOWED)
def test_apply_allows(plan: Plan, allowed: Allowances) -> None:
    plan.raise_if_unsafe(allowed)


@pytest.mark.parametrize(
    ("plan", "allowed", "words"),
    [
        pytest.param(plan_of(REPLACE), NONE, "pass --allow-replace", id="a replace names its flag"),
        pytest.param(plan_of(REINGEST), NONE, "pass --allow-reingest",
                     id="double ingestion names its flag"),
        pytest.param(plan_of(MOVED), NONE, "pass --allow-checkpoint-change",
                     id="a checkpoint change names its flag"),
        pytest.param(pruning(9, 9), NONE, "delete all 9 connections", id="emptying says how many"),
        pytest.param(pruning(4, 10), NONE, "4 of 10 connections (40%)",
                     id="too many deletions gives the numbers"),
        pytest.param(plan_of(errors=(PlanError(Kind.TABLE, "t", "no"),)), NONE, "Table/t: no",
                     id="errors are listed"),
    ],
)  # fmt: skip
def test_a_refusal_says_why(plan: Plan, allowed: Allowances, words: str) -> None:
    with pytest.raises(UnsafePlan, match=re.escape(words)):
        plan.raise_if_unsafe(allowed)


@pytest.mark.parametrize(
    ("plan", "allowed", "rule"),
    [
        pytest.param(plan_of(errors=(PlanError(Kind.TABLE, "t", "no"),)), EVERYTHING, HasErrors,
                     id="errors"),
        pytest.param(plan_of(REPLACE), NONE, NeedsAllowReplace, id="a replace"),
        pytest.param(plan_of(REINGEST), NONE, NeedsAllowReingest, id="double ingestion"),
        pytest.param(plan_of(MOVED), NONE, NeedsAllowCheckpointChange, id="a checkpoint change"),
        pytest.param(pruning(9, 9), Allowances(force=True), EmptiesAKind, id="emptying a kind"),
        pytest.param(pruning(4, 10), NONE, TooManyDeletions, id="a large share"),
        pytest.param(pruning(4, 9), NONE, TooManyDeletions, id="many of a small project"),
    ],
)  # fmt: skip
def test_a_caller_tells_which_rule_refused_by_the_type_of_the_refusal(
    plan: Plan, allowed: Allowances, rule: type[UnsafePlan]
) -> None:
    with pytest.raises(UnsafePlan) as refused:
        plan.raise_if_unsafe(allowed)
    assert type(refused.value) is rule
    assert refused.value.plan is plan and refused.value.code == "unsafe-plan"
    assert [r for r in SAFETY_RULES if r is rule] == [rule]  # each rule is registered once


def test_every_refusal_is_one_registered_rule_with_its_own_name() -> None:
    names = [rule.rule for rule in SAFETY_RULES]
    assert len(set(names)) == len(names) and all(names)
