"""What a CI job pays to install the reconciler: download and installed size, in a clean virtualenv.

The wheel is built from this checkout, then installed into fresh virtualenvs made by the base
Python (not this one), once as `polaris-reconciler` and once with the `emulator` extra:
- download: the total size of the files `pip download` fetches (the wheel and every dependency),
  without pip's cache;
- installed: the whole virtualenv afterwards, as `du -sh` counts it (pip itself included: that is
  what a job's runner holds), and what the install added to the empty virtualenv.
Sizes in MiB (1,048,576 bytes). Times are single runs with the package index this machine uses,
given for orientation only. Goal (issue 17): the base install downloads at most 5 MiB and takes at
most 60 MiB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
GOAL_DOWNLOAD_MIB = 5.0
GOAL_INSTALLED_MIB = 60.0
MIB = 1024 * 1024


def disk_usage(path: Path) -> int:
    """Bytes `du` counts under path (allocated blocks, each hard link once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in [".", *files]:
            stat = os.lstat(os.path.join(directory, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def base_python() -> str:
    """The interpreter this virtualenv was made from: a clean venv must not inherit ours."""
    return str(getattr(sys, "_base_executable", sys.executable))


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("polaris_reconciler-*.whl")
    return wheel


def measure(requirement: str, work: Path, label: str) -> dict[str, object]:
    """Download and install `requirement` into a new virtualenv; sizes and times."""
    venv = work / f"venv-{label}"
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True)
    empty = disk_usage(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    downloads = work / f"download-{label}"
    started = time.perf_counter()
    subprocess.run(
        [*pip, "download", "--no-cache-dir", "--dest", str(downloads), requirement],
        check=True,
        capture_output=True,
    )
    download_s = time.perf_counter() - started
    files = sorted(downloads.iterdir())
    downloaded = sum(f.stat().st_size for f in files)
    started = time.perf_counter()
    subprocess.run(
        [*pip, "install", "--no-cache-dir", requirement], check=True, capture_output=True
    )
    install_s = time.perf_counter() - started
    version = subprocess.run(
        [str(venv / "bin" / "reconciler"), "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    installed = disk_usage(venv)
    return {
        "files": len(files),
        "download_mib": round(downloaded / MIB, 1),
        "venv_mib": round(installed / MIB, 1),
        "added_mib": round((installed - empty) / MIB, 1),
        "empty_venv_mib": round(empty / MIB, 1),
        "download_s": round(download_s, 1),
        "install_s": round(install_s, 1),
        "runs": version,
    }


def run() -> dict[str, object]:
    """Measure the base install and the one with the emulator extra; print and return figures."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = build_wheel(work / "dist")
        base = measure(str(wheel), work, "base")
        extra = measure(f"{wheel}[emulator]", work, "emulator")
    met = (
        float(str(base["download_mib"])) <= GOAL_DOWNLOAD_MIB
        and float(str(base["venv_mib"])) <= GOAL_INSTALLED_MIB
    )
    for label, row in (("polaris-reconciler", base), ("polaris-reconciler[emulator]", extra)):
        print(
            f"{label}: downloads {row['download_mib']} MiB in {row['files']} files, "
            f"virtualenv {row['venv_mib']} MiB ({row['added_mib']} MiB added to an empty "
            f"{row['empty_venv_mib']} MiB one); install {row['install_s']} s"
        )
    harness.absolute(
        "base install (pip install polaris-reconciler)",
        f"{base['download_mib']} MiB downloaded, virtualenv {base['venv_mib']} MiB",
        caches="no pip cache; a fresh virtualenv",
        goal=f"<= {GOAL_DOWNLOAD_MIB:g} MiB downloaded and <= {GOAL_INSTALLED_MIB:g} MiB installed",
        met=met,
    )
    return {"base": base, "emulator": extra, "goal_met": met}


if __name__ == "__main__":
    run()
