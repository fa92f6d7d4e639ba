"""The checks `reconciler validate` makes of a batch job that need more than its own document:
the connection and table it names, its mappings against its input schema and table, its pattern,
and no second manifest with its spec. Each check is one function returning its errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from reconciler import connection_types
from reconciler.globs import GlobError, GlobTooLarge, JavaGlobError, compile_glob, sequences
from reconciler.kinds.base import SQL_TOKEN, TIME_COLUMN, Locate
from reconciler.kinds.ingestion_job.fingerprints import SpecFingerprint, spec_fingerprint
from reconciler.kinds.ingestion_job.spec import SELECTORS, aggregates, compared_form
from reconciler.model import Kind, ManifestError, Resource

Declared = Mapping[tuple[Kind, str], Resource]
At = Callable[..., Any]  # a path in the job's spec -> its location in the manifest
Check = Callable[[Resource, Declared, At], list[ManifestError]]


def check_job(job: Resource, declared: Declared, locate: Locate) -> list[ManifestError]:
    """Every problem of one job that needs the other documents to see (`declared`)."""

    def at(*path: str | int) -> Any:
        return locate(job, path)

    return [error for check in CHECKS for error in check(job, declared, at)]


def check_connection(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """The job names a declared connection that batch jobs can read from."""
    connection = job.spec["source"]["connectionName"]
    source_connection = declared.get((Kind.CONNECTION, connection))
    if source_connection is None:
        return [
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' names no declared Connection; "
                "declare it (use policy: {manage: external} if it is managed elsewhere)",
                job.ref,
            )
        ]
    kind = connection_types.of(source_connection.spec)
    if kind is not None and not kind.batch_source:
        return [
            ManifestError(
                at("source", "connectionName"),
                f"source.connectionName '{connection}' is a connection of type {kind.name} "
                f"(at {source_connection.location}); batch jobs read only from "
                f"{' or '.join(connection_types.BATCH_SOURCE_TYPES)} connections, so name one",
                job.ref,
            )
        ]
    return []


def check_table(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """The job's table is declared, or the job creates it."""
    table_name = job.spec["target"]["tableName"]
    if declared.get((Kind.TABLE, table_name)) is None and not job.spec.get(
        "createTableIfNotExists", False
    ):
        return [
            ManifestError(
                at("target", "tableName"),
                f"target.tableName '{table_name}' names no declared Table and "
                "createTableIfNotExists is false; declare the Table or set createTableIfNotExists: true",
                job.ref,
            )
        ]
    return []


def check_time_mapping(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """The job maps __time."""
    if any(m["columnName"] == TIME_COLUMN for m in job.spec.get("mappings", [])):
        return []
    return [
        ManifestError(
            at("mappings"),
            "no mapping for __time; add one such as "
            "{columnName: __time, expression: 'TIME_PARSE(\"timestamp\")'}",
            job.ref,
        )
    ]


def check_aggregation_into_detail(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """A job that aggregates does not write into a detail table."""
    table_name = job.spec["target"]["tableName"]
    table = declared.get((Kind.TABLE, table_name))
    aggregations = [m["columnName"] for m in job.spec.get("mappings", []) if m.get("isAggregation")]
    if aggregations and table is not None and table.spec.get("type") == "detail":
        return [
            ManifestError(
                at("mappings"),
                f"mappings {', '.join(aggregations)} aggregate, but Table/{table_name} is a detail "
                "table; make the table aggregate or remove isAggregation",
                job.ref,
            )
        ]
    return []


def check_aggregation_flags(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """An explicit isAggregation agrees with the expression (a warning)."""
    errors: list[ManifestError] = []
    for index, mapping in enumerate(job.spec.get("mappings", [])):
        explicit = mapping.get("isAggregation")
        if isinstance(explicit, bool) and explicit != aggregates(mapping["expression"]):
            # Polaris does not echo isAggregation, so a live job's is derived from its expression;
            # a manifest that says otherwise may never match the job it submitted.
            errors.append(
                ManifestError(
                    at("mappings", index, "isAggregation"),
                    f"mapping for '{mapping['columnName']}' sets isAggregation: "
                    f"{str(explicit).lower()}, but its expression "
                    f"{'does not aggregate' if explicit else 'aggregates'}; Polaris does not return "
                    "isAggregation, so the plan derives it from the expression: make them agree "
                    "(or leave isAggregation out)",
                    job.ref,
                    severity="warning",
                )
            )
    return errors


def check_pattern(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """A pattern reads as Polaris's Java glob, and can be compared with other jobs' (a warning)."""
    pattern = job.spec["source"].get("pattern")
    if not isinstance(pattern, str):
        return []
    problem = pattern_problem(pattern)
    if problem is not None:
        return [ManifestError(at("source", "pattern"), problem, job.ref)]
    too_large = pattern_too_large(pattern)
    if too_large is not None:
        return [ManifestError(at("source", "pattern"), too_large, job.ref, severity="warning")]
    return []


def check_mapped_fields(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """Every input field a mapping's expression reads is in source.inputSchema."""
    errors: list[ManifestError] = []
    known = {field["name"] for field in job.spec["source"]["inputSchema"]}
    for index, mapping in enumerate(job.spec.get("mappings", [])):
        identifiers = [m.group(1) for m in SQL_TOKEN.finditer(mapping["expression"]) if m.group(1)]
        for identifier in identifiers:
            name = identifier.replace('""', '"')
            if name not in known and name != TIME_COLUMN:
                import difflib  # deferred: only a job with a mistake needs it

                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = (
                    f'; did you mean "{close[0]}"?'
                    if close
                    else f" (declared: {', '.join(sorted(known))})"
                )
                errors.append(
                    ManifestError(
                        at("mappings", index, "expression"),
                        f"mapping for '{mapping['columnName']}' refers to \"{name}\", which is "
                        f"not in source.inputSchema{hint}",
                        job.ref,
                    )
                )
    return errors


def check_intervals(job: Resource, declared: Declared, at: At) -> list[ManifestError]:
    """Intervals only with ingestionMode: replace."""
    spec = job.spec
    if spec["target"].get("intervals") and spec.get("ingestionMode", "append") != "replace":
        return [
            ManifestError(
                at("target", "intervals"),
                "target.intervals is only allowed with ingestionMode: replace; "
                "remove intervals or set ingestionMode: replace",
                job.ref,
            )
        ]
    return []


# In the order their errors are reported.
CHECKS: tuple[Check, ...] = (
    check_connection,
    check_table,
    check_time_mapping,
    check_aggregation_into_detail,
    check_aggregation_flags,
    check_pattern,
    check_mapped_fields,
    check_intervals,
)


def duplicate_specs(jobs: list[Resource]) -> list[ManifestError]:
    """A job's identity is its spec: two manifests with one spec would be one job in Polaris,
    and the first apply would submit it twice."""
    errors: list[ManifestError] = []
    first_with: dict[SpecFingerprint, Resource] = {}
    # Only jobs that share their group can share a spec: most jobs are alone in theirs and need
    # no fingerprint (validate takes none of its own: this check is all it needs them for).
    groups = [_group(job) for job in jobs]
    sizes = Counter(groups)
    for job, group in zip(jobs, groups, strict=True):
        fingerprint = SpecFingerprint(job.fingerprint) if job.fingerprint else None
        if fingerprint is None:  # validate's jobs, or resources made without validation
            if sizes[group] < 2:
                continue
            fingerprint = spec_fingerprint(compared_form(job.spec))
        other = first_with.setdefault(fingerprint, job)
        if other is not job:
            errors.append(
                ManifestError(
                    job.location,
                    f"{job.ref} has the same spec as {other.ref} (at {other.location}); "
                    "a job is identified by its spec, so remove one of them",
                    job.ref,
                )
            )
    return errors


def _group(job: Resource) -> Any:
    """What two jobs with one compared form have alike, cheap to take: the table, the connection
    and the objects, as the compared form keeps them (selectors sorted, a null one dropped).
    Jobs whose values cannot be grouped so share one group, and are all fingerprinted."""
    source, target = job.spec.get("source"), job.spec.get("target")
    if not isinstance(source, Mapping) or not isinstance(target, Mapping):
        return None
    objects = [source.get(name) for name in (*SELECTORS, "pattern")]
    try:
        key = (
            target.get("tableName"),
            source.get("connectionName"),
            *(tuple(sorted(value)) if isinstance(value, list) else value for value in objects),
        )
        hash(key)
    except TypeError:
        return None
    return key


# What to write instead, for each PatternSyntaxException description Java gives for a glob.
GLOB_FIXES = {
    "No character to escape": "a trailing \\ escapes nothing: write \\\\ for a backslash",
    "Explicit 'name separator' in class": "a [...] class never matches /: write / outside it",
    "Invalid range": (
        "a range runs from a lower to a higher character (a-z), and a - that is not a range "
        "goes right after [ or [!, or last"
    ),
    "Missing ']": "close the [ with ], or write \\[ for a literal [",
    "Cannot nest groups": "{...} groups cannot nest: write the alternatives out ({a,b,c})",
    "Missing '}": "close the { with }, or write \\{ for a literal {",
    "Unclosed character class": (
        "Java reads a ] right after [ or [! as a literal, and a range that ends in [ as a new "
        "class, so the class never closes: put a character in [...] and end ranges otherwise"
    ),
}


def pattern_problem(pattern: str) -> str | None:
    """Why `reconciler validate` refuses a `source.pattern` (Polaris's Java glob matcher would
    refuse it, or this tool cannot follow how Java reads it), with the fix; None when it reads."""
    try:
        compile_glob(pattern)
    except JavaGlobError as error:
        fix = GLOB_FIXES.get(str(error), "see docs/globs.md")
        return (
            f"source.pattern {pattern!r} is refused by Polaris's Java glob matcher "
            f"(PatternSyntaxException: {error}); {fix}"
        )
    except GlobError as error:
        return f"source.pattern {pattern!r} is not a glob this tool can read: {error}"
    return None


def pattern_too_large(pattern: str) -> str | None:
    """A warning for a valid pattern whose overlap with other jobs cannot be analysed."""
    try:
        sequences(pattern)
    except GlobTooLarge as error:
        return (
            f"source.pattern {pattern!r} cannot be compared with other jobs' selectors ({error}); "
            "plans report POSSIBLE DOUBLE INGESTION for it, which apply refuses without "
            "--allow-reingest: split it into jobs with fewer {...} groups"
        )
    except GlobError:
        return None
    return None
