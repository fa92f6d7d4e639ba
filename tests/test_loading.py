"""Loading YAML: plain manifests take a fast path, and it reads every value as the full one does."""

from __future__ import annotations

import pytest

from reconciler.manifest import parse

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
