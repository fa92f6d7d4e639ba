"""1,000 job creates against an emulator with 20 ms latency: --parallelism 16 against 1."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from reconciler.apply import Applier, ApplyOptions
from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator, FaultPlan
from reconciler.live import read_live
from reconciler.plan import make_plan
from reconciler.validate import load_manifests

JOBS, CONNECTIONS, LATENCY = 1_000, 10, 0.020


def write_manifests(directory: Path) -> None:
    """10 connections, each feeding 100 jobs into its own auto-created table."""
    for c in range(CONNECTIONS):
        docs = [
            f"apiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: conn-{c}}}\n"
            f"spec: {{type: s3, bucket: b{c}, awsEndpoint: s3.us-east-1.amazonaws.com}}\n"
        ]
        docs += [
            f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: job-{c}-{j}}}\nspec:\n"
            f"  type: batch\n  target: {{type: table, tableName: t{c}}}\n  createTableIfNotExists: true\n"
            f"  source: {{type: s3, connectionName: conn-{c}, objects: [f{j}.json],"
            " formatSettings: {format: nd-json}, inputSchema: [{name: ts, dataType: string}]}\n"
            "  mappings: [{columnName: __time, expression: 'TIME_PARSE(\"ts\")'}]\n"
            for j in range(JOBS // CONNECTIONS)
        ]
        (directory / f"c{c}.yaml").write_text("---\n".join(docs), encoding="utf-8")


def apply_once(parallelism: int, directory: Path) -> tuple[float, int]:
    """Apply everything to a fresh emulator; return the wall time and requests sent."""
    emulator = Emulator(faults=FaultPlan(latency_seconds=LATENCY))
    config = ClientConfig(
        url="http://polaris.bench", project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True
    )
    manifests = load_manifests([str(directory)], {})
    with PolarisClient(config, transport=emulator.transport(), pool_size=parallelism) as client:
        plan = make_plan(manifests.resources, read_live(client, manifests.resources))
        emulator.reset_requests()
        began = time.perf_counter()
        result = Applier(
            client, {r.key: r for r in manifests.resources}, ApplyOptions(parallelism=parallelism)
        ).run(plan)
        wall = time.perf_counter() - began
    assert not result.failed and result.count("done") == JOBS + CONNECTIONS
    return wall, len(emulator.requests)


def run() -> dict[str, object]:
    """Measure both parallelisms; print and return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        write_manifests(Path(tmp))
        parallel, parallel_requests = apply_once(16, Path(tmp))
        serial, serial_requests = apply_once(1, Path(tmp))
    speedup = serial / parallel
    print(
        f"apply {JOBS} jobs + {CONNECTIONS} connections at {LATENCY * 1000:.0f} ms latency: "
        f"--parallelism 1 {serial:.1f} s ({serial_requests} requests), "
        f"--parallelism 16 {parallel:.1f} s ({parallel_requests} requests); "
        f"speed-up {speedup:.1f}x (goal >= 8x)"
    )
    return {
        "serial_s": round(serial, 2),
        "parallel16_s": round(parallel, 2),
        "speedup": round(speedup, 1),
    }
