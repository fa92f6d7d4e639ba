"""Conformance by an outside tool: schemathesis, all phases, against a served emulator.

Every operation of tests/reference/polaris-openapi-full.json that the emulator serves is tested
with generated requests (examples, coverage, fuzzing, stateful), in positive and negative modes.
A project seeded with a connection, a table, a job and a file gives the path parameters something to
find. Goals: no server error, no response outside its schema, no status the document does not
list for the operation (unless the emulator documents its choice: schemathesis_hooks.CHOSEN).

Two checks stay off. `positive_data_acceptance`: like Polaris, the emulator refuses schema-valid
requests that make no sense (a job on a connection that does not exist). `negative_data_rejection`:
it counts a read-only property in a request (a table's `segmentCount`) as a violation, while
OpenAPI 3.0 only says such a property SHOULD NOT be sent; the emulator ignores them, so that a
client may PUT back the table it read. Query parameters outside their schema (a `targetTableName`
longer than 255) are also not refused yet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.emulator.server import RunningEmulator
from tests.fixtures import ROOT
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB

OPENAPI = ROOT / "tests" / "reference" / "polaris-openapi-full.json"
SERVED = (
    r"^/v1/projects/\{projectId\}/(connections|connectionsMeta|jobs|tables|files|events|query/sql$)"
)
CHECKS = "all"
# status_code_conformance is replaced by schemathesis_hooks.documented_status.
EXCLUDED = "positive_data_acceptance,negative_data_rejection,status_code_conformance"
SEED = 20261205
EXAMPLES = 150  # per operation and phase: about a minute on one core


@dataclass(frozen=True)
class Outcome:
    """What a schemathesis run reported."""

    returncode: int
    output: str
    operations: int
    cases: int
    failures: int

    def summary(self) -> str:
        """One line with the run's figures."""
        return (
            f"schemathesis: {self.operations} operations, {self.cases} cases, "
            f"{self.failures} unique failures, exit {self.returncode}"
        )


@pytest.fixture
def seeded() -> Iterator[tuple[RunningEmulator, str]]:
    """A served emulator holding the guide's connection, a table and a job (its id)."""
    emulator = Emulator()
    with emulator.serve() as running:
        with httpx.Client(
            base_url=f"{running.url}/v1/projects/{DEMO_PROJECT_ID}", auth=(DEMO_API_KEY, "")
        ) as api:
            assert api.post("/connections", json=GUIDE_CONNECTION).status_code == 201
            job = api.post("/jobs", json=GUIDE_JOB).json()
            # The `name` parameter is fixed to demo-conn: a file of that name gives the Files
            # API something to find too.
            upload = api.post("/files", files={"file": ("demo-conn", b'{"a": 1}\n')})
            assert upload.status_code == 201, upload.text
        yield running, job["id"]
    emulator.close()


def run_schemathesis(
    running: RunningEmulator, job_id: str, tmp_path: Path, examples: int
) -> Outcome:
    """Run the schemathesis CLI against the served emulator with a fixed seed."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'hooks = "tests.emulator.schemathesis_hooks"\n\n[parameters]\n'
        f'projectId = "{DEMO_PROJECT_ID}"\nname = "demo-conn"\ntableName = "Koalas"\n'
        f'jobId = "{job_id}"\n',
        encoding="utf-8",
    )
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
        str(OPENAPI), "--url", running.url, "--auth", f"{DEMO_API_KEY}:",
        "--include-path-regex", SERVED, "--checks", CHECKS, "--exclude-checks", EXCLUDED,
        "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all",
        "--seed", str(SEED), "--max-examples", str(examples),
        "--generation-database", "none", "--workers", "1", "--no-color",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900
    )
    return _outcome(done)


def _outcome(done: subprocess.CompletedProcess[str]) -> Outcome:
    output = done.stdout + done.stderr
    selected = re.search(r"Selected: (\d+)/", output)
    generated = re.search(r"(\d+) generated", output)
    failures = re.search(r"found (\d+) unique failure", output)
    return Outcome(
        done.returncode, output, int(selected[1]) if selected else 0,
        int(generated[1]) if generated else 0, int(failures[1]) if failures else 0,
    )  # fmt: skip


def test_schemathesis_finds_no_failure_in_any_served_operation(
    seeded: tuple[RunningEmulator, str], tmp_path: Path
) -> None:
    outcome = run_schemathesis(*seeded, tmp_path, examples=EXAMPLES)
    print(outcome.summary())  # the figures for a report (pytest -s)
    assert outcome.returncode == 0, outcome.output[-6000:]
    assert outcome.operations == 28  # every operation the emulator serves, and no other


@pytest.mark.slow
def test_a_long_schemathesis_run_finds_no_failure_either(
    seeded: tuple[RunningEmulator, str], tmp_path: Path
) -> None:
    outcome = run_schemathesis(*seeded, tmp_path, examples=1000)
    print(outcome.summary())
    assert outcome.returncode == 0, outcome.output[-6000:]
