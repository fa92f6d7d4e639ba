"""Compare specs: field-level differences as a reviewer reads them, and plain copies.

What each kind's fields are (writable, write-only, read-only, server-defaulted) and how its specs
are normalized is declared by the kind's module in reconciler/kinds (`ResourceKind.normalize` and
`comparable`), which use these helpers; the same functions run on both sides, so a value the
server adds never shows up as a difference. `FieldChange` itself is a value (reconciler.values).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.values import MISSING, FieldChange, FieldPath


def additions(spec: Mapping[str, Any]) -> list[FieldChange]:
    """Every top-level field of a normalized spec, as added (what a create sends)."""
    return [FieldChange((name,), MISSING, value) for name, value in sorted(spec.items())]


# A field a kind declares a set of keys (`ResourceKind.key_sets`) may hold tens of thousands:
# compared as a set, and a long one summarised (deepdiff would take seconds to pair them up, and a
# reviewer cannot read them).
LONG_KEY_SET = 100


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], sets: Iterable[tuple[str, ...]] = ()
) -> list[FieldChange]:
    """Field-level differences between two normalized specs, in path order; the lists at the
    paths `sets` are sets of keys."""
    if before == after:  # the common case; deepdiff costs ~0.2 ms even to find nothing
        return []
    from deepdiff import DeepDiff  # imported on first use: it takes ~50 ms to load

    before, after, changes = _key_set_changes(before, after, sets)
    tree = DeepDiff(dict(before), dict(after), ignore_order=False, view="tree", verbose_level=2)
    for report, items in tree.items():
        for item in items:
            path = tuple(item.path(output_format="list"))
            old = MISSING if report.endswith("_added") else item.t1
            new = MISSING if report.endswith("_removed") else item.t2
            changes.append(FieldChange(path, old, new))
    return sorted(changes, key=lambda change: _order(change.path))


def _key_set_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], sets: Iterable[tuple[str, ...]]
) -> tuple[Mapping[str, Any], Mapping[str, Any], list[FieldChange]]:
    """Each long set of keys of two specs as one summarised change; the specs without them."""
    changes = []
    for path in sets:
        old, new = _at(before, path), _at(after, path)
        old, new = old or [], new or []
        if not isinstance(old, list) or not isinstance(new, list):
            continue
        if max(len(old), len(new)) <= LONG_KEY_SET:
            continue
        before, after = _without(before, path), _without(after, path)
        added, removed = (
            set(map(str, new)) - set(map(str, old)),
            set(map(str, old)) - set(map(str, new)),
        )
        if added or removed:
            summary = f"{len(new)} keys: {len(added)} added, {len(removed)} removed"
            example = min(added or removed)
            changes.append(FieldChange(path, f"{len(old)} keys", f"{summary} (such as {example})"))
    return before, after, changes


def _at(spec: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path`, or None where a step of it is missing or not a mapping."""
    value: Any = spec
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _without(spec: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    """A copy of `spec` along `path` (the rest shared) without the field at its end."""
    head, *rest = path
    if not rest:
        return {key: value for key, value in spec.items() if key != head}
    inner = spec.get(head)
    return {**spec, head: _without(inner, tuple(rest))} if isinstance(inner, Mapping) else spec


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
