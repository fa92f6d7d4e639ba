"""Run every benchmark (or those named on the command line) and print a summary of figures."""

from __future__ import annotations

import importlib
import json
import sys

MODULES = [
    "validate_bench",
    "emulator_bench",
    "plan_bench",
    "apply_bench",
    "ingest_bench",
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


if __name__ == "__main__":
    main()
