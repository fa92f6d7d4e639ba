"""Validation as a user waits for it: whole processes, imports and schema compilation included.

Two rows, each a pair of processes run alternately on the same files, best of REPEATS:
- `reconciler validate` over 10,000 generated resources beside a minimal script that parses the
  same files with PyYAML's C loader and checks each document against the same JSON Schemas
  compiled with fastjsonschema (no locations, no cross-checks, no messages: the floor);
- `reconciler validate manifests/` (start-up dominated) beside `python -c "import httpx, yaml,
  jsonschema"`.

PYTHONDONTWRITEBYTECODE=1 (set in this environment) stops Python from writing `.pyc` files, so
every process would compile the reconciler's own modules from source, a cost an installed wheel
never pays (pip compiles bytecode at install). Both rows therefore run after `compileall` of the
package into `__pycache__` (which Python reads even when it may not write); the line printed says
so, and the start-up row is also given without that bytecode.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5
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
            checks[kind] = fastjsonschema.compile(schema, handlers={"https": local})
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


def best(command: list[str], env: dict[str, str]) -> float:
    """The fastest of REPEATS runs of a command, in seconds (it must succeed)."""
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return min(times)


def run() -> dict[str, object]:
    """Time the two pairs of processes; print and return the figures."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    reconciler = shutil.which("reconciler", path=str(Path(sys.executable).parent)) or "reconciler"
    startup_cold = best([reconciler, "validate", str(ROOT / "manifests")], env)
    compileall.compile_dir(ROOT / "reconciler", quiet=1)
    docs = documents()
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(docs), PER_FILE):
            Path(tmp, f"m{start // PER_FILE:04d}.yaml").write_text(
                "---\n".join(docs[start : start + PER_FILE])
            )
        ours = best([reconciler, "validate", tmp], env)
        floor = best([sys.executable, "-c", MINIMAL, tmp, str(ROOT / "schemas")], env)
    startup = best([reconciler, "validate", str(ROOT / "manifests")], env)
    imports = best([sys.executable, "-c", "import httpx, yaml, jsonschema"], env)
    figures = {
        "resources": len(docs),
        "validate_10k_s": round(ours, 3),
        "minimal_script_s": round(floor, 3),
        "ratio": round(ours / floor, 2),
        "startup_s": round(startup, 3),
        "startup_without_bytecode_s": round(startup_cold, 3),
        "import_httpx_yaml_jsonschema_s": round(imports, 3),
        "startup_ratio": round(startup / imports, 2),
    }
    print(
        f"validate {len(docs)} resources, whole process: {ours:.2f} s; minimal pyyaml + "
        f"fastjsonschema script: {floor:.2f} s; ratio {ours / floor:.2f}x "
        "(goal: <= 1.5 s and <= 1.2x)"
    )
    print(
        f"validate manifests/ start-up: {startup:.2f} s ({startup_cold:.2f} s without bytecode); "
        f"python -c 'import httpx, yaml, jsonschema': {imports:.2f} s; ratio "
        f"{startup / imports:.2f}x (goal: <= 1.0x; best of {REPEATS}, bytecode compiled once)"
    )
    return figures
