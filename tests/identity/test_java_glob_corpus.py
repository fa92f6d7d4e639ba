"""`pattern` is read as Java reads it: checked against Java's own verdicts, not our idea of them.

tests/reference/java-glob-corpus.jsonl.gz holds random patterns (biased toward `[^...]`,
backslashes in brackets, ranges, `{...}` nesting, `**` and line terminators) with keys, each
labelled by `FileSystems.getDefault().getPathMatcher("glob:" + pattern).matches(Paths.get(key))`
or by the PatternSyntaxException Java raised. `make glob-corpus` regenerates it with
scripts/glob_corpus/GlobCorpus.java; these tests need no Java.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections import defaultdict
from functools import cache
from typing import Any

import pytest

from reconciler.globs import (
    GlobTooLarge,
    GlobUnsupported,
    JavaGlobError,
    compile_glob,
    matches,
    path_of,
    patterns_intersect,
    sequences,
)
from reconciler.kinds.ingestion_job.checks import pattern_problem
from reconciler.kinds.ingestion_job.identity import OverlapIndex, Place, reads_of
from tests.fixtures import ROOT

CORPUS = ROOT / "tests" / "reference" / "java-glob-corpus.jsonl.gz"
PLACE = Place("aws", "zoo")


@cache
def corpus() -> tuple[dict[str, Any], ...]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines)


def accepted() -> list[dict[str, Any]]:
    return [entry for entry in corpus() if "keys" in entry]


def refused() -> list[dict[str, Any]]:
    return [entry for entry in corpus() if "error" in entry]


def unsupported(pattern: str) -> bool:
    """Patterns this tool refuses although Java may accept them (docs/globs.md says which)."""
    try:
        compile_glob(pattern)
    except GlobUnsupported:
        return True
    return False


def test_the_corpus_holds_at_least_20000_verdicts_of_both_kinds() -> None:
    triples = sum(len(entry["keys"]) for entry in accepted()) + len(refused())
    matched = sum(verdict for entry in accepted() for _, verdict in entry["keys"])
    assert triples >= 20_000
    assert matched >= 5_000 and len(refused()) >= 1_000


def test_every_key_is_matched_exactly_as_java_matches_it() -> None:
    wrong = []
    for entry in accepted():
        pattern = entry["pattern"]
        if unsupported(pattern):
            continue
        wrong += [
            (pattern, key, verdict)
            for key, verdict in entry["keys"]
            if matches(pattern, key) is not verdict
        ]
    assert wrong == [], f"{len(wrong)} verdicts differ from Java's, for example {wrong[:5]}"


def test_only_ranges_that_end_in_a_backslash_are_refused_where_java_accepts() -> None:
    # Java copies such a range's end into its regular expression unescaped, so `[ -\x5d]` is
    # the range space to `]`. This tool refuses them (a validation error with the fix) rather
    # than follow Java's regex escapes; the corpus shows how rare they are.
    refused_here = [entry["pattern"] for entry in accepted() if unsupported(entry["pattern"])]
    assert len(refused_here) <= len(accepted()) // 100, refused_here
    for pattern in refused_here:
        assert "-\\" in pattern, pattern


def test_every_pattern_java_refuses_is_a_validation_error() -> None:
    missed = [entry for entry in refused() if pattern_problem(entry["pattern"]) is None]
    assert missed == []


def test_a_refusal_quotes_javas_own_description_where_java_gives_one() -> None:
    same = differ = 0
    for entry in refused():
        try:
            compile_glob(entry["pattern"])
        except JavaGlobError as error:
            if str(error) == entry["error"]:
                same += 1
            else:
                differ += 1
        except GlobUnsupported:
            pass
    # Java reports the first problem it meets while translating, and regex errors only after
    # the whole pattern translated; this tool may name another problem of the same pattern.
    assert same >= 0.9 * (same + differ)


def test_no_pattern_java_accepts_is_a_validation_error_unless_documented() -> None:
    for entry in accepted():
        problem = pattern_problem(entry["pattern"])
        if problem is not None:
            assert unsupported(entry["pattern"]), (entry["pattern"], problem)


def matching_pairs(limit: int) -> list[tuple[str, str, str]]:
    """(pattern, other pattern, key): two patterns Java says both match one path."""
    by_path: dict[str, list[str]] = defaultdict(list)
    for entry in accepted():
        if unsupported(entry["pattern"]):
            continue
        for key, verdict in entry["keys"]:
            if verdict and "\x00" not in key:
                by_path[path_of(key)].append(entry["pattern"])
    pairs = [
        (first, second, path)
        for path, patterns in by_path.items()
        for first, second in itertools.combinations(sorted(set(patterns))[:40], 2)
    ]
    random.Random(16).shuffle(pairs)
    return pairs[:limit]


def analysable(pattern: str) -> bool:
    """Whether the pattern's overlap can be analysed (else the plan reports it as uncertain)."""
    try:
        sequences(pattern)
    except GlobTooLarge:
        return False
    return True


def test_two_patterns_java_matches_one_key_with_are_said_to_overlap() -> None:
    pairs = matching_pairs(limit=20_000)
    assert len(pairs) >= 10_000
    missed = [
        (a, b, key)
        for a, b, key in pairs
        if analysable(a) and analysable(b) and not patterns_intersect(a, b)
    ]
    assert missed == []
    # And as the plan sees two jobs (a too-large pattern is uncertain there, never "none").
    unflagged = [
        (a, b, key)
        for a, b, key in pairs
        if overlap_of({"pattern": a}, {"pattern": b}) == "none"
        or overlap_of({"pattern": b}, {"pattern": a}) == "none"
    ]
    assert unflagged == []


def overlap_of(live: dict[str, Any], mine: dict[str, Any]) -> str:
    index = OverlapIndex([("live", "t", reads_of({"source": live}, PLACE))])
    found = index.find("t", reads_of({"source": mine}, PLACE))
    if not found:
        return "none"
    return "uncertain" if found[0].uncertain else "overlap"


def test_a_job_reading_a_key_java_matches_overlaps_the_pattern_job_in_every_spelling() -> None:
    # Each object a pattern job selects, named by an objects job as the key is spelled
    # (doubled or trailing slashes included), or under a prefix of it, is read by both jobs:
    # the plan must say so, whichever job is live.
    checked = 0
    for entry in accepted():
        pattern = entry["pattern"]
        if unsupported(pattern):
            continue
        for key, verdict in entry["keys"]:
            if not verdict or not key or key.startswith("/"):
                continue  # Polaris may read /a as a (docs/places.md): not this test's concern
            checked += 1
            prefix = key[: len(key) // 2]
            for other in ({"objects": [key]}, {"prefixes": [prefix]} if prefix else None):
                if other is None:
                    continue
                verdicts = {
                    overlap_of({"pattern": pattern}, other),
                    overlap_of(other, {"pattern": pattern}),
                }
                assert verdicts <= {"overlap", "uncertain"}, (pattern, other, verdicts)
    assert checked >= 4_000


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("[^b]", "^", True),  # only ! negates: [^b] is the set of ^ and b
        ("[^b]", "a", False),
        ("[!b]", "a", True),
        ("[a\\]", "\\", True),  # a backslash in brackets is a literal, and ] closes the class
        ("[\\]]", "\\]", True),
        ("[a-]", "-", True),
        ("[!-a]", "b", True),
        ("[ -/]", "/", False),  # a class never matches /, even through a range
        ("{a,b}}", "a}", True),  # } outside a group is a literal
        ("**", "a\nb", False),  # ** is the regex .*, which matches no line terminator
        ("*", "a\nb", True),
        ("a/b", "a//b/", True),  # the key as Paths.get spells it
        ("a/", "a/", False),
    ],
)
def test_the_java_rules_the_corpus_proves_spelled_out(
    pattern: str, key: str, expected: bool
) -> None:
    assert matches(pattern, key) is expected
