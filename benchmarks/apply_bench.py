"""1,000 job creates at 20 ms latency: `reconciler apply` as a whole process.

Each run is the command a user types (`reconciler apply --auto-approve --parallelism N DIR`)
against a fresh emulator served on loopback with 20 ms added to every request, so the figure
includes start-up, validation, reading live state, planning, the project lock (a few requests
of its own) and applying: what the user waits for, not only `Applier.run`.

Two layouts of the same 1,000 jobs (10 connections, 100 jobs each): each connection's jobs into
its own table (ten tables), and every job into one table. Apply lists each table's jobs once and
keeps that view current, so one table costs what ten do (goal: within 1.2x), and a job costs one
request, its POST (goal: at most 1.1 requests per job at --parallelism 1). Runs are interleaved
(ten, one, ten, one, ...), each against a fresh emulator and an empty job cache; the figures are
medians with min-max.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator, FaultPlan

JOBS, CONNECTIONS, LATENCY = 1_000, 10, 0.020
REPEATS = int(os.environ.get("APPLY_BENCH_REPEATS", "3"))
LAYOUTS = {"ten tables": CONNECTIONS, "one table": 1}


def write_manifests(directory: Path, tables: int = CONNECTIONS) -> None:
    """10 connections, each feeding 100 jobs into an auto-created table: its own one (`tables`
    = 10) or the same one for all (`tables` = 1)."""
    for c in range(CONNECTIONS):
        table = f"t{c % tables}"
        docs = [
            f"apiVersion: reconciler/v1\nkind: Connection\nmetadata: {{name: conn-{c}}}\n"
            f"spec: {{type: s3, bucket: b{c}, awsEndpoint: s3.us-east-1.amazonaws.com}}\n"
        ]
        docs += [
            f"apiVersion: reconciler/v1\nkind: IngestionJob\nmetadata: {{name: job-{c}-{j}}}\nspec:\n"
            f"  type: batch\n  target: {{type: table, tableName: {table}}}\n  createTableIfNotExists: true\n"
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
        jobs = len(emulator.store.jobs)
    emulator.close()
    if jobs != JOBS:
        raise SystemExit(f"apply left {jobs} jobs, not {JOBS}")
    return {"wall_s": round(wall, 2), "requests": requests, "peak_in_flight": peak}


def spread(values: list[float]) -> str:
    """`median (min-max)`."""
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def run() -> dict[str, object]:
    """Measure both layouts at --parallelism 1 and 16, interleaved; print and return the figures."""
    runs: dict[tuple[str, int], list[dict[str, float | int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp, "cache")
        directories = {}
        for layout, tables in LAYOUTS.items():
            directories[layout] = Path(tmp, layout.replace(" ", "-"))
            directories[layout].mkdir()
            write_manifests(directories[layout], tables)
        for repeat in range(REPEATS):
            order = list(LAYOUTS) if repeat % 2 == 0 else list(reversed(LAYOUTS))
            for parallelism in (16, 1):
                for layout in order:
                    figures = apply_once(parallelism, directories[layout], cache)
                    runs.setdefault((layout, parallelism), []).append(figures)
    walls = {key: [float(r["wall_s"]) for r in values] for key, values in runs.items()}
    median = {key: statistics.median(values) for key, values in walls.items()}
    serial, parallel = median[("ten tables", 1)], median[("ten tables", 16)]
    speedup = serial / parallel
    per_job = {
        key: statistics.median(int(r["requests"]) for r in values) / JOBS
        for key, values in runs.items()
    }
    ratio = {p: median[("one table", p)] / median[("ten tables", p)] for p in (1, 16)}
    load = os.getloadavg()
    print(
        f"reconciler apply (whole process) of {JOBS} jobs + {CONNECTIONS} connections at "
        f"{LATENCY * 1000:.0f} ms latency, median (min-max) of {REPEATS} interleaved runs, "
        f"load average {load[0]:.1f}:"
    )
    for (layout, parallelism), values in sorted(runs.items()):
        peak = max(int(r["peak_in_flight"]) for r in values)
        print(
            f"  {layout:10} --parallelism {parallelism:<2}: {spread(walls[(layout, parallelism)])}, "
            f"{per_job[(layout, parallelism)]:.3f} requests per job, {peak} at once"
        )
    for parallelism in (1, 16):
        print(
            f"  one table / ten tables at --parallelism {parallelism}: {ratio[parallelism]:.2f}x "
            "(goal <= 1.2x)"
        )
    print(
        f"  requests per job at --parallelism 1: ten tables {per_job[('ten tables', 1)]:.3f}, "
        f"one table {per_job[('one table', 1)]:.3f} (goal <= 1.1)"
    )
    print(f"  speed-up --parallelism 16 over 1 (ten tables): {speedup:.1f}x (goal >= 8x)")
    for parallelism in (1, 16):  # the table at the end of make bench
        harness.record(
            harness.Row(
                f"apply {JOBS:,} jobs at {LATENCY * 1000:.0f} ms, --parallelism {parallelism}",
                "into one table",
                "spread over ten tables",
                "job cache cold for every run",
                walls[("one table", parallelism)],
                walls[("ten tables", parallelism)],
                goal_ratio=1.2,
            )
        )
    harness.absolute(
        "requests per job, apply at --parallelism 1",
        f"one table {per_job[('one table', 1)]:.3f}, ten tables {per_job[('ten tables', 1)]:.3f}",
        caches="job cache cold",
        goal="<= 1.1",
        met=max(per_job[(layout, 1)] for layout in LAYOUTS) <= 1.1,
    )
    harness.absolute(
        "apply speed-up, --parallelism 16 over 1 (ten tables)",
        f"{speedup:.1f}x",
        caches="job cache cold",
        goal=">= 8x",
        met=speedup >= 8,
    )
    return {
        "runs": {f"{layout}, --parallelism {p}": v for (layout, p), v in runs.items()},
        "one_over_ten_tables": {f"--parallelism {p}": round(r, 2) for p, r in ratio.items()},
        "requests_per_job_p1": {layout: round(per_job[(layout, 1)], 3) for layout in LAYOUTS},
        "speedup": round(speedup, 1),
        "load_average": [round(x, 1) for x in load],
    }
