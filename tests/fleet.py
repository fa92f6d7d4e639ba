"""A fleet of generated manifests, and the checks that a project converged on it exactly once."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from reconciler.client import PolarisClient
from reconciler.kinds.ingestion_job import SpecFingerprint, compared_form, spec_fingerprint
from reconciler.live import read_live
from reconciler.model import Kind, Resource
from reconciler.plan import Plan, make_plan
from reconciler.validate import load_manifests


def write_fleet(directory: Path, connections: int, jobs_per_connection: int) -> Path:
    """`connections` connections, each feeding `jobs_per_connection` jobs into its own table."""
    directory.mkdir(parents=True, exist_ok=True)
    for c in range(connections):
        docs = [
            f"apiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: fleet-{c}}}\n"
            f"spec: {{type: s3, bucket: fleet-bucket-{c}, awsEndpoint: s3.us-east-1.amazonaws.com}}\n"
        ]
        for j in range(jobs_per_connection):
            docs.append(
                f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: fleet-{c}-day-{j}}}\n"
                f"spec:\n  type: batch\n  target: {{type: table, tableName: fleet_{c}}}\n"
                "  createTableIfNotExists: true\n"
                f"  source:\n    type: s3\n    connectionName: fleet-{c}\n"
                f"    objects: [days/{j:03d}.json]\n    formatSettings: {{format: nd-json}}\n"
                "    inputSchema: [{name: ts, dataType: string}, {name: v, dataType: long}]\n"
                "  mappings:\n    - {columnName: __time, expression: 'TIME_PARSE(\"ts\")'}\n"
                "    - {columnName: v, expression: '\"v\"'}\n"
            )
        (directory / f"fleet-{c}.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return directory


def plan_fleet(client: PolarisClient, directory: Path) -> tuple[dict[Any, Resource], Plan]:
    """The fleet's resources by key, and the plan against the project as it is now."""
    manifests = load_manifests([str(directory)], {})
    return {r.key: r for r in manifests.resources}, make_plan(
        manifests.resources, read_live(client, manifests.resources)
    )


def job_fingerprints(client: PolarisClient) -> collections.Counter[SpecFingerprint]:
    counts: collections.Counter[SpecFingerprint] = collections.Counter()
    for summary in client.iter_jobs():
        job = client.get_job(summary["id"])
        assert job is not None
        counts[spec_fingerprint(compared_form(job))] += 1
    return counts


def assert_converged(client: PolarisClient, directory: Path, jobs: int) -> None:
    counts = job_fingerprints(client)
    assert sum(counts.values()) == jobs, "missing or extra jobs"
    assert max(counts.values()) == 1, "a job was submitted twice"
    manifests = load_manifests([str(directory)], {})
    wanted = {
        spec_fingerprint(compared_form(r.spec)) for r in manifests.of_kind(Kind.INGESTION_JOB)
    }
    assert set(counts) == wanted
