"""What `pip install polaris-reconciler` gets: a light install, one version, a license, an extra.

The base install carries what validate, plan, apply, drift, import and unlock need; DuckDB and
sqlglot (the emulator's engine) are the `emulator` extra. These tests run the CLI in a Python that
cannot import them, build the sdist and wheel as a release does, and read what they hold.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import yaml

import reconciler
from tests.actions import BIN, ROOT
from tests.fixtures import external_connection_exists

EXTRA_MODULES = ("duckdb", "sqlglot")
INSTALL_EXTRA = "pip install 'polaris-reconciler[emulator]'"

# Runs the CLI as an install without the extra would: importing duckdb or sqlglot fails.
WITHOUT_EXTRA = f"""
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {set(EXTRA_MODULES)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from reconciler.cli import main
main(sys.argv[1:])
"""


def without_extra(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`reconciler ARGS` in a subprocess whose Python has neither duckdb nor sqlglot."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_base_command_runs_without_the_emulator_extra(
    served: Any, workspace: Path, client: Any
) -> None:
    external_connection_exists(client)
    valid = without_extra(["validate"], workspace.parent)
    assert valid.returncode == 0, valid.stderr
    assert "Valid: 7 resources" in valid.stdout
    planned = without_extra(["plan", "--detailed-exitcode"], workspace.parent)
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 6 to create, 0 to update, 0 to delete." in planned.stdout
    as_json = without_extra(["plan", "--format", "json"], workspace.parent)
    assert as_json.returncode == 0 and '"create"' in as_json.stdout, as_json.stderr
    drift = without_extra(["drift", "--fail-on", "failed"], workspace.parent)
    assert drift.returncode == 0, drift.stderr
    applied = without_extra(["apply", "--auto-approve"], workspace.parent)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete" in applied.stdout
    imported = without_extra(["import", "--out", "adopted", "--jobs"], workspace.parent)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert (workspace.parent / "adopted").is_dir()
    unlocked = without_extra(["unlock", "--yes"], workspace.parent)
    assert unlocked.returncode in (0, 1), unlocked.stderr  # 1: no lock to remove
    assert "internal error" not in unlocked.stderr and "Traceback" not in unlocked.stderr


def test_the_blocker_really_hides_the_extra(tmp_path: Path) -> None:
    # The test above proves nothing unless the same Python fails where duckdb is needed.
    probe = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA.replace("main(sys.argv[1:])", "import duckdb")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert probe.returncode == 1 and "No module named 'duckdb'" in probe.stderr


def test_the_emulator_without_its_extra_exits_1_with_the_install_command(tmp_path: Path) -> None:
    done = without_extra(["emulator", "--port", "0"], tmp_path)
    assert done.returncode == 1
    assert INSTALL_EXTRA in done.stderr
    assert "duckdb" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert done.stdout == "" or INSTALL_EXTRA in done.stdout  # said on stdout too, to a pipe
    helped = without_extra(["emulator", "--help"], tmp_path)
    assert helped.returncode == 0 and "--s3-dir" in helped.stdout
    assert INSTALL_EXTRA in " ".join(helped.stdout.split())


def test_reconciler_version_is_the_one_version_of_the_package() -> None:
    done = subprocess.run([str(BIN / "reconciler"), "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == f"reconciler {reconciler.__version__}\n"
    assert importlib.metadata.version("polaris-reconciler") == reconciler.__version__
    assert f"## [{reconciler.__version__}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as the release workflow builds them."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_the_sdist_and_the_wheel_carry_the_license_and_pass_twine_check(dist: Path) -> None:
    version = reconciler.__version__
    (wheel,) = dist.glob(f"polaris_reconciler-{version}-py3-none-any.whl")
    (sdist,) = dist.glob(f"polaris_reconciler-{version}.tar.gz")
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"polaris_reconciler-{version}.dist-info"
        assert archive.read(f"{info}/licenses/LICENSE").decode() == license_text
        metadata = archive.read(f"{info}/METADATA").decode()
    assert "reconciler/cli.py" in names and "reconciler/_schemas/manifest.schema.json" in names
    assert not any(name.startswith("tests/") for name in names)

    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
        extracted = archive.extractfile(f"polaris_reconciler-{version}/LICENSE")
        assert extracted is not None and extracted.read().decode() == license_text
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= members
    assert "reconciler/emulator/engine.py" in members and "schemas/manifest.schema.json" in members

    checked = subprocess.run(
        [str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    fields = Parser().parsestr(metadata)
    assert fields["Version"] == version
    assert fields["License-Expression"] == "Apache-2.0"
    assert "Source, https://github.com/polaris-reconciler/polaris-reconciler" in fields.get_all(
        "Project-URL", []
    )
    assert "Programming Language :: Python :: 3.11" in fields.get_all("Classifier", [])


def test_the_base_install_requires_neither_duckdb_nor_sqlglot(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        fields = Parser().parsestr(archive.read(info).decode())
    requires = fields.get_all("Requires-Dist", [])
    base = [r for r in requires if "extra ==" not in r]
    assert base and not any(r.startswith(EXTRA_MODULES) for r in base)
    for module in EXTRA_MODULES:
        assert any(r.startswith(module) and "extra == 'emulator'" in r for r in requires), requires
    assert "emulator" in fields.get_all("Provides-Extra", [])


def test_the_base_commands_import_nothing_from_the_emulator_engine(
    served: Any, workspace: Path, client: Any
) -> None:
    external_connection_exists(client)
    # A direct check of what a base command loads, beside the blocked-import runs above.
    probe = WITHOUT_EXTRA.replace(
        "main(sys.argv[1:])",
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('reconciler.emulator')))",
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "plan"],
        cwd=workspace.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Plan: 6 to create" in done.stdout and "Connection/security-audit" in done.stdout
    assert done.stdout.rstrip().endswith("[]"), done.stdout + done.stderr


# The release workflow's own steps, run as copied in a scratch repository with a bare origin.

RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def release_step(name: str) -> str:
    workflow = yaml.safe_load(RELEASE.read_text(encoding="utf-8"))
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    (step,) = [s for s in steps if s.get("name") == name]
    return str(step["run"])


def git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repository), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A checkout of a repository at version 0.1.0, with a changelog, and a bare origin."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    work = tmp_path / "work"
    (work / "reconciler").mkdir(parents=True)
    (work / "reconciler" / "__init__.py").write_text('"""x."""\n\n__version__ = "0.1.0"\n')
    (work / "CHANGELOG.md").write_text("# Changelog\n\n## [0.1.0]\n\nFirst.\n")
    git(work.parent, "init", "-q", str(work))
    for setting in (("user.name", "t"), ("user.email", "t@example.com")):
        git(work, "config", *setting)
    git(work, "add", ".")
    git(work, "commit", "-qm", "0.1.0")
    git(work, "remote", "add", "origin", str(origin))
    return work


def run_step(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    outputs = cwd.parent / "github-output"
    outputs.write_text("")
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd.parent), "GITHUB_OUTPUT": str(outputs)}
    base |= {"GIT_CONFIG_GLOBAL": "/dev/null", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_the_release_reads_the_version_and_refuses_without_a_changelog_section_or_twice(
    scratch: Path,
) -> None:
    check = release_step("Read the version")
    done = run_step(check, scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (scratch.parent / "github-output").read_text() == "version=0.1.0\n"
    init = scratch / "reconciler" / "__init__.py"
    init.write_text(init.read_text().replace("0.1.0", "0.2.0"))
    missing = run_step(check, scratch)
    assert missing.returncode == 1 and "no section '## [0.2.0]'" in missing.stdout
    changelog = scratch / "CHANGELOG.md"
    changelog.write_text(changelog.read_text() + "\n## [0.2.0] - not yet released\n\nMore.\n")
    undated = run_step(check, scratch)
    assert undated.returncode == 1 and "with today's date" in undated.stdout
    init.write_text(init.read_text().replace("0.2.0", "0.1.0"))
    git(scratch, "tag", "v0.1.0")
    again = run_step(check, scratch)
    assert again.returncode == 1 and "the tag v0.1.0 exists" in again.stdout


def test_the_release_tags_the_version_and_moves_v0_to_it(scratch: Path) -> None:
    tag = release_step("Tag vX.Y.Z and move the major tag")
    origin = scratch.parent / "origin.git"
    first = run_step(tag, scratch, VERSION="0.1.0")
    assert first.returncode == 0, first.stderr
    released = git(scratch, "rev-parse", "HEAD")
    assert git(origin, "rev-parse", "v0.1.0^{commit}") == released
    assert git(origin, "rev-parse", "v0^{commit}") == released
    (scratch / "CHANGELOG.md").write_text("# Changelog\n\n## [0.2.0]\n\nMore.\n")
    git(scratch, "commit", "-qam", "0.2.0")
    second = run_step(tag, scratch, VERSION="0.2.0")
    assert second.returncode == 0, second.stderr
    head = git(scratch, "rev-parse", "HEAD")
    assert git(origin, "rev-parse", "v0^{commit}") == head, "v0 moved to the newest release"
    assert git(origin, "rev-parse", "v0.1.0^{commit}") == released, "a release tag never moves"


def test_the_release_notes_are_the_version_s_changelog_section(tmp_path: Path) -> None:
    notes = release_step("Create the GitHub release")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gh").write_text('#!/bin/sh\ncat "$(echo "$@" | sed "s/.*--notes-file //")"\n')
    (fake / "gh").chmod(0o755)
    (tmp_path / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [Unreleased]\n\nNext.\n\n## [0.2.0]\n\nMore.\n\n## [0.1.0]\n\nFirst.\n"
    )
    done = run_step(
        notes,
        tmp_path,
        VERSION="0.2.0",
        RUNNER_TEMP=str(tmp_path),
        GH_TOKEN="t",
        PATH=f"{fake}:{os.environ['PATH']}",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "More."


# The Makefile's virtualenv: one made by another Python is rebuilt, and make says so.

PY_VERSION = "{}.{}".format(*sys.version_info[:2])


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_rebuilds_a_virtualenv_that_another_python_made(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 3.10\n")  # what 3.10 would print
    (venv / "bin" / "python").chmod(0o755)
    python = getattr(sys, "_base_executable", sys.executable)
    done = make(f"PYTHON={python}", f"VENV={venv}", f"{venv}/.made-by-python-{PY_VERSION}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{venv} was made by another Python than {python} ({PY_VERSION}): rebuilding it" in (
        done.stdout
    )
    rebuilt = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    assert rebuilt.stdout.strip() == str(sys.version_info[:2])
    again = make(f"PYTHON={python}", f"VENV={venv}", f"{venv}/.made-by-python-{PY_VERSION}")
    assert "rebuilding" not in again.stdout and "is up to date" in again.stdout
    # The stamp that says "installed" depends on the marker: a rebuilt virtualenv is reinstalled.
    plan = make("-n", f"PYTHON={python}", f"VENV={venv}", f"{venv}/.installed")
    assert "pip install --quiet -e '.[dev]'" in plan.stdout


def test_make_names_a_python_older_than_3_11_at_once(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\ncase "$2" in *exit*) exit 1;; *print*) echo 3.10;; esac\n')
    old.chmod(0o755)
    done = make(f"PYTHON={old}", f"VENV={tmp_path / 'venv'}", "lint")
    assert done.returncode != 0
    assert "is Python 3.10: polaris-reconciler needs 3.11 or later" in done.stdout
    assert not (tmp_path / "venv").exists()
