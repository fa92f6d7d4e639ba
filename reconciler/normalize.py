"""Compare specs: field-level differences as a reviewer reads them, and plain copies.

What each kind's fields are (writable, write-only, read-only, server-defaulted) and how its specs
are normalized is declared by the kind's module in reconciler/kinds (`ResourceKind.normalize` and
`comparable`), which use these helpers; the same functions run on both sides, so a value the
server adds never shows up as a difference. `FieldChange` itself is a value (reconciler.values).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from reconciler.values import MISSING, FieldChange, FieldPath


def additions(spec: Mapping[str, Any]) -> list[FieldChange]:
    """Every top-level field of a normalized spec, as added (what a create sends)."""
    return [FieldChange((name,), MISSING, value) for name, value in sorted(spec.items())]


# Object selectors are sets of keys and may hold tens of thousands: compared as sets, and a long
# one is summarised (deepdiff would take seconds to pair them up, and a reviewer cannot read them).
KEY_SETS = ("uris", "prefixes", "objects")
LONG_KEY_SET = 100


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    """Field-level differences between two normalized specs, in path order."""
    if before == after:  # the common case; deepdiff costs ~0.2 ms even to find nothing
        return []
    from deepdiff import DeepDiff  # imported on first use: it takes ~50 ms to load

    before, after, changes = _key_set_changes(before, after)
    tree = DeepDiff(dict(before), dict(after), ignore_order=False, view="tree", verbose_level=2)
    for report, items in tree.items():
        for item in items:
            path = tuple(item.path(output_format="list"))
            old = MISSING if report.endswith("_added") else item.t1
            new = MISSING if report.endswith("_removed") else item.t2
            changes.append(FieldChange(path, old, new))
    return sorted(changes, key=lambda change: _order(change.path))


def _key_set_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any], list[FieldChange]]:
    """Long key lists of two job specs as one summarised change each; the specs without them."""
    old_source, new_source = before.get("source"), after.get("source")
    if not isinstance(old_source, Mapping) or not isinstance(new_source, Mapping):
        return before, after, []
    changes = []
    old_source, new_source = dict(old_source), dict(new_source)
    for name in KEY_SETS:
        old, new = old_source.get(name) or [], new_source.get(name) or []
        if not isinstance(old, list) or not isinstance(new, list):
            continue
        if max(len(old), len(new)) <= LONG_KEY_SET:
            continue
        old_source.pop(name, None)
        new_source.pop(name, None)
        added, removed = (
            set(map(str, new)) - set(map(str, old)),
            set(map(str, old)) - set(map(str, new)),
        )
        if added or removed:
            summary = f"{len(new)} keys: {len(added)} added, {len(removed)} removed"
            example = min(added or removed)
            changes.append(
                FieldChange(("source", name), f"{len(old)} keys", f"{summary} (such as {example})")
            )
    return {**before, "source": old_source}, {**after, "source": new_source}, changes


def plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars only, its strings interned.

    Copies are what a plan keeps (compared forms of thousands of jobs): interned, the names and
    values every job repeats ("source", "batch", a table's name) are held once, not per copy.
    """
    if type(value) is str:  # most values; isinstance of an ABC (Mapping) is slow to say no
        return sys.intern(value)
    if isinstance(value, str):  # a Secret, which cannot be interned
        return value
    if isinstance(value, dict | Mapping):
        return {sys.intern(str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def identical(a: Any, b: Any) -> bool:
    """Whether two plain values are the same data, types and key order included (`==` holds
    `1 == 1.0 == True` and ignores key order): one may then stand for the other in any output."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _order(path: FieldPath) -> tuple[tuple[bool, str | int], ...]:
    # Keys in text order, list items in index order (mappings[2] before mappings[10]); an index
    # and a key never meet at one depth, but the flag keeps the comparison total if they did.
    return tuple((isinstance(part, int), part) for part in path)
