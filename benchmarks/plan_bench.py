"""Plan at scale: 10,000 live jobs, 1,000 manifest jobs and 1,000 connections.

Reports, in one run, HTTP requests and wall time of a cold plan (empty job cache), a warm plan
(cache filled), a bare httpx script that issues only the minimum requests, and a naive approach
that GETs every resource one by one; and the peak memory of the cold plan. Each contender runs as
its own process against the same emulator on loopback, so start-up costs are alike. Then, with
20 ms of latency per request, a cold plan beside the bare script at the same concurrency
(`--parallelism N` against N threads over N connections) for N = 8 and 32, with the most
requests the emulator saw in flight at once.

A second row checks that planning is linear in manifest jobs: 1,000 and then 5,000 manifest jobs
against the same 10,000 live jobs (5,000 of them into the declared tables, so both plans read and
index the same live jobs), each a whole `reconciler plan` process, with its peak memory.
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

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

CONNECTIONS, MANIFEST_JOBS, LIVE_JOBS, TABLES = 1_000, 1_000, 10_000, 100
LATENCY = 0.020  # seconds, as in the apply benchmark
PARALLELISMS = (8, 32)  # the default --parallelism, and one above the client's old fixed pool


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
    import json, os, sys, httpx
    from concurrent.futures import ThreadPoolExecutor
    pairs = {tuple(pair) for pair in json.load(open(sys.argv[1]))}
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    base = os.environ["POLARIS_URL"] + "/v1/projects/" + os.environ["POLARIS_PROJECT_ID"]
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=base, auth=(os.environ["POLARIS_API_KEY"], ""), limits=limits) as c:
        c.get("/connections").json()
        c.get("/tables").json()
        candidates, offset = [], 0
        while True:
            params = {"type": "batch", "paginationLimit": 1000, "paginationOffset": offset}
            page = c.get("/jobs", params=params).json()
            candidates += [
                j["id"] for j in page["values"]
                if (j["target"]["tableName"], j["source"]["connectionName"]) in pairs
            ]
            if not page["moreResultsAvailable"]:
                break
            offset += 1000
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda job_id: c.get(f"/jobs/{job_id}").json(), candidates))
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


SCALE_SMALL, SCALE_LARGE, SCALE_CONNECTIONS = 1_000, 5_000, 100


def scale_job(i: int) -> dict[str, Any]:
    """The i-th live job of the scaling row: the first SCALE_LARGE go into declared tables."""
    body = job(i)
    table = f"table_{i % TABLES}" if i < SCALE_LARGE else f"other_{i % TABLES}"
    source = {**body["source"], "connectionName": f"conn-{i % SCALE_CONNECTIONS}"}
    return {**body, "target": {"type": "table", "tableName": table}, "source": source}


def write_scale_manifests(directory: Path, jobs: int) -> None:
    """SCALE_CONNECTIONS connections and `jobs` jobs, each in sync with one live job."""
    directory.mkdir()
    buckets = ["bucket"] * SCALE_CONNECTIONS
    write_documents(directory, buckets, [scale_job(i) for i in range(jobs)], 500)


def import_seconds(env: dict[str, str]) -> float:
    """Wall time of a process that only imports the CLI (what every command pays first)."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import reconciler.cli"], env=env, check=True)
    return time.perf_counter() - began


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
        for jobs in (SCALE_SMALL, SCALE_LARGE):
            manifests = Path(tmp, f"manifests-{jobs}")
            write_scale_manifests(manifests, jobs)
            plan = [sys.executable, "-m", "reconciler", "plan", str(manifests), "--format", "json"]
            shutil.rmtree(Path(tmp, "cache"), ignore_errors=True)
            figures[f"cold_{jobs}"] = timed(plan, env, emulator)
            figures[f"warm_{jobs}"] = timed(plan, env, emulator)
        # PYTHONDONTWRITEBYTECODE=1 (set in the development environment) keeps Python from
        # caching compiled modules of this editable install, so every process compiles them again.
        no_bytecode = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        with_bytecode = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        with_bytecode["PYTHONPYCACHEPREFIX"] = str(Path(tmp, "pycache"))
        import_seconds(with_bytecode)  # fills the cache
        figures["import_s_without_bytecode_cache"] = round(import_seconds(no_bytecode), 2)
        figures["import_s_with_bytecode_cache"] = round(import_seconds(with_bytecode), 2)
    small, large = figures[f"warm_{SCALE_SMALL}"], figures[f"warm_{SCALE_LARGE}"]
    cold_small, cold_large = figures[f"cold_{SCALE_SMALL}"], figures[f"cold_{SCALE_LARGE}"]
    print(
        f"scaling, 10,000 live jobs: warm plan of {SCALE_SMALL} jobs {small['wall_s']} s, "
        f"{SCALE_LARGE} jobs {large['wall_s']} s ({large['wall_s'] / small['wall_s']:.2f}x, goal <= 6x); "
        f"cold {cold_small['wall_s']} s vs {cold_large['wall_s']} s "
        f"({cold_large['wall_s'] / cold_small['wall_s']:.2f}x); peak {cold_large['peak_mb']} MB "
        f"(goal <= 150)\n"
        f"import reconciler.cli: {figures['import_s_without_bytecode_cache']} s with "
        f"PYTHONDONTWRITEBYTECODE=1, {figures['import_s_with_bytecode_cache']} s with a bytecode cache"
    )
    return figures


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
        cold = timed(plan, env, emulator)
        warm = timed(plan, env, emulator)
        bare_script, naive_script = Path(tmp, "bare.py"), Path(tmp, "naive.py")
        bare_script.write_text(BARE_SCRIPT)
        naive_script.write_text(NAIVE_SCRIPT)
        bare = timed([sys.executable, str(bare_script), str(pairs)], env, emulator)
        naive = timed([sys.executable, str(naive_script)], env, emulator)
        # Loopback has no latency, so local work dominates; real Polaris answers in tens of ms.
        # There the plan and the bare script run with the same concurrency (--parallelism N and
        # N threads over N connections), and the peak of requests in flight shows it is reached.
        emulator.faults.latency_seconds = LATENCY
        at_latency: dict[int, dict[str, Any]] = {}
        for parallelism in PARALLELISMS:
            shutil.rmtree(Path(tmp, "cache"), ignore_errors=True)  # cold again
            cold_latency = timed([*plan, "--parallelism", str(parallelism)], env, emulator)
            cold_latency["peak_in_flight"] = emulator.peak_in_flight
            bare_command = [sys.executable, str(bare_script), str(pairs), str(parallelism)]
            bare_latency = timed(bare_command, env, emulator)
            bare_latency["peak_in_flight"] = emulator.peak_in_flight
            at_latency[parallelism] = {"cold_plan": cold_latency, "bare": bare_latency}
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
    for parallelism, pair in at_latency.items():
        ours, floor = pair["cold_plan"], pair["bare"]
        print(
            f"with {LATENCY * 1000:.0f} ms of latency per request, concurrency {parallelism}: "
            f"cold `reconciler plan --parallelism {parallelism}` {ours['wall_s']} s "
            f"({ours['requests']} requests, {ours['peak_in_flight']} at once); bare httpx script "
            f"{floor['wall_s']} s ({floor['requests']} requests, {floor['peak_in_flight']} at once); "
            f"{ours['wall_s'] / floor['wall_s']:.2f}x (goal <= 1.0x)"
        )
    figures["scaling"] = scaling()
    return figures
