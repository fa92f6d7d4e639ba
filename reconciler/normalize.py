"""Bring desired and live specs to one comparable form, driven by the declared facts below.

This module is the one place that knows which fields Polaris fills, which are read-only and which
are write-only. The same functions run on both sides, so a value the server adds never shows up as
a difference and a job read back from Polaris has the same fingerprint as the manifest it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import connection_types
from reconciler.model import Kind

# Fields of a create request that the reconciler manages, per kind. Everything else in a live
# resource (ids, versions, users, timestamps, statuses, sizes) is read-only and never compared.
# A connection's fields depend on its type: reconciler/connection_types.py narrows these to the
# type's own (`writable`).
WRITABLE: dict[Kind, tuple[str, ...]] = {
    Kind.CONNECTION: tuple(
        dict.fromkeys(
            field
            for kind in connection_types.CONNECTION_TYPES.values()
            for field in kind.writable
        )
    ),
    Kind.TABLE: (
        "type", "description", "partitioningGranularity", "schemaMode", "schema",
        "clusteringColumns", "storagePolicy", "queryGranularity", "timeResolution",
    ),
    Kind.INGESTION_JOB: (
        "type", "target", "createTableIfNotExists", "source", "mappings", "ingestionMode",
        "filterExpression", "maxParseExceptions", "partitionedBy", "clusteringColumns",
        "replaceAll", "context",
    ),
}  # fmt: skip

# Documented defaults (OpenAPI `default`s). Filled on both sides before comparing, so writing a
# default explicitly, or leaving it out, is the same thing.
DEFAULTS: dict[Kind, dict[str, Any]] = {
    Kind.CONNECTION: {},
    Kind.TABLE: {"partitioningGranularity": "day", "schema": [], "clusteringColumns": []},
    Kind.INGESTION_JOB: {
        "createTableIfNotExists": False,
        "ingestionMode": "append",
        "maxParseExceptions": 2147483647,
        "replaceAll": False,
        "mappings": [],
        "context": {},
        "clusteringColumns": [],
    },
}
AGGREGATE_TABLE_DEFAULTS = {"timeResolution": "millisecond"}
FORMAT_DEFAULTS: dict[str, dict[str, Any]] = {
    "csv": {"columns": [], "skipHeaderRows": 0, "delimiter": ","},
    "parquet": {"binaryAsString": False},
}

# Fields Polaris chooses itself when a request leaves them out and that have no documented
# default: a manifest that omits one does not manage it (no perpetual diff); one that sets it does.
SERVER_CHOSEN: dict[Kind, frozenset[str]] = {
    Kind.CONNECTION: frozenset(),
    Kind.TABLE: frozenset({"schemaMode", "storagePolicy", "queryGranularity"}),
    Kind.INGESTION_JOB: frozenset(),
}

# Write-only values: sent on create, never returned. Only the secret's `type` can be compared.
WRITE_ONLY_SECRET_FIELDS_KEPT = ("type",)

# Polaris appends this mapping to every job with aggregations (see the S3 guide's sample response).
SERVER_ADDED_MAPPING = {"columnName": "__count", "expression": "COUNT(*)"}
# Every table has the primary timestamp column; Polaris lists it whether or not it was declared.
TIME_COLUMN = "__time"


@dataclass(frozen=True)
class FieldChange:
    """One field-level difference between live and desired, as a reviewer reads it."""

    path: str  # dotted, from the spec root: "source.formatSettings.delimiter"
    before: Any
    after: Any

    @property
    def op(self) -> str:
        """`add`, `remove` or `change`."""
        if self.before is MISSING:
            return "add"
        if self.after is MISSING:
            return "remove"
        return "change"

    def to_json(self) -> dict[str, Any]:
        """The change as plan JSON shows it."""
        entry: dict[str, Any] = {"path": self.path, "op": self.op}
        if self.before is not MISSING:
            entry["before"] = self.before
        if self.after is not MISSING:
            entry["after"] = self.after
        return entry


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def normalize(
    kind: Kind, spec: Mapping[str, Any], *, manage: frozenset[str] | None = None
) -> dict[str, Any]:
    """The comparable form of a spec; `manage` limits server-chosen fields to those the manifest sets."""
    source = _job_request(spec) if kind == Kind.INGESTION_JOB else spec
    result = {field: plain(source[field]) for field in writable(kind, source) if field in source}
    for field, default in DEFAULTS[kind].items():
        result.setdefault(field, default)
    if kind == Kind.CONNECTION:
        result = _connection(result)
    elif kind == Kind.TABLE:
        result = _table(result)
    else:
        result = _job(result)
    if manage is not None:
        for field in SERVER_CHOSEN[kind] - manage:
            result.pop(field, None)
    return result


def comparable(
    kind: Kind, desired: Mapping[str, Any], live: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(desired, actual) normalized for comparison: server-chosen fields only where the manifest
    sets them, and write-only values left out of both sides when the server does not return them."""
    manage = managed_fields(kind, desired)
    wanted, actual = normalize(kind, desired, manage=manage), normalize(kind, live, manage=manage)
    if "secrets" not in live:
        wanted.pop("secrets", None)
        actual.pop("secrets", None)
    return wanted, actual


def managed_fields(kind: Kind, desired: Mapping[str, Any]) -> frozenset[str]:
    """The server-chosen fields a manifest explicitly sets (and so manages)."""
    return frozenset(field for field in SERVER_CHOSEN[kind] if field in desired)


def fingerprint(job_spec: Mapping[str, Any], place: Mapping[str, str] | None = None) -> str:
    """The identity of a batch job: sha256 of the canonical JSON of its normalized spec.

    With `place` (the connection's endpoint, bucket and prefix, see identity.Place), the
    connection's name is replaced by where it reads from: a renamed connection, or another
    connection on the same bucket and prefix, reads the same objects, so the job is the same.
    """
    spec = normalize(Kind.INGESTION_JOB, job_spec)
    if place is not None:
        source = spec["source"]
        source.pop("connectionName", None)
        source["location"] = dict(place)
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Functions that aggregate rows (Polaris SQL, the Druid aggregators it exposes); a mapping whose
# expression calls one is a rollup. Quoted identifiers and string literals are removed first, so
# a column named "max" or a literal 'SUM(' is not mistaken for one.
AGGREGATE_CALL = re.compile(
    r"\b(SUM|MIN|MAX|COUNT|AVG|LATEST|EARLIEST|LATEST_BY|EARLIEST_BY|ANY_VALUE|APPROX_\w+|"
    r"DS_\w+|HLL_SKETCH_\w+|THETA_SKETCH\w*|TUPLE_\w+|STDDEV\w*|VARIANCE\w*|VAR_\w+|"
    r"BIT_AND|BIT_OR|BIT_XOR|ARRAY_AGG|STRING_AGG|LISTAGG|GROUPING)\s*\(",
    re.IGNORECASE,
)
QUOTED = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'')


def aggregates(expression: str) -> bool:
    """Whether a mapping expression aggregates (and so the mapping is `isAggregation: true`)."""
    return AGGREGATE_CALL.search(QUOTED.sub(" ", expression)) is not None


def additions(spec: Mapping[str, Any]) -> list[FieldChange]:
    """Every top-level field of a normalized spec, as added (what a create sends)."""
    return [FieldChange(name, MISSING, value) for name, value in sorted(spec.items())]


# Object selectors are sets of keys and may hold tens of thousands: compared as sets, and a long
# one is summarised (deepdiff would take seconds to pair them up, and a reviewer cannot read them).
KEY_SETS = ("uris", "prefixes", "objects")
LONG_KEY_SET = 100


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    """Field-level differences between two normalized specs, in path order."""
    if before == after:  # the common case; deepdiff costs ~0.2 ms even to find nothing
        return []
    from deepdiff import DeepDiff  # imported on first use: it takes ~50 ms to load

    before, after, changes = _key_set_changes(before, after)
    tree = DeepDiff(dict(before), dict(after), ignore_order=False, view="tree", verbose_level=2)
    for report, items in tree.items():
        for item in items:
            path = _dotted(item.path(output_format="list"))
            old = MISSING if report.endswith("_added") else item.t1
            new = MISSING if report.endswith("_removed") else item.t2
            changes.append(FieldChange(path, old, new))
    return sorted(changes, key=lambda change: change.path)


def _key_set_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any], list[FieldChange]]:
    """Long key lists of two job specs as one summarised change each; the specs without them."""
    old_source, new_source = before.get("source"), after.get("source")
    if not isinstance(old_source, Mapping) or not isinstance(new_source, Mapping):
        return before, after, []
    changes = []
    old_source, new_source = dict(old_source), dict(new_source)
    for name in KEY_SETS:
        old, new = old_source.get(name) or [], new_source.get(name) or []
        if not isinstance(old, list) or not isinstance(new, list):
            continue
        if max(len(old), len(new)) <= LONG_KEY_SET:
            continue
        old_source.pop(name, None)
        new_source.pop(name, None)
        added, removed = (
            set(map(str, new)) - set(map(str, old)),
            set(map(str, old)) - set(map(str, new)),
        )
        if added or removed:
            summary = f"{len(new)} keys: {len(added)} added, {len(removed)} removed"
            example = min(added or removed)
            changes.append(
                FieldChange(f"source.{name}", f"{len(old)} keys", f"{summary} (such as {example})")
            )
    return {**before, "source": old_source}, {**after, "source": new_source}, changes


def _job_request(job: Mapping[str, Any]) -> Mapping[str, Any]:
    # A live job carries the request it was created from under `spec` (the OpenAPI's
    # BatchJobResponse); that is the most faithful record, so prefer it to the top-level echo.
    echoed = job.get("spec")
    return echoed if isinstance(echoed, Mapping) and "source" in echoed else job


def writable(kind: Kind, spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields of `spec` the reconciler manages: for a connection, those of its type."""
    connection_type = connection_types.of(spec) if kind == Kind.CONNECTION else None
    return connection_type.writable if connection_type is not None else WRITABLE[kind]


def _connection(spec: dict[str, Any]) -> dict[str, Any]:
    connection_type = connection_types.of(spec)
    if connection_type is not None:
        for field, default in connection_type.defaults.items():
            spec.setdefault(field, plain(default))
    secrets = spec.get("secrets")
    if isinstance(secrets, Mapping):
        spec["secrets"] = {k: v for k, v in secrets.items() if k in WRITE_ONLY_SECRET_FIELDS_KEPT}
    return spec


def _table(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("type") == "aggregate":
        for field, default in AGGREGATE_TABLE_DEFAULTS.items():
            spec.setdefault(field, default)
    # Column order is presentation only and __time always exists: compare columns by name.
    spec["schema"] = {
        column["name"]: column for column in spec["schema"] if column.get("name") != TIME_COLUMN
    }
    return spec


def _job(spec: dict[str, Any]) -> dict[str, Any]:
    source = dict(spec.get("source", {}))
    settings = dict(source.get("formatSettings", {}))
    for field, default in FORMAT_DEFAULTS.get(settings.get("format", ""), {}).items():
        settings.setdefault(field, default)
    if settings:
        source["formatSettings"] = settings
    for selector in ("uris", "prefixes", "objects"):
        if isinstance(source.get(selector), list):  # a set of objects: order carries no meaning
            source[selector] = sorted(source[selector])
        elif selector in source and source[selector] is None:
            del source[selector]
    if source.get("pattern") is None:
        source.pop("pattern", None)
    source["inputSchema"] = sorted(source.get("inputSchema", []), key=lambda f: str(f.get("name")))
    spec["source"] = source
    # Polaris appends a __count mapping to rollups, so it is not part of a job's identity; it does
    # not echo isAggregation, which changes what lands in the table: where a spec leaves it out,
    # it is derived from the expression (an aggregate call means aggregation), on both sides.
    mappings = [
        {k: v for k, v in mapping.items() if k != "isAggregation"}
        for mapping in spec.get("mappings", [])
    ]
    explicit = [mapping.get("isAggregation") for mapping in spec.get("mappings", [])]
    spec["mappings"] = sorted(
        (
            {
                **m,
                "isAggregation": bool(
                    aggregates(str(m.get("expression", ""))) if flag is None else flag
                ),
            }
            for m, flag in zip(mappings, explicit, strict=True)
            if m != SERVER_ADDED_MAPPING
        ),
        key=lambda m: str(m.get("columnName")),
    )
    target = dict(spec.get("target", {}))
    if not target.get("intervals"):
        target.pop("intervals", None)
    spec["target"] = target
    return spec


def plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars only."""
    if isinstance(value, str):  # most values; isinstance of an ABC (Mapping) is slow to say no
        return value
    if isinstance(value, dict | Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _dotted(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
