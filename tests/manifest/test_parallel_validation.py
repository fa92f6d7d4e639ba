"""Validating half the files in a second process gives what one process gives: the same resources
in the same order, the same secrets, and the same errors (file, line, message)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli_output import REDACT, WatchedEnvironment
from reconciler.model import ManifestErrors, Secret
from reconciler.validate import can_fork, load_manifests
from tests.manifest.test_bad_manifests import CORPUS as BAD_MANIFESTS
from tests.manifest.test_bad_manifests import environment
from tests.manifest.test_loading import benchmark_files

REPOSITORY = Path(__file__).resolve().parents[2]
GOOD = sorted(str(path) for path in (REPOSITORY / "manifests").rglob("*.yaml"))


def outcome(paths: list[str], env: Mapping[str, str], *, parallel: bool) -> Any:
    """What a user can see of one validation: the resources and secrets, or every error."""
    try:
        manifests = load_manifests(paths, env, parallel=parallel, keep_compared=True)
    except ManifestErrors as failed:
        return [(str(error.location), error.message, error.resource) for error in failed.errors]
    return manifests


def alike(paths: list[str], env: Mapping[str, str]) -> Any:
    assert can_fork(), "no second process can be forked here (another thread is running?)"
    one, two = outcome(paths, env, parallel=False), outcome(paths, env, parallel=True)
    assert two == one
    if not isinstance(one, list):  # == holds whatever the order of keys: compare it too
        assert [written(r.spec, r.compared) for r in two.resources] == [
            written(r.spec, r.compared) for r in one.resources
        ]
    return one


def written(*values: Any) -> str:
    return json.dumps(values, default=str)


@pytest.mark.parametrize("path", BAD_MANIFESTS, ids=[p.stem for p in BAD_MANIFESTS])
def test_each_bad_manifest_fails_alike_in_the_second_process_and_in_the_first(path: Path) -> None:
    env = {**os.environ, **environment(path)}

    in_second = alike([*GOOD, str(path)], env)  # the last file is validated by the child
    in_first = alike([str(path), *GOOD], env)

    assert isinstance(in_second, list)
    assert isinstance(in_first, list)
    assert {error[0].split(":")[0] for error in in_second} >= {str(path)}


def test_every_bad_manifest_at_once_fails_alike_whichever_process_validates_it() -> None:
    env = dict(os.environ)
    for path in BAD_MANIFESTS:
        env.update(environment(path))
    paths = [str(path) for path in BAD_MANIFESTS]

    errors = alike([*paths, *GOOD], env)
    alike([*GOOD, *paths], env)

    assert isinstance(errors, list)
    assert len(errors) >= len(BAD_MANIFESTS)


def test_secrets_read_in_the_second_process_reach_the_first_as_secrets(tmp_path: Path) -> None:
    example = (REPOSITORY / "examples" / "connections" / "s3.yaml").read_text()
    type_last = example.replace("    type: access_key\n", "").replace(
        "accessKeySecret: ${env:EXAMPLE_S3_AWS_SECRET_ACCESS_KEY}\n",
        "accessKeySecret: ${env:EXAMPLE_S3_AWS_SECRET_ACCESS_KEY}\n    type: access_key\n",
    )
    for number in range(4):
        text = example if number % 2 else type_last
        (tmp_path / f"c{number}.yaml").write_text(text.replace("example-s3", f"s3-{number}"))
    env = {
        "EXAMPLE_S3_AWS_ACCESS_KEY_ID": "AKIA-in-both",
        "EXAMPLE_S3_AWS_SECRET_ACCESS_KEY": "the-secret-value",
    }

    manifests = alike([str(tmp_path)], env)

    last = manifests.resources[-1]
    assert last.name == "s3-3"
    assert list(last.spec["secrets"]) == ["type", "accessKeyId", "accessKeySecret"]
    assert list(manifests.resources[-2].spec["secrets"])[-1] == "type"
    assert isinstance(last.spec["secrets"]["accessKeySecret"], Secret)
    assert last.spec["secrets"]["accessKeySecret"].reveal() == "the-secret-value"
    assert manifests.secrets == {"AKIA-in-both", "the-secret-value"}


def test_the_benchmark_files_validate_alike_with_and_without_a_bad_one_among_them(
    tmp_path: Path,
) -> None:
    for number, text in enumerate(benchmark_files()):
        (tmp_path / f"m{number:04d}.yaml").write_text(text)

    manifests = alike([str(tmp_path)], os.environ)
    (tmp_path / "m0077.yaml").write_text(
        (tmp_path / "m0077.yaml").read_text().replace("type: batch", "type: batch\n  bogus: 1", 3)
    )
    errors = alike([str(tmp_path)], os.environ)

    assert len(manifests.resources) == 10_000
    assert [message for _, message, _ in errors] == ["unknown field 'spec.bogus'"] * 3


def test_a_value_the_second_process_reads_is_hidden_by_the_first_even_when_its_document_fails(
    tmp_path: Path,
) -> None:
    # The CLI's environment hides every value a manifest reads, before any message can echo it;
    # a value read in the child must be hidden in the parent, which prints the messages.
    example = (REPOSITORY / "examples" / "connections" / "s3.yaml").read_text()
    (tmp_path / "a.yaml").write_text(example.replace("example-s3", "fine"))
    broken = example.replace("example-s3", "broken").replace(
        "  type: s3\n", "  type: s3\n  bogus: 1\n"
    )
    (tmp_path / "b.yaml").write_text(
        broken.replace("EXAMPLE_S3_AWS_SECRET_ACCESS_KEY", "ONLY_IN_B")
    )
    value = "read-only-by-the-second-process-7f3a"
    environ = {
        "EXAMPLE_S3_AWS_ACCESS_KEY_ID": "AKIA-first",
        "EXAMPLE_S3_AWS_SECRET_ACCESS_KEY": "first",
        "ONLY_IN_B": value,
    }
    assert can_fork()
    assert value in REDACT(value)

    with pytest.raises(ManifestErrors):
        load_manifests([str(tmp_path)], WatchedEnvironment(environ), parallel=True)

    assert value not in REDACT(f"echoed: {value}")
