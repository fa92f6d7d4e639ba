"""The registry of kinds: every kind is one registered module, and nothing else names a kind."""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reconciler import connection_types, kinds
from reconciler.client import PolarisClient
from reconciler.kinds.base import ResourceKind
from reconciler.kinds.ingestion_job import JobCache
from reconciler.live import LiveReader, read_live
from reconciler.model import Kind
from reconciler.plan import make_plan
from tests.builders import detail_table, job_spec, live_state, resource, s3
from tests.fixtures import ROOT

REGISTERED = [pytest.param(kind, id=str(kind.kind)) for kind in kinds.ordered()]
PACKAGE = ROOT / "reconciler"
# Where a kind may be named: its own module (reconciler/kinds/) and model.py, which defines Kind.
MAY_NAME_KINDS = (PACKAGE / "kinds", PACKAGE / "model.py")


def spec_properties(schema: dict[str, Any]) -> set[str]:
    """The fields a kind's schema lets `spec` hold: its own properties and those of every branch
    (`allOf: [{if, then: {$ref}}]`) it selects by type, less `name` (metadata.name's)."""
    definitions = schema["definitions"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref", "")
        return definitions[ref.split("/")[-1]] if ref.startswith("#/definitions/") else node

    def fields(node: dict[str, Any]) -> Iterator[str]:
        node = resolve(node)
        yield from node.get("properties", {})
        for branch in node.get("allOf", []):
            yield from fields(branch.get("then", {}))

    return set(fields(schema["properties"]["spec"])) - {"name"}


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_a_manifest_may_declare_is_registered(kind: Kind) -> None:
    assert kinds.of(kind).kind is kind


@pytest.mark.parametrize("kind", REGISTERED)
def test_each_kinds_schema_file_exists(kind: ResourceKind) -> None:
    assert (ROOT / "schemas" / kind.schema_file).is_file()


@pytest.mark.parametrize("kind", REGISTERED)
def test_each_kinds_writable_fields_are_the_fields_its_schema_allows_in_spec(
    kind: ResourceKind,
) -> None:
    schema = json.loads((ROOT / "schemas" / kind.schema_file).read_text(encoding="utf-8"))
    assert set(kind.fields.writable) == spec_properties(schema)


@pytest.mark.parametrize(
    "connection_type",
    [pytest.param(t, id=name) for name, t in connection_types.CONNECTION_TYPES.items()],
)
def test_each_connection_types_writable_fields_are_those_of_its_schema_branch(
    connection_type: connection_types.ConnectionType,
) -> None:
    schema = json.loads((ROOT / "schemas" / "connection.schema.json").read_text(encoding="utf-8"))
    branch = schema["definitions"][f"type_{connection_type.name}"]
    assert set(connection_type.writable) == set(branch["properties"]) - {"name"}


@pytest.mark.parametrize("kind", REGISTERED)
def test_each_kinds_read_only_and_writable_fields_never_overlap(kind: ResourceKind) -> None:
    assert not set(kind.fields.read_only) & set(kind.fields.writable)


@pytest.mark.parametrize("kind", REGISTERED)
def test_each_kinds_defaulted_server_chosen_and_write_only_fields_are_writable(
    kind: ResourceKind,
) -> None:
    declared = {*kind.fields.defaults, *kind.fields.server_chosen, *kind.fields.write_only}
    assert declared <= set(kind.fields.writable)


@pytest.mark.parametrize("kind", REGISTERED)
def test_kinds_are_ordered_so_that_each_kinds_dependencies_come_before_it(
    kind: ResourceKind,
) -> None:
    order = kinds.order()
    spec = {
        "source": {"connectionName": "c"},
        "target": {"tableName": "t"},
        "createTableIfNotExists": True,
    }
    needed = {dependency for dependency, _ in kind.dependencies(spec)}
    needed |= {created for created, _ in kind.creates(spec)}
    assert all(order.index(other) < order.index(kind.kind) for other in needed - {kind.kind})


def test_the_registry_order_is_the_order_apply_creates_kinds_in() -> None:
    assert [kind.kind for kind in kinds.ordered()] == list(kinds.order()) == list(Kind)


def naming_a_kind(source: str, where: str) -> Iterator[str]:
    """`where:line: Kind.MEMBER` for every use of a kind member in a module's syntax tree
    (`Kind.TABLE` or `model.Kind.TABLE`; a string "Table" in a message is not a use)."""
    members = set(Kind.__members__)
    for node in ast.walk(ast.parse(source, filename=where)):
        if not isinstance(node, ast.Attribute) or node.attr not in members:
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "Kind") or (
            isinstance(owner, ast.Attribute) and owner.attr == "Kind"
        ):
            yield f"{where}:{node.lineno}: Kind.{node.attr}"


def modules_that_may_not_name_kinds() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if not any(path == allowed or allowed in path.parents for allowed in MAY_NAME_KINDS)
    )


def test_no_module_outside_the_kinds_package_names_a_kind() -> None:
    found = [
        use
        for path in modules_that_may_not_name_kinds()
        for use in naming_a_kind(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, (
        "a kind's facts belong in its module in reconciler/kinds/; these modules name a kind:\n"
        + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        pytest.param("Kind.TABLE", ["m.py:1: Kind.TABLE"], id="a kind member is found"),
        pytest.param(
            "import reconciler.model\n\nreconciler.model.Kind.INGESTION_JOB",
            ["m.py:3: Kind.INGESTION_JOB"],
            id="a kind member reached through its module is found, with its line",
        ),
        pytest.param("x = 'Connection'", [], id="a kind's name in a string is not a use"),
        pytest.param("for kind in Kind: pass", [], id="looping over every kind is not a use"),
        pytest.param("thing.TABLE", [], id="another enum's member of the same name is not"),
    ],
)
def test_the_kind_naming_check_finds_kind_members_and_says_where(
    source: str, found: list[str]
) -> None:
    assert list(naming_a_kind(source, "m.py")) == found


class _ListedByDefault(ResourceKind):
    """A kind that relies on the base class for its live state (never registered)."""

    kind = Kind.TABLE
    collection = "connections"


def test_a_kind_without_its_own_read_lists_its_collection_into_live_state_by_name(
    client: PolarisClient,
) -> None:
    client.create_connection(
        {"name": "listed", "type": "s3", "bucket": "b", "awsEndpoint": "s3.amazonaws.com"}
    )
    live = read_live(client, [])
    probe = _ListedByDefault()
    with ThreadPoolExecutor(max_workers=1) as pool:
        reader = LiveReader(client, [], pool, JobCache(None))
        probe.read(reader)
        reader.finish()
    state = reader.state()
    assert set(probe.live(state)) == {"listed"} == set(live.by_name(Kind.CONNECTION))
    assert probe.live(state)["listed"]["bucket"] == "b"


def test_a_change_waits_for_the_declared_resources_its_kind_depends_on() -> None:
    declared = [
        resource(Kind.CONNECTION, "c", s3()),
        resource(Kind.TABLE, "t", detail_table()),
        resource(Kind.INGESTION_JOB, "j", job_spec(connection="c", table="t")),
    ]
    plan = make_plan(declared, live_state())
    (job,) = [c for c in plan.changes if c.kind is Kind.INGESTION_JOB]
    assert job.depends_on == ((Kind.CONNECTION, "c"), (Kind.TABLE, "t"))


# What every kind shares, which any module may import: the package (the registry's entry) and
# these modules of it. Any other module of reconciler/kinds/ is a kind's own.
SHARED_KIND_MODULES = {"reconciler.kinds", "reconciler.kinds.registry", "reconciler.kinds.base"}


def importing_a_kind_module(source: str, where: str) -> Iterator[str]:
    """`where:line: module` for every import of a kind's own module (under TYPE_CHECKING and in
    functions too): `from reconciler.kinds.table import X`, `from reconciler.kinds import table`."""
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            if node.module != "reconciler.kinds":
                names = [node.module]
        else:
            continue
        for name in names:
            if name.startswith("reconciler.kinds") and name not in SHARED_KIND_MODULES:
                yield f"{where}:{node.lineno}: {name}"


def test_no_module_outside_the_kinds_package_imports_a_kinds_own_module() -> None:
    found = [
        use
        for path in modules_that_may_not_name_kinds()
        for use in importing_a_kind_module(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert not found, "a step reaches a kind through the registry; these import one:\n" + "\n".join(
        found
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        pytest.param(
            "from reconciler.kinds.ingestion_job import LiveJob",
            ["m.py:1: reconciler.kinds.ingestion_job"],
            id="a name from a kind's package is found",
        ),
        pytest.param(
            "def f():\n    from reconciler.kinds import table",
            ["m.py:2: reconciler.kinds.table"],
            id="a kind module imported from the package, inside a function, is found",
        ),
        pytest.param(
            "import reconciler.kinds.ingestion_job.cache",
            ["m.py:1: reconciler.kinds.ingestion_job.cache"],
            id="a plain import of a kind's module is found",
        ),
        pytest.param(
            "from reconciler import kinds\nfrom reconciler.kinds.base import ResourceKind",
            [],
            id="the registry and the shared base are not a kind's",
        ),
        pytest.param(
            "from reconciler.kinds import registry", [], id="the registry through the package"
        ),
    ],
)
def test_the_import_check_finds_every_spelling_of_a_kind_import(
    source: str, found: list[str]
) -> None:
    assert list(importing_a_kind_module(source, "m.py")) == found


def own_names(*types: type) -> set[str]:
    """The attribute names of a kind's own values (its live state, its change payload)."""
    names: set[str] = set()
    for cls in types:
        names |= set(getattr(cls, "__dataclass_fields__", {}))
        names |= {name for name, value in vars(cls).items() if isinstance(value, property)}
        names |= {
            name
            for name, value in vars(cls).items()
            if isinstance(value, functools.cached_property)
        }
    return names


def shared_names() -> set[str]:
    """Attribute names of the values every kind builds or the steps pass on (Change, Outcome,
    Resource, a connection test, ...): a step may use these whatever kind shares the name."""
    import reconciler.model
    import reconciler.preflight
    import reconciler.values

    names: set[str] = set(STEP_FIELDS_SHARING_A_KINDS_NAME)
    for module in (reconciler.values, reconciler.model, reconciler.preflight):
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                names |= own_names(value) | {n for n in vars(value) if not n.startswith("_")}
    return names


# A step's own field whose name a kind's state also has: `ImportRun.jobs` (import --jobs).
STEP_FIELDS_SHARING_A_KINDS_NAME = {"jobs"}


def steps() -> list[Path]:
    """The modules above the support layer and outside reconciler/kinds/: the steps, the manager,
    the CLI, and what the kinds are handed and build (`ports`, `values`, `normalize`)."""
    return sorted(path for path in PACKAGE.glob("*.py") if path.stem not in SUPPORT_MODULES)


def test_no_step_names_a_field_of_a_kinds_own_state_or_payload() -> None:
    from reconciler.kinds.base import JobReport
    from reconciler.kinds.ingestion_job import JobState, LiveJob, PlannedJob

    private = own_names(JobState, PlannedJob, LiveJob, JobReport) - shared_names()
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}"
        for path in steps()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in private
    ]
    assert private >= {"by_fingerprint", "overlaps", "active_tables", "active_connections"}
    assert private >= {"job_id", "metrics", "canceled"}  # an outcome's job fields (JobReport)
    assert {path.stem for path in steps()} >= {"values", "ports", "normalize", "render", "cli"}
    assert not found, "a kind's own fields are read in its package; these steps read them:\n" + (
        "\n".join(found)
    )


# Words every kind and every output uses: the envelope's and the outputs' own keys.
ENVELOPE_WORDS = {"name", "spec", "type", "status", "description", "version", "id"}
# Steps that still spell a kind's field, each a known seam: the project lock is a table the lock
# writes itself; schema.py keeps values under `secrets` out of its messages.
SPELLED_ON_PURPOSE = {("lock.py", "schemaMode"), ("schema.py", "secrets")}


def kinds_field_names() -> set[str]:
    """Every field name a registered kind declares: its fields, its sets of keys (their paths)
    and where it keeps secrets; less the envelope's words."""
    names: set[str] = set()
    for kind in kinds.ordered():
        fields = kind.fields
        names |= {*fields.writable, *fields.read_only, *fields.defaults, *fields.server_chosen}
        names |= {part for path in kind.key_sets for part in path}
        names |= {kind.secrets_at.field} if kind.secrets_at else set()
    return names - ENVELOPE_WORDS


def spelling_a_field(source: str, where: str, fields: set[str]) -> Iterator[str]:
    """`where:line: "field"` for every string constant in a module that is one of `fields`."""
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in fields:
            yield f"{where}:{node.lineno}: {node.value!r}"


def test_no_step_spells_a_field_of_a_kinds_spec() -> None:
    fields = kinds_field_names()
    assert fields >= {"uris", "prefixes", "objects", "secrets", "bucket"}
    found = [
        use
        for path in steps()
        for use in spelling_a_field(path.read_text(encoding="utf-8"), path.name, fields)
        if (path.name, use.rsplit(" ", 1)[-1].strip("'")) not in SPELLED_ON_PURPOSE
    ]
    assert not found, "a kind's fields are its own (a hook or a kind attribute says them):\n" + (
        "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        pytest.param('KEY_SETS = ("uris", "prefixes")', ["m.py:1: 'uris'", "m.py:1: 'prefixes'"],
                     id="a selector key in a tuple is found"),
        pytest.param('spec.get("secrets")', ["m.py:1: 'secrets'"], id="a key read is found"),
        pytest.param('"the uris of a job"', [], id="a field's name inside prose is not"),
        pytest.param("x.uris", [], id="an attribute is the other check's"),
    ],
)  # fmt: skip
def test_the_field_spelling_check_finds_string_keys_and_says_where(
    source: str, found: list[str]
) -> None:
    assert list(spelling_a_field(source, "m.py", {"uris", "prefixes", "secrets"})) == found


# The support layer below the kinds (pyproject.toml's layers): the client, the object listing's
# access rules, parsing and output helpers; they may name a kind's fields (the client checks the
# shape of each answer).
SUPPORT_MODULES = {
    "client", "connection_types", "endpoints", "escape", "globs", "hosts", "listing", "manifest",
    "names", "output", "params", "preflight", "redact", "s3", "model", "errors", "__init__",
}  # fmt: skip
