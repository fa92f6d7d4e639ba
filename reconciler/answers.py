"""What an answer of the API must look like: finite numbers, and fields of the types a shape gives.

`client.PolarisClient` decodes each answer and asks `misfit` whether it fits the collection's
shape (`client.ANSWER_SHAPES`); a misfit becomes a MalformedResponseError naming the field. The
quick `fit` answers the usual case without building a field's path at every step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Shape = Mapping[str, type | tuple[type, ...]]


class NotFinite(str):
    """NaN, Infinity or a number too large for a float, as read (JSON has no such numbers)."""


def finite(text: str) -> float | NotFinite:
    number = float(text)
    return number if math.isfinite(number) else NotFinite(text)


def not_finite(value: Any, at: str = "") -> tuple[str, NotFinite] | None:
    """Where the first number that is not finite is in a parsed body (a field path), if any."""
    if isinstance(value, NotFinite):
        return at, value
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        inner = f"{at}[{key}]" if isinstance(key, int) else f"{at}.{key}" if at else str(key)
        found = not_finite(item, inner)
        if found is not None:
            return found
    return None


@dataclass
class Field:
    """What a shape says of one field: its types, its own fields, and (a list) its items'."""

    kinds: tuple[type, ...] | None = None
    fields: dict[str, Field] = field(default_factory=dict)
    item: Field | None = None


@functools.cache
def compiled(shape: tuple[tuple[str, type | tuple[type, ...]], ...]) -> dict[str, Field]:
    """A shape as a tree, so a body is walked once however many paths share a prefix."""
    root: dict[str, Field] = {}
    for path, kind in shape:
        fields, node = root, Field()
        for step in path.split("."):
            node = fields.setdefault(step.removesuffix("[]"), Field())
            if step.endswith("[]"):
                node.item = node.item or Field()
                node = node.item
            fields = node.fields
        node.kinds = kind if isinstance(kind, tuple) else (kind,)
    return root


def misfit(value: Any, shape: Shape) -> tuple[str, Any, tuple[type, ...]] | None:
    """The first field of `value` whose type is not the one `shape` gives it, if any."""
    fields = compiled(tuple(shape.items()))
    if fit(value, fields):  # the usual answer, without building a path at every step
        return None
    found = check_fields(value, fields, ())
    if found is None:
        return None
    at, misfit, kinds = found
    where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in at)
    return where.removeprefix("."), misfit, kinds


Misfit = tuple[tuple[str | int, ...], Any, tuple[type, ...]]


def fit(value: Any, fields: dict[str, Field]) -> bool:
    """Whether every field of `value` has its type: `check_fields` finding nothing, faster."""
    if type(value) is not dict:
        return not isinstance(value, dict) or check_fields(value, fields, ()) is None
    for key, node in fields.items():
        found = value.get(key)
        if found is None:
            continue
        kinds = node.kinds
        if kinds is not None and (
            not isinstance(found, kinds)
            or ((found is True or found is False) and bool not in kinds)
        ):
            return False
        if node.fields and not fit(found, node.fields):
            return False
        item = node.item
        if item is not None and isinstance(found, list):
            for each in found:
                if each is not None and not _fit_item(each, item):
                    return False
    return True


def _fit_item(value: Any, node: Field) -> bool:
    kinds = node.kinds
    if kinds is not None and (
        not isinstance(value, kinds) or ((value is True or value is False) and bool not in kinds)
    ):
        return False
    if node.fields and not fit(value, node.fields):
        return False
    if node.item is not None and isinstance(value, list):
        return all(each is None or _fit_item(each, node.item) for each in value)
    return True


def check_fields(value: Any, fields: dict[str, Field], at: tuple[str | int, ...]) -> Misfit | None:
    if not isinstance(value, dict):
        return None
    for key, node in fields.items():
        found = value.get(key)
        misfit = None if found is None else _check(found, node, (*at, key))
        if misfit is not None:
            return misfit
    return None


def _check(value: Any, node: Field, at: tuple[str | int, ...]) -> Misfit | None:
    kinds = node.kinds
    if kinds is not None and (
        not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
    ):
        return at, value, kinds
    misfit = check_fields(value, node.fields, at) if node.fields else None
    if misfit is None and node.item is not None and isinstance(value, list):
        for index, item in enumerate(value):
            misfit = None if item is None else _check(item, node.item, (*at, index))
            if misfit is not None:
                break
    return misfit


_TYPE_NAMES = {str: "a string", dict: "a JSON object", list: "a JSON list", int: "an integer",
               float: "a number", bool: "a boolean"}  # fmt: skip


def type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def describe(value: Any) -> str:
    if value is None:
        return "an empty body"
    kinds = {dict: "a JSON object", list: "a JSON list", str: "a JSON string", bool: "a boolean"}
    return kinds.get(type(value), "a JSON number")
