"""Run every benchmark (or those named on the command line); end with the table of goals.

Each module's `run()` prints its figures as it measures them and returns them for the JSON
dump; the rows it measured against a baseline (benchmarks/harness.py) make the closing table,
each figure beside its goal, with the machine's load average.
"""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks import harness

MODULES = [
    "validate_bench",
    "emulator_bench",
    "plan_bench",
    "apply_bench",
    "ingest_bench",
    "stream_bench",
    "install_bench",
]


def main() -> None:
    """Run the benchmarks named in argv, or all of them."""
    wanted = sys.argv[1:] or MODULES
    figures: dict[str, object] = {}
    for name in wanted:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as missing:
            print(f"{name}: skipped ({missing})")
            continue
        print(f"== {name}", flush=True)
        figures[name] = module.run()
    print(json.dumps(figures, indent=2, default=str))
    print()
    print(harness.table())


if __name__ == "__main__":
    main()
