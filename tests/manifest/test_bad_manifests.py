"""Every fault class in tests/bad_manifests/ fails validation at the right line with a clear message.

Each file says what it expects: `# expect: MESSAGE` in its header, and the offending line carries a
`# <-` marker (or the header gives `# expect-line: N` where a marker cannot be written). Header lines
`# env: NAME=VALUE` set environment variables for the run (VALUE may be a bytes literal, b"...",
for what os.environ holds when a variable is not valid UTF-8).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.cli import run

CORPUS = sorted((Path(__file__).resolve().parents[1] / "bad_manifests").glob("*.yaml"))


def expectations(path: Path) -> tuple[str, int]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    message = next(
        line.split("# expect: ", 1)[1] for line in lines if line.startswith("# expect: ")
    )
    explicit = [line for line in lines if line.startswith("# expect-line: ")]
    if explicit:
        return message, int(explicit[0].split(": ", 1)[1])
    return message, next(n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# <-"))


def test_the_corpus_has_at_least_thirty_fault_classes() -> None:
    assert len(CORPUS) >= 30


def environment(path: Path) -> dict[str, str]:
    variables = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if line.startswith("# env: "):
            name, _, value = line.removeprefix("# env: ").partition("=")
            variables[name] = os.fsdecode(ast.literal_eval(value)) if value[:2] == 'b"' else value
    return variables


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_manifest_fails_with_its_location_and_message(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment(path).items():
        monkeypatch.setenv(name, value)
    message, line = expectations(path)
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.stdout + result.stderr
    errors = [row for row in result.stdout.splitlines() if ": error: " in row]
    assert any(row.startswith(f"{path}:{line}:") and message in row for row in errors), (
        f"expected {path}:{line}: ... {message!r}; got:\n{result.stdout}"
    )
