"""The suite's own running order: the longest tests start first under xdist."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import STARTED_FIRST, started_first

ROOT = Path(__file__).resolve().parents[2]


def test_the_longest_tests_are_collected_first_and_the_rest_keep_their_order() -> None:
    others = ["tests/a/test_a.py::test_one", "tests/z/test_z.py::test_two", "tests/b.py::test_3"]
    shuffled = [others[0], STARTED_FIRST[2], others[1], *STARTED_FIRST[:2], *STARTED_FIRST[3:]]
    shuffled.append(others[2])
    assert started_first(shuffled) == [*STARTED_FIRST, *others]


def test_every_test_started_first_still_exists_under_that_name() -> None:
    # A renamed test would silently go back to its place in the queue.
    for node_id in STARTED_FIRST:
        path, name = node_id.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8"), node_id
