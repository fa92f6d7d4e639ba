"""What a change carries: the requests apply will send, secrets only by reference, what it waits for.

Each case plans from synthetic live state (tests/builders.py) and reads one change of the plan.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.live import LiveState
from reconciler.model import Kind, Resource
from reconciler.plan import make_plan
from reconciler.values import Change, PlanOptions
from tests.builders import (
    JOB,
    PLACES,
    SECRET_ID,
    SECRET_REFERENCES,
    SECRET_VALUE,
    ZOO,
    T,
    detail_table,
    live_connection,
    live_job,
    live_state,
    live_table,
    resource,
    s3,
    secrets,
)

KAFKA = {"type": "kafka", "bootstrapServers": "b:9092", "topicName": "events"}
SECRET_BODY = {
    "type": "access_key",
    "accessKeyId": SECRET_REFERENCES[0],
    "accessKeySecret": SECRET_REFERENCES[1],
}


def planned(resources: list[Resource], live: LiveState, name: str, **options: bool) -> Change:
    plan = make_plan(resources, live, PlanOptions(**options))
    (change,) = [c for c in plan.changes if c.name == name]
    return change


def requests(change: Change) -> list[dict[str, Any]]:
    return [request.to_json() for request in change.requests]


REQUESTS = [
    pytest.param(planned([ZOO], live_state(), "zoo"),
                 [{"method": "POST", "path": "/connections", "body": {"name": "zoo", **s3()}}],
                 id="a connection is created with its spec and name"),
    pytest.param(planned([resource(Kind.CONNECTION, "zoo", s3(prefix="p/"))], live_state(PLACES), "zoo"),
                 [{"method": "PATCH", "path": "/connections/zoo", "body": {"type": "s3", "prefix": "p/"}}],
                 id="a connection is updated with its type and the fields that differ"),
    pytest.param(planned([ZOO], live_state({"zoo": live_connection("zoo", s3(prefix="p/"))}), "zoo"),
                 [{"method": "PATCH", "path": "/connections/zoo", "body": {"type": "s3", "prefix": None}}],
                 id="a field the manifest no longer sets is cleared with null"),
    pytest.param(planned([resource(Kind.CONNECTION, "k", KAFKA)],
                         live_state({"k": live_connection("k", {**KAFKA, "topicNameIsPattern": True})}), "k"),
                 [{"method": "PATCH", "path": "/connections/k",
                   "body": {"type": "kafka", "topicNameIsPattern": False}}],
                 id="a defaulted field the manifest leaves out is set back to its documented default"),
    pytest.param(planned([resource(Kind.CONNECTION, "r", {"type": "confluent_schema_registry"})],
                         live_state({"r": live_connection("r", {"type": "confluent_schema_registry",
                                                                "urls": ["https://r"]})}), "r"),
                 [{"method": "PATCH", "path": "/connections/r",
                   "body": {"type": "confluent_schema_registry", "urls": []}}],
                 id="a defaulted list the manifest leaves out is set back to empty"),
    pytest.param(planned([resource(Kind.CONNECTION, "zoo", s3(secrets=secrets()))], live_state(PLACES), "zoo",
                         rotate_secrets=True),
                 [{"method": "PATCH", "path": "/connections/zoo", "body": {"type": "s3", "secrets": SECRET_BODY}}],
                 id="rotated secrets are sent by reference"),
    pytest.param(planned([resource(Kind.CONNECTION, "zoo", {"type": "kinesis", "stream": "s"})],
                         live_state(PLACES), "zoo"),
                 [{"method": "DELETE", "path": "/connections/zoo"},
                  {"method": "POST", "path": "/connections",
                   "body": {"name": "zoo", "type": "kinesis", "stream": "s"}}],
                 id="a connection is replaced by a delete, then a create"),
    pytest.param(planned([], live_state(PLACES), "zoo", prune=True),
                 [{"method": "DELETE", "path": "/connections/zoo"}],
                 id="a pruned connection is deleted"),
    pytest.param(planned([ZOO], live_state(PLACES), "zoo"), [], id="an unchanged connection sends nothing"),
    pytest.param(planned([resource(Kind.CONNECTION, "a b%2F", s3())], live_state(), "a b%2F"),
                 [{"method": "POST", "path": "/connections", "body": {"name": "a b%2F", **s3()}}],
                 id="a name is sent in the body as it is"),
    pytest.param(planned([resource(Kind.CONNECTION, "a b%2F", s3(prefix="p/"))],
                         live_state({"a b%2F": live_connection("a b%2F")}), "a b%2F"),
                 [{"method": "PATCH", "path": "/connections/a%20b%252F",
                   "body": {"type": "s3", "prefix": "p/"}}],
                 id="a name is escaped in a path"),
    pytest.param(planned([T], live_state(), "t"),
                 [{"method": "POST", "path": "/tables", "body": {"name": "t", **detail_table()}}],
                 id="a table is created with its spec and name"),
    pytest.param(planned([resource(Kind.TABLE, "t", detail_table(description="d"))],
                         live_state(tables={"t": live_table("t", version=7)}), "t"),
                 [{"method": "PUT", "path": "/tables/t",
                   "body": {"name": "t", **detail_table(description="d"), "version": 7}}],
                 id="a table is updated with a PUT of its whole spec and the version read"),
    pytest.param(planned([ZOO, T, resource(Kind.INGESTION_JOB, "j", JOB)], live_state(PLACES), "j"),
                 [{"method": "POST", "path": "/jobs", "body": JOB}], id="a job is submitted with its spec"),
    pytest.param(planned([ZOO, T, resource(Kind.INGESTION_JOB, "j", JOB)],
                         live_state(PLACES, jobs=[live_job(JOB, "failed")]), "j"),
                 [{"method": "POST", "path": "/jobs", "body": JOB}], id="a failed job is submitted again"),
    pytest.param(planned([ZOO, T, resource(Kind.INGESTION_JOB, "j", JOB)],
                         live_state(PLACES, jobs=[live_job(JOB, "completed")]), "j"),
                 [], id="an ingested job sends nothing"),
    pytest.param(planned([ZOO, T, resource(Kind.INGESTION_JOB, "j", JOB)],
                         live_state(PLACES, jobs=[live_job(JOB, "canceled")]), "j"),
                 [], id="a skipped job sends nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), REQUESTS)
def test_requests_apply_will_send(change: Change, expected: list[dict[str, Any]]) -> None:
    assert requests(change) == expected


WITH_SECRETS = resource(Kind.CONNECTION, "zoo", s3(secrets=secrets()))
SECRET_CHANGES = [
    pytest.param(planned([WITH_SECRETS], live_state(), "zoo"), id="a create"),
    pytest.param(planned([WITH_SECRETS], live_state(PLACES), "zoo", rotate_secrets=True),
                 id="a rotation"),
    pytest.param(planned([resource(Kind.CONNECTION, "zoo", {"type": "kafka", "secrets": secrets()})],
                         live_state(PLACES), "zoo"), id="a replace"),
]  # fmt: skip


@pytest.mark.parametrize("change", SECRET_CHANGES)
def test_a_changes_json_never_holds_a_secret_value(change: Change) -> None:
    text = json.dumps(change.to_json())
    assert (SECRET_ID in text, SECRET_VALUE in text) == (False, False)


@pytest.mark.parametrize("change", SECRET_CHANGES)
def test_a_changes_json_names_each_secret_by_its_reference(change: Change) -> None:
    bodies = [r["body"] for r in requests(change) if r["method"] in ("POST", "PATCH")]
    assert [body["secrets"] for body in bodies] == [SECRET_BODY]


@pytest.mark.parametrize("change", SECRET_CHANGES)
def test_a_changes_requests_still_carry_the_secret_for_the_client_to_reveal(
    change: Change,
) -> None:
    (body,) = [r.body for r in change.requests if r.method in ("POST", "PATCH")]
    assert body is not None and body["secrets"]["accessKeySecret"].reveal() == SECRET_VALUE


@pytest.mark.parametrize(
    ("resources", "depends_on"),
    [
        pytest.param([ZOO, T, resource(Kind.INGESTION_JOB, "j", JOB)],
                     ((Kind.CONNECTION, "zoo"), (Kind.TABLE, "t")),
                     id="a job waits for its connection and table"),
        pytest.param([ZOO, resource(Kind.INGESTION_JOB, "j", {**JOB, "createTableIfNotExists": True})],
                     ((Kind.CONNECTION, "zoo"),),
                     id="a job that creates its table waits for its connection only"),
        pytest.param([resource(Kind.CONNECTION, "zoo", external=True), T,
                      resource(Kind.INGESTION_JOB, "j", JOB)],
                     ((Kind.CONNECTION, "zoo"), (Kind.TABLE, "t")),
                     id="a job waits for an external connection to be visible too"),
    ],
)  # fmt: skip
def test_a_job_depends_on(
    resources: list[Resource], depends_on: tuple[tuple[Kind, str], ...]
) -> None:
    assert planned(resources, live_state(), "j").depends_on == depends_on


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(planned([ZOO], live_state(), "zoo"), id="a connection"),
        pytest.param(planned([T], live_state(), "t"), id="a table"),
    ],
)
def test_connections_and_tables_depend_on_nothing(change: Change) -> None:
    assert change.depends_on == ()


@pytest.mark.parametrize(
    ("change", "keys"),
    [
        pytest.param(planned([ZOO], live_state(), "zoo"),
                     {"desired"}, id="a create has a desired body and no before"),
        pytest.param(planned([ZOO], live_state(PLACES), "zoo"),
                     set(), id="a noop shows neither in JSON: it moves nothing"),
        pytest.param(planned([ZOO], live_state({"zoo": live_connection("zoo", s3(bucket="b2"))}),
                             "zoo"),
                     {"before", "desired"}, id="an update has both"),
        pytest.param(planned([], live_state(PLACES), "zoo", prune=True),
                     {"before"}, id="a delete has a before and no desired body"),
    ],
)  # fmt: skip
def test_a_change_carries_the_bodies_it_is_between(change: Change, keys: set[str]) -> None:
    assert {"before", "desired"} & set(change.to_json()) == keys


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(planned([ZOO], live_state(PLACES), "zoo"),
                     id="a connection whose secrets Polaris does not return"),
        pytest.param(planned([T], live_state(tables={"t": live_table("t")}), "t"),
                     id="a table whose server-chosen schemaMode the manifest leaves out"),
    ],
)  # fmt: skip
def test_a_noops_before_and_desired_bodies_are_equal(change: Change) -> None:
    assert change.action == "noop" and change.before == change.desired
