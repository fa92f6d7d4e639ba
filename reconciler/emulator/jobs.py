"""Jobs v1: batch jobs from S3 connections; their status, progress, logs and metrics; the list.

Sources: docs/polaris-api-notes.md (Jobs v1) and the S3 guide's sample responses
(tests/reference/polaris-s3-ingestion-guide.txt), which the emulator follows where they differ
from the OpenAPI document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from reconciler.emulator import lifecycle, streaming
from reconciler.emulator.api import (
    Call,
    Response,
    integer,
    interval_bounds,
    invalid,
    many,
    not_found,
    one_of,
    without_nulls,
)
from reconciler.emulator.auth import MANAGE_JOBS, user
from reconciler.emulator.clock import job_timestamp
from reconciler.emulator.routing import Route
from reconciler.emulator.tables import new_table
from reconciler.s3 import SELECTORS

if TYPE_CHECKING:
    from reconciler.emulator.state import Project

JOB_TYPES = frozenset({"batch", "delete_data", "drop_table", "restore_data", "streaming", "sql"})
EXECUTION_STATUSES = frozenset(
    {"pending", "running", "completed", "idle", "canceled", "failed", "suspended", "unknown"}
)
HEALTH_STATUSES = frozenset({"ok", "warn", "error"})
BATCH_FORMATS = frozenset(
    {"avro_ocf", "avro_stream", "csv", "nd-json", "orc", "parquet", "protobuf", "regex"}
)
SORT_COLUMNS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "created_by_user_name": lambda j: j["createdBy"]["username"],
    "created_date_time": lambda j: j["createdTimestamp"],
    "execution_status": lambda j: j["executionStatus"],
    "last_updated_date_time": lambda j: j["lastUpdatedTimestamp"],
    "source_name": lambda j: j.get("source", {}).get("connectionName", ""),
    "source_type": lambda j: j.get("source", {}).get("type", ""),
    "source_connection_name": lambda j: j.get("source", {}).get("connectionName", ""),
    "source_table_name": lambda j: j.get("source", {}).get("tableName", ""),
    "target_table_name": lambda j: j["target"].get("tableName", ""),
    "type": lambda j: j["type"],
}  # fmt: skip
# Summaries carry no mappings and no object selectors (docs/polaris-api-notes.md, Jobs v1).
SUMMARY = ("id", "type", "target", "desiredExecutionStatus", "executionStatus", "health", "createdBy",
           "lastModifiedBy", "createdTimestamp", "lastUpdatedTimestamp", "startedTimestamp", "completedTimestamp")  # fmt: skip
# The mapping Polaris appends to jobs with aggregations (the S3 guide's sample response).
COUNT_MAPPING = {"columnName": "__count", "expression": "COUNT(*)"}
METRICS = ("numRowsProcessed", "numRowsPersisted", "numRowsProcessedWithWarning",
           "numRowsSkippedByFilter", "numRowsSkippedByError", "numBytesProcessed")  # fmt: skip


def existing(emulator: Project, job_id: str) -> dict[str, Any]:
    """A job by id (404 when there is none)."""
    if job_id not in emulator.store.jobs:
        raise not_found(f"Job {job_id} not found")
    return emulator.store.jobs[job_id]


def view(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job as the API shows it, without the emulator's own bookkeeping."""
    return {k: v for k, v in job.items() if not k.startswith("_") and k not in ("held", "pinned")}


TABLE_JOBS = frozenset({"drop_table", "delete_data", "restore_data"})


def create_job(emulator: Project, call: Call) -> Response:
    """POST /jobs: a batch job from an S3 connection, or a job on a table's data, pending
    until the clock moves it."""
    body = without_nulls(call.body)
    if one_of(body.get("type"), TABLE_JOBS):
        return _create_table_job(emulator, call, body)
    if body.get("type") == "sql":
        return _create_sql_job(emulator, call, body)
    if body.get("type") == "streaming":
        _check_streaming_job(emulator, body)
        _ensure_table(emulator, call, body)
        return streaming.create(emulator, call, body)
    _check_batch_job(emulator, body)
    source, target = body["source"], body["target"]
    aggregates = _ensure_table(emulator, call, body)
    creator, moment = user(call.caller), emulator.now()
    now = job_timestamp(moment)
    # The guide's sample response echoes the mappings without isAggregation and appends a
    # __count mapping to rollups; it fills ingestionMode. It does not show maxParseExceptions,
    # so neither does the emulator (the OpenAPI lists a default but the guide is what Polaris sends).
    mappings = [
        {k: v for k, v in m.items() if k != "isAggregation"} for m in body.get("mappings", [])
    ]
    if aggregates and COUNT_MAPPING not in mappings:
        mappings.append(dict(COUNT_MAPPING))
    job_id = str(uuid.uuid4())
    job = {
        **{k: v for k, v in body.items() if k not in ("mappings",)},
        "id": job_id, "source": source, "target": target,
        "ingestionMode": body.get("ingestionMode", "append"), "mappings": mappings,
        "desiredExecutionStatus": "running", "executionStatus": "pending", "health": {"status": "ok"},
        "createdBy": creator, "lastModifiedBy": creator, "createdTimestamp": now, "lastUpdatedTimestamp": now,
        "spec": body,  # the OpenAPI's job response carries the request under `spec`
        "_created": moment.isoformat(), "held": emulator.held,
    }  # fmt: skip
    emulator.store.put("jobs", job_id, job)
    emulator.active.add(job_id)
    if emulator.reads_data:
        lifecycle.submit(
            emulator, job
        )  # reading starts now, off this thread; rows land on completion
    location = f"/v1/projects/{emulator.project_id}/jobs/{job_id}"
    return Response(201, view(job), {"Location": location})


def _ensure_table(emulator: Project, call: Call, body: Mapping[str, Any]) -> bool:
    """Create a job's target table if it may (createTableIfNotExists); whether it aggregates."""
    aggregates = any(m.get("isAggregation") for m in body.get("mappings", []))
    table_name = body["target"]["tableName"]
    tables = emulator.store.tables
    if table_name not in tables:
        if not body.get("createTableIfNotExists", False):
            raise invalid(
                f"Table {table_name} does not exist; create it or set createTableIfNotExists"
            )
        # Inferred (docs/polaris-api-notes.md): aggregate when the job aggregates, else detail.
        kind = "aggregate" if aggregates else "detail"
        emulator.store.put(
            "tables", table_name, new_table(emulator, call.caller, table_name, {"type": kind})
        )
    elif aggregates and tables[table_name]["type"] == "detail":
        raise invalid(f"Table {table_name} is a detail table; aggregations need an aggregate table")
    return aggregates


def _create_sql_job(emulator: Project, call: Call, body: dict[str, Any]) -> Response:
    """An sql job (INSERT/REPLACE ... SELECT over the project's tables), run as it completes."""
    query = body.get("query")
    if not isinstance(query, str):
        raise invalid("query is required and must be of type string")
    if body.get("parameters"):
        raise invalid("Parameters in sql jobs are not supported by the emulator")
    table, _, _ = lifecycle.parse_sql_job(query)
    if table not in emulator.store.tables:
        if body.get("createTableIfNotExists") is not True:
            raise invalid(f"Table {table} does not exist; create it or set createTableIfNotExists")
        emulator.store.put(
            "tables", table, new_table(emulator, call.caller, table, {"type": "detail"})
        )
    return _new_job(emulator, call, {**body, "target": {"type": "table", "tableName": table}})


def _create_table_job(emulator: Project, call: Call, body: dict[str, Any]) -> Response:
    """drop_table, delete_data and restore_data: applied to the table when they complete."""
    kind, target = body["type"], body.get("target")
    if not isinstance(target, dict) or target.get("type") != "table":
        raise invalid("target must be {type: table, tableName}")
    name = target.get("tableName")
    if not isinstance(name, str) or name not in emulator.store.tables:
        raise invalid(f"Table {name} does not exist")
    intervals = target.get("intervals")
    if intervals is not None and (
        not isinstance(intervals, list) or not all(isinstance(i, str) for i in intervals)
    ):
        raise invalid("target.intervals must be a list of ISO 8601 intervals")
    for flag in ("deleteAll", "softDelete"):
        if flag in body and not isinstance(body[flag], bool):
            raise invalid(f"{flag} must be of type boolean")
    writers = [j["id"] for j in emulator.active_jobs() if j["target"].get("tableName") == name]
    if kind == "drop_table" and writers:
        # Inferred: Polaris refuses to drop a table that jobs still write into.
        raise invalid(f"Table {name} has active jobs writing into it: {', '.join(writers)}")
    if kind == "delete_data" and not intervals and body.get("deleteAll") is not True:
        raise invalid("A delete_data job needs target.intervals or deleteAll: true")
    if kind == "restore_data" and not isinstance(body.get("interval"), str):
        raise invalid("A restore_data job needs an interval")
    for text in [*(intervals or []), *([body["interval"]] if kind == "restore_data" else [])]:
        interval_bounds(text)
    return _new_job(emulator, call, body)


def _new_job(emulator: Project, call: Call, body: dict[str, Any]) -> Response:
    """A job that is not a batch job, pending until the clock moves it."""
    creator, moment = user(call.caller), emulator.now()
    now = job_timestamp(moment)
    job_id = str(uuid.uuid4())
    job = {
        **body, "id": job_id, "desiredExecutionStatus": "running", "executionStatus": "pending",
        "health": {"status": "ok"}, "createdBy": creator, "lastModifiedBy": creator,
        "createdTimestamp": now, "lastUpdatedTimestamp": now, "spec": body,
        "_created": moment.isoformat(), "held": emulator.held,
    }  # fmt: skip
    emulator.store.put("jobs", job_id, job)
    emulator.active.add(job_id)
    location = f"/v1/projects/{emulator.project_id}/jobs/{job_id}"
    return Response(201, view(job), {"Location": location})


# The JSON type of each field of a batch job request (the OpenAPI's CreateBatchJobRequest; a test
# compares this table with tests/reference/polaris-openapi.json). Checked before anything else,
# so a wrong type is a 400 naming the field, never echoed back under `spec`.
JOB_FIELD_TYPES = {
    "type": "string", "source": "object", "target": "object", "context": "object",
    "clusteringColumns": "array", "createTableIfNotExists": "boolean",
    "filterExpression": "string", "ingestionMode": "string", "mappings": "array",
    "maxParseExceptions": "integer", "partitionedBy": "string", "replaceAll": "boolean",
}  # fmt: skip
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def _check_types(body: Mapping[str, Any]) -> None:
    for field, expected in JOB_FIELD_TYPES.items():
        if field in body and not _JSON_TYPES[expected](body[field]):
            raise invalid(f"{field} must be of type {expected}")


def _check_target(body: Mapping[str, Any]) -> None:
    target = body.get("target")
    if (
        not isinstance(target, dict)
        or target.get("type") != "table"
        or not isinstance(target.get("tableName"), str)
    ):
        raise invalid("target must be {type: table, tableName}")


def _check_streaming_job(emulator: Project, body: Mapping[str, Any]) -> None:
    _check_types(body)
    _check_target(body)
    streaming.check(emulator, body)
    _check_columns(body, body["source"])


def _check_batch_job(emulator: Project, body: Mapping[str, Any]) -> None:
    _check_types(body)
    kind = body.get("type")
    if kind != "batch":
        if one_of(kind, JOB_TYPES):
            raise invalid(
                f"Jobs of type {kind} are not supported by the emulator "
                "(batch, streaming, sql, drop_table, delete_data and restore_data are)"
            )
        raise invalid("type is required and must be a job type such as batch")
    _check_target(body)
    source = body.get("source")
    if isinstance(source, dict) and source.get("type") == "uploaded":
        files = source.get("fileList")
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise invalid("source.fileList must list the uploaded files to ingest")
        missing = [f for f in files if f not in emulator.store.files]
        if missing:
            raise invalid(f"File(s) not uploaded: {', '.join(missing)}")
        _check_columns(body, source)
        return
    if not isinstance(source, dict) or source.get("type") != "s3":
        raise invalid("source.type must be s3 (Amazon S3) or uploaded (the Files API)")
    name = source.get("connectionName")
    if not isinstance(name, str) or name not in emulator.store.connections:
        raise invalid(f"Connection {name} does not exist")
    connection_type = emulator.store.connections[name]["type"]
    if connection_type != "s3":
        # Inferred: the OpenAPI's JobSourceTypeV2 ties source type s3 to "an Amazon S3
        # connection"; Polaris refuses the mismatch as a bad request, naming both types.
        raise invalid(
            f"Connection {name} is a {connection_type} connection; a batch job with "
            "source.type s3 reads only from an s3 connection"
        )
    chosen = [s for s in SELECTORS if source.get(s) not in (None, [], "")]
    if len(chosen) != 1:
        raise invalid(
            f"Exactly one of uris, prefixes, objects or pattern is required (got {len(chosen)})"
        )
    _check_columns(body, source)


def _check_columns(body: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    target = body["target"]
    schema = source.get("inputSchema")
    if (
        not isinstance(schema, list)
        or not schema
        or not all(isinstance(f, dict) and f.get("name") and f.get("dataType") for f in schema)
    ):
        raise invalid("source.inputSchema must list the input fields with name and dataType")
    fmt = (source.get("formatSettings") or {}).get("format")
    if "formatSettings" in source and not one_of(fmt, BATCH_FORMATS):
        raise invalid(f"Unsupported formatSettings.format {fmt}")
    mappings = body.get("mappings", [])
    if not isinstance(mappings, list) or not all(
        isinstance(m, dict) and m.get("columnName") and m.get("expression") for m in mappings
    ):
        raise invalid("mappings must be a list of {columnName, expression}")
    if not any(m["columnName"] == "__time" for m in mappings):
        raise invalid("A mapping for the __time column is required")
    mode = body.get("ingestionMode", "append")
    if not one_of(mode, {"append", "replace"}):
        raise invalid("ingestionMode must be append or replace")
    if target.get("intervals") and mode == "append":
        raise invalid("target.intervals are not allowed with ingestionMode append")
    if mode == "replace" and not target.get("intervals") and not body.get("replaceAll"):
        raise invalid("ingestionMode replace needs target.intervals or replaceAll: true")


def get_job(emulator: Project, call: Call) -> Response:
    """GET /jobs/{jobId}: the full job."""
    return Response(200, view(existing(emulator, call.params["jobId"])))


def job_status(emulator: Project, call: Call) -> Response:
    """GET /jobs/{jobId}/status."""
    job = existing(emulator, call.params["jobId"])
    return Response(200, {"executionStatus": job["executionStatus"]})


def put_job(emulator: Project, call: Call) -> Response:
    """PUT /jobs/{jobId}: only the desired status can change."""
    return Response(200, view(_desire(emulator, call.params["jobId"], call.body)))


def update_job_status(emulator: Project, call: Call) -> Response:
    """POST /jobs/{jobId}/status: the preferred way to cancel (docs/polaris-api-notes.md).

    The OpenAPI lists 200, 404 and 415 only; inferred: an invalid desired status is a 400, as
    the same body is on PUT /jobs/{jobId}, which lists it.
    """
    job = _desire(emulator, call.params["jobId"], call.body)
    return Response(200, {"executionStatus": job["executionStatus"]})


def _desire(emulator: Project, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    job = existing(emulator, job_id)
    desired = body.get("desiredExecutionStatus")
    if not one_of(desired, {"running", "canceled", "suspended"}):
        raise invalid("desiredExecutionStatus must be running, canceled or suspended")
    if job["type"] == "streaming":
        streaming.desire(emulator, job, str(desired))
        return emulator.store.jobs[job_id]
    if desired == "suspended":
        raise invalid("Only streaming jobs can be suspended")
    if desired == "canceled":
        if job["executionStatus"] in lifecycle.TERMINAL:
            # Inferred: a finished job cannot be canceled; Polaris reports the conflict as 400.
            raise invalid(f"Job {job_id} is already {job['executionStatus']}")
        lifecycle.cancel(emulator, job)
    return emulator.store.jobs[job_id]


def reset_job(emulator: Project, call: Call) -> Response:
    """POST /jobs/{jobId}/reset: streaming only.

    The OpenAPI documents only 200 and 404 here; it is silent on a job that is not streaming.
    Inferred: Polaris refuses to reset a batch job as a bad request (400), as it does for any
    other request that does not apply to the job.
    """
    job = existing(emulator, call.params["jobId"])
    if job["type"] != "streaming":
        raise invalid("Only streaming jobs can be reset")
    streaming.reset(emulator, job)
    return Response(200, None)


def job_progress(emulator: Project, call: Call) -> Response:
    """GET /jobs/{jobId}/progress."""
    job = existing(emulator, call.params["jobId"])
    return Response(200, {"overallProgress": lifecycle.progress(emulator, job)})


def job_logs(emulator: Project, call: Call) -> Response:
    """GET /jobs/{jobId}/logs: submission, what was read, and the health's log entry."""
    job = existing(emulator, call.params["jobId"])
    logs = [
        {
            "timestamp": job["createdTimestamp"],
            "healthStatus": "ok",
            "code": "submitted",
            "message": "Job submitted",
        }
    ]
    if job["type"] == "streaming":
        logs.extend(streaming.logs(emulator, job))
    elif not emulator.reads_data:
        logs.append({"timestamp": job["createdTimestamp"], "healthStatus": "ok", "code": "no_data_read",
                     "message": lifecycle.NO_DATA})  # fmt: skip
    elif "_metrics" in job:
        m = job["_metrics"]
        logs.append({"timestamp": job.get("completedTimestamp", job["createdTimestamp"]),
                     "healthStatus": "ok", "code": "ingested",
                     "message": f"Read {m['numBytesProcessed']} bytes: {m['numRowsProcessed']} rows "
                                f"processed, {m['numRowsPersisted']} persisted"})  # fmt: skip
    if "log" in job["health"]:
        logs.append(job["health"]["log"])
    return Response(200, {"logs": logs})


def job_metrics(emulator: Project, call: Call) -> Response:
    """GET /jobs/{jobId}/metrics: real totals with data, invented ones without."""
    job_id = call.params["jobId"]
    job = existing(emulator, job_id)
    if job["type"] == "streaming":
        return Response(200, {"totals": streaming.metrics(job)})
    if emulator.reads_data:
        return Response(200, {"totals": job.get("_metrics", dict.fromkeys(METRICS, 0))})
    rows = lifecycle.invented_rows(job_id) if job["executionStatus"] == "completed" else 0
    totals = {"numRowsProcessed": rows, "numRowsPersisted": rows, "numRowsProcessedWithWarning": 0,
              "numRowsSkippedByFilter": 0, "numRowsSkippedByError": 0, "numBytesProcessed": rows * 240}  # fmt: skip
    return Response(200, {"totals": totals})


def list_jobs(emulator: Project, call: Call) -> Response:
    """GET /jobs: filtered, sorted summaries, a page at a time."""
    query = call.query
    limit = integer(query, "paginationLimit", 100, 1, 1000)
    offset = integer(query, "paginationOffset", 0, 0, None)
    filters = {
        name: many(query, name)
        for name in ("type", "executionStatus", "healthStatus", "connectionName")
    }
    for name, allowed in (
        ("type", JOB_TYPES),
        ("executionStatus", EXECUTION_STATUSES),
        ("healthStatus", HEALTH_STATUSES),
    ):
        bad = [v for v in filters[name] if v not in allowed]
        if bad:
            raise invalid(f"Unknown {name} value(s): {', '.join(bad)}")
    table = query.get("targetTableName", [None])[-1]
    table_id = query.get("targetTableId", [None])[-1]
    search = (query.get("searchString", [""])[-1] or "").lower()
    column = query.get("sortColumn", ["last_updated_date_time"])[-1]
    order = query.get("sortOrder", ["DESC"])[-1]
    if column not in SORT_COLUMNS or order not in ("ASC", "DESC"):
        raise invalid("sortColumn or sortOrder has an unknown value")
    key = (tuple((k, tuple(v)) for k, v in filters.items()), table, table_id, search, column, order)
    store = emulator.store
    cached = emulator.list_cache.get(key)
    if cached is None or cached[0] != store.version:
        # Built once per state version: paging through N jobs costs O(N), not O(N) a page.
        selected = [
            _summary(j)
            for j in store.jobs.values()
            if _matches(emulator, j, filters, table, table_id, search)
        ]
        selected.reverse()  # newest first breaks ties in the (stable) sort below
        selected.sort(key=SORT_COLUMNS[column], reverse=order == "DESC")
        emulator.list_cache[key] = cached = (store.version, selected)
    page = cached[1][offset : offset + limit]
    return Response(200, {"values": page, "moreResultsAvailable": offset + limit < len(cached[1])})


def _matches(
    emulator: Project,
    job: Mapping[str, Any],
    filters: Mapping[str, list[str]],
    table: str | None,
    table_id: str | None,
    search: str,
) -> bool:
    if filters["type"] and job["type"] not in filters["type"]:
        return False
    if filters["executionStatus"] and job["executionStatus"] not in filters["executionStatus"]:
        return False
    if filters["healthStatus"] and job["health"]["status"] not in filters["healthStatus"]:
        return False
    if (
        filters["connectionName"]
        and job.get("source", {}).get("connectionName") not in filters["connectionName"]
    ):
        return False
    if table is not None and job["target"].get("tableName") != table:
        return False
    if (
        table_id is not None
        and emulator.store.tables.get(job["target"].get("tableName"), {}).get("id") != table_id
    ):
        return False
    return (
        not search
        or search
        in json.dumps(
            [job["id"], job["target"], job.get("source", {}).get("connectionName")]
        ).lower()
    )


def _summary(job: Mapping[str, Any]) -> dict[str, Any]:
    summary = {k: job[k] for k in SUMMARY if k in job}
    if "source" in job:
        summary["source"] = {
            "type": job["source"]["type"],
            "connectionName": job["source"].get("connectionName"),
        }
    return summary


ROUTES = (
    Route("GET", "/jobs", list_jobs),
    Route("POST", "/jobs", create_job, MANAGE_JOBS),
    Route("GET", "/jobs/{jobId}", get_job),
    Route("PUT", "/jobs/{jobId}", put_job, MANAGE_JOBS),
    Route("GET", "/jobs/{jobId}/status", job_status),
    Route("POST", "/jobs/{jobId}/status", update_job_status, MANAGE_JOBS),
    Route("POST", "/jobs/{jobId}/reset", reset_job, MANAGE_JOBS, takes_body=False),
    Route("GET", "/jobs/{jobId}/progress", job_progress),
    Route("GET", "/jobs/{jobId}/logs", job_logs),
    Route("GET", "/jobs/{jobId}/metrics", job_metrics),
)
