"""Validation as a user waits for it: whole processes, imports and schema compilation included.

Three rows, each interleaved pairs of whole processes (benchmarks/harness.py):
- `reconciler validate` over 10,000 generated resources beside a minimal script that parses the
  same files with PyYAML's C loader and checks each document against the same JSON Schemas
  compiled with fastjsonschema (no locations, no cross-checks, no messages: the floor). Both sides
  start cold: the package has no bytecode (a fresh checkout) and the tool's compiled-schema cache
  is emptied before each of its runs, as the script compiles its schemas every time;
- `reconciler validate manifests/` (start-up dominated) beside `python -c "import httpx, yaml,
  jsonschema"`, once with no bytecode for any module on either side and once with bytecode for
  every module on both sides, as a wheel install has it.

PYTHONDONTWRITEBYTECODE=1 (set in this environment, and set here explicitly) stops Python from
writing `.pyc` files; each row says which bytecode both sides could read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = """
import json, sys, pathlib
import yaml, fastjsonschema
schemas = pathlib.Path(sys.argv[2])
checks = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
        kind = doc["kind"]
        if kind not in checks:
            schema = json.loads((schemas / f"{kind.lower()}.schema.json").read_text())
            local = lambda uri: json.loads((schemas / uri.rsplit("/", 1)[-1]).read_text())
            checks[kind] = fastjsonschema.compile(schema, handlers={"": local})
        checks[kind](doc)
"""

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


def fresh_checkout() -> None:
    """Remove the package's bytecode, as a fresh clone has none (installed libraries keep theirs)."""
    for cache in (ROOT / "reconciler").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def run() -> dict[str, object]:
    """Three interleaved rows: validate at scale, and start-up without and with bytecode."""
    reconciler = shutil.which("reconciler", path=str(Path(sys.executable).parent)) or "reconciler"
    docs = documents()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp, "manifests")
        manifests.mkdir()
        for start in range(0, len(docs), PER_FILE):
            (manifests / f"m{start // PER_FILE:04d}.yaml").write_text(
                "---\n".join(docs[start : start + PER_FILE])
            )
        cache = Path(tmp, "cache")
        # Neither side may write bytecode (this environment's PYTHONDONTWRITEBYTECODE=1, kept
        # explicit here), and the tool's compiled-schema cache is emptied before each of its
        # runs: the minimal script compiles its schemas every time, so both sides start cold.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache)}

        def cold() -> None:
            fresh_checkout()
            shutil.rmtree(cache, ignore_errors=True)

        scale = harness.compare(
            f"validate {len(docs):,} resources",
            harness.Command([reconciler, "validate", str(manifests)], env, prepare=cold),
            harness.Command(
                [sys.executable, "-c", MINIMAL, str(manifests), str(ROOT / "schemas")], env
            ),
            tool_label="reconciler validate",
            baseline_label="pyyaml C loader + fastjsonschema script",
            caches="fresh checkout (no bytecode of the package), compiled schemas cold on both sides",
            goal_ratio=0.6,
            goal_seconds=1.2,
        )
        startup = [reconciler, "validate", str(ROOT / "manifests")]
        imports = [sys.executable, "-c", "import httpx, yaml, jsonschema"]
        # The start-up rows keep the tool's compiled-schema cache warm: the baseline compiles no
        # schema at all, so a cold cache would time work only one side does. One run fills it.
        subprocess.run(startup, env=env, check=True, capture_output=True)
        # Start-up with no bytecode at all, on either side: an empty PYTHONPYCACHEPREFIX makes
        # Python look for .pyc files only there, so every module, libraries included, compiles.
        no_bytecode = {**env, "PYTHONPYCACHEPREFIX": str(Path(tmp, "empty-pycache"))}
        bare = harness.compare(
            "start-up without bytecode",
            harness.Command(startup, no_bytecode, prepare=fresh_checkout),
            harness.Command(imports, no_bytecode),
            tool_label="reconciler validate manifests/",
            baseline_label="python -c 'import httpx, yaml, jsonschema'",
            caches="no bytecode on either side, nor the tool's dataclass code; compiled schemas "
            "warm",
            goal_ratio=1.0,
        )
        # Start-up with bytecode for every module, as a wheel install has it (pip compiles at
        # install): one writing run of each fills a private prefix that both sides then read.
        prefix = Path(tmp, "pycache")
        filling = {**env, "PYTHONPYCACHEPREFIX": str(prefix)}
        filling.pop("PYTHONDONTWRITEBYTECODE")
        for command in (startup, imports):
            subprocess.run(command, env=filling, check=True, capture_output=True)
        compiled = {**env, "PYTHONPYCACHEPREFIX": str(prefix)}
        wheel = harness.compare(
            "start-up with bytecode",
            harness.Command(startup, compiled),
            harness.Command(imports, compiled),
            tool_label="reconciler validate manifests/",
            baseline_label="python -c 'import httpx, yaml, jsonschema'",
            caches="bytecode for every module on both sides (as a wheel), and the tool's "
            "dataclass code with it; compiled schemas warm",
            goal_ratio=1.0,
        )
    return {
        row.figure: {"ratios": [round(r, 3) for r in row.ratios], "tool_s": row.tool_seconds}
        for row in (scale, bare, wheel)
    }
