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


def test_validate_and_plan_run_without_the_emulator_extra(
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
    assert done.stdout == ""
    helped = without_extra(["emulator", "--help"], tmp_path)
    assert helped.returncode == 0 and "--s3-dir" in helped.stdout


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
