"""Table: where ingested rows land. Its type never changes; columns of a table holding data may
only be added (the OpenAPI's `PUT /tables/{name}` with the version read last)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

from reconciler.kinds.base import TIME_COLUMN, Fields, PlanContext, ResourceKind, fields_of
from reconciler.kinds.registry import register
from reconciler.model import LOCK_TABLE, Action, Kind, Reason, Resource
from reconciler.ports import Applying, Importing, JobApi, LiveReading, LiveView
from reconciler.values import (
    AMBIGUOUS_WRITE_ATTEMPTS,
    Change,
    FieldChange,
    ManifestFile,
    Outcome,
    PlanError,
    PlanOptions,
    Request,
)

AGGREGATE_DEFAULTS = {"timeResolution": "millisecond"}  # only rollup tables have one


@register
class Table(ResourceKind):
    """A detail or aggregate table."""

    kind = Kind.TABLE
    collection = "tables"
    schema_file = "table.schema.json"
    fields = Fields(
        writable=(
            "type", "description", "partitioningGranularity", "schemaMode", "schema",
            "clusteringColumns", "storagePolicy", "queryGranularity", "timeResolution",
        ),
        defaults={"partitioningGranularity": "day", "schema": [], "clusteringColumns": []},
        # Polaris chooses these when a request leaves them out, without a documented default.
        server_chosen=frozenset({"schemaMode", "storagePolicy", "queryGranularity"}),
        read_only=(
            "id", "name", "version", "status", "totalRows", "totalDataSizeBytes",
            "createdByUser", "modifiedByUser", "lastModified", "createdTimestamp",
        ),
    )  # fmt: skip

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        if spec.get("type") == "aggregate":
            for name, default in AGGREGATE_DEFAULTS.items():
                spec.setdefault(name, default)
        # Column order is presentation only and __time always exists: compare columns by name.
        spec["schema"] = {
            column["name"]: column for column in spec["schema"] if column.get("name") != TIME_COLUMN
        }
        return spec

    def reserved(self, name: str) -> str | None:
        if name == LOCK_TABLE:
            return (
                f"the table name {LOCK_TABLE} is reserved for the project lock "
                "(reconciler/lock.py); choose another table name"
            )
        return None

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading) -> None:
        client, pool = reader.client, reader.pool
        declared = {r.name for r in reader.of_kind(self.kind) if not r.external}

        def listed() -> tuple[list[dict[str, Any]], list[Future[dict[str, Any] | None]]]:
            # The list returns summaries without schema or clustering: read each declared table,
            # as soon as the list says which exist (queued behind it, so nothing waits).
            summaries = client.list_tables()
            listed = {t["name"] for t in summaries}
            names = sorted(listed if self.kind in reader.full else declared & listed)
            return summaries, [pool.submit(client.read, self.collection, name) for name in names]

        started = pool.submit(listed)

        def collect() -> None:
            summaries, full = started.result()
            tables = reader.states.setdefault(self.kind, {})
            if self.kind not in reader.full:  # read in full: one deleted since the list is gone
                tables.update({t["name"]: t for t in summaries})
            tables.update({t["name"]: t for f in full if (t := f.result()) is not None})

        reader.then(collect)

    def digest(self, state: LiveView) -> Any:
        # Its version (a PUT carries it) and whether it holds data (columns may then only be added).
        return {
            name: [self.normalize(body), body.get("version"), bool(body.get("totalRows"))]
            for name, body in sorted(self.live(state).items())
        }

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change | PlanError:

        live = context.live
        current = self.live(live).get(resource.name)
        if resource.external:
            return self.external(resource, current)
        if current is None:
            return self.created(resource, Reason.NOT_FOUND, "not found in project")
        compared = self.compare(resource.spec, current)
        desired, actual, changes = compared.desired, compared.actual, compared.changes
        if desired.get("type") != actual.get("type"):
            return PlanError(
                self.kind, resource.name,
                f"table type cannot change ({actual.get('type')} -> {desired.get('type')}); "
                "Polaris forbids it: create a new table with another name instead",
                resource.location.file,
            )  # fmt: skip
        # Columns are keyed by name (which may hold a dot): adding one is allowed, removing or
        # changing a live one alters it.
        columns = desired["schema"]
        altered = sorted(
            name for name, column in actual["schema"].items() if columns.get(name) != column
        )
        empty = not current.get("totalRows") and resource.name not in live.in_use(self.kind)
        if altered and not empty:
            return PlanError(
                self.kind, resource.name,
                f"columns {', '.join(altered)} would be changed or removed, but the table holds "
                "data or has active jobs; Polaris only allows adding columns then (add a new "
                "column instead)",
                resource.location.file,
            )  # fmt: skip
        if changes:
            return self.change(
                resource, Action.UPDATE, Reason.FIELDS_DIFFER, f"{fields_of(changes)} differ",
                current, changes, context.options, compared,
            )  # fmt: skip
        return self.change(
            resource, Action.NOOP, Reason.UP_TO_DATE, "up to date", current, compared=compared
        )

    def requests(
        self, action: Action, name: str, spec: Mapping[str, Any], live: Mapping[str, Any] | None,
        changed: tuple[FieldChange, ...], options: PlanOptions,
    ) -> tuple[Request, ...]:  # fmt: skip

        body = {"name": name, **spec}
        if action is Action.CREATE:
            return (Request("POST", self.path(), body),)
        if action is Action.UPDATE:
            # The version the plan read: a table changed since then is not overwritten (apply).
            version = (live or {}).get("version")
            return (Request("PUT", self.path(name), {**body, "version": version}),)
        return ()

    # Applying -------------------------------------------------------------------------------

    def get(self, client: JobApi, name: str) -> Mapping[str, Any] | None:
        return client.read(self.collection, name)

    def apply(self, change: Change, provider: Applying) -> Outcome:
        from reconciler.client import AmbiguousWriteError, ConflictError  # deferred: loads httpx

        client = provider.client
        (request,) = change.requests
        if request.method == "POST":
            return provider.create(
                change,
                request,
                lambda body: client.create(self.collection, body),
                lambda name: client.read(self.collection, name),
            )
        body = dict(request.body or {})
        for _attempt in range(AMBIGUOUS_WRITE_ATTEMPTS):
            current = client.read(self.collection, change.name)
            if current is None:
                return Outcome(change, "failed", "the table disappeared; run plan again")
            if current.get("version") != body.get("version"):
                # Changed since the plan: by this PUT, whose answer was lost, or by someone else,
                # whose change the reviewed PUT would undo without a word.
                spec = {k: v for k, v in body.items() if k not in ("name", "version")}
                if not self.compare(spec, current).changes:
                    return Outcome(change, "done", "updated")
                return Outcome(
                    change, "failed",
                    f"the table changed since the plan (version {body.get('version')} is now "
                    f"{current.get('version')}); run plan again to review the change",
                )  # fmt: skip
            try:
                # PUT carries the version the plan read: a change since makes it a 409.
                client.replace(self.collection, change.name, body)
                return Outcome(change, "done", "updated")
            except (ConflictError, AmbiguousWriteError):
                continue
        return Outcome(change, "failed", "the table kept changing underneath; run plan again")

    # Import ---------------------------------------------------------------------------------

    def imported(self, state: LiveView, writer: Importing) -> Iterable[ManifestFile]:
        for name, live in sorted(self.live(state).items()):
            if not writer.wants(self.kind, name) or not writer.nameable(self.kind, name):
                continue
            spec = writer.writable(self, live)
            spec["schema"] = [c for c in spec.get("schema", []) if c.get("name") != TIME_COLUMN]
            if spec.get("type") == "aggregate":
                writer.drop_defaults(spec, AGGREGATE_DEFAULTS)
            writer.drop_defaults(spec, self.fields.defaults)
            yield writer.manifest(self.kind, name, spec, writer.path(self.kind, name), [], ())
