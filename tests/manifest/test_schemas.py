"""The JSON Schemas in schemas/: usable by draft-07 editors, in step with the Polaris OpenAPI, and right
about which documents they accept.

The agreement tests read the vendored OpenAPI (tests/reference/polaris-openapi.json), so a change there
that the schemas do not follow fails here instead of drifting silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import yaml
from jsonschema.exceptions import ValidationError
from referencing import Registry, Specification
from referencing.jsonschema import DRAFT7, DRAFT202012

from reconciler.connection_types import CONNECTION_TYPES, SECRETS_TYPES
from reconciler.model import Kind

if TYPE_CHECKING:
    from referencing._core import Resolver  # not re-exported; used for annotations only

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
OPENAPI = json.loads(
    (Path(__file__).resolve().parents[1] / "reference" / "polaris-openapi.json").read_text("utf-8")
)
# The files have no $id: a relative $ref is resolved against the file holding it, wherever it lies
# (this repository, a copy, `reconciler schema --out DIR`), so the base of each file is its name.
ID_BASE = ""
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS: dict[str, dict[str, Any]] = {
    path.name: json.loads(path.read_text("utf-8"))
    for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
}
EXPECTED_FILES = {
    "manifest.schema.json",
    "envelope.schema.json",
    "connection.schema.json",
    "table.schema.json",
    "ingestionjob.schema.json",
    "streaming-job.schema.json",
    "config.schema.json",
}

# Keywords that draft-07 editors (yaml-language-server, VS Code, JetBrains) understand. Anything newer
# (unevaluatedProperties, prefixItems, dependentRequired, $defs, $dynamicRef, ...) is silently ignored
# there, so an editor would accept what `reconciler validate` rejects.
DRAFT7_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$comment", "title", "description", "markdownDescription",
        "default", "examples", "type", "properties", "required", "additionalProperties", "enum",
        "const", "pattern", "minLength", "maxLength", "minimum", "maximum", "items", "minItems",
        "uniqueItems", "propertyNames", "oneOf", "anyOf", "allOf", "not", "if", "then", "else",
        "definitions",
    }
)  # fmt: skip
ANNOTATIONS = frozenset(
    {"$comment", "title", "description", "markdownDescription", "default", "examples"}
)
SUBSCHEMA_MAPS = ("properties", "definitions")
SUBSCHEMA_VALUES = ("items", "additionalProperties", "not", "if", "then", "else", "propertyNames")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


# --- helpers: our schemas ---------------------------------------------------------------------


def walk(schema: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every subschema of `schema` with its JSON pointer, skipping values that are data (enum, const)."""
    yield where, schema
    if not isinstance(schema, dict):
        return
    for key in SUBSCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from walk(sub, f"{where}/{key}/{name}")
    for key in SUBSCHEMA_VALUES:
        if key in schema:
            yield from walk(schema[key], f"{where}/{key}")
    for key in SUBSCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from walk(sub, f"{where}/{key}/{index}")


def all_subschemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, schema in SCHEMAS.items():
        for where, sub in walk(schema, f"{name}#"):
            if isinstance(sub, dict):
                yield where, sub


@cache
def registry(specification: Specification[Any]) -> Registry[Any]:
    """All schema files by file name, read as `specification` (the way the reconciler loads them)."""
    return Registry().with_resources(
        (name, specification.create_resource(schema)) for name, schema in SCHEMAS.items()
    )


@dataclass(frozen=True)
class Node:
    """A subschema of ours with pure `$ref`s followed, so tests read it like the OpenAPI side."""

    schema: dict[str, Any]
    resolver: Resolver[Any]

    @staticmethod
    def at(ref: str) -> Node:
        resolver = registry(DRAFT202012).resolver(base_uri=ID_BASE)
        resolved = resolver.lookup(ref)
        return Node(resolved.contents, resolved.resolver).followed()

    def followed(self) -> Node:
        node = self
        while "$ref" in node.schema:
            resolved = node.resolver.lookup(node.schema["$ref"])
            node = Node(resolved.contents, resolved.resolver)
        return node

    def __getitem__(self, name: str) -> Node:
        return Node(self.schema["properties"][name], self.resolver).followed()

    def sub(self, schema: dict[str, Any]) -> Node:
        return Node(schema, self.resolver).followed()

    @property
    def properties(self) -> set[str]:
        return set(self.schema.get("properties", {}))

    @property
    def required(self) -> set[str]:
        return set(self.schema.get("required", ()))

    @property
    def enum(self) -> list[Any]:
        return list(self.schema["enum"])

    def branches(self, key: str) -> dict[Any, Node]:
        """The `then` of every `if: {properties: {key: {const: X}}}` in allOf, by X."""
        found = {}
        for part in self.schema.get("allOf", []):
            condition = part.get("if", {}).get("properties", {}).get(key, {})
            if "const" in condition:
                found[condition["const"]] = self.sub(part["then"])
        return found

    def forbidden_by(self, key: str, value: Any) -> set[str]:
        """Fields that a `not: {required: [...]}` under the branch for key == value forbids."""
        then = self.branches(key)[value].schema
        return {
            field
            for part in [then, *then.get("allOf", [])]
            for field in part.get("not", {}).get("required", [])
        }


# --- helpers: the OpenAPI ---------------------------------------------------------------------


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = OPENAPI["components"]["schemas"][name]
    return schema


def deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = component(schema["$ref"].rsplit("/", 1)[1])
    return schema


def flatten(*names: str) -> tuple[dict[str, Any], set[str]]:
    """Properties and required fields of OpenAPI schemas, with their allOf chains merged in."""
    properties: dict[str, Any] = {}
    required: set[str] = set()

    def collect(schema: dict[str, Any]) -> None:
        schema = deref(schema)
        for part in schema.get("allOf", []):
            collect(part)
        properties.update(schema.get("properties", {}))
        required.update(schema.get("required", []))

    for name in names:
        collect(component(name))
    return properties, required


def variant(name: str, value: str) -> str:
    """The component that the discriminator of `name` maps `value` to."""
    return str(component(name)["discriminator"]["mapping"][value]).rsplit("/", 1)[1]


def request_body(path: str, method: str = "post") -> str:
    body = OPENAPI["paths"][path][method]["requestBody"]["content"]["application/json"]
    return str(body["schema"]["$ref"]).rsplit("/", 1)[1]


def openapi_enum(schema: dict[str, Any]) -> list[Any]:
    return list(deref(schema)["enum"])


def assert_same_fields(ours: Node, openapi: tuple[dict[str, Any], set[str]]) -> None:
    """Same properties, same required fields, and no disagreement on a type or a default."""
    properties, required = openapi
    assert ours.properties == set(properties), "properties differ from the OpenAPI"
    assert ours.required == required, "required fields differ from the OpenAPI"
    for name in ours.properties:
        mine, theirs = ours[name].schema, deref(properties[name])
        if "type" in mine and "type" in theirs:
            assert mine["type"] == theirs["type"], name
        if "default" in mine:
            assert mine["default"] == theirs.get("default"), name


# --- the schema files themselves --------------------------------------------------------------


def test_the_schema_directory_holds_one_file_per_kind_plus_envelope_and_top_level() -> None:
    assert set(SCHEMAS) == EXPECTED_FILES


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_valid_against_its_metaschema(name: str) -> None:
    assert SCHEMAS[name]["$schema"] == DRAFT_2020_12
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_also_checks_against_the_draft_07_metaschema(name: str) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMAS[name])


def test_every_schema_uses_only_keywords_draft_07_editors_understand() -> None:
    unknown = {
        f"{where}: {key}"
        for where, schema in all_subschemas()
        for key in schema
        if key not in DRAFT7_KEYWORDS
    }
    assert not unknown


def test_no_schema_has_an_id_so_refs_resolve_from_wherever_the_file_is() -> None:
    # An absolute $id would make every tool resolve `envelope.schema.json` against that URL (and
    # try to download it); a relative one, against the current directory. Without one, a relative
    # $ref is resolved against the file's own location, by the reconciler, editors and
    # check-jsonschema alike (tests/manifest/test_schemas_anywhere.py).
    with_id = [name for name, schema in SCHEMAS.items() if "$id" in schema]
    assert not with_id
    for where, schema in all_subschemas():
        ref = schema.get("$ref", "")
        assert "://" not in ref and not ref.startswith("/"), where


def test_refs_have_no_sibling_constraints_because_draft_07_ignores_them() -> None:
    offenders = [
        where
        for where, schema in all_subschemas()
        if "$ref" in schema and set(schema) - {"$ref"} - ANNOTATIONS
    ]
    assert not offenders


def test_every_ref_resolves() -> None:
    for where, schema in all_subschemas():
        if "$ref" in schema:
            name = where.split("#", 1)[0]
            registry(DRAFT202012).resolver(base_uri=ID_BASE + name).lookup(schema["$ref"])


def test_every_property_has_a_description_for_editors_to_show() -> None:
    # Conditions and their consequences (if/then/else) only narrow properties described elsewhere.
    undescribed = []
    for where, schema in all_subschemas():
        if {"if", "then", "else"} & set(where.split("#", 1)[1].split("/")):
            continue
        resolver = registry(DRAFT202012).resolver(base_uri=ID_BASE + where.split("#", 1)[0])
        for name, sub in schema.get("properties", {}).items():
            if (
                "description" not in sub
                and "description" not in Node(sub, resolver).followed().schema
            ):
                undescribed.append(f"{where}/properties/{name}")
    assert not undescribed


def test_every_pattern_has_a_description_that_error_messages_can_quote() -> None:
    for where, schema in all_subschemas():
        if "pattern" in schema:
            assert schema.get("description"), where


# --- agreement with the OpenAPI: connections --------------------------------------------------

CONNECTIONS = "/v1/projects/{projectId}/connections"
JOBS = "/v1/projects/{projectId}/jobs"
TABLES = "/v1/projects/{projectId}/tables"


CONNECTION_TYPE_NAMES = sorted(CONNECTION_TYPES)


def _declarable(properties: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI properties a manifest can hold: not read-only (the server fills them) and not
    write-only outside `secrets` (a manifest could only hold those as literals)."""
    return {
        name: p
        for name, p in properties.items()
        if not (p.get("readOnly") or deref(p).get("readOnly"))
        and not (name != "secrets" and (p.get("writeOnly") or deref(p).get("writeOnly")))
    }


def test_the_connection_types_are_the_openapi_ones() -> None:
    create = component(request_body(CONNECTIONS))
    assert sorted(create["discriminator"]["mapping"]) == CONNECTION_TYPE_NAMES
    spec = Node.at("connection.schema.json#/definitions/spec")
    assert sorted(spec["type"].enum) == CONNECTION_TYPE_NAMES
    assert sorted(spec.branches("type")) == CONNECTION_TYPE_NAMES


@pytest.mark.parametrize("connection_type", CONNECTION_TYPE_NAMES)
def test_each_connection_type_has_exactly_the_fields_of_its_create_request(
    connection_type: str,
) -> None:
    properties, required = flatten(variant(request_body(CONNECTIONS), connection_type))
    declarable = _declarable(properties)
    spec = Node.at("connection.schema.json#/definitions/spec").branches("type")[connection_type]
    # name is allowed (so a differing spec.name can be reported) but never required: metadata.name
    # supplies it.
    assert_same_fields(spec, (declarable, required - {"name"}))
    assert spec["type"].schema["const"] == connection_type


@pytest.mark.parametrize("connection_type", CONNECTION_TYPE_NAMES)
def test_the_reconciler_table_of_each_connection_type_agrees_with_the_openapi(
    connection_type: str,
) -> None:
    kind = CONNECTION_TYPES[connection_type]
    properties, required = flatten(variant(request_body(CONNECTIONS), connection_type))
    declarable = _declarable(properties)
    assert set(kind.writable) == set(declarable) - {"name"}
    assert set(kind.read_only) == set(properties) - set(declarable)
    defaults = {n: deref(p)["default"] for n, p in properties.items() if "default" in deref(p)}
    assert dict(kind.defaults) == defaults
    assert kind.secrets_required == ("secrets" in required)
    secrets_types = openapi_enum(component("ConnectionSecretsTypePayload"))
    assert set(kind.secrets) <= set(secrets_types)


@pytest.mark.parametrize("secrets_type", sorted(SECRETS_TYPES))
def test_each_secrets_type_has_the_fields_of_its_openapi_payload_all_as_references(
    secrets_type: str,
) -> None:
    properties, _ = flatten(variant("ConnectionSecretsOptionalPayload", secrets_type))
    _, required = flatten(variant("ConnectionSecretsRequiredPayload", secrets_type))
    secrets = Node.at(f"connection.schema.json#/definitions/secrets_{secrets_type}")
    assert secrets.properties == set(properties)
    assert {field for field, _ in SECRETS_TYPES[secrets_type]} == set(properties) - {"type"}
    assert secrets.required == required
    for field in secrets.properties - {"type"}:
        assert secrets[field].schema["type"] == "string"
        assert "${env:NAME}" in secrets[field].schema["description"]


def test_an_s3_access_key_needs_its_id_although_the_openapi_leaves_it_optional() -> None:
    # The create request makes accessKeyId optional because an Azure shared key has none; an S3
    # access key is an ID and a secret.
    description = component("ConnectionSecretsOptionalPayload")["description"]
    assert "`access_key`: Access key to authenticate Azure Blob Storage or AWS S3" in description
    s3 = Node.at("connection.schema.json#/definitions/type_s3")["secrets"].schema
    assert {"required": ["accessKeyId"]} in s3["allOf"]


def test_connection_descriptions_are_one_line_because_error_messages_quote_them() -> None:
    multi_line = [
        where
        for where, schema in all_subschemas()
        if where.startswith("connection.schema.json") and "\n" in schema.get("description", "")
    ]
    assert not multi_line


def test_the_connection_schema_is_what_the_generator_writes_from_the_openapi() -> None:
    script = ROOT / "scripts" / "gen_connection_schema.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_connection_names_have_the_openapi_length_limits_and_character_set() -> None:
    limits = component("ConnectionNamePayload")
    name = Node.at("connection.schema.json#/definitions/connectionName")
    assert (name.schema["minLength"], name.schema["maxLength"]) == (1, 64)
    assert (name.schema["minLength"], name.schema["maxLength"]) == (
        limits["minLength"],
        limits["maxLength"],
    )
    assert "ASCII letters, numbers" in limits["description"]
    assert "`.`, `_`, `-`" in limits["description"]
    check = jsonschema.Draft202012Validator(name.schema)
    assert check.is_valid("demo-conn_2.v1")
    for bad in ("my connection", "café", "a/b", "", "c" * 65):
        assert not check.is_valid(bad), bad


# --- agreement with the OpenAPI: tables -------------------------------------------------------

# Fields of the table payload that Polaris sets; a manifest that gives one is rejected.
READ_ONLY_TABLE_FIELDS = frozenset(
    {
        "id", "version", "availability", "queryableSchema", "createdByUser", "createdOnTimestamp",
        "modifiedByUser", "modifiedOnTimestamp", "segmentCompactedBytes", "segmentCount",
        "segmentTotalBytes", "precachedDataSizeBytes", "totalDataSizeBytes", "totalRows",
    }
)  # fmt: skip


def test_table_spec_has_the_writable_fields_of_the_table_payloads_and_no_read_only_ones() -> None:
    assert request_body(TABLES) == "TablePayload"
    detail, _ = flatten(variant("TablePayload", "detail"))
    aggregate, _ = flatten(variant("TablePayload", "aggregate"))
    _, required = flatten("TablePayload")
    every_field = {**detail, **aggregate}
    assert set(every_field) >= READ_ONLY_TABLE_FIELDS
    flagged = {name for name, schema in every_field.items() if deref(schema).get("readOnly")}
    assert flagged <= READ_ONLY_TABLE_FIELDS
    assert (
        "Do not provide the version number when creating a table"
        in (component("TableVersion")["description"])
    )
    writable = {k: v for k, v in every_field.items() if k not in READ_ONLY_TABLE_FIELDS}
    spec = Node.at("table.schema.json#/definitions/spec")
    # name is allowed (so a differing spec.name can be reported) but supplied by metadata.name.
    assert_same_fields(spec, (writable, required - {"name", "version"}))
    assert spec.required == {"type"}


def test_fields_only_aggregate_tables_have_are_refused_on_detail_tables() -> None:
    detail, _ = flatten("DetailTablePayload")
    aggregate, _ = flatten("AggregateTablePayload")
    spec = Node.at("table.schema.json#/definitions/spec")
    assert spec.forbidden_by("type", "detail") == set(aggregate) - set(detail)
    assert set(aggregate) - set(detail) == {"queryGranularity", "timeResolution"}


def test_table_enums_equal_the_openapi_enums() -> None:
    spec = Node.at("table.schema.json#/definitions/spec")
    assert spec["type"].enum == openapi_enum(component("TableType"))
    assert spec["schemaMode"].enum == openapi_enum(component("TableSchemaMode"))
    assert spec["timeResolution"].enum == openapi_enum(component("TimeResolution"))
    # `week` is in the enum for existing tables only: Polaris refuses to create a table with it.
    partitioning = component("TablePartitioningGranularity")
    assert (
        "can't create a new table with the time partitioning set to `week`"
        in (partitioning["description"])
    )
    assert spec["partitioningGranularity"].enum == [
        value for value in partitioning["enum"] if value != "week"
    ]
    assert spec["description"].schema["maxLength"] == 1000
    assert "limited to 1000 characters" in component("TableDescription")["description"]
    name = Node.at("table.schema.json#/definitions/tableName").schema
    assert (name["minLength"], name["maxLength"]) == (
        component("TableName")["minLength"],
        component("TableName")["maxLength"],
    )


def test_table_columns_follow_the_openapi_column_schemas() -> None:
    detail = Node.at("table.schema.json#/definitions/detailColumn")
    assert_same_fields(detail, flatten("DetailTableColumn"))
    assert detail["dataType"].enum == openapi_enum(component("TableColumnDataType"))

    aggregate = Node.at("table.schema.json#/definitions/aggregateColumn")
    kinds = component("AggregateTableColumn")["discriminator"]["mapping"]
    assert aggregate["type"].enum == openapi_enum(component("AggregateTableColumnType"))
    assert set(kinds) == set(aggregate["type"].enum)
    assert_same_fields(aggregate, flatten(*(variant("AggregateTableColumn", k) for k in kinds)))
    branches = aggregate.branches("type")
    assert set(branches) == set(kinds)
    for kind in kinds:
        properties, required = flatten(variant("AggregateTableColumn", kind))
        assert required <= aggregate.required
        assert branches[kind]["dataType"].enum == openapi_enum(properties["dataType"]), kind


@pytest.mark.parametrize(
    ("ours", "openapi"),
    [("storagePolicyRule", "StoragePolicyPayload"), ("queryGranularity", "GranularityPayload")],
)
def test_table_policy_objects_follow_their_openapi_variants(ours: str, openapi: str) -> None:
    node = Node.at(f"table.schema.json#/definitions/{ours}")
    mapping = component(openapi)["discriminator"]["mapping"]
    assert node["type"].enum == openapi_enum(component(openapi)["properties"]["type"])
    assert_same_fields(node, (flatten(*(variant(openapi, v) for v in mapping))[0], {"type"}))
    branches = node.branches("type")
    assert set(branches) == set(mapping)
    for value in mapping:
        _, required = flatten(variant(openapi, value))
        assert node.required | branches[value].required == required, value


def test_table_storage_policy_has_the_openapi_rules() -> None:
    node = Node.at("table.schema.json#/definitions/storagePolicy")
    assert_same_fields(node, flatten("TableStoragePolicy"))


# --- agreement with the OpenAPI: ingestion jobs -----------------------------------------------


def test_job_spec_has_exactly_the_fields_of_the_batch_job_create_request() -> None:
    create_batch = variant(request_body(JOBS), "batch")
    assert create_batch == "CreateBatchJobRequest"
    spec = Node.at("ingestionjob.schema.json#/definitions/spec")
    assert_same_fields(spec, flatten(create_batch))
    assert spec["type"].schema["const"] in openapi_enum(component("JobTypeV2"))
    server_set = {"id", "executionStatus", "desiredExecutionStatus", "health", "createdBy"}
    assert not spec.properties & server_set


def test_job_target_is_the_openapi_table_target() -> None:
    target = Node.at("ingestionjob.schema.json#/definitions/target")
    assert_same_fields(target, flatten(variant("JobTargetV2", "table")))
    assert target["type"].enum == openapi_enum(component("JobTargetTypeV2"))
    assert target["tableName"].schema is Node.at("table.schema.json#/definitions/tableName").schema


def test_job_source_is_the_openapi_s3_source_with_exactly_one_object_selector() -> None:
    s3 = variant("JobSourceV2", "s3")
    source = Node.at("ingestionjob.schema.json#/definitions/source")
    assert_same_fields(source, flatten(s3))
    assert source.required == {"type", "connectionName", "inputSchema"}
    assert set(source["type"].enum) <= set(openapi_enum(component("JobSourceTypeV2")))
    assert source["type"].enum == ["s3"]
    selectors = [variant["required"] for variant in source.schema["oneOf"]]
    assert selectors == [["uris"], ["prefixes"], ["objects"], ["pattern"]]
    assert (
        "Designate one of `uris`, `prefixes`, `objects`, or `pattern`"
        in (component(s3)["description"])
    )
    connection_name = Node.at("connection.schema.json#/definitions/connectionName").schema
    assert source["connectionName"].schema is connection_name


def test_job_input_schema_and_mappings_follow_the_openapi() -> None:
    field = Node.at("ingestionjob.schema.json#/definitions/inputField")
    properties, _ = flatten("FieldNameAndDataType")
    assert_same_fields(field, flatten("FieldNameAndDataType"))
    assert field["dataType"].enum == openapi_enum(properties["dataType"])
    mapping = Node.at("ingestionjob.schema.json#/definitions/mapping")
    assert_same_fields(mapping, flatten("InputToTableSchemaMapping"))


def test_job_enums_equal_the_openapi_enums() -> None:
    spec = Node.at("ingestionjob.schema.json#/definitions/spec")
    assert spec["ingestionMode"].enum == openapi_enum(component("IngestionModeV2"))
    assert spec["partitionedBy"].enum == openapi_enum(component("PartitioningGranularity"))


def test_batch_formats_are_the_openapi_data_formats_less_the_streaming_ones() -> None:
    settings = Node.at("ingestionjob.schema.json#/definitions/formatSettings")
    every_format = openapi_enum(component("DataFormat"))
    batch = settings["format"].enum
    assert set(batch) <= set(every_format)
    assert set(every_format) - set(batch) == {"kafka", "kinesis"}
    assert batch == [value for value in every_format if value not in ("kafka", "kinesis")]
    branches = settings.branches("format")
    assert set(branches) == set(batch)
    for value in batch:
        assert_same_fields(branches[value], flatten(variant("DataFormatSettings", value)))


def test_parse_schema_providers_follow_the_openapi() -> None:
    provider = Node.at("ingestionjob.schema.json#/definitions/parseSchemaProvider")
    kinds = openapi_enum(component("ParseSchemaProviderType"))
    assert provider["type"].enum == kinds
    branches = provider.branches("type")
    assert set(branches) == set(kinds)
    for kind in kinds:
        assert_same_fields(branches[kind], flatten(variant("ParseSchemaProvider", kind)))


# --- documents: accepted and refused ----------------------------------------------------------

DEMO_CONN = """
apiVersion: reconciler/v1
kind: Connection
metadata:
  name: demo-conn
spec:
  type: s3
  bucket: demo-bucket
  awsEndpoint: s3.us-east-1.amazonaws.com
  awsAssumedRoleArn: arn:aws:iam::012345678901:role/demo-role
"""

KOALAS_JOB = """
apiVersion: reconciler/v1
kind: IngestionJob
metadata:
  name: koalas-demo-file
spec:
  type: batch
  target:
    type: table
    tableName: Koalas
  createTableIfNotExists: true
  source:
    type: s3
    connectionName: demo-conn
    uris: [s3://demo-bucket/polaris-ingest/demo-file.json.gz]
    formatSettings:
      format: nd-json
    inputSchema:
      - {dataType: string, name: timestamp}
      - {dataType: string, name: city}
      - {dataType: string, name: session}
      - {dataType: long, name: session_length}
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("timestamp")'}
    - {columnName: city, expression: '"city"'}
    - {columnName: session, expression: '"session"'}
    - {columnName: max_session_length, expression: 'MAX("session_length")', isAggregation: true}
"""

AGGREGATE_TABLE = """
apiVersion: reconciler/v1
kind: Table
metadata: {name: Koalas}
spec:
  type: aggregate
  partitioningGranularity: day
  schemaMode: strict
  timeResolution: hour
  queryGranularity: {type: period, period: PT1H, timeZone: Europe/Paris}
  storagePolicy:
    retain: {type: period, period: P90D}
    cached: {type: intervals, intervals: [2026-01-01/2026-04-01]}
  schema:
    - {type: dimension, name: __time, dataType: timestamp}
    - {type: dimension, name: city, dataType: string}
    - {type: measure, name: max_session_length, dataType: long}
"""


def doc(text: str, **changes: Any) -> dict[str, Any]:
    """The YAML document `text`, with `changes` applied at dotted paths (None deletes)."""
    data: dict[str, Any] = yaml.safe_load(text)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return data


EXAMPLES = ROOT / "examples" / "connections"
EXAMPLE_CONNECTIONS = {path.stem: path.read_text("utf-8") for path in EXAMPLES.glob("*.yaml")}

VALID = {
    **{f"the example {name} connection": doc(text) for name, text in EXAMPLE_CONNECTIONS.items()},
    "the guide's demo-conn": doc(DEMO_CONN),
    "demo-conn with access keys from the environment": doc(
        DEMO_CONN,
        spec__awsAssumedRoleArn=None,
        spec__secrets={
            "type": "access_key",
            "accessKeyId": "${env:AWS_ACCESS_KEY_ID}",
            "accessKeySecret": "${env:AWS_SECRET_ACCESS_KEY}",
        },
    ),
    "a connection that repeats its name in spec": doc(DEMO_CONN, spec__name="demo-conn"),
    "an external connection with no spec": {
        "apiVersion": "reconciler/v1",
        "kind": "Connection",
        "metadata": {"name": "security-audit", "annotations": {"owner": "security"}},
        "policy": {"manage": "external"},
    },
    "the guide's Koalas job": doc(KOALAS_JOB),
    "a job with an empty policy": doc(KOALAS_JOB, policy={}),
    "a replace job with intervals": doc(
        KOALAS_JOB, spec__ingestionMode="replace", spec__target__intervals=["2026-01-01/P1M"]
    ),
    "a job that replaces all data": doc(
        KOALAS_JOB, spec__ingestionMode="replace", spec__replaceAll=True
    ),
    "a tsv job": doc(
        KOALAS_JOB,
        spec__source__formatSettings={"format": "csv", "delimiter": "\t", "skipHeaderRows": 1},
    ),
    "a protobuf job": doc(
        KOALAS_JOB,
        spec__source__formatSettings={
            "format": "protobuf",
            "parseSchemaProvider": {"type": "inline-protobuf", "descriptor": "CtQBCgprdHRt"},
        },
    ),
    "an aggregate table": doc(AGGREGATE_TABLE),
    "a detail table managed elsewhere": {
        "apiVersion": "reconciler/v1",
        "kind": "Table",
        "metadata": {"name": "audit_events"},
        "policy": {"manage": "external"},
    },
}

# (document, path of the error, keyword that reports it)
INVALID: dict[str, tuple[Any, tuple[Any, ...], str]] = {
    "a job with two object selectors": (
        doc(KOALAS_JOB, spec__source__prefixes=["polaris-ingest/"]),
        ("spec", "source"),
        "oneOf",
    ),
    "a job with no object selector": (
        doc(KOALAS_JOB, spec__source__uris=None),
        ("spec", "source"),
        "oneOf",
    ),
    "a connection without bucket": (doc(DEMO_CONN, spec__bucket=None), ("spec",), "required"),
    "intervals with the default append mode": (
        doc(KOALAS_JOB, spec__target__intervals=["2026-01-01/2026-02-01"]),
        ("spec", "target"),
        "not",
    ),
    "intervals with append": (
        doc(
            KOALAS_JOB,
            spec__ingestionMode="append",
            spec__target__intervals=["2026-01-01/2026-02-01"],
        ),
        ("spec", "target"),
        "not",
    ),
    "replace with neither intervals nor replaceAll": (
        doc(KOALAS_JOB, spec__ingestionMode="replace"),
        ("spec", "target"),
        "required",
    ),
    "replaceAll together with intervals": (
        doc(
            KOALAS_JOB,
            spec__ingestionMode="replace",
            spec__replaceAll=True,
            spec__target__intervals=["2026-01-01/2026-02-01"],
        ),
        ("spec", "target"),
        "not",
    ),
    "replaceAll with append": (doc(KOALAS_JOB, spec__replaceAll=True), ("spec",), "not"),
    "an interval without an end": (
        doc(KOALAS_JOB, spec__ingestionMode="replace", spec__target__intervals=["2026-01-01"]),
        ("spec", "target", "intervals", 0),
        "pattern",
    ),
    "a managed connection without spec": (doc(DEMO_CONN, spec=None), (), "required"),
    "an unknown kind": (doc(DEMO_CONN, kind="Topic"), ("kind",), "enum"),
    "a wrong apiVersion": (doc(DEMO_CONN, apiVersion="reconciler/v2"), ("apiVersion",), "const"),
    "an unknown top-level key": (doc(DEMO_CONN, status={}), (), "additionalProperties"),
    "a connection name with a space": (
        doc(DEMO_CONN, metadata={"name": "my connection"}),
        ("metadata", "name"),
        "pattern",
    ),
    "a connection name of 65 characters": (
        doc(DEMO_CONN, metadata={"name": "c" * 65}),
        ("metadata", "name"),
        "maxLength",
    ),
    "a metadata key that is not name or annotations": (
        doc(DEMO_CONN, metadata={"name": "demo-conn", "labels": {}}),
        ("metadata",),
        "additionalProperties",
    ),
    "an annotation that is not a string": (
        doc(DEMO_CONN, metadata={"name": "demo-conn", "annotations": {"tier": 1}}),
        ("metadata", "annotations", "tier"),
        "type",
    ),
    "a misspelled connection field": (
        doc(DEMO_CONN, spec__buckt="b"),
        ("spec",),
        "additionalProperties",
    ),
    "a connection of a type Polaris does not have": (
        doc(DEMO_CONN, spec__type="ftp"),
        ("spec", "type"),
        "enum",
    ),
    "a kafka connection with an S3 field": (
        doc(DEMO_CONN, spec__type="kafka", spec__bootstrapServers="b:9092", spec__topicName="t"),
        ("spec",),
        "additionalProperties",
    ),
    "a kafka connection with an SSL keystore, which would hold a private key": (
        {
            **doc(EXAMPLE_CONNECTIONS["kafka"]),
            "spec": {
                **doc(EXAMPLE_CONNECTIONS["kafka"])["spec"],
                "ssl": {"keystore": {"type": "pem", "certificates": "c", "key": "k"}},
            },
        },
        ("spec", "ssl"),
        "additionalProperties",
    ),
    "a push streaming connection that sets its read-only endpoint": (
        doc(EXAMPLE_CONNECTIONS["push_streaming"], spec__endpointUrl="https://x"),
        ("spec",),
        "additionalProperties",
    ),
    "an azure connection with the secrets of another type": (
        doc(
            EXAMPLE_CONNECTIONS["azure"],
            spec__secrets={"type": "sasl_plain", "username": "${env:U}", "password": "${env:P}"},
        ),
        ("spec", "secrets", "type"),
        "enum",
    ),
    "a bucket that YAML read as a number": (
        doc(DEMO_CONN, spec__bucket=2024),
        ("spec", "bucket"),
        "type",
    ),
    "secrets without the secret": (
        doc(DEMO_CONN, spec__secrets={"type": "access_key", "accessKeyId": "${env:ID}"}),
        ("spec", "secrets"),
        "required",
    ),
    "an unknown policy setting": (
        doc(DEMO_CONN, policy={"manage": "reconciler", "prune": True}),
        ("policy",),
        "additionalProperties",
    ),
    "a job managed externally": (
        doc(KOALAS_JOB, policy={"manage": "external"}),
        ("policy",),
        "additionalProperties",
    ),
    "a streaming job": (doc(KOALAS_JOB, spec__type="streaming"), ("spec", "type"), "const"),
    "a job without inputSchema": (
        doc(KOALAS_JOB, spec__source__inputSchema=None),
        ("spec", "source"),
        "required",
    ),
    "an unknown format": (
        doc(KOALAS_JOB, spec__source__formatSettings={"format": "jsonl"}),
        ("spec", "source", "formatSettings", "format"),
        "enum",
    ),
    "a streaming format": (
        doc(KOALAS_JOB, spec__source__formatSettings={"format": "kafka"}),
        ("spec", "source", "formatSettings", "format"),
        "enum",
    ),
    "a csv setting on an nd-json job": (
        doc(KOALAS_JOB, spec__source__formatSettings={"format": "nd-json", "delimiter": ","}),
        ("spec", "source", "formatSettings"),
        "additionalProperties",
    ),
    "a regex format without its pattern": (
        doc(KOALAS_JOB, spec__source__formatSettings={"format": "regex", "columns": ["a"]}),
        ("spec", "source", "formatSettings"),
        "required",
    ),
    "an input field of unknown type": (
        doc(KOALAS_JOB, spec__source__inputSchema=[{"name": "a", "dataType": "text"}]),
        ("spec", "source", "inputSchema", 0, "dataType"),
        "enum",
    ),
    "createTableIfNotExists written as yes in quotes": (
        doc(KOALAS_JOB, spec__createTableIfNotExists="yes"),
        ("spec", "createTableIfNotExists"),
        "type",
    ),
    "a table of unknown type": (
        doc(AGGREGATE_TABLE, spec__type="rollup"),
        ("spec", "type"),
        "enum",
    ),
    "a table with its read-only version": (
        doc(AGGREGATE_TABLE, spec__version=3),
        ("spec",),
        "additionalProperties",
    ),
    "a detail table with a query granularity": (
        doc(AGGREGATE_TABLE, spec__type="detail", spec__schema=[]),
        ("spec",),
        "not",
    ),
    "a detail column marked as a dimension": (
        doc(
            AGGREGATE_TABLE,
            spec__type="detail",
            spec__queryGranularity=None,
            spec__timeResolution=None,
        ),
        ("spec", "schema", 0),
        "additionalProperties",
    ),
    "a measure of a type measures cannot have": (
        doc(
            AGGREGATE_TABLE,
            spec__schema=[{"type": "measure", "name": "m", "dataType": "timestamp"}],
        ),
        ("spec", "schema", 0, "dataType"),
        "enum",
    ),
    "a new table partitioned by week": (
        doc(AGGREGATE_TABLE, spec__partitioningGranularity="week"),
        ("spec", "partitioningGranularity"),
        "enum",
    ),
    "a period storage rule with intervals": (
        doc(AGGREGATE_TABLE, spec__storagePolicy={"retain": {"type": "period", "intervals": []}}),
        ("spec", "storagePolicy", "retain"),
        "not",
    ),
    "a document that is a list": ([DEMO_CONN], (), "type"),
}

DIALECTS = {
    "2020-12": (jsonschema.Draft202012Validator, DRAFT202012),
    "draft-07": (jsonschema.Draft7Validator, DRAFT7),
}


def validator(dialect: str) -> jsonschema.protocols.Validator:
    cls, specification = DIALECTS[dialect]
    validator: jsonschema.protocols.Validator = cls(
        SCHEMAS["manifest.schema.json"], registry=registry(specification)
    )
    return validator


def every_error(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from every_error(iter(error.context))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("name", sorted(VALID))
def test_the_top_level_schema_accepts_a_valid_document(name: str, dialect: str) -> None:
    errors = [error.message for error in validator(dialect).iter_errors(VALID[name])]
    assert not errors


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("name", sorted(INVALID))
def test_the_top_level_schema_refuses_an_invalid_document_for_the_right_reason(
    name: str, dialect: str
) -> None:
    document, path, keyword = INVALID[name]
    errors = list(every_error(validator(dialect).iter_errors(document)))
    assert errors, "accepted"
    found = [(tuple(error.absolute_path), error.validator) for error in errors]
    assert (path, keyword) in found, found


@pytest.mark.parametrize("kind", ["Connection", "Table", "IngestionJob"])
def test_each_kind_schema_gives_the_same_verdict_as_the_top_level_one(kind: str) -> None:
    schema = SCHEMAS[f"{kind.lower()}.schema.json"]
    direct = jsonschema.Draft202012Validator(schema, registry=registry(DRAFT202012))
    top = validator("2020-12")
    documents = [d for d in VALID.values() if d.get("kind") == kind]
    documents += [
        d for d, _, _ in INVALID.values() if isinstance(d, dict) and d.get("kind") == kind
    ]
    assert documents
    for document in documents:
        assert direct.is_valid(document) == top.is_valid(document), document


def test_there_is_an_example_manifest_for_every_connection_type() -> None:
    assert sorted(EXAMPLE_CONNECTIONS) == CONNECTION_TYPE_NAMES
    for name, text in EXAMPLE_CONNECTIONS.items():
        assert doc(text)["spec"]["type"] == name


def test_every_example_manifest_in_the_repository_is_valid() -> None:
    paths = sorted((ROOT / "manifests").rglob("*.y*ml")) + sorted(EXAMPLES.rglob("*.y*ml"))
    top = validator("2020-12")
    for path in paths:
        for document in yaml.safe_load_all(path.read_text("utf-8")):
            if document is not None:
                errors = [error.message for error in top.iter_errors(document)]
                assert not errors, f"{path}: {errors}"


def _schema_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document of a kind with a schema, in every YAML file of the repository."""
    from reconciler.manifest import parse
    from reconciler.schema import SCHEMA_FILES
    from tests.manifest.test_loading import CORPUS

    for path in CORPUS:
        documents, _ = parse(path.read_bytes().decode("utf-8", errors="replace"), str(path))
        for document in documents:
            data = document.data
            kind = data.get("kind") if isinstance(data, dict) else None
            if isinstance(kind, str) and kind in SCHEMA_FILES:
                yield SCHEMA_FILES[Kind(kind)], data


def _without_each_key(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`data`, and `data` without one key, at each level of mappings under it."""
    yield data
    for key, value in data.items():
        yield {k: v for k, v in data.items() if k != key}
        if isinstance(value, dict):
            for inner in _without_each_key(value):
                yield {**data, key: inner}


def test_the_compiled_check_and_jsonschema_agree_on_every_document_and_its_mutations() -> None:
    # The compiled check (fastjsonschema's code, rewritten: schema._generate) decides alone that a
    # document is valid; jsonschema only explains those it refuses. Each document of the
    # repository, and each with one key removed or an unknown one added, gets one verdict.
    from reconciler.schema import _compiled, _validator

    checked = 0
    for name, data in _schema_documents():
        compiled, explained = _compiled(name), _validator(name)
        for variant in [*_without_each_key(data), {**data, "unknownField": 1}]:
            try:
                compiled(variant)
                passes = True
            except Exception:  # Invalid, or a TypeError the check makes of a value it rejects
                passes = False
            assert passes == explained.is_valid(variant), (name, json.dumps(variant)[:300])
            checked += 1
    assert checked > 500
