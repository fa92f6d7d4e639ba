"""One output pipeline: every format redacts first, then escapes or encodes for its edge.

A secret must be hidden in every form a format could write it in: raw, percent-encoded the way
GitHub's runner decodes annotations, XML-escaped in JUnit, JSON-escaped, Markdown- and
terminal-escaped. Escaping first and redacting after would miss all but the raw form.
"""

from __future__ import annotations

import ast
import base64
import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import escape
from reconciler.emulator import ALL_PERMISSIONS, DEMO_API_KEY, Emulator
from reconciler.model import Kind
from reconciler.output import Output
from reconciler.redact import Redactor
from tests.cli import Result, run
from tests.fixtures import ROOT, point_the_cli_at, traced_peak

# Secrets an attacker would choose to slip past an escaper: every character some format encodes.
# NAME_TOKEN is also a valid resource name (no '/', '\' or line break), so it reaches names.
NAME_TOKEN = 'Tk%3A<&"é:,%25>~日本-name-token'
MESSAGE_TOKEN = 'Ms%0A<&"\\:\nÜ\r,`|*-message-token-ümlaut'
SHORT_TOKEN = NAME_TOKEN[:11]  # a secret that is a piece of another
SECRETS = {
    "CI_NAME_TOKEN": NAME_TOKEN,
    "CI_MESSAGE_TOKEN": MESSAGE_TOKEN,
    "CI_SHORT_TOKEN": SHORT_TOKEN,
}
PIECE = 8  # the shortest piece of a secret the redactor hides wherever it appears


def _xml_attribute(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "&#10;").replace("\r", "&#13;")


# Every way a format may encode text: a piece of a secret must not appear in any of them.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda text: text,
    "annotation message": escape.annotation_message,
    "annotation property": escape.annotation_property,
    "XML text": lambda text: html.escape(text, quote=False),
    "XML attribute": _xml_attribute,
    "JSON": lambda text: json.dumps(text)[1:-1],
    "JSON, non-ASCII kept": lambda text: json.dumps(text, ensure_ascii=False)[1:-1],
    "Markdown": escape.markdown,
    "terminal": escape.terminal,
    "percent-encoded": lambda text: quote(text, safe=""),
}


def assert_no_form_of_a_secret(texts: dict[str, str]) -> None:
    for variable, secret in SECRETS.items():
        pieces = {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}
        for encoding, encode in ENCODINGS.items():
            for piece in pieces:
                form = encode(piece)
                for where, text in texts.items():
                    assert form not in text, f"{variable} {encoding} as {form!r} in {where}"


TABLE = f"""\
apiVersion: reconciler/v1
kind: Table
metadata: {{name: '{NAME_TOKEN}'}}
spec:
  type: detail
  description: "${{var:NOTE}}"
  schema:
    - {{name: __time, dataType: timestamp}}
"""
# Validation quotes what it refuses: the secret pasted by mistake as a value of a field.
BAD = """\
apiVersion: reconciler/v1
kind: Connection
metadata: {name: pasted}
spec:
  type: VALUE
  bucket: b
  awsEndpoint: s3.us-east-1.amazonaws.com
"""


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    emulator = Emulator(api_keys={DEMO_API_KEY: ALL_PERMISSIONS})
    with emulator.serve() as server:
        point_the_cli_at(monkeypatch, server.url, tmp_path, SECRETS)
        monkeypatch.chdir(tmp_path)
        yield tmp_path
    emulator.store.close()


def test_every_format_hides_a_secret_in_names_messages_and_errors_in_every_encoding(
    secret_env: Path,
) -> None:
    good, bad = secret_env / "good", secret_env / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "table.yaml").write_text(TABLE, encoding="utf-8")
    (bad / "pasted.yaml").write_text(
        BAD.replace("VALUE", json.dumps(MESSAGE_TOKEN)), encoding="utf-8"
    )
    note = f"--var=NOTE=a note holding {MESSAGE_TOKEN} and {NAME_TOKEN}"
    results: list[tuple[str, Result]] = []

    def do(*args: str) -> Result:
        result = run(*args)
        results.append((" ".join(args), result))
        said = result.stdout + result.stderr
        assert "internal error" not in said and "Traceback" not in said, said
        return result

    for fmt in ("text", "json", "markdown", "github"):
        do("validate", "--format", fmt, "--junit", f"validate-bad-{fmt}.xml", str(bad))
        do("validate", note, "--format", fmt, "--junit", f"validate-{fmt}.xml", str(good))
        assert do("plan", note, "--format", fmt, str(good), "--show-requests").exit_code == 0
        do("plan", "--format", fmt, str(bad))
        do("drift", note, "--format", fmt, "--junit", f"drift-{fmt}.xml", str(good))
    assert do("plan", note, str(good), "--out", "plan.json").exit_code == 0
    for fmt in ("text", "json", "markdown"):
        do("apply", note, "--auto-approve", "--format", fmt, str(good))
    for fmt in ("text", "json", "markdown", "github"):
        do("drift", "--format", fmt, "--junit", f"drift-after-{fmt}.xml", str(good / ".."))
    texts = {f"stdout of {args}": r.stdout for args, r in results}
    texts |= {f"stderr of {args}": r.stderr for args, r in results}
    written = [*secret_env.glob("*.xml"), secret_env / "plan.json"]
    texts |= {path.name: path.read_text(encoding="utf-8") for path in written}
    for path in secret_env.glob("*.xml"):
        ET.fromstring(texts[path.name].encode())  # still well-formed after redaction
    assert any("(sensitive)" in texts[path.name] for path in secret_env.glob("*.xml"))
    assert "(sensitive)" in "".join(r.stdout for args, r in results if "github" in args)
    assert_no_form_of_a_secret(texts)


def test_only_the_output_pipeline_calls_the_escape_functions() -> None:
    """Escaping without redacting first is impossible by construction: no other module can."""
    importers = []
    for path in sorted((ROOT / "reconciler").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(name == "reconciler.escape" for name in names):
                importers.append(path.name)
    assert importers == ["output.py"], importers


# Values a plan's JSON may hold, and some it should never hold but must still encode as
# json.dumps(default=str) would: every one of them goes through the redactor.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities included: JSON writes them as null
    | st.text()
    | st.sampled_from(["zoo-secret", "a zoo-secret b", '\u00e9\n"\\', Kind.INGESTION_JOB])
    | st.builds(Path, st.text(alphabet="abz/", max_size=5))
)
_KEYS = st.text() | st.sampled_from(["zoo-secret", "zoo-secreT"]) | st.integers() | st.booleans()


def _nested(
    scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[Any], size: int, leaves: int
) -> st.SearchStrategy[Any]:
    """JSON-like values of `scalars`: lists, tuples and dicts with `keys`, nested."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=size)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(keys, inner, max_size=size)
        ),
        max_leaves=leaves,
    )


_VALUES = _nested(_SCALARS, _KEYS, size=4, leaves=30)


@given(value=_VALUES, sort_keys=st.booleans())
def test_json_output_is_the_text_json_dumps_makes_of_the_redacted_value(
    value: object, sort_keys: bool
) -> None:
    # Encoded while it is redacted, with no redacted copy made first: the same text, byte for
    # byte, as encoding that copy (two keys that redact alike are one key, the last value kept).
    out = Output(lambda text: text.replace("zoo-secret", "(sensitive)"))
    expected = json.dumps(
        out.data(value), indent=2, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
    )
    assert out.json(value, sort_keys=sort_keys) == expected


def _spellings(secret: str) -> st.SearchStrategy[str]:
    """Text that holds a secret, a form of it or a piece of it, as plan values may."""
    return st.sampled_from(
        [
            secret,
            secret[: len(secret) // 2 + 1],  # a piece, hidden only when long enough
            secret[1:],
            f"before {secret} after",
            json.dumps(secret)[1:-1],  # JSON inside JSON
            quote(secret, safe=""),
            f"{secret}{secret}",
        ]
    )


@st.composite
def _redactor_and_value(draw: st.DrawFn) -> tuple[Redactor, object]:
    """A redactor with an API key and secrets registered, and a value whose strings (keys too)
    hold them, their forms and their pieces, most of them many times over, as a plan's do."""
    secrets = draw(st.lists(st.text(min_size=4, max_size=14), min_size=1, max_size=3))
    api_key = draw(st.text(alphabet="abcdefghijk0123456789_", min_size=8, max_size=40))
    redactor = Redactor()
    redactor.add_api_key(api_key)
    redactor.add(secrets)
    basic = base64.b64encode(f"{api_key}:".encode()).decode()
    spelled = st.one_of([_spellings(secret) for secret in [*secrets, api_key]])
    # A small pool drawn once, so that strings repeat as "kind", "name" and "noop" do in a plan.
    pool = draw(st.lists(st.text(max_size=6) | spelled | st.just(basic), min_size=1, max_size=6))
    strings = st.sampled_from(pool) | spelled | st.text(max_size=8)
    scalars = strings | _SCALARS
    keys = strings | _KEYS
    value = draw(_nested(scalars, keys, size=5, leaves=40))
    return redactor, value


@given(redactor_and_value=_redactor_and_value(), sort_keys=st.booleans())
def test_json_output_with_secrets_registered_is_the_text_json_dumps_makes_of_the_redacted_value(
    redactor_and_value: tuple[Redactor, object], sort_keys: bool
) -> None:
    # Each string a call has redacted once is reused for its repeats: the same text, byte for
    # byte, as redacting every string of a copy and encoding that, keys that redact alike
    # collapsed into one, and no secret, form or long piece of one left anywhere in it.
    redactor, value = redactor_and_value
    out = Output(redactor)
    expected = json.dumps(
        out.data(value), indent=2, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
    )
    assert out.json(value, sort_keys=sort_keys) == expected
    assert out.json(value, indent=4, sort_keys=sort_keys) == json.dumps(
        out.data(value), indent=4, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
    )


def test_json_output_of_more_distinct_strings_than_one_call_remembers_is_still_exact() -> None:
    # A call remembers a bounded number of strings and keys: past that it forgets and starts
    # again, in the middle of a list of dicts whose keys it has learned, and the text is the same.
    redactor = Redactor()
    redactor.add(["zoo-secret-7"])
    many = {
        f"key-{i}": [f"value-{i % 1500}", {"kind": "Job", f"zoo-secret-{i % 9}": i}]
        for i in range(3_000)
    }
    value = {"jobs": many, "again": [{"kind": "Job", f"name-{i}": "noop"} for i in range(3_000)]}
    out = Output(redactor)
    assert out.json(value) == json.dumps(out.data(value), indent=2, ensure_ascii=False)


def test_a_secret_learned_between_two_json_outputs_is_hidden_in_the_second() -> None:
    # What one call remembers of its strings is forgotten when it returns: the redactor may
    # learn a secret (the client registers each one it sends) before the next.
    redactor = Redactor()
    out = Output(redactor)
    value = {"kind": "Connection", "token": ["late-secret"] * 3, "late-secret": 1}
    assert "late-secret" in out.json(value)
    redactor.add(["late-secret"])
    assert out.json(value) == (
        '{\n  "kind": "Connection",\n  "token": [\n    "(sensitive)",\n    "(sensitive)",\n'
        '    "(sensitive)"\n  ],\n  "(sensitive)": 1\n}'
    )


def test_json_output_writes_a_long_flat_list_a_batch_of_pieces_at_a_time() -> None:
    # A list of 100,000 numbers is as much a plan's value as a dict of jobs: its pieces are
    # joined a few thousand at a time too, never all held at once.
    numbers = list(range(100_000))
    out = Output(lambda text: text)
    text, peak = traced_peak(lambda: out.json(numbers))
    assert text == json.dumps(numbers, indent=2)
    assert peak < 2.3 * len(text)
