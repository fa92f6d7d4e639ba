"""Java glob semantics for `pattern`, and exact overlap between selectors, checked by brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.globs import (
    GlobError,
    Sequence,
    compile_glob,
    intersects,
    literal_pattern,
    literal_prefix,
    matches,
    pattern_meets_prefix,
    patterns_intersect,
    restrict,
    sequences,
    witness,
)

PENGUINS = ["penguins/adelaide.json", "penguins/chinstrap.json", "penguins/emperor.json"]


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("penguins/*.json", "penguins/adelaide.json", True),
        ("*.json", "penguins/adelaide.json", False),  # * stays within one path segment
        ("**.json", "penguins/adelaide.json", True),  # ** crosses segments (the guide's example)
        ("penguins/{adelaide,gentoo}.json", "penguins/gentoo.json", True),
        ("penguins/{adelaide,gentoo}.json", "penguins/emperor.json", False),
        ("p?n", "pen", True),
        ("a?c", "a/c", False),  # ? never matches the separator
        ("p[a-f]n", "pen", True),
        ("p[!a-f]n", "pen", False),
        ("p[!a-f]n", "p/n", False),  # nor does a negated class
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
        ("{a,b}{c,d}", "bd", True),
        ("data.{csv,json}", "data.csv", True),
    ],
)
def test_a_pattern_matches_keys_as_java_globs_do(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


@pytest.mark.parametrize(
    "pattern", ["{a,{b}}", "[a", "{a", "a\\", "[a/b]", "[z-a]", "[]]", "[!]", "[a-b-c]", "[A-[]"]
)
def test_a_pattern_java_rejects_is_an_error(pattern: str) -> None:
    with pytest.raises(GlobError):
        matches(pattern, "a")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("penguins/{adelaide,gentoo}.json", "penguins/adelaide.json", True),
        ("penguins/*.json", "**/adelaide.json", True),
        ("penguins/*.json", "koalas/*.json", False),
        ("*.csv", "*.json", False),
        ("**", "x", True),
        ("a/*", "a/b/c", False),
        ("a/**", "*/b/c", True),
    ],
)
def test_two_patterns_overlap_exactly_when_a_key_matches_both(
    a: str, b: str, expected: bool
) -> None:
    assert patterns_intersect(a, b) is expected
    assert patterns_intersect(b, a) is expected


@pytest.mark.parametrize(
    ("pattern", "prefix", "expected"),
    [
        ("**.json", "penguins/", True),
        ("penguins/*.json", "koalas/", False),
        ("pen*", "penguins/a", False),
        ("pen*", "penguins", True),
        ("penguins/*.json", "pen", True),
    ],
)
def test_a_pattern_meets_a_prefix_when_it_matches_a_key_under_it(
    pattern: str, prefix: str, expected: bool
) -> None:
    assert pattern_meets_prefix(pattern, prefix) is expected


def test_literal_prefix_is_shared_by_every_alternative() -> None:
    assert literal_prefix("penguins/{a,b}.json") == "penguins/"
    assert literal_prefix("{x,y}/a") == ""
    assert literal_prefix("a/b*") == "a/b"


ALPHABET = "ab/."
KEYS = ["".join(chars) for n in range(5) for chars in itertools.product(ALPHABET, repeat=n)]


def text_matches(pattern: str, text: str) -> bool:
    """The pattern's regex on the text itself (matches() first makes a key a path: path_of)."""
    return compile_glob(pattern).fullmatch(text) is not None


glob_tokens = st.sampled_from(["a", "b", "/", ".", "*", "**", "?", "[ab]", "[!a]", "{a,b/}"])


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_tokens, max_size=4), st.lists(glob_tokens, max_size=4))
def test_overlap_agrees_with_brute_force_over_short_keys(x: list[str], y: list[str]) -> None:
    a, b = "".join(x), "".join(y)
    both = [key for key in KEYS if text_matches(a, key) and text_matches(b, key)]
    if both:  # a witness among short keys proves overlap; the analysis must find it
        assert patterns_intersect(a, b)
    elif patterns_intersect(a, b):  # claimed overlap without a short witness: look further
        longer = ["".join(c) for n in range(5, 9) for c in itertools.product(ALPHABET, repeat=n)]
        assert any(text_matches(a, key) and text_matches(b, key) for key in longer)


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_tokens, max_size=4), st.lists(glob_tokens, max_size=4))
def test_a_witness_is_a_key_both_patterns_match(x: list[str], y: list[str]) -> None:
    a, b = "".join(x), "".join(y)
    for first in sequences(a):
        for second in sequences(b):
            key = witness(first, second)
            if key is None:
                assert not intersects(first, second)
            else:  # the witness matches both as text (it may not be a path: see path_of)
                assert compile_glob(a).fullmatch(key) and compile_glob(b).fullmatch(key)


def test_a_witness_names_a_readable_object() -> None:
    brace, _gentoo = sequences("penguins/{adelaide,gentoo}.json")
    assert witness(brace, literal_pattern("penguins/adelaide.json")) == "penguins/adelaide.json"
    (anything,) = sequences("**.json")
    key = witness(anything, sequences("exports/2026/*")[0])
    assert key is not None and key.startswith("exports/2026/") and key.endswith(".json")


def _matches_any(found: list[Sequence], key: str) -> bool:
    return any(intersects(seq, literal_pattern(key)) for seq in found)


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_tokens, max_size=4), st.sampled_from(["", "a", "ab", "a/", "b/.", "/"]))
def test_restricting_to_a_prefix_keeps_exactly_the_keys_under_it(
    tokens: list[str], prefix: str
) -> None:
    pattern = "".join(tokens)
    for sequence in sequences(pattern):
        restricted = restrict(sequence, prefix)
        for key in KEYS:
            inside = intersects(sequence, literal_pattern(key)) and key.startswith(prefix)
            assert _matches_any(restricted, key) is inside, (pattern, prefix, key)
