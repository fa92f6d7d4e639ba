"""The schema files work outside this repository: copied anywhere, or written by
`reconciler schema --out DIR`, any JSON Schema tool resolves their `$ref`s from the files
themselves, offline (check-jsonschema here; editors through a yaml-language-server modeline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.cli import run

ROOT = Path(__file__).resolve().parents[2]
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SCHEMA_FILES = sorted(path.name for path in (ROOT / "schemas").glob("*.schema.json"))
# Any attempt to reach the network fails at once: "offline" is what a laptop on a plane sees.
OFFLINE = {
    **os.environ,
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


def check_jsonschema(schema: Path, *instances: Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema as a user would, from a directory that is not the schemas'."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--no-cache", "--schemafile", str(schema), *map(str, instances)],
        cwd=instances[0].parent,
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=120,
    )


def split_documents(sources: list[Path], into: Path) -> list[Path]:
    """Each YAML document of `sources` as a file of its own (check-jsonschema reads one a file)."""
    into.mkdir(parents=True)
    written = []
    for source in sources:
        texts = source.read_text("utf-8").split("\n---\n")
        for index, text in enumerate(texts):
            if yaml.safe_load(text) is None:
                continue
            path = into / f"{source.parent.name}-{source.stem}-{index}.yaml"
            path.write_text(text, "utf-8")
            written.append(path)
    return written


def shipped_manifests() -> list[Path]:
    return sorted(
        path
        for folder in ("manifests", "examples")
        for path in (ROOT / folder).rglob("*.yaml")
        if path.name != "reconciler.yaml" and "github" not in path.parts
    )


def test_every_shipped_manifest_passes_check_jsonschema_offline_against_a_copy_of_the_schemas(
    tmp_path: Path,
) -> None:
    schemas = shutil.copytree(ROOT / "schemas", tmp_path / "elsewhere" / "schemas")
    documents = split_documents(shipped_manifests(), tmp_path / "manifests")
    assert len(documents) >= 14
    done = check_jsonschema(schemas / "manifest.schema.json", *documents)
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("connection", "table", "ingestionjob"):
        same_kind = [path for path in documents if f"kind: {kind}" in path.read_text().lower()]
        done = check_jsonschema(schemas / f"{kind}.schema.json", *same_kind)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_copy_of_the_config_schema_checks_the_example_reconciler_yaml_offline(
    tmp_path: Path,
) -> None:
    schemas = shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    config = shutil.copy(
        ROOT / "examples" / "environments" / "reconciler.yaml", tmp_path / "r.yaml"
    )
    done = check_jsonschema(schemas / "config.schema.json", Path(config))
    assert done.returncode == 0, done.stdout + done.stderr


def test_reconciler_schema_out_writes_every_schema_file(tmp_path: Path) -> None:
    out = tmp_path / "editor" / "schemas"
    done = run("schema", "--out", str(out))
    assert done.exit_code == 0, done.stderr
    assert sorted(path.name for path in out.iterdir()) == SCHEMA_FILES
    for name in SCHEMA_FILES:
        assert json.loads((out / name).read_text("utf-8")) == json.loads(
            (ROOT / "schemas" / name).read_text("utf-8")
        )
    assert str(out) in done.stdout  # says where they went


def test_the_written_schemas_catch_a_mistake_offline_through_the_documented_modeline(
    tmp_path: Path,
) -> None:
    assert run("schema", "--out", str(tmp_path / "schemas")).exit_code == 0
    manifest = tmp_path / "manifests" / "events.yaml"
    manifest.parent.mkdir()
    good = (
        "# yaml-language-server: $schema=../schemas/manifest.schema.json\n"
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata:\n  name: events\n"
        "spec:\n  type: s3\n  bucket: acme-events\n  awsEndpoint: s3.us-east-1.amazonaws.com\n"
        "  secrets:\n    type: access_key\n    accessKeyId: ${env:AWS_ACCESS_KEY_ID}\n"
        "    accessKeySecret: ${env:AWS_SECRET_ACCESS_KEY}\n"
    )
    manifest.write_text(good, "utf-8")
    modeline = good.splitlines()[0].split("$schema=", 1)[1]
    schema = (manifest.parent / modeline).resolve()
    assert check_jsonschema(schema, manifest).returncode == 0
    manifest.write_text(good.replace("bucket:", "buckett:"), "utf-8")
    done = check_jsonschema(schema, manifest)
    assert done.returncode == 1
    assert "buckett" in done.stdout


def test_reconciler_schema_refuses_to_overwrite_a_changed_file_without_force(
    tmp_path: Path,
) -> None:
    out = tmp_path / "schemas"
    assert run("schema", "--out", str(out)).exit_code == 0
    assert run("schema", "--out", str(out)).exit_code == 0  # the same files again: fine
    (out / "table.schema.json").write_text("{}", "utf-8")
    refused = run("schema", "--out", str(out))
    assert refused.exit_code == 1
    assert "table.schema.json" in refused.stderr and "--force" in refused.stderr
    assert run("schema", "--out", str(out), "--force").exit_code == 0
    assert (out / "table.schema.json").read_text("utf-8") != "{}"
