"""Conformance: the checker catches bad responses, and generated requests never break the emulator."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from tests.conformance import ConformanceLog
from tests.connections import CONNECTIONS
from tests.guide import GUIDE_JOB
from tests.guide import GUIDE_ROLE_CONNECTION as GUIDE_CONNECTION

TEMPLATE = "/v1/projects/{projectId}"


def test_the_checker_rejects_a_response_that_breaks_its_schema() -> None:
    log = ConformanceLog()
    log("GET", f"{TEMPLATE}/jobs", 200, json.dumps({"values": [{"id": 3}]}).encode())
    log("GET", f"{TEMPLATE}/connections", 200, json.dumps({"values": []}).encode())
    assert log.checked == 2
    assert len(log.violations) >= 1 and "GET /v1/projects/{projectId}/jobs 200" in log.violations[0]


def test_the_checker_understands_nullable_and_discriminated_health() -> None:
    log = ConformanceLog()
    health = {"status": "error", "code": "cannot_parse_source", "message": None}
    job = {"executionStatus": "failed"}
    log("GET", f"{TEMPLATE}/jobs/{{jobId}}/status", 200, json.dumps(job).encode())
    summary = {
        "id": "j", "type": "batch", "target": {"type": "table", "tableName": "t"},
        "desiredExecutionStatus": "running", "executionStatus": "failed", "health": health,
        "createdBy": {"username": "u", "userId": "i"}, "lastModifiedBy": {"username": "u", "userId": "i"},
        "createdTimestamp": None, "lastUpdatedTimestamp": "2026-01-01T00:00:00Z",
        "source": {"type": "s3", "connectionName": "c"},
    }  # fmt: skip
    log("GET", f"{TEMPLATE}/jobs", 200, json.dumps({"values": [summary]}).encode())
    assert log.violations == []


def test_the_checker_holds_a_connection_to_the_schema_of_its_type() -> None:
    log = ConformanceLog()
    user = {"username": "u", "userId": "i"}
    stamps = {
        "modifiedOnTimestamp": "2026-01-01T00:00:00Z",
        "submittedOnTimestamp": "2026-01-01T00:00:00Z",
    }
    kafka = {
        "name": "k",
        "type": "kafka",
        "modifiedByUser": user,
        "submittedByUser": user,
        **stamps,
    }
    log("GET", f"{TEMPLATE}/connections", 200, json.dumps({"values": [kafka]}).encode())
    assert any("'bootstrapServers' is a required property" in v for v in log.violations)
    complete = {**kafka, "bootstrapServers": "b:9092", "topicName": "t"}
    log.violations.clear()
    log("GET", f"{TEMPLATE}/connections/{{name}}", 200, json.dumps(complete).encode())
    assert log.violations == []


def test_the_checker_remembers_only_valid_documents_so_a_broken_twin_is_still_caught() -> None:
    log = ConformanceLog()
    user = {"username": "u", "userId": "i"}
    kafka = {
        "name": "k", "type": "kafka", "bootstrapServers": "b:9092", "topicName": "t",
        "modifiedByUser": user, "submittedByUser": user,
        "modifiedOnTimestamp": "2026-01-01T00:00:00Z", "submittedOnTimestamp": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    listing = f"{TEMPLATE}/connections"
    for _ in range(2):  # the second time from memory
        log("GET", listing, 200, json.dumps({"values": [kafka, kafka]}).encode())
        log("GET", f"{listing}/{{name}}", 200, json.dumps(kafka).encode())
    assert log.violations == []
    broken = {key: value for key, value in kafka.items() if key != "bootstrapServers"}
    log("GET", listing, 200, json.dumps({"values": [kafka, broken]}).encode())
    log("GET", f"{listing}/{{name}}", 200, json.dumps({**kafka, "submittedByUser": 3}).encode())
    assert any("/values/1: 'bootstrapServers' is a required" in v for v in log.violations)
    assert any(v.startswith("GET /v1/projects/{projectId}/connections/{name} 200 at /submittedByUser")
               for v in log.violations), log.violations  # fmt: skip


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with some fields dropped or replaced by arbitrary JSON."""
    keys = sorted(base)
    return st.builds(
        lambda drop, replace: {
            **{k: v for k, v in base.items() if k not in drop},
            **replace,
        },
        st.sets(st.sampled_from(keys), max_size=2),
        st.dictionaries(st.sampled_from([*keys, "extra"]), json_values, max_size=2),
    )


# One connection of each example is created first, named after it (kafka/sasl_plain: kafka-sasl_plain).
EXAMPLES = sorted(CONNECTIONS)
operations = st.one_of(
    st.tuples(st.just("POST"), st.just("/connections"), mutated(GUIDE_CONNECTION)),
    st.sampled_from(EXAMPLES).flatmap(
        lambda e: st.tuples(
            st.just("POST"),
            st.just("/connections"),
            mutated({"name": "generated", **CONNECTIONS[e]}),
        )
    ),
    st.sampled_from(EXAMPLES).flatmap(
        lambda e: st.tuples(
            st.just("PATCH"),
            st.just(f"/connections/{e.replace('/', '-')}"),
            mutated({k: v for k, v in CONNECTIONS[e].items() if k != "bucket"}),
        )
    ),
    st.sampled_from(EXAMPLES).flatmap(
        lambda e: st.tuples(
            st.just("POST"), st.just(f"/connections/{e.replace('/', '-')}/test"), st.just({})
        )
    ),
    st.tuples(
        st.just("PATCH"), st.just("/connections/demo-conn"), mutated({"type": "s3", "prefix": "p/"})
    ),
    st.tuples(st.just("POST"), st.just("/jobs"), mutated(GUIDE_JOB)),
    st.tuples(
        st.just("POST"), st.just("/tables"), mutated({"name": "t", "type": "detail", "schema": []})
    ),
    st.tuples(
        st.just("PUT"), st.just("/tables/Koalas"), mutated({"type": "aggregate", "version": 0})
    ),
    st.tuples(
        st.just("POST"), st.just("/jobs/x/status"), mutated({"desiredExecutionStatus": "canceled"})
    ),
    st.tuples(
        st.just("GET"),
        st.sampled_from(
            [
                "/jobs",
                "/connections",
                "/tables",
                "/connectionsMeta",
                "/tables/Koalas",
                "/connections/demo-conn",
            ]
        ),
        st.dictionaries(
            st.sampled_from(
                [
                    "paginationLimit",
                    "paginationOffset",
                    "type",
                    "executionStatus",
                    "sortColumn",
                    "sortOrder",
                ]
            ),
            st.text(max_size=5) | st.integers(-3, 2000).map(str),
            max_size=3,
        ),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=st.lists(operations, min_size=1, max_size=6))
def test_generated_requests_never_get_a_5xx_or_a_non_conforming_response(
    requests: list[tuple[str, str, Any]],
) -> None:
    log = ConformanceLog()
    emulator = Emulator(response_observer=log)
    with httpx.Client(
        base_url=f"http://polaris.test/v1/projects/{DEMO_PROJECT_ID}",
        transport=emulator.transport(),
        auth=(DEMO_API_KEY, ""),
    ) as api:
        api.post("/connections", json=GUIDE_CONNECTION)
        api.post("/jobs", json=GUIDE_JOB)
        for example in EXAMPLES:
            name = example.replace("/", "-")
            assert api.post("/connections", json={"name": name, **CONNECTIONS[example]}).is_success
        for method, path, payload in requests:
            if method == "GET":
                response = api.get(path, params=payload)
            else:
                response = api.request(method, path, json=payload)
            assert response.status_code < 500, (method, path, payload, response.text)
    assert log.violations == []
