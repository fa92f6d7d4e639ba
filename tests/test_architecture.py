"""The shape of the package: its imports go one way, so each layer can be read without the next."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_reconciler_outside_the_emulator_has_no_import_cycle() -> None:
    # Imports under TYPE_CHECKING and inside functions count too (scripts/cycles.py says why).
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cycles.py"), "reconciler.emulator"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "no import cycles"
