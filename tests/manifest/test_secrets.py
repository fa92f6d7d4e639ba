"""No manifest, name, server response or flag puts any part of a secret into anything written."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.client import ClientConfig, PolarisClient, PolarisError
from reconciler.emulator import ALL_PERMISSIONS, DEMO_PROJECT_ID, Emulator
from reconciler.model import SENSITIVE, Secret
from reconciler.redact import FRAGMENT, MINIMUM, Redactor, _forms, shorten
from tests.cli import Result, run
from tests.fixtures import Canned, HostileServer

# Secrets as an attacker would pick them: non-ASCII, quotes, backslashes, and long enough that
# anything cut at 117, 300 or 500 characters cuts through them.
API_KEY = 'pok_Äpfel"quote\\slash' + "".join(chr(97 + (i * 7) % 26) for i in range(60))
CI_TOKEN = 'ci-Ünïcödé"\\' + "".join(chr(65 + (i * 11) % 26) for i in range(220))
ACCESS_KEY_ID = "AKIA" + "".join(chr(48 + (i * 3) % 10) for i in range(16))
SECRET_KEY = 'sk/"€\\' + "".join(chr(97 + (i * 5) % 26) for i in range(230))
SECRETS = {"api key": API_KEY, "CI token": CI_TOKEN, "secret key": SECRET_KEY}


def pieces(secret: str) -> set[str]:
    """Every 8-character piece of a secret, as written raw and JSON-escaped (once and twice)."""
    forms = {secret}
    for ascii_only in (True, False):
        once = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return {form[i : i + 8] for form in forms for i in range(len(form) - 7)}


def assert_nothing_leaks(texts: dict[str, str]) -> None:
    for what, secret in SECRETS.items():
        for piece in pieces(secret):
            for where, text in texts.items():
                assert piece not in text, f"{piece!r} of the {what} in {where}"


CONNECTION = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: leaky}
spec:
  type: s3
  bucket: leaky-bucket
  awsEndpoint: s3.us-east-1.amazonaws.com
  description: "${var:NOTE}"
  secrets:
    type: access_key
    accessKeyId: ${env:HOSTILE_ACCESS_KEY_ID}
    accessKeySecret: ${env:HOSTILE_SECRET_KEY}
---
apiVersion: reconciler/v1
kind: Connection
metadata: {name: deploy}
spec:
  type: s3
  bucket: deploy-bucket
  awsEndpoint: s3.us-east-1.amazonaws.com
  secrets:
    type: access_key
    accessKeyId: ${env:HOSTILE_ACCESS_KEY_ID}
    accessKeySecret: ${env:CI_DEPLOY_TOKEN}
"""
TABLE = """\
apiVersion: reconciler/v1
kind: Table
metadata: {name: padded}
spec:
  type: detail
  description: "PAD${var:NOTE}"
  schema:
    - {name: __time, dataType: timestamp}
"""
JOB = """\
apiVersion: reconciler/v1
kind: IngestionJob
metadata: {name: load}
spec:
  type: batch
  target: {type: table, tableName: padded}
  source:
    type: s3
    connectionName: leaky
    uris: ["s3://leaky-bucket/a.json"]
    formatSettings: {format: nd-json}
    inputSchema: [{name: ts, dataType: string}]
  mappings:
    - {columnName: __time, expression: 'TIME_PARSE("ts")'}
"""
# Attempts that validation refuses: the error must name the reference, never show the value.
ATTEMPTS = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: echoed}
spec:
  type: "${env:CI_DEPLOY_TOKEN}"
  bucket: b
  description: "${env:POLARIS_API_KEY}"
  awsEndpoint: "${env:HOSTILE_SECRET_KEY}"
  secrets:
    type: access_key
    accessKeyId: ${env:POLARIS_API_KEY}
    accessKeySecret: ${env:CI_DEPLOY_TOKEN}
"""
# A variable whose value is the CI token: variables are shown, but never a credential's value.
NOTE = f"--var=NOTE=a note that happens to hold {CI_TOKEN}"


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Emulator, Path]]:
    emulator = Emulator(api_keys={API_KEY: ALL_PERMISSIONS})
    with emulator.serve() as server:
        monkeypatch.setenv("POLARIS_URL", server.url)
        monkeypatch.setenv("POLARIS_PROJECT_ID", DEMO_PROJECT_ID)
        monkeypatch.setenv("POLARIS_API_KEY", API_KEY)
        monkeypatch.setenv("CI_DEPLOY_TOKEN", CI_TOKEN)
        monkeypatch.setenv("HOSTILE_ACCESS_KEY_ID", ACCESS_KEY_ID)
        monkeypatch.setenv("HOSTILE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        yield emulator, tmp_path
    emulator.store.close()


def test_no_command_or_format_writes_any_piece_of_the_key_the_token_or_a_secret(
    hostile_env: tuple[Emulator, Path],
) -> None:
    _, home = hostile_env
    good, bad = home / "good", home / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "connection.yaml").write_text(CONNECTION.replace("PAD", "x" * 100), encoding="utf-8")
    (good / "table.yaml").write_text(TABLE.replace("PAD", "y" * 110), encoding="utf-8")
    (good / "job.yaml").write_text(JOB, encoding="utf-8")
    (bad / "echoed.yaml").write_text(ATTEMPTS, encoding="utf-8")
    results: list[tuple[str, Result]] = []

    def do(*args: str) -> Result:
        result = run(*args)
        results.append((" ".join(args), result))
        return result

    for fmt in ("text", "json", "markdown"):
        assert do("validate", NOTE, "--format", fmt, str(good)).exit_code == 0
        assert do("validate", "--format", fmt, str(bad)).exit_code == 1
        assert do("plan", "-v", "--format", fmt, str(bad)).exit_code == 1
        planned = do("plan", NOTE, "--format", fmt, str(good), "-v", "--show-requests")
        assert planned.exit_code == 0, planned.stderr
        do("drift", NOTE, "--format", fmt, str(good))
    assert do("plan", NOTE, str(good), "--out", "plan.json").exit_code == 0
    applied = do("apply", NOTE, "plan.json", "--auto-approve", "--debug", "-v")
    assert applied.exit_code == 0, applied.stderr
    for fmt in ("text", "json", "markdown"):
        do("apply", NOTE, "--auto-approve", "--rotate-secrets", "--format", fmt, str(good))
        do("drift", NOTE, "--format", fmt, str(good))
    do("apply", NOTE, "--auto-approve", "--url", f"http://u:{CI_TOKEN}@127.0.0.1:9", str(good))
    do("plan", NOTE, "--project", CI_TOKEN, str(good))
    do("apply", NOTE, "--timeout", API_KEY, str(good))
    do("plan", f"--var=NOTE={API_KEY}", str(good))
    texts = {f"stdout of {args}": r.stdout for args, r in results}
    texts |= {f"stderr of {args}": r.stderr for args, r in results}
    texts["plan.json"] = (home / "plan.json").read_text(encoding="utf-8")
    caches = list((home / "cache").rglob("*"))
    assert any(path.name == "jobs.json" for path in caches)
    # Binary caches too (the compiled schemas are marshalled code): a secret in one would show
    # as its UTF-8 bytes, which a lenient decoding keeps.
    texts |= {
        str(p): p.read_bytes().decode("utf-8", errors="replace") for p in caches if p.is_file()
    }
    assert any("(sensitive)" in text for text in texts.values())
    assert_nothing_leaks(texts)


def test_an_error_page_that_echoes_the_request_is_redacted_before_it_is_cut(
    hostile: HostileServer, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLARIS_API_KEY", API_KEY)
    monkeypatch.setenv("DEMO_AWS_SECRET_ACCESS_KEY", SECRET_KEY)

    def proxy(method: str, path: str, body: bytes) -> Canned:
        if method == "GET":
            return Canned(200, b'{"values": []}', {"Content-Type": "application/json"})
        # A proxy that echoes the request it refused, with the secret just before the cut.
        echo = "P" * 280 + body.decode("utf-8") + f" key={API_KEY} token={CI_TOKEN}"
        return Canned(400, echo.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    hostile.respond = proxy
    monkeypatch.setenv("CI_DEPLOY_TOKEN", CI_TOKEN)
    result = run("apply", "--auto-approve", "--no-lock", "manifests/guide")
    assert result.exit_code == 1
    assert "failed (400)" in result.stdout + result.stderr
    assert_nothing_leaks({"stdout": result.stdout, "stderr": result.stderr})


def test_a_redactor_hides_every_form_and_every_long_piece_of_a_value() -> None:
    redact = Redactor()
    redact.add([SECRET_KEY])
    escaped = json.dumps({"v": SECRET_KEY})
    assert SECRET_KEY[:40] not in redact(f"cut: {SECRET_KEY[:40]}")
    assert redact(escaped) == '{"v": "(sensitive)"}'
    assert redact(json.dumps(escaped)) == json.dumps('{"v": "(sensitive)"}')
    assert redact("short words stay: sk/ and abc") == "short words stay: sk/ and abc"
    assert "(sensitive)" in redact(f"url: /x/{SECRET_KEY.replace('/', '%2F')}")


def test_a_value_added_after_the_redactor_has_been_used_is_hidden_from_then_on() -> None:
    # The redactor builds its search once per set of values: adding one must rebuild it.
    redact = Redactor()
    assert redact(f"before: {CI_TOKEN}") == f"before: {CI_TOKEN}"
    redact.add([SECRET_KEY])
    assert redact(f"a: {SECRET_KEY}") == "a: (sensitive)"
    redact.add([CI_TOKEN])
    assert redact(f"b: {CI_TOKEN[3:15]} and {SECRET_KEY[5:20]}") == "b: (sensitive) and (sensitive)"
    redact.add_api_key("pok_another_key_value")
    assert redact("key pok_another_key_value") == "key (sensitive)"
    redact.clear()
    assert redact(f"after: {CI_TOKEN}") == f"after: {CI_TOKEN}"


def _redacted_by_definition(text: str, values: list[str], api_key: str) -> str:
    """What the module docstring of reconciler.redact promises, the slow way: every whole form
    replaced, longest first, then every run of FRAGMENT or more characters of a form."""
    forms = {
        form for value in [*values, api_key] if len(value) >= MINIMUM for form in _forms(value)
    }
    basic = base64.b64encode(f"{api_key}:".encode()).decode()
    for form in sorted(forms | {basic}, key=len, reverse=True):
        text = text.replace(form, SENSITIVE)
    spans = []
    for form in forms:
        for start in range(len(form)):
            for end in range(start + FRAGMENT, len(form) + 1):
                found = text.find(form[start:end])
                while found != -1:
                    spans.append((found, found + end - start))
                    found = text.find(form[start:end], found + 1)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:  # overlapping or touching runs are one
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], SENSITIVE]
        last = end
    return "".join(out) + text[last:]


_ALPHABET = 'ab%"\\é日 :'  # few letters, so that texts and secrets overlap often


@given(
    values=st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=12), max_size=3),
    api_key=st.text(alphabet=_ALPHABET, max_size=12),
    parts=st.lists(st.text(alphabet=_ALPHABET, max_size=14), max_size=6),
)
def test_a_redactor_replaces_what_the_plain_definition_replaces_and_nothing_more(
    values: list[str], api_key: str, parts: list[str]
) -> None:
    # The redactor searches once for any seed or whole form, then only where one is: the same
    # text as replacing every form and every long piece of one, the slow way.
    redact = Redactor()
    redact.add_api_key(api_key)
    redact.add(values)
    forms = [form for value in values for form in _forms(value)]
    basic = base64.b64encode(f"{api_key}:".encode()).decode()  # the HTTP Basic credential
    texts = [*parts, "".join(parts), " ".join(forms + parts), "".join(forms[::-1]), f"a{basic}b"]
    for text in texts:
        assert redact(text) == _redacted_by_definition(text, values, api_key), text


def test_shorten_redacts_before_it_cuts() -> None:
    redact = Redactor()
    redact.add([CI_TOKEN])
    text = "x" * 100 + CI_TOKEN
    assert shorten(text, 120, redact) == "x" * 100 + "(sensitive)"
    assert CI_TOKEN[:12] not in shorten(text, 117, redact)


def test_any_credential_in_the_environment_is_hidden_even_if_nothing_reads_it(
    served: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_DEPLOY_TOKEN", CI_TOKEN)
    result = run("plan", "--project", CI_TOKEN)
    assert result.exit_code == 1
    assert_nothing_leaks({"stderr": result.stderr, "stdout": result.stdout})


def test_a_value_that_is_not_utf8_is_hidden_like_any_other() -> None:
    redact = Redactor()
    broken = "s3cr\udcff\udcfe-and-more"  # how os.environ holds bytes that are not UTF-8
    redact.add([broken])
    redact.add_api_key(broken)
    assert redact(f"got {broken}") == "got (sensitive)"


def test_only_the_request_builder_reveals_a_secret() -> None:
    """`Secret.reveal` is called in one place, `client.request_body`, which registers each value
    with the client's redactor and is what gives the S3 signer its keys (an AST scan; `model.py`
    defines the Secret)."""
    package = Path(__file__).resolve().parents[2] / "reconciler"
    sites = set()
    for path in sorted(package.rglob("*.py")):
        if path.name == "model.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for top in tree.body:  # a module's functions, its classes' methods, its other statements
            parts = [top] if not isinstance(top, ast.ClassDef) else top.body
            for part in parts:
                name = getattr(part, "name", "<module>")
                where = f"{top.name}.{name}" if isinstance(top, ast.ClassDef) else name
                for node in ast.walk(part):
                    if (isinstance(node, ast.Attribute) and node.attr in ("reveal", "_value")) or (
                        isinstance(node, ast.Constant) and node.value in ("reveal", "_value")
                    ):
                        sites.add(f"{path.relative_to(package).as_posix()}:{where}")
    assert sorted(sites) == ["client.py:request_body"]


def test_a_client_hides_each_secret_it_sends_though_its_caller_registered_none(
    hostile: HostileServer,
) -> None:
    """A Python caller that builds its own client (no CLI redactor set up) still never reads a
    secret back in an error: the request builder registers what it reveals."""

    def echo(method: str, path: str, body: bytes) -> Canned:
        return Canned(400, b"P" * 280 + body, {"Content-Type": "text/plain; charset=utf-8"})

    hostile.respond = echo
    config = ClientConfig(hostile.url, DEMO_PROJECT_ID, API_KEY, insecure=True)
    secret = Secret(SECRET_KEY, "${env:HOSTILE_SECRET_KEY}")
    with PolarisClient(config) as client, pytest.raises(PolarisError) as failed:
        client.create_connection({"name": "c", "secrets": {"accessKeySecret": secret}})
    assert "failed (400)" in str(failed.value)
    assert_nothing_leaks({"the error": str(failed.value)})
