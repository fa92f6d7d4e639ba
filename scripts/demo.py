"""`make demo`: write sample objects, start a local emulator on them, run the main flow.

Sample data (a few hundred Koalas sessions in the S3 guide's shape, plus the objects the
manifests/weblogs jobs read) goes into a bucket directory served with `--s3-dir`; then
validate -> plan (listing the objects each job reads, from the same directory) -> apply --wait -> a SQL query of the rolled-up Koalas rows -> plan (no changes).
Then streaming (examples/streaming): a push-streaming connection and job are applied, events are
pushed and counted with SQL, a mapping change is applied (the new job continues from the
checkpoint: nothing lost, nothing twice), and the job is suspended and resumed (events pushed
meanwhile are read after the resume); each change is shown as a plan first.
Every number shown comes from the data: each query's answer is checked against what was sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from reconciler.emulator.samples import audit_events, koalas_rows, web_request_lines, write_nd_json

ROOT = Path(__file__).resolve().parent.parent
# Demo-only AWS access keys for the guide's demo-conn: the emulator accepts any value.
DEMO_SECRETS = {
    "DEMO_AWS_ACCESS_KEY_ID": "AKIADEMODEMODEMO0000",
    "DEMO_AWS_SECRET_ACCESS_KEY": "demo-secret-never-printed-0000000000000",
}


def step(title: str, *args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> int:
    """Run one reconciler command, showing it as a user would type it."""
    print(f"\n\033[1m$ reconciler {' '.join(args)}\033[0m  # {title}", flush=True)
    code = subprocess.call([sys.executable, "-m", "reconciler", *args], env=env, cwd=ROOT)
    if code not in ok:
        raise SystemExit(f"demo: `reconciler {' '.join(args)}` exited {code}")
    return code


def security_team_creates_their_connection(env: dict[str, str]) -> None:
    """manifests/weblogs declares security-audit as managed elsewhere: someone else creates it."""
    base = f"{env['POLARIS_URL']}/v1/projects/{env['POLARIS_PROJECT_ID']}"
    body = {
        "type": "s3",
        "name": "security-audit",
        "bucket": "acme-security-audit",
        "awsEndpoint": "s3.eu-west-1.amazonaws.com",
    }
    response = httpx.post(f"{base}/connections", json=body, auth=(env["POLARIS_API_KEY"], ""))
    print(f"(the security team created Connection/security-audit: HTTP {response.status_code})")


def write_sample_data(root: Path) -> list[dict[str, Any]]:
    """The objects every job in manifests/ reads; returns the Koalas rows."""
    koalas = list(koalas_rows(400))
    write_nd_json(root / "demo-bucket" / "polaris-ingest" / "demo-file.json.gz", koalas)
    for day in ("01", "02", "03"):
        lines = web_request_lines(f"2026-11-{day}", 150)
        path = root / "acme-weblogs" / "logs" / "edge" / "2026" / "11" / day / "part-0000.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events = list(audit_events(120))
    for month in ("10", "11", "12"):
        write_nd_json(
            root / "acme-security-audit" / "exports" / "2026" / "q4" / month / "events.json",
            [e for e in events if e["occurredAt"][5:7] == month],
        )
    print(
        f"(wrote {len(koalas)} Koalas sessions, 450 edge requests and 120 audit events under {root})"
    )
    return koalas


def sql(env: dict[str, str], query: str) -> list[dict[str, Any]]:
    """One Query API call, shown as a user would send it."""
    print(f"\n\033[1m$ POST /query/sql\033[0m  # {query}", flush=True)
    response = httpx.post(
        f"{env['POLARIS_URL']}/v1/projects/{env['POLARIS_PROJECT_ID']}/query/sql",
        json={"query": query, "resultFormat": "object"},
        auth=(env["POLARIS_API_KEY"], ""),
    )
    if response.status_code != 200:
        raise SystemExit(f"demo: the query failed: {response.text}")
    rows: list[dict[str, Any]] = response.json()
    return rows


def query_koalas(env: dict[str, str], koalas: list[dict[str, Any]]) -> None:
    """Ask the Query API for the rolled-up rows and check them against the sample data."""
    query = (
        'SELECT "city", SUM("__count") AS "sessions", MAX("max_session_length") AS "longest" '
        'FROM "Koalas" GROUP BY "city" ORDER BY "city"'
    )
    rows = sql(env, query)
    print(f"{'city':<12}{'sessions':>10}{'longest':>10}")
    for row in rows:
        print(f"{row['city']:<12}{row['sessions']:>10}{row['longest']:>10}")
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in koalas:
        expected[event["city"]][0] += 1
        expected[event["city"]][1] = max(expected[event["city"]][1], event["session_length"])
    wanted = [
        {"city": city, "sessions": n, "longest": longest}
        for city, (n, longest) in sorted(expected.items())
    ]
    if rows != wanted:
        raise SystemExit("demo: the Koalas table does not hold what the sample data says")
    print(f"(the same as counting the {len(koalas)} sample rows by city directly)")


class Clicks:
    """The streaming half: events pushed to the `clicks` connection, counted in table Clicks."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.env, self.sent = env, 0
        self.manifests = root / "streaming"
        shutil.copytree(ROOT / "examples" / "streaming", self.manifests)
        self.job = self.manifests / "clicks.yaml"

    def push(self, count: int) -> None:
        """POST `count` events, numbered on from the last ones, as newline-delimited JSON."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        pages = ("/", "/pricing", "/docs")
        body = "".join(
            f'{{"ts": "{now}", "page": "{pages[n % 3]}", "ms": {n}}}\n'
            for n in range(self.sent, self.sent + count)
        )
        url = (
            f"{self.env['POLARIS_URL']}/v1/projects/{self.env['POLARIS_PROJECT_ID']}/events/clicks"
        )
        print(f"\n\033[1m$ POST /events/clicks\033[0m  # {count} events", flush=True)
        response = httpx.post(url, content=body, auth=(self.env["POLARIS_API_KEY"], ""))
        if response.status_code >= 300:
            raise SystemExit(f"demo: pushing events failed: {response.text}")
        self.sent += count

    def running(self) -> None:
        """Wait until table Clicks' streaming job runs, as a user watching the UI would."""
        base = f"{self.env['POLARIS_URL']}/v1/projects/{self.env['POLARIS_PROJECT_ID']}"
        for _ in range(120):
            answer = httpx.get(
                f"{base}/jobs", params={"type": "streaming"}, auth=(self.env["POLARIS_API_KEY"], "")
            ).json()
            statuses = [
                j["executionStatus"]
                for j in answer["values"]
                if j["target"]["tableName"] == "Clicks"
            ]
            if "running" in statuses:
                print("(table Clicks' streaming job is running)")
                return
            time.sleep(0.25)
        raise SystemExit("demo: table Clicks' streaming job did not start")

    def count(self, expected: int) -> None:
        """The table holds each event sent once (`expected` of them): checked, not assumed."""
        rows = sql(
            self.env, 'SELECT COUNT(*) AS "rows", COUNT(DISTINCT "ms") AS "distinct" FROM "Clicks"'
        )
        print(f"rows: {rows[0]['rows']}, distinct events: {rows[0]['distinct']}")
        if rows != [{"rows": expected, "distinct": expected}]:
            raise SystemExit(f"demo: table Clicks should hold {expected} distinct events")

    def edit(self, old: str, new: str) -> None:
        """Change the job's manifest, as a pull request would."""
        text = self.job.read_text(encoding="utf-8")
        self.job.write_text(text.replace(old, new, 1), encoding="utf-8")
        print(f"\n(edited {self.job.name}: {old.strip()!r} -> {new.strip()!r})")

    def run(self) -> None:
        where = str(self.manifests)
        env = self.env
        step("streaming: a push connection and its job", "plan", where, env=env)
        step("make it so", "apply", where, "--auto-approve", env=env)
        self.running()
        self.push(60)
        self.count(60)
        self.edit(
            "      expression: '\"ms\"'\n",
            '      expression: \'"ms"\'\n    - columnName: section\n      expression: LOWER("page")\n',
        )
        step("a mapping change: a new job continues from the checkpoint", "plan", where, env=env)
        step("replace the job", "apply", where, "--auto-approve", env=env)
        self.running()
        self.push(40)
        self.count(100)
        self.edit("spec:\n  target:", "spec:\n  status: suspended\n  target:")
        step("suspend the job", "plan", where, env=env)
        step("suspend it", "apply", where, "--auto-approve", env=env)
        self.push(25)  # kept while the job is suspended
        self.count(100)
        self.edit("  status: suspended\n", "  status: running\n")
        step("resume it: what was pushed meanwhile is read", "plan", where, env=env)
        step("resume it", "apply", where, "--auto-approve", env=env)
        self.running()
        self.count(125)
        step("nothing left to do", "plan", where, "--detailed-exitcode", env=env)


def main() -> None:
    """Run the demo from start to finish; the emulator stops with it."""
    env = {**os.environ, **DEMO_SECRETS}
    buckets = tempfile.TemporaryDirectory(prefix="polaris-demo-s3-")
    koalas = write_sample_data(Path(buckets.name))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--job-seconds", "2",
         "--s3-dir", buckets.name],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        banner = []
        for line in emulator.stdout:
            banner.append(line)
            if line.startswith("export POLARIS_API_KEY="):
                break
        print("".join(banner), end="", flush=True)
        for line in banner:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value.strip("'\"")
        security_team_creates_their_connection(env)
        step("offline checks", "validate", "manifests/", env=env)
        step(
            "what would change, and the objects each job will read",
            "plan", "manifests/", "--s3-dir", buckets.name, "--preflight", env=env,
        )  # fmt: skip
        step("make it so", "apply", "manifests/", "--auto-approve", "--wait", env=env)
        query_koalas(env, koalas)
        step(
            "nothing left to do",
            "plan",
            "manifests/",
            "--detailed-exitcode",
            env=env,
        )
        print("\nThe demo converged: a second plan shows no changes.")
        Clicks(env, Path(buckets.name)).run()
        print(
            "\nStreaming: every event pushed is in table Clicks once, across a replacement and a suspend."
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
        buckets.cleanup()


if __name__ == "__main__":
    main()
