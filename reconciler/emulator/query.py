"""The Query API's request and result shapes (tests/reference/polaris-query-api.md).

Polaris forwards `POST /v1/projects/{projectId}/query/sql` to Druid SQL: the request is an
`SqlRequest`, a failure a 400 `SqlErrorResponse`, and results come in Druid's five formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.emulator import streaming
from reconciler.emulator.api import Call, Response
from reconciler.emulator.lifecycle import NO_DATA
from reconciler.emulator.routing import Route

if TYPE_CHECKING:
    from reconciler.emulator.engine import Engine
    from reconciler.emulator.state import Project

RESULT_FORMATS = frozenset({"object", "array", "objectLines", "arrayLines", "csv"})


@dataclass(frozen=True)
class SqlRequest:
    """A checked request body."""

    query: str
    result_format: str
    header: bool
    types_header: bool
    sql_types_header: bool
    parameters: list[Any]


def error(code: str, category: str, message: str) -> Response:
    """Polaris's SqlErrorResponse (the Query API's 400 body)."""
    body = {"error": "druidException", "errorCode": code, "persona": "USER",
            "category": category, "errorMessage": message, "context": {}}  # fmt: skip
    return Response(400, body)


def parse_request(body: dict[str, Any]) -> SqlRequest | Response:
    """The request, or the error response that refuses it."""
    query, fmt = body.get("query"), body.get("resultFormat", "object")
    parameters = body.get("parameters") or []
    if not isinstance(query, str) or not query.strip():
        return error("invalidInput", "INVALID_INPUT", "query is required (a Druid SQL string)")
    if not isinstance(fmt, str) or fmt not in RESULT_FORMATS:
        return error(
            "invalidInput", "INVALID_INPUT",
            f"resultFormat must be one of {', '.join(sorted(RESULT_FORMATS))}",
        )  # fmt: skip
    if not isinstance(parameters, list) or not all(
        isinstance(p, dict) and "value" in p for p in parameters
    ):
        return error("invalidInput", "INVALID_INPUT", "parameters must be a list of {type, value}")
    header = body.get("header") is True
    return SqlRequest(
        query, fmt, header, header and body.get("typesHeader") is True,
        header and body.get("sqlTypesHeader") is True, [p["value"] for p in parameters],
    )  # fmt: skip


def druid_types(duckdb_type: str) -> tuple[str, str]:
    """A DuckDB result type as Druid's runtime and SQL types."""
    kind = duckdb_type.upper()
    if kind.startswith("TIMESTAMP"):
        return "LONG", "TIMESTAMP"
    if kind in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return "LONG", "BIGINT"
    if kind in ("FLOAT", "REAL"):
        return "FLOAT", "FLOAT"
    if kind == "DOUBLE" or kind.startswith("DECIMAL"):
        return "DOUBLE", "DOUBLE"
    if kind == "BOOLEAN":
        return "LONG", "BOOLEAN"
    return "STRING", "VARCHAR"


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def answer(engine: Engine, request: SqlRequest, tables: list[str]) -> Response:
    """Run the query; rows in the requested format (line formats end with a blank line)."""
    from reconciler.emulator.engine import QueryError  # DuckDB loads only when a query comes

    try:
        result = engine.query(request.query, tables, request.parameters)
    except QueryError as failure:
        return error(failure.code, failure.category, failure.message)
    columns, rows = result.columns, result.rows
    types = [druid_types(t) for t in result.types]
    runtime = [t[0] for t in types] if request.types_header else None
    sql_types = [t[1] for t in types] if request.sql_types_header else None
    headers = {"X-Druid-SQL-Header-Included": "yes"} if request.header else {}
    items: list[Any]
    if request.result_format in ("object", "objectLines"):
        items = [dict(zip(columns, row, strict=True)) for row in rows]
        if request.header:
            described = [
                {**({"type": runtime[i]} if runtime else {}),
                 **({"sqlType": sql_types[i]} if sql_types else {})} or None
                for i in range(len(columns))
            ]  # fmt: skip
            items.insert(0, dict(zip(columns, described, strict=True)))
    else:
        items = [list(row) for row in rows]
        if request.header:
            items[:0] = [list(columns), *(row for row in (runtime, sql_types) if row)]
    if request.result_format in ("object", "array"):
        return Response(200, items, headers)
    if request.result_format == "csv":
        text = "".join(",".join(_csv_field(v) for v in row) + "\n" for row in items) + "\n"
        return Response(200, None, headers, raw=text.encode(), media_type="text/csv")
    text = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items) + "\n"
    return Response(200, None, headers, raw=text.encode(), media_type="text/plain")


def query_sql(emulator: Project, call: Call) -> Response:
    """POST /query/sql: Druid SQL over the project's tables."""
    request = parse_request(call.body)
    if isinstance(request, Response):
        return request
    if not emulator.reads_data and not streaming.carries_data(emulator):
        return error("invalidInput", "INVALID_INPUT", NO_DATA)
    return answer(emulator.engine, request, sorted(emulator.store.tables))


ROUTES = (Route("POST", "/query/sql", query_sql),)
