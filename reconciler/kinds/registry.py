"""The registry of resource kinds: each kind module registers itself here, every step loops over it.

A module of its own, below the kind modules: a kind imports this module (never the package,
which imports every kind), so no kind imports another and the package's imports go one way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from reconciler.kinds.base import ResourceKind
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
