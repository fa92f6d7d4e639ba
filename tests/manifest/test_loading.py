"""Loading YAML: plain manifests take a fast path, and it reads every value as the full one does."""

from __future__ import annotations

import gc
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifest import Document, _fast_refuses, _parse_fast, load_files, parse
from reconciler.validate import load_manifests

# One document of each shape a manifest uses, and every kind of scalar the YAML 1.2 rule types
# (or keeps a string). The second document opens with `${var:...}`, so it has references.
PLAIN = """\
apiVersion: reconciler/v1
kind: IngestionJob
metadata: {name: job-1, annotations: {a: on, b: no, c: 2024-01-01, d: 1:20, e: '12'}}
spec:
  type: batch
  target: {type: table, tableName: events}
  createTableIfNotExists: true
  maxParseExceptions: 0x10
  context: {a: 1, b: -2.5e3, c: .5, d: ~, e: null, f: TRUE, g: False, h: 0o17, i: 1_000, j: tRue}
  source:
    type: s3
    connectionName: "conn"
    uris:
      - s3://bucket/a.json
      - 's3://bucket/b.json'
    inputSchema: [{name: ts, dataType: string}]
  mappings:
    - columnName: __time
      expression: |
        TIME_PARSE("ts")
---
kind: Table
metadata: {name: '${var:table}'}
spec:
  1: one
  true: yes
  empty:
  list: [[], {}, '', "", -0, +1, 00]
"""


@pytest.mark.parametrize(
    ("plain_text", "anchored"),
    [("apiVersion: ", "apiVersion: &a "), ("  target: ", "  target: &a "), ("  1: ", "  1: &a ")],
)
def test_plain_yaml_loads_to_the_values_and_lines_it_would_with_an_anchor(
    plain_text: str, anchored: str
) -> None:
    # An anchor is not plain YAML, so that file is read by the composer and the full builder.
    assert PLAIN.count(plain_text) == 1
    anchored = PLAIN.replace(plain_text, anchored)

    plain, plain_errors = parse(PLAIN, "m.yaml")
    full, full_errors = parse(anchored, "m.yaml")

    assert plain_errors == full_errors == []
    assert [d.data for d in plain] == [d.data for d in full]
    assert [d.start for d in plain] == [d.start for d in full]
    assert [d.has_references for d in plain] == [d.has_references for d in full] == [False, True]
    annotations = plain[0].data["metadata"]["annotations"]
    assert annotations == {"a": "on", "b": "no", "c": "2024-01-01", "d": "1:20", "e": "12"}
    assert plain[0].data["spec"]["context"] == {
        "a": 1, "b": -2500.0, "c": 0.5, "d": None, "e": None, "f": True, "g": False, "h": 15,
        "i": "1_000", "j": "tRue",
    }  # fmt: skip
    assert plain[1].data["spec"] == {
        "1": "one", "true": "yes", "empty": None, "list": [[], {}, "", "", 0, 1, 0]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: 1\n---\nb: 1\nb: 2\n", "duplicate key 'b' (first defined at line 3)", 4),
        ("a: 1\n---\nb: !!str 1\n", "YAML tag '!!str' is not allowed", 3),
        ("a: 1\n---\n<<: {b: 1}\n", "merge keys (<<) are not supported", 3),
        ("a: 1\n---\nb: .nan\n", ".nan is not a finite number", 3),
        ("a: 1\n---\n? [b]\n: c\n", "a mapping key must be a plain string", 3),
        ("a: 1\n---\nb: [1, 2\n", "invalid YAML", 4),
    ],
)
def test_a_mistake_after_plain_documents_is_reported_at_its_line(
    text: str, message: str, line: int
) -> None:
    documents, errors = parse(text, "m.yaml")
    assert [(e.location.line, e.message[: len(message)]) for e in errors] == [(line, message)]
    assert documents[0].data == {"a": 1}


def test_a_value_before_a_yaml_error_in_a_later_document_is_still_located() -> None:
    # Its own document is valid, so a message about one of its values asks where it is, and
    # the file is parsed again up to the error.
    documents, errors = parse("a: 1\nb: {c: 2}\n---\nd: *undefined\n", "m.yaml")
    assert [(e.location.line, e.message[:12]) for e in errors] == [(4, "invalid YAML")]
    assert documents[0].locate(("b", "c")).line == 2
    assert documents[0].locate(("b",), key=True).line == 2


# The fast path (yaml-rs) and the libyaml paths must read every file alike. The corpus: every YAML
# file in the repository (manifests, examples, test fixtures), then generated documents built
# around the scalars where YAML libraries disagree.
REPOSITORY = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", ".git", "site", "node_modules"}


def _yaml_files(root: Path) -> list[Path]:
    # A walk that never enters a skipped folder: every worker collects this list, and the
    # virtualenv alone holds tens of thousands of files.
    found = []
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if name not in SKIPPED]
        found += [Path(folder, name) for name in files if name.endswith((".yaml", ".yml"))]
    return sorted(found)


CORPUS = _yaml_files(REPOSITORY)


def read_alike(text: str) -> list[Document] | None:
    """The fast path's documents, after checking them against the libyaml paths; None where the
    fast path left the text to them."""
    fast = _parse_fast(text, "m.yaml")
    slow, errors = parse(text, "m.yaml", fast=False)
    interned = _parse_fast(text, "m.yaml", interned=True)  # a plan's walk, interning as it goes
    assert (interned is None) == (fast is None)
    if fast is None:
        return None
    assert interned is not None
    assert [json.dumps(d.data) for d in interned] == [json.dumps(d.data) for d in fast]
    assert errors == [], f"the fast path accepted what the full path refuses: {errors}"
    assert [json.dumps(d.data) for d in fast] == [json.dumps(d.data) for d in slow]
    assert [d.begins for d in fast] == [d.begins for d in slow]
    assert [d.has_references for d in fast] == [d.has_references for d in slow]
    assert [d.index for d in fast] == [d.index for d in slow]
    return fast


def test_every_yaml_file_in_the_repository_reads_alike_on_the_fast_and_the_full_path() -> None:
    fast = [
        path
        for path in CORPUS
        if read_alike(path.read_bytes().decode("utf-8", errors="replace")) is not None
    ]

    # Not vacuous: the example manifests a user starts from all take the fast path.
    assert len(CORPUS) > 40
    assert {p for p in CORPUS if p.is_relative_to(REPOSITORY / "manifests")} <= set(fast)


TRICKY_SCALARS = [
    "0", "-0", "+1", "017", "09", "0x1F", "0X1F", "0o17", "0O17", "-0x1F", "+0o7", "0b101",
    "1_000", "1__0", "0x_1", "_0", "-_1", "._5", "_1e3", "1_e5", "__time", "1.5", ".5", "5.", "+.5", "-.5", "1e3", "1E+3", "12e03", "1e",
    "0.", "0e0", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "inf", "nan", "true", "True", "TRUE",
    "tRue", "false", "yes", "no", "on", "off", "y", "n", "null", "Null", "NULL", "nULL", "~",
    "2024-01-01", "2024-01-01T00:00:00Z", "1:20", "190:20:30", "a_1", "table_1", "${env:X}",
    "s3://b/*.json", "data/**/*.csv", "a b", "a#b", "'quoted'", '"dq"', '"\\u00e9\\x41"',
    "'it''s'", "12345678901234567890123", "-", "+", ".", "0x", "0o", "=", "<<", "a: b",
    "[1, 2]", "{a: 1}", "?a", "[?a]", ":a", "[]", "{}", "''", '""', "'${x}'", '"${x}"', "!str 1", "&a 1", "*a",
]  # fmt: skip
PLAIN_KEYS = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True)
KEYS = (
    PLAIN_KEYS
    | PLAIN_KEYS
    | st.sampled_from(["1", "true", "null", "~", "'q'", '"dq"', "a b", "<<"])
)
VALUES = st.recursive(
    st.sampled_from(TRICKY_SCALARS)
    | st.text(alphabet="01_.+-eExXoObBinfaNlTrue~:# ${}", min_size=1, max_size=8)
    | st.from_regex(r"[a-z][a-z0-9_/.-]{0,8}|-?[0-9]{1,4}(\.[0-9]{0,3})?|'[a-z ]*'", fullmatch=True)
    | st.from_regex(
        r"[a-z][a-z0-9_/.-]{0,8}|-?[0-9]{1,4}(\.[0-9]{0,3})?|'[a-z ]*'", fullmatch=True
    ),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: ("list", items))
        | st.lists(st.tuples(KEYS, inner), max_size=3).map(lambda items: ("map", items))
    ),
    max_leaves=12,
)


def render(value: Any, indent: int, flow: bool) -> str:
    """YAML text for a generated value: block style, or flow style where `flow`."""
    if isinstance(value, str):
        return value
    kind, items = value
    if flow or not items:
        if kind == "list":
            return "[" + ", ".join(render(v, 0, True) for v in items) + "]"
        return "{" + ", ".join(f"{k}: {render(v, 0, True)}" for k, v in items) + "}"
    pad = " " * indent
    lines = []
    for item in items:
        key, inner = ("- ", item) if kind == "list" else (f"{item[0]}: ", item[1])
        if isinstance(inner, tuple) and inner[1]:
            lines.append(f"{pad}{key.rstrip()}\n{render(inner, indent + 2, False)}")
        else:
            lines.append(f"{pad}{key}{render(inner, 0, True)}")
    return "\n".join(lines)


DOCUMENTS = st.lists(
    st.tuples(
        st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4).map(lambda items: ("map", items)),
        st.sampled_from(["", "# a comment\n", "\n  \n", "--- # c\n"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(DOCUMENTS)
def test_generated_yaml_reads_alike_on_the_fast_and_the_full_path(
    documents: list[tuple[Any, str, bool]],
) -> None:
    texts = []
    for index, (root, lead, flow) in enumerate(documents):
        marker = "---\n" if index or lead.startswith("---") else ""
        texts.append(lead.removeprefix("--- # c\n") + marker + lead + render(root, 0, flow) + "\n")
    read_alike("".join(texts))


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
def test_each_tricky_scalar_reads_alike_on_the_fast_and_the_full_path(scalar: str) -> None:
    for text in (f"a: {scalar}\n", f"- {scalar}\n", f"a: [{scalar}]\n", f"{{a: {scalar}}}\n"):
        read_alike(text)


@pytest.mark.parametrize(
    "text",
    [
        "%YAML 1.2\n---\na: 1\n",
        "a: 1\n...\n---\nb: 2\n",
        "a: 1\n...\n",
        "---\n---\na: 1\n",
        "--- {a: 1}\n--- [b]\n",
        "---   # c\n  # d\n  a: 1\n",
        "# c\n\n---\na: 1\n",
        "a: 1\n---\n",
        "a: |\n  x\n  ---\n  y\n",
        'a: "x\n  --- y"\n',
        "<<: {a: 1}\nb: 2\n",
        "a: 1\na: 2\n",
        "? [a]\n: 1\n",
        "a:\n" + "  " * 70 + "b: 1\n",
        "a: " + "[" * 70 + "]" * 70 + "\n",
        "\ufeffa: 1\n",
        "a: 1\r\nb: 2\r\n",
        "a:\tb\n",
        "a: 'x'y\n",
    ],
)
def test_each_document_layout_reads_alike_on_the_fast_and_the_full_path(text: str) -> None:
    read_alike(text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
    | st.text(alphabet="-:[]{}#&*!|>'\" \n\t?,%.0xa_", max_size=40)
)
def test_any_text_reads_alike_or_is_left_to_the_full_path_without_raising(text: str) -> None:
    read_alike(text)


def benchmark_files() -> list[str]:
    """The texts of the files `benchmarks/validate_bench.py` times, as it writes them."""
    from benchmarks.validate_bench import PER_FILE, documents

    docs = documents()
    return ["---\n".join(docs[start : start + PER_FILE]) for start in range(0, len(docs), PER_FILE)]


def test_every_file_of_the_validate_benchmark_reads_alike_on_the_fast_and_the_full_path() -> None:
    texts = benchmark_files()

    read = [read_alike(text) for text in texts]

    assert len(texts) == 100
    assert all(documents is not None and len(documents) == 100 for documents in read)


# What `_fast_refuses` answered before its scans were made faster: eight patterns, each run over
# the whole text. The faster scans must answer the same for every text.
_AT = r"(?<![^\s\[\]{},:].)"
_END = r"(?![^\s\[\]{},:#])"
_NUM = r"[-+._0-9a-fA-FxXoO]"
REFERENCE_MARKERS = re.compile(r"^(?:%|\.\.\.(?:\s|$))", re.MULTILINE)
REFERENCE_REFUSES = (
    re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\ufeff\ufffe\uffff]"),
    re.compile(r"[&*!]" + _AT),
    re.compile(r"_" + _AT + _NUM + r"*" + _END),
    re.compile(r"[-+.0-9a-fA-FxXoO]" + _AT + r"[-+.0-9a-fA-FxXoO]*_" + _NUM + r"*" + _END),
    re.compile(r"[-+0]" + _AT + r"(?:0[xXoObB]|[bBXO])"),
    re.compile(r"[|>]" + _AT),
    re.compile(r"\?" + _AT),
    re.compile(r":(?<![^\s\[\]{},].)[^\s\[\]{},]"),
)


def reference_refuses(text: str) -> bool:
    if ("%" in text or "..." in text) and REFERENCE_MARKERS.search(text):
        return True
    return any(pattern.search(text) for pattern in REFERENCE_REFUSES)


def test_the_fast_scans_refuse_what_the_eight_patterns_refused_in_every_corpus_file() -> None:
    texts = [path.read_bytes().decode("utf-8", errors="replace") for path in CORPUS]
    texts += benchmark_files()
    texts += [
        template.format(scalar)
        for scalar in TRICKY_SCALARS
        for template in ("a: {}\n", "- {}\n", "a: [{}]\n", "{{a: {}}}\n", "{}", "x{}", "{}x")
    ]

    answers = [(_fast_refuses(text), reference_refuses(text)) for text in texts]

    assert all(new == old for new, old in answers)
    assert {new for new, _ in answers} == {True, False}  # not vacuous


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
    | st.text(alphabet="-+_.0xXoObB19aF:[]{},# \n\t\r&*!|>?%é\x85\u2028", max_size=30)
    | st.lists(st.sampled_from([*TRICKY_SCALARS, " ", "\n", ":", ",", "[", "_", "0x"])).map("".join)
)
def test_the_fast_scans_refuse_what_the_eight_patterns_refused_in_any_text(text: str) -> None:
    assert _fast_refuses(text) == reference_refuses(text)


def test_the_objects_of_many_validated_manifests_are_left_out_of_the_collectors_scans(
    tmp_path: Path,
) -> None:
    for number, text in enumerate(benchmark_files()[:50]):
        (tmp_path / f"m{number:04d}.yaml").write_text(text)
    few = tmp_path / "m0000.yaml"
    gc.unfreeze()

    load_manifests([str(few)], {})
    after_few = gc.get_freeze_count()
    load_manifests([str(tmp_path)], {})
    after_many = gc.get_freeze_count()
    gc.unfreeze()

    assert after_few == 0
    assert after_many > 50_000  # each resource is a dozen containers or more


@pytest.mark.parametrize("anchor", ["", "&a "], ids=["fast path", "full path"])
def test_a_run_that_keeps_its_specs_holds_each_string_once_whichever_path_read_it(
    tmp_path: Path, anchor: str
) -> None:
    texts = [
        f"kind: {anchor}IngestionJob\nspec: {{target: {{tableName: web_7}}}}\nlist: [web_7]\n",
        "kind: IngestionJob\nspec: {target: {tableName: web_7}}\nlist: [web_7]\n",
    ]
    files = []
    for number, text in enumerate(texts):
        files.append(tmp_path / f"m{number}.yaml")
        files[-1].write_text(text)
    documents, errors = load_files(files, interned=True)
    assert errors == []
    first, second = (document.data for document in documents)
    assert first == second
    for key in first:  # the keys and the values, and the strings of lists
        assert next(k for k in second if k == key) is key
    assert first["kind"] is second["kind"]
    assert first["spec"]["target"]["tableName"] is second["spec"]["target"]["tableName"]
    assert first["list"][0] is second["list"][0] is first["spec"]["target"]["tableName"]
