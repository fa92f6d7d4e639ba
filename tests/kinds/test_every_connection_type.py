"""Every connection type can be declared: the example manifests validate, apply against the
emulator and plan again to nothing, and no secret value reaches any output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from tests.cli import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connections"
REFERENCE = re.compile(r"\$\{env:(\w+)\}")
# The one value a variable cannot be made up for: SASL/SCRAM's mechanism is one of two names.
CHOSEN = {"EXAMPLE_KAFKA_MECHANISM": "SCRAM-SHA-512"}


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """The example connections in a directory of their own, each secret variable set to a
    recognizable value; returns the directory and the values."""
    directory = tmp_path / "connections"
    shutil.copytree(EXAMPLES, directory)
    names = sorted({n for f in directory.glob("*.yaml") for n in REFERENCE.findall(f.read_text())})
    values = []
    for name in names:
        value = CHOSEN.get(name, f"very-secret-{name.lower()}")
        monkeypatch.setenv(name, value)
        values.append(value)
    return directory, values


def test_every_connection_type_validates_applies_and_replans_clean_without_showing_a_secret(
    served: Any, client: PolarisClient, examples: tuple[Path, list[str]], tmp_path: Path
) -> None:
    directory, secrets = examples
    outputs = []

    def step(*args: str, expect: int = 0) -> str:
        result = run(*args)
        outputs.append(result.stdout + result.stderr)
        assert result.exit_code == expect, result.stdout + result.stderr
        return result.stdout

    assert "Valid: 7 resources" in step("validate", str(directory))
    saved = tmp_path / "plan.json"
    step("plan", "--out", str(saved), str(directory))
    step("plan", "--format", "json", "--show-requests", str(directory))
    step("plan", "--format", "markdown", "--show-requests", str(directory))
    step("apply", "--auto-approve", str(saved))
    live = {c["name"]: c for c in client.list_connections()}
    assert sorted(c["type"] for c in live.values()) == sorted(
        path.stem for path in EXAMPLES.glob("*.yaml")
    )
    assert live["example-push"]["endpointUrl"], "Polaris filled the read-only field"
    assert "No changes." in step("plan", "--detailed-exitcode", str(directory))
    step("plan", "--format", "json", "--rotate-secrets", str(directory))
    step("-v", "apply", "--auto-approve", "--rotate-secrets", str(directory))
    assert "No changes." in step("plan", "--detailed-exitcode", str(directory))
    step("drift", "--format", "markdown", str(directory))
    outputs.append(saved.read_text("utf-8"))
    leaked = [value for value in secrets if any(value in output for output in outputs)]
    assert not leaked


def test_a_changed_field_of_a_streaming_connection_is_planned_and_applied(
    served: Any, client: PolarisClient, examples: tuple[Path, list[str]]
) -> None:
    directory, _ = examples
    assert run("apply", "--auto-approve", str(directory)).exit_code == 0
    kafka = directory / "kafka.yaml"
    kafka.write_text(kafka.read_text().replace("topicName: events", "topicName: clicks"))
    plan = run("plan", "--detailed-exitcode", str(directory))
    assert plan.exit_code == 2
    assert "topicName" in plan.stdout and "clicks" in plan.stdout
    assert run("apply", "--auto-approve", str(directory)).exit_code == 0
    assert client.get_connection("example-kafka")["topicName"] == "clicks"  # type: ignore[index]
    assert run("plan", "--detailed-exitcode", str(directory)).exit_code == 0


def test_a_server_default_written_out_or_left_out_is_no_change(
    served: Any, client: PolarisClient, examples: tuple[Path, list[str]]
) -> None:
    directory, _ = examples
    registry = directory / "confluent_schema_registry.yaml"
    text = registry.read_text()
    url = "  urls:\n    - https://psrc-12345.us-east-1.aws.confluent.cloud\n"
    registry.write_text(text.replace(url, ""))  # Polaris fills urls: []
    assert run("apply", "--auto-approve", str(directory)).exit_code == 0
    assert client.get_connection("example-registry")["urls"] == []  # type: ignore[index]
    assert client.get_connection("example-kafka")["topicNameIsPattern"] is False  # type: ignore[index]
    assert run("plan", "--detailed-exitcode", str(directory)).exit_code == 0
    kafka = directory / "kafka.yaml"
    pattern = "  topicName: events\n  topicNameIsPattern: false\n"
    kafka.write_text(kafka.read_text().replace("  topicName: events\n", pattern))
    registry.write_text(text.replace(url, "  urls: []\n"))
    assert run("plan", "--detailed-exitcode", str(directory)).exit_code == 0
