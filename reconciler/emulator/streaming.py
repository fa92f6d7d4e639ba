"""Streaming jobs: one per table, on the clock, reading from a checkpoint kept per (table, source).

Sources: the OpenAPI (tests/reference/polaris-openapi-full.json: `CreateStreamingJobRequest`,
`StreamingReadFromPoint`, `POST /jobs/{jobId}/reset`, `POST /events/{connectionName}`).

A source is what a table reads: a Kafka or Confluent topic, a Kinesis stream, or a push
streaming connection. Polaris keeps the read point per (table, source), across jobs: a job that
replaces another on the same source continues from the checkpoint; a job on a source the table
never read starts at its `readFromPoint`; `POST /jobs/{id}/reset` moves the point to the job's
`readFromPoint`. Two sources carry data: events pushed to a `push_streaming` connection are
kept in order (engine.py), and Kinesis streams are read through a local Kinesis endpoint
(`--kinesis-endpoint`, kinesis.py). A running job reads either from its checkpoint into its
table through the same mappings, filter and rollup as a batch job (ingest.py): pushed events as
they arrive, Kinesis records whenever the emulator moves its jobs along (on every request, as
the job lifecycle does). Kafka and Confluent jobs, and Kinesis jobs without an endpoint, go
through their lifecycle and read nothing, and say so in their logs. Every function here runs
under the store's lock.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from reconciler.emulator import kinesis, lifecycle
from reconciler.emulator.api import Call, Response, invalid, not_found, one_of
from reconciler.emulator.auth import MANAGE_JOBS, user
from reconciler.emulator.clock import job_timestamp
from reconciler.emulator.routing import Route
from reconciler.emulator.tables import druid_type, queryable_schema

if TYPE_CHECKING:
    from reconciler.emulator.engine import Point, TableStats
    from reconciler.emulator.state import Project

# The connection types a streaming job reads, and the field naming the topic or stream.
SOURCES = {"kafka": "topicName", "confluent": "topicName", "kinesis": "stream",
           "push_streaming": None}  # fmt: skip
# What Polaris fills when a request leaves these out (the OpenAPI's defaults).
DEFAULTS = {"readFromPoint": "latest", "lateMessageRejectionPeriod": "P30D",
            "earlyMessageRejectionPeriod": "P2000D"}  # fmt: skip
MAX_PARSE_EXCEPTIONS = 2147483647
NO_STREAM = (
    "No data is read: the emulator reaches no Kafka or Confluent topic, and Kinesis streams only "
    "with --kinesis-endpoint, so this job goes through its lifecycle without rows; "
    "push_streaming connections carry real events"
)
# The health codes of a stream the emulator could not read; a read that succeeds clears them.
UNREACHABLE = "could_not_connect_to_source"
# Counters kept on a streaming job: what it read and what it rejected (ingest.ingest_events).
ZERO = {"numRowsProcessed": 0, "numBytesProcessed": 0, "numRowsProcessedWithWarning": 0,
        "numRowsSkippedByFilter": 0, "numRowsSkippedByError": 0}  # fmt: skip
REJECTED = {"parse": 0, "filter": 0, "late": 0, "early": 0}
# ISO 8601 durations as Polaris takes them for the rejection periods. A year counts 365 days
# and a month 30 (inferred: the OpenAPI's examples are in days, P30D and P2000D).
DURATION = re.compile(
    r"P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
DAYS = {"Y": 365, "M": 30, "W": 7, "D": 1}
SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration(text: Any, field: str) -> timedelta:
    """An ISO 8601 duration such as P30D or PT1H (400 naming the field otherwise)."""
    found = DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None or text in ("P", "PT") or text.endswith("T"):
        raise invalid(f"{field} must be an ISO 8601 duration such as P30D")
    parts = {k: float(v) for k, v in found.groupdict().items() if v}
    days = sum(parts.get(k, 0) * n for k, n in DAYS.items())
    return timedelta(days=days, seconds=sum(parts.get(k, 0) * n for k, n in SECONDS.items()))


def source_key(connection: Mapping[str, Any]) -> str:
    """What a table reads through a connection: its topic or stream, or the push connection."""
    field = SOURCES[connection["type"]]
    if field is None:
        return f"push:{connection['name']}"
    kind = "stream" if connection["type"] == "kinesis" else "topic"
    return f"{kind}:{connection[field]}"


def reading(connection: Mapping[str, Any]) -> dict[str, str]:
    """What a job keeps of its connection to read it: a Kinesis stream and its region.

    Kept on the job when it is created: a connection changed afterwards moves no running job
    (a replacement job does, through its own checkpoint).
    """
    if connection["type"] != "kinesis":
        return {}
    return {"stream": str(connection["stream"]), "region": kinesis.region_of(connection)}


def check(emulator: Project, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Refuse a streaming job request that Polaris would; the connection it reads."""
    source = body.get("source")
    if not isinstance(source, dict) or source.get("type") != "connection":
        raise invalid("A streaming job reads source {type: connection, connectionName}")
    name = source.get("connectionName")
    if not isinstance(name, str) or name not in emulator.store.connections:
        raise invalid(f"Connection {name} does not exist")
    connection = emulator.store.connections[name]
    if connection["type"] not in SOURCES:
        raise invalid(
            f"Connection {name} is a {connection['type']} connection; a streaming job reads "
            f"from {', '.join(sorted(SOURCES))}"
        )
    if "readFromPoint" in body and not one_of(body["readFromPoint"], {"earliest", "latest"}):
        raise invalid("readFromPoint must be earliest or latest")
    for field in ("lateMessageRejectionPeriod", "earlyMessageRejectionPeriod"):
        if field in body:
            duration(body[field], field)
    for flag in ("replaceRunning", "enableUpserts", "useSchemaDiscovery"):
        if flag in body and not isinstance(body[flag], bool):
            raise invalid(f"{flag} must be of type boolean")
    _check_upserts(body)
    return connection


def _check_upserts(body: Mapping[str, Any]) -> None:
    """The OpenAPI: enableUpserts needs both fields, which require it; the key columns are
    dimensions, so (inferred) they and the version column are columns the job maps."""
    keys, version = body.get("upsertKeyColumns"), body.get("upsertVersionColumn")
    if body.get("enableUpserts") is not True:
        if keys or version:
            raise invalid("upsertKeyColumns and upsertVersionColumn require enableUpserts: true")
        return
    if not keys or not version:
        raise invalid("enableUpserts needs upsertKeyColumns and upsertVersionColumn")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid("upsertKeyColumns must be a list of column names")
    if not isinstance(version, str):
        raise invalid("upsertVersionColumn must be of type string")
    mappings = body.get("mappings")
    mapped = (
        {m.get("columnName") for m in mappings if isinstance(m, dict)}
        if isinstance(mappings, list)
        else set()
    )
    aggregated = {
        m.get("columnName")
        for m in mappings or []
        if isinstance(m, dict) and m.get("isAggregation")
    }
    unknown = [c for c in [*keys, version] if c not in mapped or c in aggregated]
    if unknown:
        raise invalid(f"Upsert column(s) {', '.join(unknown)} are not dimensions the job maps")


def current(emulator: Project, table: str) -> dict[str, Any] | None:
    """The streaming job of a table that is not finished (pending, running or suspended)."""
    for job in emulator.active_jobs():
        if job["type"] == "streaming" and job["target"].get("tableName") == table:
            return job
    return None


def create(emulator: Project, call: Call, body: dict[str, Any]) -> Response:
    """A streaming job (checked, its table there): pending until the clock starts it.

    The OpenAPI says a second create on a table "will be rejected with an error" unless
    `replaceRunning` is true, and lists 400 as the error of POST /jobs: so it is a 400 here.
    A replacement cancels the job it replaces and gets a new id.
    """
    connection = emulator.store.connections[body["source"]["connectionName"]]
    table = body["target"]["tableName"]
    running = current(emulator, table)
    if running is not None:
        if body.get("replaceRunning") is not True:
            raise invalid(
                f"Table {table} already has a streaming job ({running['id']}); set "
                "replaceRunning to replace it"
            )
        lifecycle.cancel(emulator, running)
    creator, moment = user(call.caller), emulator.now()
    now = job_timestamp(moment)
    job_id = str(uuid.uuid4())
    job = {
        **DEFAULTS, **body, "id": job_id, "desiredExecutionStatus": "running",
        "executionStatus": "pending", "health": {"status": "ok"}, "createdBy": creator,
        "lastModifiedBy": creator, "createdTimestamp": now, "lastUpdatedTimestamp": now,
        "spec": body, "_created": moment.isoformat(), "held": emulator.held,
        "_source": source_key(connection), "_metrics": dict(ZERO), "_rejected": dict(REJECTED),
        "_connection": reading(connection),
    }  # fmt: skip
    job.pop("replaceRunning", None)
    engine = emulator.engine
    if engine.checkpoint(table, job["_source"]) is None:
        # A source the table never read: start at the job's readFromPoint. `latest` is what is
        # sent after the job is created; `earliest` is everything the source still holds.
        engine.set_checkpoint(table, job["_source"], _start(emulator, job))
    emulator.store.put("jobs", job_id, job)
    emulator.active.add(job_id)
    location = f"/v1/projects/{emulator.project_id}/jobs/{job_id}"
    return Response(201, {k: v for k, v in job.items() if not k.startswith("_") and k != "held"},
                    {"Location": location})  # fmt: skip


def _start(emulator: Project, job: Mapping[str, Any]) -> Point | None:
    """Where a job's readFromPoint is on its source now (None: a stream not reachable now, so
    the first read decides)."""
    source = str(job["_source"])
    latest = job["readFromPoint"] == "latest"
    if source.startswith("push:"):
        return emulator.engine.head(source) if latest else 0
    if not _reads_kinesis(emulator, job):
        return 0
    if not latest:
        return {}
    connection = _kinesis_stream(job)
    try:
        return emulator.kinesis(connection["region"]).tip(connection["stream"])
    except kinesis.KinesisError:
        return None


def _kinesis_stream(job: Mapping[str, Any]) -> Mapping[str, str]:
    # A job journaled before jobs kept their connection's region reads the default region.
    stream = str(job["_source"]).removeprefix("stream:")
    return job.get("_connection") or {"stream": stream, "region": kinesis.DEFAULT_REGION}


def _reads_kinesis(emulator: Project, job: Mapping[str, Any]) -> bool:
    return str(job["_source"]).startswith("stream:") and emulator.kinesis_endpoint is not None


def reads(emulator: Project, job: Mapping[str, Any]) -> bool:
    """Whether a streaming job reads real data: pushed events, or Kinesis with an endpoint."""
    return str(job.get("_source", "")).startswith("push:") or _reads_kinesis(emulator, job)


def advance(emulator: Project) -> None:
    """Start the streaming jobs whose time has come (lifecycle.advance leaves them alone)."""
    now = emulator.now()
    for job_id in emulator.clocked_jobs():  # held and pinned jobs stay as they are
        job = emulator.store.jobs[job_id]
        if job["type"] != "streaming" or job["executionStatus"] != "pending":
            continue
        started = emulator.timing.started(job)
        if now >= started:
            lifecycle.transition(emulator, job, "running", started=started)
            read(emulator, emulator.store.jobs[job_id])
    if emulator.kinesis_endpoint is None:
        return  # no job reads Kinesis (_reads_kinesis)
    for job_id in list(emulator.active):  # Kinesis is read on the clock; pushes as they come
        job = emulator.store.jobs[job_id]
        if job["type"] == "streaming" and _reads_kinesis(emulator, job):
            read(emulator, job)


def desire(emulator: Project, job: dict[str, Any], desired: str) -> None:
    """Suspend, resume or cancel a streaming job.

    Inferred: suspending and resuming take effect at once (the OpenAPI does not say how long
    either takes); a resumed job reads what was pushed while it was suspended.
    """
    status = job["executionStatus"]
    if status in lifecycle.TERMINAL:
        raise invalid(f"Job {job['id']} is already {status}")
    if desired == "canceled":
        lifecycle.cancel(emulator, job)
        return
    job = {**job, "desiredExecutionStatus": desired}
    if desired == "suspended" and status != "suspended":
        lifecycle.transition(emulator, job, "suspended")
    elif desired == "running" and status == "suspended":
        lifecycle.transition(emulator, job, "running")
        read(emulator, emulator.store.jobs[job["id"]])
    else:
        emulator.store.put("jobs", job["id"], job)


def reset(emulator: Project, job: Mapping[str, Any]) -> None:
    """Move the table's read point on the job's source to the job's readFromPoint."""
    if job["executionStatus"] in lifecycle.TERMINAL:
        raise invalid(f"Job {job['id']} is {job['executionStatus']}; only a live job is reset")
    emulator.engine.set_checkpoint(
        job["target"]["tableName"], job["_source"], _start(emulator, job)
    )
    read(emulator, job)


def read(emulator: Project, job: Mapping[str, Any]) -> None:
    """Read what a running job has not read yet of its source into its table."""
    from reconciler.emulator.ingest import Failure, Window, ingest_events  # deferred: DuckDB

    if job["executionStatus"] != "running" or not reads(emulator, job):
        return
    engine, table_name = emulator.engine, job["target"]["tableName"]
    table = emulator.store.tables.get(table_name)
    if table is None:
        return
    source = str(job["_source"])
    if source.startswith("push:"):
        after = engine.checkpoint(table_name, source) or 0
        events = engine.events_after(source, after)
        if not events:
            return
        lines: list[str] = [line for _, line in events]
        point: Point = events[-1][0]
    else:
        unread = _unread_records(emulator, job)
        if unread is None:
            return
        job = emulator.store.jobs[job["id"]]
        lines, point = unread
        if not lines:
            if point != engine.shards_read(table_name, source):  # records without events
                engine.set_checkpoint(table_name, source, point)
            return
    now = emulator.now().replace(tzinfo=None)
    window = Window(
        earliest=now - duration(job["lateMessageRejectionPeriod"], "lateMessageRejectionPeriod"),
        latest=now + duration(job["earlyMessageRejectionPeriod"], "earlyMessageRejectionPeriod"),
    )
    batch = f"{job['id']}-{uuid.uuid4().hex[:12]}"
    cursor = engine.db.cursor()
    try:
        staged, rejected = ingest_events(cursor, batch, job, table, lines, window)
        upsert = (
            (job["upsertKeyColumns"], job["upsertVersionColumn"])
            if job.get("enableUpserts")
            else None
        )
        stats = engine.commit(batch, staged, (table_name, source, point), upsert)
    except Failure as failure:
        health = lifecycle.error_health(failure.code, failure.message, emulator.now())
        lifecycle.transition(emulator, dict(job), "failed", health=health)
        return
    finally:
        cursor.close()
    metrics = {k: job["_metrics"][k] + staged.metrics[k] for k in ZERO}
    counts = {k: job["_rejected"][k] + rejected[k] for k in REJECTED}
    updated = {**job, "_metrics": metrics, "_rejected": counts}
    limit = job.get("maxParseExceptions", MAX_PARSE_EXCEPTIONS)
    moment = emulator.now()
    if counts["parse"] > limit:
        message = (
            f"{counts['parse']} event(s) could not be parsed, more than maxParseExceptions "
            f"({limit})"
        )
        health = lifecycle.error_health("cannot_parse_source", message, moment)
        lifecycle.transition(emulator, updated, "failed", health=health)
    elif counts["parse"]:
        message = (
            f"{counts['parse']} event(s) could not be parsed (not a JSON object, or no __time)"
        )
        log = {"timestamp": job_timestamp(moment), "healthStatus": "warn",
               "code": "invalid_rows_found", "message": message}  # fmt: skip
        updated["health"] = {"status": "warn", "code": "invalid_rows_found", "log": log}
        emulator.store.put("jobs", job["id"], updated)
    else:
        emulator.store.put("jobs", job["id"], updated)
    _refresh(emulator, table_name, stats)


def _unread_records(emulator: Project, job: Mapping[str, Any]) -> tuple[list[str], Point] | None:
    """The events of the Kinesis records a job has not read, and the read point after them;
    None when the stream cannot be read now (the job's health says why until it can)."""
    engine, table_name, source = emulator.engine, job["target"]["tableName"], job["_source"]
    connection = _kinesis_stream(job)
    stream = connection["stream"]
    try:
        after = engine.shards_read(table_name, source)
        if after is None:  # never reached: start at the readFromPoint now
            start = _start(emulator, job)
            if start is None:
                raise kinesis.KinesisError(f"Stream {stream} cannot be read")
            after = dict(start) if isinstance(start, Mapping) else {}
            engine.set_checkpoint(table_name, source, after)
        records = emulator.kinesis(connection["region"]).read(stream, after)
    except kinesis.KinesisError as error:
        message = f"Could not read Kinesis stream {stream} at {emulator.kinesis_endpoint}: {error}"
        health = lifecycle.error_health(UNREACHABLE, message, emulator.now())
        if job["health"].get("code") != UNREACHABLE or job["health"].get("message") != message:
            emulator.store.put("jobs", job["id"], {**job, "health": health})
        return None
    if job["health"].get("code") == UNREACHABLE:
        emulator.store.put("jobs", job["id"], {**job, "health": {"status": "ok"}})
    events = [line for record in records for line in kinesis.lines(record)]
    return events, kinesis.positions(after, records)


def _refresh(emulator: Project, name: str, stats: TableStats) -> None:
    table = emulator.store.tables.get(name)
    if table is None:
        return
    stored = [(column, druid_type(kind)) for column, kind in emulator.engine.columns(name)]
    emulator.store.put("tables", name, {
        **table, "totalRows": stats.rows, "segmentCount": stats.segments,
        "totalDataSizeBytes": stats.bytes, "segmentTotalBytes": stats.bytes,
        "queryableSchema": queryable_schema(table, stored),
    })  # fmt: skip


def logs(emulator: Project, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a streaming job read and rejected, as log entries after its submission."""
    at = job["lastUpdatedTimestamp"]
    if not reads(emulator, job):
        return [
            {"timestamp": at, "healthStatus": "ok", "code": "no_data_read", "message": NO_STREAM}
        ]
    m, r = job["_metrics"], job["_rejected"]
    entries = [{"timestamp": at, "healthStatus": "ok", "code": "ingested",
                "message": f"Read {m['numBytesProcessed']} bytes: {m['numRowsProcessed']} rows "
                           f"processed, {r['parse']} unparseable, {r['filter']} filtered out"}]  # fmt: skip
    for kind, field in (("late", "lateMessageRejectionPeriod"),
                        ("early", "earlyMessageRejectionPeriod")):  # fmt: skip
        if r[kind]:
            entries.append({"timestamp": at, "healthStatus": "ok", "code": f"{kind}_messages_rejected",
                            "message": f"{r[kind]} event(s) rejected as {kind} messages "
                                       f"({field} {job[field]})"})  # fmt: skip
    return entries


def push_events(emulator: Project, call: Call) -> Response:
    """POST /events/{connectionName}: newline-delimited JSON events for a push connection.

    Events are kept in the connection's stream whatever its jobs are doing, and each running
    job reading it reads them at once. The OpenAPI is silent on events pushed while the job is
    suspended, or with no job at all; the emulator keeps them, as a stream does: a suspended job
    reads them when it resumes, and a new job reads them only with readFromPoint earliest.
    A line that is not a JSON object is kept too, and counted as a parse error when read.
    """
    name = call.params["connectionName"]
    connection = emulator.store.connections.get(name)
    if connection is None:
        raise not_found(f"Connection {name} not found")
    if connection["type"] != "push_streaming":
        # The OpenAPI's 400 for this operation is "Invalid topic name".
        raise invalid(f"Connection {name} is a {connection['type']} connection, not push_streaming")
    try:
        text = call.raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("Events must be UTF-8 text, one JSON object a line") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise invalid("No events: send one JSON object a line")
    source = f"push:{name}"
    emulator.engine.append_events(source, lines)
    for job in emulator.active_jobs():
        if job["type"] == "streaming" and job["_source"] == source:
            read(emulator, job)
    return Response(200, None)


def carries_data(emulator: Project) -> bool:
    """Whether a streaming job reads real data, so that tables hold real rows to query."""
    return any(
        j["type"] == "streaming" and reads(emulator, j) for j in emulator.store.jobs.values()
    )


def metrics(job: Mapping[str, Any]) -> dict[str, int]:
    """A streaming job's totals (the OpenAPI: streaming jobs do not report numRowsPersisted)."""
    return dict(job.get("_metrics", ZERO))


ROUTES = (Route("POST", "/events/{connectionName}", push_events, MANAGE_JOBS, takes_body=False),)
