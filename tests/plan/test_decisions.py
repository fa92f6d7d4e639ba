"""Plan decisions, as a table: desired resources and live state -> (action, why) of one change.

Live state is built as the reader would leave it (tests/builders.py); no emulator, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reconciler.kinds.ingestion_job.identity import place_of
from reconciler.live import LiveState
from reconciler.model import Action, Kind, Reason, Resource
from reconciler.plan import make_plan
from reconciler.values import PlanErrorCode, PlanOptions
from tests.builders import (
    JOB,
    PLACES,
    ZOO,
    T,
    detail_table,
    edited,
    live_connection,
    live_job,
    live_state,
    live_table,
    resource,
    s3,
    secrets,
)

LIVE = {"connections": PLACES, "tables": {"t": live_table("t")}}  # zoo and t exist as declared
OTHER_OBJECT = edited(JOB, source__objects=["penguins/gentoo.json"])
OVERLAPPING = edited(JOB, source__objects=["penguins/adelaide.json", "penguins/gentoo.json"])


def job(spec: dict[str, object] | None = None, name: str = "j") -> Resource:
    return resource(Kind.INGESTION_JOB, name, spec or JOB)


@dataclass(frozen=True)
class Case:
    """Manifests and live state, and the change planned for `name` (kind `kind`)."""

    resources: tuple[Resource, ...]
    live: LiveState
    kind: Kind
    name: str
    options: PlanOptions = field(default_factory=PlanOptions)


def case(
    *resources: Resource,
    live: LiveState | None = None,
    of: tuple[Kind, str] | None = None,
    **options: bool,
) -> Case:
    kind, name = of or (resources[-1].kind, resources[-1].name)
    return Case(resources, live or live_state(), kind, name, PlanOptions(**options))


def with_jobs(*jobs: object, **extra: object) -> LiveState:
    return live_state(jobs=jobs, **LIVE, **extra)  # type: ignore[arg-type]


DECISIONS = [
    # Connections
    pytest.param(case(ZOO), Action.CREATE, Reason.NOT_FOUND, id="a connection not in the project is created"),
    pytest.param(case(ZOO, live=live_state(PLACES)), Action.NOOP, Reason.UP_TO_DATE,
                 id="a connection as declared is up to date"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", s3(secrets=secrets())), live=live_state(PLACES)),
                 Action.NOOP, Reason.UP_TO_DATE, id="a connection's secrets are not compared"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", s3(secrets=secrets())), live=live_state(PLACES),
                      rotate_secrets=True),
                 Action.UPDATE, Reason.ROTATE_SECRETS, id="rotate-secrets re-sends a connection's secrets"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", s3(prefix="p/")), live=live_state(PLACES)),
                 Action.UPDATE, Reason.FIELDS_DIFFER, id="a connection with another prefix is updated"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", {"type": "kinesis", "stream": "s"}),
                      live=live_state(PLACES)),
                 Action.REPLACE, Reason.TYPE_CHANGES, id="a connection of another type is replaced"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", external=True), live=live_state(PLACES)),
                 Action.NOOP, Reason.EXTERNAL, id="an external connection that exists is a noop"),
    pytest.param(case(ZOO, live=live_state({**PLACES, "old": live_connection("old")}), of=(Kind.CONNECTION, "old"),
                      prune=True),
                 Action.DELETE, Reason.NOT_DECLARED, id="prune deletes a connection nobody declares"),
    pytest.param(case(ZOO, live=live_state({**PLACES, "old": live_connection("old")},
                                           active_job_connections={"old"}),
                      of=(Kind.CONNECTION, "old"), prune=True),
                 Action.SKIP, Reason.IN_USE, id="prune skips a connection an active job uses"),
    pytest.param(case(ZOO, live=live_state({**PLACES, "..": live_connection("..")}),
                      of=(Kind.CONNECTION, ".."), prune=True),
                 Action.SKIP, Reason.UNADDRESSABLE, id="prune skips a connection whose name is a dot segment"),
    # Tables
    pytest.param(case(T), Action.CREATE, Reason.NOT_FOUND, id="a table not in the project is created"),
    pytest.param(case(T, live=live_state(tables={"t": live_table("t", rows=5)})),
                 Action.NOOP, Reason.UP_TO_DATE, id="a table as declared is up to date"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(description="d")),
                      live=live_state(tables={"t": live_table("t", rows=5)})),
                 Action.UPDATE, Reason.FIELDS_DIFFER, id="a table with another description is updated"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[{"name": "city", "dataType": "string"},
                                                                     {"name": "n", "dataType": "long"}])),
                      live=live_state(tables={"t": live_table("t", rows=5)})),
                 Action.UPDATE, Reason.FIELDS_DIFFER, id="a column added to a table holding data is an update"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[])),
                      live=live_state(tables={"t": live_table("t")})),
                 Action.UPDATE, Reason.FIELDS_DIFFER, id="a column removed from an empty table is an update"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[{"name": "city", "dataType": "string"},
                                                                     {"name": "geo.city", "dataType": "string"}])),
                      live=live_state(tables={"t": live_table("t", rows=5)})),
                 Action.UPDATE, Reason.FIELDS_DIFFER,
                 id="a column whose name holds a dot added to a table holding data is an update"),
    pytest.param(case(resource(Kind.TABLE, "t", external=True), live=live_state(tables={"t": live_table("t")})),
                 Action.NOOP, Reason.EXTERNAL, id="an external table that exists is a noop"),
    # Jobs
    pytest.param(case(ZOO, T, job(), live=with_jobs()), Action.CREATE, Reason.NOT_FOUND,
                 id="a job no live job matches is created"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "completed"))),
                 Action.NOOP, Reason.INGESTED, id="a completed job is never submitted again"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "running"))),
                 Action.NOOP, Reason.INGESTED, id="a running job is not submitted again"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "pending"))),
                 Action.NOOP, Reason.INGESTED, id="a pending job is not submitted again"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "failed"))),
                 Action.RESUBMIT, Reason.FAILED, id="a failed job is resubmitted"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "canceled"))),
                 Action.SKIP, Reason.CANCELED, id="a canceled job is skipped"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "canceled")), resubmit_canceled=True),
                 Action.RESUBMIT, Reason.FAILED, id="a canceled job is resubmitted when asked"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "unknown"))),
                 Action.RESUBMIT, Reason.UNKNOWN_STATUS, id="a job in status unknown may have ingested"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "paused"))),
                 Action.RESUBMIT, Reason.UNKNOWN_STATUS, id="a job in a status not known may have ingested"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "failed", id="new", created="2"),
                                                    live_job(JOB, "completed", id="old", created="1"))),
                 Action.NOOP, Reason.INGESTED, id="a completed job counts whatever failed after it"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(edited(JOB, source__connectionName="old"), "completed",
                                                             connections={**PLACES, "old": live_connection("old")}))),
                 Action.NOOP, Reason.INGESTED, id="a job completed through a renamed connection is not submitted again"),
    pytest.param(case(ZOO, T, job(), live=live_state({"zoo": live_connection("zoo", s3(bucket="moved"))},
                                                      LIVE["tables"], [live_job(
        JOB, connections={"zoo": live_connection("zoo", s3(bucket="moved"))},
        declared={"zoo": place_of(s3())})])),
                 Action.NOOP, Reason.INGESTED,
                 id="a job whose connection was moved behind git's back is matched where the manifest points"),
    pytest.param(case(ZOO, T, job(), live=live_state({"zoo": live_connection("zoo", s3(bucket="moved"))},
                                                      LIVE["tables"], [live_job(
        JOB, connections={"zoo": live_connection("zoo", s3(bucket="moved"))})])),
                 Action.CREATE, Reason.NOT_FOUND,
                 id="a job that read another bucket than the manifest's connection points to is another job"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "completed"))),
                 Action.CREATE, Reason.SPEC_CHANGED, id="a new spec reading ingested objects is a changed spec"),
    pytest.param(case(ZOO, T, job(OTHER_OBJECT), live=with_jobs(live_job(JOB, "completed"))),
                 Action.CREATE, Reason.NOT_FOUND, id="a job reading other objects is a plain create"),
    pytest.param(case(ZOO, T, job(edited(JOB, target__tableName="u", createTableIfNotExists=True)),
                      live=with_jobs(live_job(JOB, "completed"))),
                 Action.CREATE, Reason.NOT_FOUND, id="the same objects into another table is a plain create"),
    pytest.param(case(resource(Kind.CONNECTION, "zoo", external=True), T, job(), live=with_jobs(live_job(JOB))),
                 Action.NOOP, Reason.INGESTED, id="a job through an external connection is matched by its place"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "action", "why"), DECISIONS)
def test_plan_decides(given: Case, action: Action, why: Reason) -> None:
    plan = make_plan(given.resources, given.live, given.options)
    (change,) = [c for c in plan.changes if c.key == (given.kind, given.name)]
    assert (change.action, change.why) == (action, why)


ERRORS = [
    pytest.param(case(resource(Kind.CONNECTION, "zoo", external=True)), PlanErrorCode.MISSING,
                 id="an external connection that does not exist"),
    pytest.param(case(resource(Kind.TABLE, "t", external=True)), PlanErrorCode.MISSING,
                 id="an external table that does not exist"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(type="aggregate")),
                      live=live_state(tables={"t": live_table("t")})),
                 PlanErrorCode.FORBIDDEN, id="a table whose type would change"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[])),
                      live=live_state(tables={"t": live_table("t", rows=5)})),
                 PlanErrorCode.FORBIDDEN, id="a column removed from a table holding data"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[{"name": "city", "dataType": "long"}])),
                      live=live_state(tables={"t": live_table("t", rows=5)})),
                 PlanErrorCode.FORBIDDEN, id="a column's type changed in a table holding data"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[])),
                      live=live_state(tables={"t": live_table("t", detail_table(
                          schema=[{"name": "geo.city", "dataType": "string"}]), rows=5)})),
                 PlanErrorCode.FORBIDDEN, id="a column whose name holds a dot removed from a table holding data"),
    pytest.param(case(resource(Kind.TABLE, "t", detail_table(schema=[])),
                      live=with_jobs(live_job(JOB, "running"))),
                 PlanErrorCode.FORBIDDEN, id="a column removed from an empty table a job is writing to"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "code"), ERRORS)
def test_plan_refuses_with_an_error_for(given: Case, code: PlanErrorCode) -> None:
    plan = make_plan(given.resources, given.live, given.options)
    assert [(e.kind, e.name, e.code) for e in plan.errors] == [(given.kind, given.name, code)]


REINGEST = [
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "completed"))), True,
                 id="a job appending objects a completed job ingested"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "running"))), True,
                 id="a job appending objects a running job is ingesting"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "unknown"))), True,
                 id="a job appending objects a job in an unknown status may have ingested"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "failed"))), False,
                 id="not a job reading objects only a failed job read"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(live_job(JOB, "canceled"))), False,
                 id="not a job reading objects only a canceled job read"),
    pytest.param(case(ZOO, T, job({**OVERLAPPING, "ingestionMode": "replace"}),
                      live=with_jobs(live_job(JOB, "completed"))), False,
                 id="not a job that replaces what it reads"),
    pytest.param(case(ZOO, T, job(JOB, "a"), job(OVERLAPPING, "b"), live=with_jobs()), True,
                 id="two new jobs of one plan appending the same object"),
    pytest.param(case(ZOO, T, job(JOB, "a"), job(OTHER_OBJECT, "b"), live=with_jobs()), False,
                 id="not two new jobs appending different objects"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "unknown"))), True,
                 id="the same job whose status is unknown"),
    pytest.param(case(ZOO, T, job(), live=with_jobs(live_job(JOB, "failed"))), False,
                 id="not the same job resubmitted after a failure"),
    pytest.param(case(ZOO, T, job(OVERLAPPING), live=with_jobs(
        live_job(JOB, "completed", connections={}))), True,
                 id="a job whose live match's connection is gone (uncertain)"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "reingest"), REINGEST)
def test_apply_must_be_allowed_to_reingest(given: Case, reingest: bool) -> None:
    plan = make_plan(given.resources, given.live, given.options)
    (change,) = [c for c in plan.changes if c.key == (given.kind, given.name)]
    assert change.reingest is reingest


@pytest.mark.parametrize(
    ("given", "unmanaged"),
    [
        pytest.param(case(ZOO, live=live_state({**PLACES, "old": live_connection("old")})),
                     [(Kind.CONNECTION, "old")], id="a live connection nobody declares"),
        pytest.param(case(ZOO, live=live_state(PLACES, {"u": live_table("u")})),
                     [(Kind.TABLE, "u")], id="a live table nobody declares"),
        pytest.param(case(ZOO, job(edited(JOB, target__tableName="u", createTableIfNotExists=True)),
                          live=live_state(PLACES, {"u": live_table("u")})),
                     [], id="not a table a declared job creates"),
        pytest.param(case(ZOO, live=live_state({**PLACES, "old": live_connection("old")}), prune=True),
                     [(Kind.CONNECTION, "old")], id="a connection prune deletes is still listed"),
    ],
)  # fmt: skip
def test_plan_lists_as_unmanaged(given: Case, unmanaged: list[tuple[Kind, str]]) -> None:
    assert list(make_plan(given.resources, given.live, given.options).unmanaged) == unmanaged


def test_without_prune_nothing_undeclared_is_planned() -> None:
    plan = make_plan([ZOO], live_state({**PLACES, "old": live_connection("old")}))
    assert [c.name for c in plan.changes] == ["zoo"]


def test_a_refused_column_change_names_the_whole_column_name() -> None:
    live = live_table(
        "t", detail_table(schema=[{"name": "geo.city", "dataType": "string"}]), rows=5
    )
    plan = make_plan(
        [resource(Kind.TABLE, "t", detail_table(schema=[]))], live_state(tables={"t": live})
    )
    assert "columns geo.city would be changed or removed" in plan.errors[0].message
