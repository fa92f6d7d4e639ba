"""Connection: how Polaris reaches a data source. Its fields depend on its `type`, which is data
in reconciler/connection_types.py (one entry per type of the Connections v1 API), not code here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from reconciler import connection_types
from reconciler.kinds.base import Fields, PlanContext, ResourceKind, SecretsField, fields_of
from reconciler.kinds.registry import register
from reconciler.model import Action, Kind, Reason, Resource
from reconciler.names import addressable
from reconciler.normalize import plain
from reconciler.ports import Applying, Importing, JobApi, LiveReading, LiveView, PlanView
from reconciler.values import (
    Change,
    FieldChange,
    ManifestFile,
    Outcome,
    PlanError,
    PlanOptions,
    Request,
)

if TYPE_CHECKING:
    from reconciler.preflight import ConnectionTest

# Write-only values: sent on create, never returned. Only the secret's `type` can be compared.
SECRET_FIELDS_KEPT = ("type",)
SECRETS_NOTE = "secrets: write-only, not compared"


def changing(plan: PlanView) -> list[str]:
    """The connections a plan changes (a connection test before apply would test the old one)."""
    return [
        c.name for c in plan.changes if c.kind is Kind.CONNECTION and c.action.changes_something
    ]


@register
class Connection(ResourceKind):
    """A connection; every type's fields come from `connection_types.CONNECTION_TYPES`."""

    kind = Kind.CONNECTION
    collection = "connections"
    schema_file = "connection.schema.json"
    secrets_at = SecretsField("secrets", frozenset({"type"}))  # `type` says which keys follow
    plans_from = frozenset({Kind.CONNECTION})  # planned beside the jobs' details
    fields = Fields(
        writable=tuple(
            dict.fromkeys(
                name for t in connection_types.CONNECTION_TYPES.values() for name in t.writable
            )
        ),
        write_only=("secrets",),
        read_only=(
            "name",
            "createdOn",
            "modifiedOn",
            "createdBy",
            "modifiedBy",
            *dict.fromkeys(
                f for t in connection_types.CONNECTION_TYPES.values() for f in t.read_only
            ),
        ),
    )

    def writable(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        connection_type = connection_types.of(spec)
        return connection_type.writable if connection_type is not None else self.fields.writable

    def shape(self, spec: dict[str, Any]) -> dict[str, Any]:
        connection_type = connection_types.of(spec)
        if connection_type is not None:
            for name, default in connection_type.defaults.items():
                spec.setdefault(name, plain(default))
        secrets = spec.get("secrets")
        if isinstance(secrets, Mapping):
            spec["secrets"] = {k: v for k, v in secrets.items() if k in SECRET_FIELDS_KEPT}
        return spec

    # Live state -----------------------------------------------------------------------------

    def read(self, reader: LiveReading) -> None:
        client = reader.client

        def by_name() -> dict[str, Mapping[str, Any]]:
            return {c["name"]: c for c in client.listed(self.collection)}

        listed = reader.pool.submit(by_name)
        reader.started[self.kind] = listed  # jobs resolve through these as they are read
        reader.then(lambda: reader.states.setdefault(self.kind, {}).update(listed.result()))

    # Planning -------------------------------------------------------------------------------

    def plan(self, resource: Resource, context: PlanContext) -> Change | PlanError:
        current = self.live(context.live).get(resource.name)
        if resource.external:
            return self.external(resource, current)
        notes = (SECRETS_NOTE,) if "secrets" in resource.spec else ()
        if current is None:
            return self.created(resource, Reason.NOT_FOUND, "not found in project", notes=notes)
        compared = self.compare(resource.spec, current)
        desired, actual, changes = compared.desired, compared.actual, list(compared.changes)
        options = context.options
        if desired.get("type") != actual.get("type"):
            detail = (
                f"type cannot change in place ({actual.get('type')} -> {desired.get('type')}): "
                "the connection is deleted and created again (needs --allow-replace)"
            )
            return self.change(
                resource, Action.REPLACE, Reason.TYPE_CHANGES, detail, current, changes, options,
                compared, notes=notes,
            )  # fmt: skip
        if options.rotate_secrets and "secrets" in resource.spec:
            changes.append(FieldChange(("secrets",), "(write-only)", "(sensitive, re-sent)"))
            detail = "re-sending secrets (--rotate-secrets)" + (
                f"; {fields_of(changes[:-1])} differ" if changes[:-1] else ""
            )
            return self.change(
                resource, Action.UPDATE, Reason.ROTATE_SECRETS, detail, current, changes, options,
                compared, notes=notes,
            )  # fmt: skip
        if changes:
            return self.change(
                resource, Action.UPDATE, Reason.FIELDS_DIFFER, f"{fields_of(changes)} differ",
                current, changes, options, compared, notes=notes,
            )  # fmt: skip
        return self.change(
            resource, Action.NOOP, Reason.UP_TO_DATE, "up to date", current, compared=compared,
            notes=notes,
        )  # fmt: skip

    def prune(self, name: str, context: PlanContext) -> Change | None:
        def change(action: Action, reason: Reason, detail: str) -> Change:
            requests = (self.delete_request(name),) if action is Action.DELETE else ()
            before = self.normalize(self.live(context.live)[name])
            return Change(
                self.kind, name, action, detail, why=reason, before=before, requests=requests
            )

        if not addressable(name):
            return change(
                Action.SKIP, Reason.UNADDRESSABLE,
                "not declared, but its name cannot be used safely in a request path "
                "(a proxy or server may resolve it to another endpoint): left alone",
            )  # fmt: skip
        if name in context.live.in_use(self.kind):
            return change(
                Action.SKIP, Reason.IN_USE,
                "not declared, but used by a pending or running job: not deleted",
            )  # fmt: skip
        return change(Action.DELETE, Reason.NOT_DECLARED, "declared by no manifest (--prune)")

    def preflight(
        self, names: Iterable[str], plan: PlanView, live: LiveView, client: JobApi,
        parallelism: int,
    ) -> tuple[ConnectionTest, ...]:  # fmt: skip
        from reconciler.preflight import check_connections  # deferred: loads httpx

        def test(name: str) -> None:  # Polaris checks the bucket, prefix and credentials
            client.post(self.path(name, "test"), {})  # no body is defined; send {}

        return check_connections(test, names, self.live(live), changing(plan), parallelism)

    def requests(
        self, action: Action, name: str, spec: Mapping[str, Any], live: Mapping[str, Any] | None,
        changed: tuple[FieldChange, ...], options: PlanOptions,
    ) -> tuple[Request, ...]:  # fmt: skip

        create = Request("POST", self.path(), {"name": name, **spec})
        if action is Action.CREATE:
            return (create,)
        if action is Action.REPLACE:
            return (self.delete_request(name), create)
        if action is not Action.UPDATE:
            return ()
        # PATCH: the type, each differing field, secrets if rotated. A field the manifest left
        # out goes back to its documented default (the API takes no null for one), else None.
        connection_type = connection_types.of(spec)
        defaults = connection_type.defaults if connection_type is not None else {}
        patch: dict[str, Any] = {"type": spec["type"]}
        for item in changed:
            field_name = item.field
            if field_name != "secrets":
                patch[field_name] = spec.get(field_name, plain(defaults.get(field_name)))
        if options.rotate_secrets and "secrets" in spec:
            patch["secrets"] = spec["secrets"]
        return (Request("PATCH", self.path(name), patch),)

    def delete_request(self, name: str) -> Request:

        return Request("DELETE", self.path(name))

    # Applying -------------------------------------------------------------------------------

    def get(self, client: JobApi, name: str) -> Mapping[str, Any] | None:
        return client.read(self.collection, name)

    def apply(self, change: Change, provider: Applying) -> Outcome:

        client = provider.client
        for request in change.requests:
            if request.method == "DELETE":
                client.remove(self.collection, change.name)
                if change.action is Action.DELETE:
                    return Outcome(change, "done", "deleted")
            elif request.method == "POST":
                return provider.create(
                    change,
                    request,
                    lambda body: client.create(self.collection, body),
                    lambda name: client.read(self.collection, name),
                )
            else:  # PATCH is idempotent: the client may retry it
                client.modify(self.collection, change.name, request.body or {})
                return Outcome(change, "done", "updated")
        return Outcome(change, "unchanged", change.reason)

    # Import ---------------------------------------------------------------------------------

    def imported(self, state: LiveView, reader: Importing) -> Iterable[ManifestFile]:
        taken: set[str] = set()
        for name, live in sorted(self.live(state).items()):
            if not reader.wants(self.kind, name) or not reader.nameable(self.kind, name):
                continue
            connection_type = connection_types.of(live)
            if connection_type is None:
                reader.skip(
                    f"Connection/{reader.shown(name)}: type {reader.shown(str(live.get('type')))} "
                    "is not a connection type this version knows"
                )
                continue
            yield self._manifest(name, live, connection_type, reader, taken)

    def _manifest(
        self, name: str, live: Mapping[str, Any], connection_type: connection_types.ConnectionType,
        reader: Importing, taken: set[str],
    ) -> ManifestFile:  # fmt: skip
        spec = reader.writable(self, live)
        reader.drop_defaults(spec, connection_type.defaults)
        comments = []
        variables: tuple[str, ...] = ()
        if connection_type.needs_secrets(spec):
            # Polaris never returns secrets, not even their type: write the first type the
            # connection type takes, with a variable per field, and say so.
            secrets_type = connection_type.secrets[0]
            stem = reader.variable_stem(name, taken)
            fields = connection_types.SECRETS_TYPES[secrets_type]
            # EVENTS_AWS_ACCESS_KEY_ID; a name that already says the type is not repeated.
            middle = "" if stem.endswith(connection_type.env_prefix) else connection_type.env_prefix
            variables = tuple("_".join(filter(None, (stem, middle, end))) for _, end in fields)
            spec["secrets"] = {
                "type": secrets_type,
                **{
                    name: f"${{env:{variable}}}"
                    for (name, _), variable in zip(fields, variables, strict=True)
                },
            }
            others = [t for t in connection_type.secrets if t != secrets_type]
            comments.append(
                f"Polaris never returns secrets: set {' and '.join(variables)} to this "
                f"connection's {secrets_type} credentials before plan or apply (they are only "
                "sent with --rotate-secrets or when the connection is created)."
                + (
                    f" If it uses {' or '.join(others)} instead, change spec.secrets."
                    if others
                    else ""
                )
            )
        return reader.manifest(
            self.kind, name, spec, reader.path(self.kind, name), comments, variables
        )
