"""The registry of resource kinds: every step loops over it, and only the kind modules hold facts.

Adding a kind is mostly a module here with one `ResourceKind` subclass decorated with
`@register`, its schema in `schemas/` and its name in `model.Kind`; docs/adding-a-kind.md lists
the other places (its slot in `live.LiveState`, the emulator, the OpenAPI excerpt, tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from reconciler.kinds.base import Fields, PlanContext, ResourceKind
from reconciler.model import Kind

_REGISTRY: dict[Kind, ResourceKind] = {}
T = TypeVar("T", bound=type[ResourceKind])


def register(cls: T) -> T:
    """Class decorator: make a kind known to validate, plan, apply, drift and import."""
    instance = cls()
    if instance.kind in _REGISTRY:
        raise ValueError(f"kind {instance.kind} is registered twice")
    _REGISTRY[instance.kind] = instance
    return cls


def of(kind: Kind) -> ResourceKind:
    """The registered kind."""
    return _REGISTRY[kind]


def ordered() -> Iterator[ResourceKind]:
    """Every kind, each after the kinds it depends on (the order apply creates them in)."""
    return iter(_REGISTRY[kind] for kind in order())


def order() -> tuple[Kind, ...]:
    """The kinds in dependency order: the order of `model.Kind`, which lists them so."""
    return tuple(kind for kind in Kind if kind in _REGISTRY)


# The kinds register themselves when imported; importing the package imports them all.
from reconciler.kinds import connection, ingestion_job, streaming_job, table  # noqa: E402

__all__ = ["Fields", "PlanContext", "ResourceKind", "connection", "ingestion_job", "of", "order",
           "ordered", "register", "streaming_job", "table"]  # fmt: skip
