"""What a command costs before it does anything: it loads only what it needs, compiled once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Runs the CLI as a user would, then reports which of these modules the process had loaded (a
# None in sys.modules is an import refused, not a module).
PROBE = """
import json, sys
from reconciler.cli import main
code = None
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
watched = (
    "httpx", "jsonschema", "fastjsonschema", "reconciler.client", "reconciler.emulator", "yaml",
    "httpx._main", "rich", "pygments",
)
print(json.dumps({"exit": code, "loaded": [m for m in watched if sys.modules.get(m)]}))
"""


# The credentials manifests/guide reads, so that a validate of manifests/ has no warning (a
# warning's position is found by the full path, which loads PyYAML).
GUIDE_ENV = {"DEMO_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "DEMO_AWS_SECRET_ACCESS_KEY": "example"}


def run_probe(cache: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, **GUIDE_ENV, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_validate_loads_neither_the_api_client_nor_jsonschema_nor_the_emulator(
    tmp_path: Path,
) -> None:
    result = run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))
    assert result["exit"] in (0, None)
    assert result["loaded"] == ["fastjsonschema"]  # the first run compiles the schemas


def test_a_second_validate_reads_the_compiled_schemas_from_the_cache(tmp_path: Path) -> None:
    run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))
    assert list((tmp_path / "cache" / "polaris-reconciler" / "schemas").glob("*.marshal"))
    result = run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))
    assert result == {"exit": None, "loaded": []}


def test_a_damaged_schema_cache_is_compiled_again_and_mistakes_are_still_explained(
    tmp_path: Path,
) -> None:
    run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))
    for cached in (tmp_path / "cache" / "polaris-reconciler" / "schemas").glob("*.marshal"):
        cached.write_bytes(b"not marshal data")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t}\n"
        "spec: {type: detail, partitioningGranularity: fortnight}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(bad)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    shown = done.stdout + done.stderr
    assert "bad.yaml:4:" in shown and "partitioningGranularity must be one of" in shown
    # Each damaged check is compiled again by the first run that needs it, then read.
    run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))
    assert run_probe(tmp_path / "cache", "validate", str(ROOT / "manifests"))["loaded"] == []


def test_the_emulator_command_is_still_listed_and_runs_when_asked_for(tmp_path: Path) -> None:
    listed = run_probe(tmp_path / "cache", "--help")
    assert "reconciler.emulator" in listed["loaded"]  # --help shows every command's summary
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "emulator", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "--job-seconds" in done.stdout


# What a plan imports before its first request (the CLI, the API client, the appliers, what says
# whether objects are listed), then the names of every module loaded, one a line.
PLAN_IMPORTS = """
import sys
import reconciler.cli, reconciler.client, reconciler.apply, reconciler.listing
print("\\n".join(sorted(name for name, module in sys.modules.items() if module)))
"""


def test_a_plan_loads_httpx_but_not_its_command_line_client_nor_rich_nor_pygments() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAN_IMPORTS], capture_output=True, text=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert "httpx" in loaded and "reconciler.client" in loaded, done.stderr
    assert not {"httpx._main", "rich", "pygments"} & loaded


def test_a_plan_loads_neither_saved_plans_nor_drift_nor_shell_completion_nor_difflib() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAN_IMPORTS], capture_output=True, text=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert "reconciler.plan" in loaded, done.stderr
    unused = {"reconciler.saved_plan", "reconciler.drift", "click.shell_completion", "difflib"}
    assert not unused & loaded


def test_a_plan_that_lists_no_objects_loads_no_s3_signer_nor_xml_parser() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAN_IMPORTS], capture_output=True, text=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert "reconciler.listing" in loaded, done.stderr
    assert not {"reconciler.s3", "hmac", "xml.etree.ElementTree"} & loaded


def test_a_plan_loads_yaml_rs_but_not_pyyaml_until_a_file_needs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAN_IMPORTS], capture_output=True, text=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert "yaml_rs" in loaded and "reconciler.manifest" in loaded, done.stderr
    assert "yaml" not in loaded


def test_the_command_list_loads_the_emulator_but_not_httpxs_command_line_client_nor_pyyaml(
    tmp_path: Path,
) -> None:
    listed = run_probe(tmp_path / "cache", "--help")
    assert listed["exit"] in (0, None) and "httpx" in listed["loaded"]  # the emulator's client
    unused = {"httpx._main", "rich", "pygments", "yaml"}  # yaml: only a --keys-file reads it
    assert not unused & set(listed["loaded"])  # type: ignore[arg-type]


def test_a_file_only_libyaml_reads_is_validated_and_its_mistakes_shown_with_file_and_line(
    tmp_path: Path,
) -> None:
    # An anchor and its alias: the fast path leaves the file to libyaml's composer.
    bad = tmp_path / "anchored.yaml"
    bad.write_text(
        "apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t}\n"
        "spec: &spec\n  type: detail\n  partitioningGranularity: fortnight\nextra: *spec\n",
        encoding="utf-8",
    )
    result = run_probe(tmp_path / "cache", "validate", str(bad))
    assert result["exit"] == 1 and "yaml" in result["loaded"]  # type: ignore[operator]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(bad)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    shown = done.stdout + done.stderr
    assert done.returncode == 1
    assert "anchored.yaml:6:28: error: spec.partitioningGranularity must be one of" in shown
    assert "anchored.yaml:7:1: error: unknown field 'extra'" in shown


def test_a_library_user_of_the_client_keeps_httpxs_command_line_client() -> None:
    # Only the reconciler program refuses httpx._main: importing the client changes no library.
    probe = (
        "import sys, reconciler.client, httpx; print(httpx.main is sys.modules['httpx._main'].main)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr
