"""What a batch job's spec is, and its compared form: the one normalization every other module of
this package reads (a spec is normalized once per run, at validation, and a live job's request
once, when it is read)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.kinds.base import Fields, ResourceKind
from reconciler.model import Kind

FORMAT_DEFAULTS: dict[str, dict[str, Any]] = {
    "csv": {"columns": [], "skipHeaderRows": 0, "delimiter": ","},
    "parquet": {"binaryAsString": False},
}
# Polaris appends this mapping to every job with aggregations (the S3 guide's sample response,
# tests/reference/polaris-s3-ingestion-guide.txt).
SERVER_ADDED_MAPPING = {"columnName": "__count", "expression": "COUNT(*)"}
SELECTORS = ("uris", "prefixes", "objects")  # sets of keys: order carries no meaning
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


def request_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request a job was created from: a live job carries it under `spec` (the OpenAPI's
    BatchJobResponse), the most faithful record, so it is preferred to the top-level echo."""
    echoed = job.get("spec")
    return echoed if isinstance(echoed, Mapping) and "source" in echoed else job


class JobSpec(ResourceKind):
    """The spec of a batch ingestion job: its fields and how it is normalized. `kind.IngestionJob`
    adds the steps (validate, read, plan, apply, import); this part is what the modules below it
    need, so that none of them imports the kind."""

    kind = Kind.INGESTION_JOB
    collection = "jobs"
    imported_by_default = False  # only with `reconciler import --jobs`
    schema_file = "ingestionjob.schema.json"
    # The object selectors are sets of keys and may hold tens of thousands (normalize.diff).
    key_sets = (("source", "uris"), ("source", "prefixes"), ("source", "objects"))
    fields = Fields(
        writable=(
            "type", "target", "createTableIfNotExists", "source", "mappings", "ingestionMode",
            "filterExpression", "maxParseExceptions", "partitionedBy", "clusteringColumns",
            "replaceAll", "context",
        ),
        defaults={
            "createTableIfNotExists": False, "ingestionMode": "append",
            "maxParseExceptions": 2147483647, "replaceAll": False, "mappings": [], "context": {},
            "clusteringColumns": [],
        },
        read_only=(
            "id", "executionStatus", "health", "createdBy", "createdTimestamp",
            "lastModifiedBy", "lastUpdatedTimestamp", "desiredExecutionStatus", "spec",
        ),
    )  # fmt: skip

    def request_of(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return request_of(body)

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        # What it leaves unchanged is shared with `spec` (a plan keeps every manifest job's
        # compared form beside its spec); what it changes is copied, never changed in place.
        source = dict(spec.get("source", {}))
        settings = source.get("formatSettings", {})
        if type(settings) is not dict:
            settings = dict(settings)
        defaults = FORMAT_DEFAULTS.get(settings.get("format", ""), {})
        missing = {name: value for name, value in defaults.items() if name not in settings}
        if missing:
            settings = {**settings, **missing}
        if settings:
            source["formatSettings"] = settings
        for selector in SELECTORS:
            if isinstance(source.get(selector), list):
                source[selector] = _sorted(source[selector])
            elif selector in source and source[selector] is None:
                del source[selector]
        if source.get("pattern") is None:
            source.pop("pattern", None)
        source["inputSchema"] = _sorted(
            source.get("inputSchema", []), key=lambda f: str(f.get("name"))
        )
        spec["source"] = source
        # Polaris appends a __count mapping to rollups, so it is not part of a job's identity; it
        # does not echo isAggregation, which changes what lands in the table: where a spec leaves
        # it out, it is derived from the expression (an aggregate call means aggregation).
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
        target = spec.get("target", {})
        if type(target) is not dict or ("intervals" in target and not target["intervals"]):
            target = dict(target)
            if not target.get("intervals"):
                target.pop("intervals", None)
        spec["target"] = target
        return spec


def _sorted(items: Any, key: Callable[[Any], Any] | None = None) -> list[Any]:
    """`items` sorted: the list itself where it already is (a compared form shares it)."""
    ordered = sorted(items, key=key)
    if not isinstance(items, list) or type(items) is not list or len(items) != len(ordered):
        return ordered
    return items if all(a is b for a, b in zip(ordered, items, strict=True)) else ordered


JOB_SPEC = JobSpec()  # normalizes for the modules below the kind, which the registry is not asked


def compared_form(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A job's spec (or a live job's request) in compared form, its values shared with `spec`:
    `shape` copies what it changes, so `spec` is never changed, and a reader never changes it."""
    return JOB_SPEC.normalize(spec, copy=False)
