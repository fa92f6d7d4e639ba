"""How far one manifest value travels through the reconciler during an apply.

Issue 18 measured "a job's `source.connectionName` passes through 80 functions in 15 modules with
68 module changes during one apply". This script repeats that measurement so the number can be
compared before and after a change: it applies `manifests/guide` (the connection renamed to a
sentinel) against an in-process emulator under `sys.setprofile`, and records every call of a
`reconciler` function (the emulator, comprehensions, lambdas and generated dataclass methods
excluded) that receives the sentinel, directly or inside a
mapping, sequence or dataclass up to a few levels deep.

    .venv/bin/python scripts/value_trip.py [--verbose]

It prints the number of distinct functions, of modules, and of module changes (consecutive
recorded calls whose modules differ).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SENTINEL = "trip-conn-5e1f7a"
DEPTH = 4


def holds(value: Any, depth: int = DEPTH) -> bool:
    """Whether `value` is the sentinel or holds it within `depth` levels."""
    if isinstance(value, str):
        return value == SENTINEL
    if depth == 0:
        return False
    if isinstance(value, Mapping):
        return any(holds(item, depth - 1) for item in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds(item, depth - 1) for item in list(value)[:50])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(
            holds(getattr(value, f.name, None), depth - 1) for f in dataclasses.fields(value)
        )
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print each function")
    args = parser.parse_args()

    from reconciler.cli import main as cli_main
    from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

    work = Path(tempfile.mkdtemp(prefix="value-trip-"))
    try:
        manifests = work / "manifests"
        shutil.copytree(ROOT / "manifests" / "guide", manifests)
        for path in manifests.glob("*.yaml"):
            path.write_text(path.read_text().replace("demo-conn", SENTINEL))
        os.environ.update(
            POLARIS_PROJECT_ID=DEMO_PROJECT_ID,
            POLARIS_API_KEY=DEMO_API_KEY,
            XDG_CACHE_HOME=str(work / "cache"),
            DEMO_AWS_ACCESS_KEY_ID="AKIATRIPTRIPTRIP0000",
            DEMO_AWS_SECRET_ACCESS_KEY="trip-secret-0000000000000000000000000",
        )
        calls: list[tuple[str, str]] = []

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event != "call":
                return
            if "<" in frame.f_code.co_qualname:  # comprehensions, lambdas, dataclass __init__s
                return
            module = frame.f_globals.get("__name__", "")
            if not module.startswith("reconciler") or module.startswith("reconciler.emulator"):
                return
            try:
                found = any(holds(value) for value in list(frame.f_locals.values()))
            except Exception:  # an object still being built, a mapping that reads lazily...
                found = False
            if found:
                calls.append((module, frame.f_code.co_qualname))

        with Emulator().serve() as server:
            os.environ["POLARIS_URL"] = server.url
            sys.setprofile(profile)
            try:
                cli_main(["apply", "--auto-approve", str(manifests)])
            except SystemExit as done:
                if done.code:
                    raise
            finally:
                sys.setprofile(None)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    functions = sorted(set(calls))
    modules = sorted({module for module, _ in calls})
    changes = sum(1 for a, b in itertools.pairwise(calls) if a[0] != b[0])
    if args.verbose:
        for module, name in functions:
            print(f"  {module}.{name}")
    print(f"functions: {len(functions)}  modules: {len(modules)}  module changes: {changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
