"""1,000 job creates at 20 ms latency: `reconciler apply` as a whole process, --parallelism 1 vs 16.

Each run is the command a user types (`reconciler apply --auto-approve --parallelism N DIR`)
against a fresh emulator served on loopback with 20 ms added to every request, so the figure
includes start-up, validation, reading live state, planning, the project lock (a few requests
of its own) and applying: what the user waits for, not only `Applier.run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator, FaultPlan

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


def apply_once(parallelism: int, directory: Path, cache: Path) -> dict[str, float | int]:
    """`reconciler apply` of everything to a fresh emulator: wall time, requests, peak in flight."""
    emulator = Emulator(faults=FaultPlan(latency_seconds=LATENCY))
    shutil.rmtree(cache, ignore_errors=True)
    reconciler = shutil.which("reconciler", path=str(Path(sys.executable).parent)) or "reconciler"
    command = [
        reconciler, "apply", "--auto-approve", "--parallelism", str(parallelism), str(directory),
    ]  # fmt: skip
    with emulator.serve() as server:
        env = {
            **os.environ,
            "POLARIS_URL": server.url,
            "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
            "POLARIS_API_KEY": DEMO_API_KEY,
            "XDG_CACHE_HOME": str(cache),
        }
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - began
        requests, peak = len(emulator.requests), emulator.peak_in_flight
    emulator.close()
    return {"wall_s": round(wall, 2), "requests": requests, "peak_in_flight": peak}


def run() -> dict[str, object]:
    """Measure both parallelisms; print and return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        manifests, cache = Path(tmp, "manifests"), Path(tmp, "cache")
        manifests.mkdir()
        write_manifests(manifests)
        parallel = apply_once(16, manifests, cache)
        serial = apply_once(1, manifests, cache)
    speedup = serial["wall_s"] / parallel["wall_s"]
    print(
        f"reconciler apply (whole process) of {JOBS} jobs + {CONNECTIONS} connections at "
        f"{LATENCY * 1000:.0f} ms latency: --parallelism 1 {serial['wall_s']} s "
        f"({serial['requests']} requests), --parallelism 16 {parallel['wall_s']} s "
        f"({parallel['requests']} requests, {parallel['peak_in_flight']} at once); "
        f"speed-up {speedup:.1f}x (goal >= 8x)"
    )
    return {"serial": serial, "parallel16": parallel, "speedup": round(speedup, 1)}
