"""Plan at scale: 10,000 live jobs, 1,000 manifest jobs and 1,000 connections.

Reports, in one run, HTTP requests and wall time of a cold plan (empty job cache), a warm plan
(cache filled), a bare httpx script that issues only the minimum requests, and a naive approach
that GETs every resource one by one; and the peak memory of the cold plan. Each contender runs as
its own process against the same emulator on loopback, so start-up costs are alike.

Then, with 20 ms of latency per request, interleaved pairs (benchmarks/harness.py) of a cold plan
and the bare script at the same concurrency (`--parallelism N` against N threads over N
connections) for N = 8 and 32. The bare script follows the tool's own request schedule (the
lists beside the first page, pages read ahead, details as pages arrive): the best a competent
user would write, not a strawman that pages one page at a time.

Last, the scaling rows: 1,000, 5,000 and 10,000 manifest jobs against the same 10,000 live jobs,
all in declared tables, each a whole `reconciler plan` process, with its peak memory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

CONNECTIONS, MANIFEST_JOBS, LIVE_JOBS, TABLES = 1_000, 1_000, 10_000, 100
LATENCY = 0.020  # seconds, as in the apply benchmark
PARALLELISMS = (8, 32)  # the default --parallelism, and one above the client's old fixed pool
LATENCY_GOALS = (1.05, 1.15)  # the most a cold plan may take, as a multiple of the bare script


def job(i: int) -> dict[str, Any]:
    """The i-th live job body; the first MANIFEST_JOBS are also declared in the manifests.

    The others write into tables no manifest job targets, so they are not candidates: a plan
    should list them and never read them one by one.
    """
    table = f"table_{i % TABLES}" if i < MANIFEST_JOBS else f"other_{i % TABLES}"
    return {
        "type": "batch",
        "target": {"type": "table", "tableName": table},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3",
            "connectionName": f"conn-{i % CONNECTIONS}",
            "uris": [f"s3://bucket/day-{i}.json"],
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [
                {"name": "ts", "dataType": "string"},
                {"name": "n", "dataType": "long"},
            ],
        },
        "mappings": [
            {"columnName": "__time", "expression": 'TIME_PARSE("ts")'},
            {"columnName": "n", "expression": '"n"'},
        ],
    }


def write_documents(
    directory: Path, buckets: list[str], jobs: list[dict[str, Any]], per_file: int
) -> None:
    """Connection `conn-i` on `buckets[i]`, then job `job-i` with spec `jobs[i]`, as YAML files."""
    import yaml

    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "reconciler/v1",
            "kind": "Connection",
            "metadata": {"name": f"conn-{i}"},
            "spec": {"type": "s3", "bucket": bucket, "awsEndpoint": "s3.us-east-1.amazonaws.com"},
        }
        for i, bucket in enumerate(buckets)
    ]
    docs += [
        {
            "apiVersion": "reconciler/v1",
            "kind": "IngestionJob",
            "metadata": {"name": f"job-{i}"},
            "spec": spec,
        }
        for i, spec in enumerate(jobs)
    ]
    for start in range(0, len(docs), per_file):
        (directory / f"m{start // per_file:03d}.yaml").write_text(
            yaml.safe_dump_all(docs[start : start + per_file], sort_keys=False), encoding="utf-8"
        )


def write_manifests(directory: Path) -> None:
    """1,000 connections and 1,000 jobs, each job in sync with one live job."""
    buckets = [f"bucket-{i}" for i in range(CONNECTIONS)]
    write_documents(directory, buckets, [job(i) for i in range(MANIFEST_JOBS)], 200)


def seed(emulator: Emulator, client: Any) -> None:
    """Create the live state through the API; jobs complete at once (instant timing)."""
    for i in range(CONNECTIONS):
        client.post(
            "/connections",
            json={
                "name": f"conn-{i}",
                "type": "s3",
                "bucket": f"bucket-{i}",
                "awsEndpoint": "s3.us-east-1.amazonaws.com",
            },
        ).raise_for_status()
    # The jobs the manifests declare are created first, so in the list's newest-first order
    # (what `reconciler plan` asks for) they all come on the last of the ten pages: no detail
    # can be read before every page has been, the worst case for a plan that overlaps them.
    for i in range(LIVE_JOBS):
        client.post("/jobs", json=job(i)).raise_for_status()
    for summary_page in range(0, LIVE_JOBS, 1000):  # one read each, so every job is completed
        client.get("/jobs", params={"paginationLimit": 1000, "paginationOffset": summary_page})


BARE_SCRIPT = textwrap.dedent(
    """
    # The least a competent user would write, on the tool's own request schedule: the
    # connection and table lists and the streaming job list (a plan lists the streaming jobs
    # no manifest declares) beside the first page of batch jobs, later pages read ahead
    # (1, 2, 4, 4, ... at once), and each candidate's detail asked for as soon as its page
    # arrives, all in N threads over N connections.
    import json, os, sys, httpx
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    pairs = {tuple(pair) for pair in json.load(open(sys.argv[1]))}
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    base = os.environ["POLARIS_URL"] + "/v1/projects/" + os.environ["POLARIS_PROJECT_ID"]
    limits = httpx.Limits(max_connections=concurrency)
    order = {"sortColumn": "created_date_time", "sortOrder": "DESC", "paginationLimit": 1000}
    batch, streaming = {**order, "type": "batch"}, {**order, "type": "streaming"}
    with httpx.Client(base_url=base, auth=(os.environ["POLARIS_API_KEY"], ""), limits=limits) as c, \\
            ThreadPoolExecutor(concurrency) as pool:
        get = lambda path, params=None: c.get(path, params=params).json()
        page_at = lambda offset: get("/jobs", {**batch, "paginationOffset": offset})
        lists = [pool.submit(get, "/connections"), pool.submit(get, "/tables")]
        pages, details, offset, width = deque([(0, pool.submit(page_at, 0))]), [], 0, 0
        lists.append(pool.submit(get, "/jobs", {**streaming, "paginationOffset": 0}))
        while pages:
            at, future = pages.popleft()
            page = future.result()
            if page["moreResultsAvailable"] and not pages:
                width = min(max(1, width * 2), 4)
                pages.extend((o, pool.submit(page_at, o))
                             for o in range(at + 1000, at + 1000 * (width + 1), 1000))
            details += [
                pool.submit(get, f"/jobs/{j['id']}") for j in page["values"]
                if (j["target"]["tableName"], j["source"]["connectionName"]) in pairs
            ]
            if not page["moreResultsAvailable"]:
                for _, late in pages:
                    late.cancel()
                break
        [f.result() for f in lists + details]
    """
)

NAIVE_SCRIPT = textwrap.dedent(
    """
    import os, httpx
    base = os.environ["POLARIS_URL"] + "/v1/projects/" + os.environ["POLARIS_PROJECT_ID"]
    with httpx.Client(base_url=base, auth=(os.environ["POLARIS_API_KEY"], "")) as c:
        for conn in c.get("/connections").json()["values"]:
            c.get(f"/connections/{conn['name']}").json()
        for table in c.get("/tables").json()["values"]:
            c.get(f"/tables/{table['name']}").json()
        offset = 0
        while True:
            page = c.get("/jobs", params={"paginationLimit": 1000, "paginationOffset": offset}).json()
            for j in page["values"]:
                c.get(f"/jobs/{j['id']}").json()
            if not page["moreResultsAvailable"]: break
            offset += 1000
    """
)


# Runs a command and reports its own peak memory. ru_maxrss of children would also count the
# pages a forked child shares with this (large) parent before exec; VmHWM is reset by exec.
PEAK_WRAPPER = textwrap.dedent(
    """
    import atexit, runpy, sys
    def report():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    print("PEAK_KB", line.split()[1], file=sys.stderr)
    atexit.register(report)
    sys.argv = sys.argv[1:]
    if sys.argv[0] == "-m":
        sys.argv = sys.argv[1:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def timed(command: list[str], env: dict[str, str], emulator: Emulator) -> dict[str, Any]:
    """Run one contender; return its requests, wall time and peak memory."""
    emulator.reset_requests()
    wrapped = [command[0], "-c", PEAK_WRAPPER, *command[1:]]
    began = time.perf_counter()
    done = subprocess.run(wrapped, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 2):
        raise SystemExit(f"{command[:4]} failed:\n{done.stdout}\n{done.stderr}")
    peaks = [
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB")
    ]
    return {
        "requests": len(emulator.requests),
        "wall_s": round(wall, 2),
        "peak_mb": round(peaks[-1] / 1024, 1) if peaks else None,
    }


SCALE_SIZES, SCALE_CONNECTIONS = (1_000, 5_000, 10_000), 100
PEAK_GOALS_MB = {5_000: 120, 10_000: 150}  # issue 19: one compared form per spec


def scale_job(i: int) -> dict[str, Any]:
    """The i-th live job of the scaling rows: every one goes into a declared table, so each plan
    reads and indexes all 10,000 live jobs, whichever number of them its manifests declare."""
    body = job(i)
    table = f"table_{i % TABLES}"
    source = {**body["source"], "connectionName": f"conn-{i % SCALE_CONNECTIONS}"}
    return {**body, "target": {"type": "table", "tableName": table}, "source": source}


def write_scale_manifests(directory: Path, jobs: int) -> None:
    """SCALE_CONNECTIONS connections and `jobs` jobs, each in sync with one live job."""
    directory.mkdir()
    buckets = ["bucket"] * SCALE_CONNECTIONS
    write_documents(directory, buckets, [scale_job(i) for i in range(jobs)], 500)


def scaling() -> dict[str, Any]:
    """1,000 vs 5,000 manifest jobs against 10,000 live jobs: time and peak memory per process."""
    import httpx

    emulator = Emulator()
    with emulator.serve() as server, tempfile.TemporaryDirectory() as tmp:
        base = f"{server.url}/v1/projects/{DEMO_PROJECT_ID}"
        with httpx.Client(base_url=base, auth=(DEMO_API_KEY, "")) as client:
            for i in range(SCALE_CONNECTIONS):
                client.post(
                    "/connections",
                    json={"name": f"conn-{i}", "type": "s3", "bucket": "bucket",
                          "awsEndpoint": "s3.us-east-1.amazonaws.com"},
                ).raise_for_status()  # fmt: skip
            for i in range(LIVE_JOBS):
                client.post("/jobs", json=scale_job(i)).raise_for_status()
        env = {
            **os.environ,
            "POLARIS_URL": server.url,
            "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
            "POLARIS_API_KEY": DEMO_API_KEY,
            "XDG_CACHE_HOME": str(Path(tmp, "cache")),
        }
        figures: dict[str, Any] = {}
        for jobs in SCALE_SIZES:
            manifests = Path(tmp, f"manifests-{jobs}")
            write_scale_manifests(manifests, jobs)
            plan = [sys.executable, "-m", "reconciler", "plan", str(manifests), "--format", "json"]
            shutil.rmtree(Path(tmp, "cache"), ignore_errors=True)
            figures[f"cold_{jobs}"] = timed(plan, env, emulator)
            figures[f"warm_{jobs}"] = timed(plan, env, emulator)
    small, large = figures[f"warm_{SCALE_SIZES[0]}"], figures[f"warm_{SCALE_SIZES[1]}"]
    growth = large["wall_s"] / small["wall_s"]
    harness.absolute(
        f"warm plan of {SCALE_SIZES[1]:,} vs {SCALE_SIZES[0]:,} manifest jobs, 10,000 live",
        f"{large['wall_s']} s vs {small['wall_s']} s, {growth:.2f}x",
        caches="job cache warm for both",
        goal="<= 6x (linear)",
        met=growth <= 6,
    )
    for jobs, goal in PEAK_GOALS_MB.items():
        peak = figures[f"cold_{jobs}"]["peak_mb"]
        harness.absolute(
            f"peak memory, cold plan of {jobs:,} manifest jobs over 10,000 live",
            f"{peak} MB ({figures[f'cold_{jobs}']['wall_s']} s)",
            caches="job cache cold",
            goal=f"<= {goal} MB",
            met=peak is not None and peak <= goal,
        )
    return figures


def with_bytecode(env: dict[str, str], prefix: Path, commands: list[list[str]]) -> dict[str, str]:
    """`env` with bytecode for every module both sides import, as a wheel install has it.

    pip compiles a wheel's modules when it installs them, and httpx's bytecode is installed in
    the virtual environment; but in an editable checkout with PYTHONDONTWRITEBYTECODE=1 the
    tool's own modules have none, so each plan compiled them again (about 0.07 s) while the
    script did not. One writing run of each contender fills a private prefix that both read.
    The same run keeps the code the tool's dataclasses compile (`reconciler.dataclass_code`),
    which the tool writes where Python writes bytecode and reads back as Python reads it.
    """
    filling = {**env, "PYTHONPYCACHEPREFIX": str(prefix)}
    filling.pop("PYTHONDONTWRITEBYTECODE", None)
    for command in commands:  # they may fail (the script needs its arguments): imports happen
        subprocess.run(command, env=filling, capture_output=True)
    return {**env, "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}


def run() -> dict[str, object]:
    """Seed, then measure every contender; print and return the figures."""
    import httpx

    emulator = Emulator()
    with emulator.serve() as server, tempfile.TemporaryDirectory() as tmp:
        base = f"{server.url}/v1/projects/{DEMO_PROJECT_ID}"
        with httpx.Client(base_url=base, auth=(DEMO_API_KEY, "")) as client:
            began = time.perf_counter()
            seed(emulator, client)
            print(
                f"seeded {LIVE_JOBS} jobs, {CONNECTIONS} connections in {time.perf_counter() - began:.1f} s"
            )
        manifests = Path(tmp, "manifests")
        manifests.mkdir()
        write_manifests(manifests)
        pairs = Path(tmp, "pairs.json")
        pairs.write_text(
            json.dumps(
                sorted(
                    {
                        (job(i)["target"]["tableName"], f"conn-{i % CONNECTIONS}")
                        for i in range(MANIFEST_JOBS)
                    }
                )
            )
        )
        env = {
            **os.environ,
            "POLARIS_URL": server.url,
            "POLARIS_PROJECT_ID": DEMO_PROJECT_ID,
            "POLARIS_API_KEY": DEMO_API_KEY,
            "XDG_CACHE_HOME": str(Path(tmp, "cache")),
        }
        plan = [sys.executable, "-m", "reconciler", "plan", str(manifests), "--format", "json"]
        bare_script, naive_script = Path(tmp, "bare.py"), Path(tmp, "naive.py")
        bare_script.write_text(BARE_SCRIPT)
        naive_script.write_text(NAIVE_SCRIPT)
        env = with_bytecode(env, Path(tmp, "pycache"), [plan, [sys.executable, str(bare_script)]])

        def cold_cache() -> None:
            # The job cache only. The compiled schemas stay warm, as in validate_bench's start-up
            # rows, since the script compiles no schema (a cold one would time work only the
            # tool does, about 0.06 s); the dataclass code stays with the bytecode. Each
            # project's jobs sit in a directory of their own.
            tool_cache = Path(tmp, "cache", "polaris-reconciler")
            for scope in tool_cache.glob("*"):
                if scope.name not in ("schemas", "dataclasses"):
                    shutil.rmtree(scope, ignore_errors=True)

        cold_cache()  # the filling run kept jobs
        cold = timed(plan, env, emulator)
        warm = timed(plan, env, emulator)
        bare = timed([sys.executable, str(bare_script), str(pairs)], env, emulator)
        naive = timed([sys.executable, str(naive_script)], env, emulator)
        # Loopback has no latency, so local work dominates; real Polaris answers in tens of ms.
        # There the plan and the bare script run with the same concurrency (--parallelism N and
        # N threads over N connections) and the same schedule; one run of each reports its
        # requests and the peak in flight, then interleaved pairs give the ratio. The plan's
        # job cache is emptied before each of its runs: the bare script keeps none.
        emulator.faults.latency_seconds = LATENCY
        at_latency: dict[int, dict[str, Any]] = {}

        for parallelism, goal in zip(PARALLELISMS, LATENCY_GOALS, strict=True):
            cold_cache()
            cold_latency = timed([*plan, "--parallelism", str(parallelism)], env, emulator)
            cold_latency["peak_in_flight"] = emulator.peak_in_flight
            bare_command = [sys.executable, str(bare_script), str(pairs), str(parallelism)]
            bare_latency = timed(bare_command, env, emulator)
            bare_latency["peak_in_flight"] = emulator.peak_in_flight
            row = harness.compare(
                f"cold plan at {LATENCY * 1000:.0f} ms, concurrency {parallelism}",
                harness.Command(
                    [*plan, "--parallelism", str(parallelism)], env, (0, 2), prepare=cold_cache
                ),
                harness.Command(bare_command, env),
                tool_label=f"reconciler plan ({cold_latency['requests']} requests, "
                f"{cold_latency['peak_in_flight']} in flight)",
                baseline_label=f"bare httpx, same schedule ({bare_latency['requests']} requests, "
                f"{bare_latency['peak_in_flight']} in flight)",
                caches="job cache cold on both sides (the script keeps none), compiled schemas warm "
                "(the script compiles none); bytecode for every module on both sides (as a wheel), "
                "and the tool's dataclass code with it",
                goal_ratio=goal,
            )
            at_latency[parallelism] = {
                "cold_plan": cold_latency, "bare": bare_latency, "ratios": row.ratios,
            }  # fmt: skip
    figures = {
        "cold": cold, "warm": warm, "bare": bare, "naive": naive, "at_latency": at_latency,
    }  # fmt: skip
    print(
        f"cold plan: {cold['requests']} requests, {cold['wall_s']} s, peak {cold['peak_mb']} MB\n"
        f"warm plan: {warm['requests']} requests, {warm['wall_s']} s\n"
        f"bare httpx minimum: {bare['requests']} requests, {bare['wall_s']} s\n"
        f"naive one-by-one: {naive['requests']} requests, {naive['wall_s']} s\n"
        f"cold/minimum requests {cold['requests'] / bare['requests']:.3f}x (goal <= 1.05x); "
        f"cold/bare wall {cold['wall_s'] / bare['wall_s']:.2f}x (goal <= 1.3x); "
        f"warm requests {warm['requests']} (goal <= 15); peak {cold['peak_mb']} MB (goal <= 150)"
    )
    figures["scaling"] = scaling()
    return figures
