"""Validate 10,000 generated resources; compare with a bare jsonschema loop over the same documents."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from reconciler import schema
from reconciler.validate import load_manifests

CONNECTIONS, TABLES, JOBS = 100, 100, 9_800
PER_FILE = 100


def documents() -> list[str]:
    """The generated manifests, one YAML text per resource."""
    docs = []
    for i in range(CONNECTIONS):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: conn-{i}}}\n"
            f"spec: {{type: s3, bucket: bucket-{i}, awsEndpoint: s3.us-east-1.amazonaws.com,"
            f" awsAssumedRoleArn: 'arn:aws:iam::012345678901:role/r{i}'}}\n"
        )
    for i in range(TABLES):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: Table\nmetadata: {{name: table-{i}}}\n"
            "spec:\n  type: detail\n  partitioningGranularity: hour\n  schema:\n"
            "    - {name: city, dataType: string}\n    - {name: n, dataType: long}\n"
        )
    for i in range(JOBS):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: job-{i}}}\nspec:\n"
            f"  type: batch\n  target: {{type: table, tableName: table-{i % TABLES}}}\n"
            f"  source:\n    type: s3\n    connectionName: conn-{i % CONNECTIONS}\n"
            f"    uris: ['s3://bucket/day-{i}.json']\n    formatSettings: {{format: nd-json}}\n"
            "    inputSchema:\n      - {name: ts, dataType: string}\n"
            "      - {name: city, dataType: string}\n      - {name: n, dataType: long}\n"
            "  mappings:\n    - {columnName: __time, expression: 'TIME_PARSE(\"ts\")'}\n"
            "    - {columnName: city, expression: '\"city\"'}\n"
            "    - {columnName: n, expression: '\"n\"'}\n"
        )
    return docs


def run() -> dict[str, object]:
    """Time `load_manifests` and the bare loop; print and return the figures."""
    docs = documents()
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(docs), PER_FILE):
            Path(tmp, f"m{start // PER_FILE:04d}.yaml").write_text(
                "---\n".join(docs[start : start + PER_FILE])
            )
        load_manifests([tmp], {})  # warm imports and compiled schemas
        began = time.perf_counter()
        manifests = load_manifests([tmp], {})
        ours = time.perf_counter() - began
    parsed = [yaml.load(doc, Loader=yaml.CSafeLoader) for doc in docs]
    validators = schema._validators()
    began = time.perf_counter()
    for doc in parsed:
        validators[doc["kind"]].validate(doc)
    bare = time.perf_counter() - began
    figures = {
        "resources": len(manifests.resources),
        "reconciler_validate_s": round(ours, 3),
        "bare_jsonschema_loop_s": round(bare, 3),
        "ratio": round(ours / bare, 2),
    }
    print(
        f"validate {figures['resources']} resources: {ours:.2f} s; bare jsonschema loop over the "
        f"same documents: {bare:.2f} s; ratio {ours / bare:.2f}x (goal: < 2 s and <= 1.5x)"
    )
    return figures
