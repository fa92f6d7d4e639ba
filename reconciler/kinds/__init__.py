"""The resource kinds: importing this package registers every kind (reconciler.kinds.registry).

Adding a kind is mostly a module here with one `ResourceKind` subclass decorated with
`@registry.register`, imported below, its schema in `schemas/` and its name in `model.Kind`;
docs/adding-a-kind.md lists the other places (the emulator, the OpenAPI excerpt, tests). The
steps import this package and call `kinds.of`, `kinds.ordered` and `kinds.order` (and
`kinds.base` for what every kind shares); a kind module imports `reconciler.kinds.registry` and
`reconciler.kinds.base`, never this package nor another kind (the import contracts in
pyproject.toml hold them to it). A kind's facts are its own: its part of live state, of a change
(`Change.private`) and of an outcome (`Outcome.report`) are values it defines, and what a step
must know of it is a `ResourceKind` attribute or hook (`secrets_at`, `key_sets`, `to_list`,
`list_objects`, ...); tests/kinds/test_kinds.py checks that no step names a kind's fields.
"""

from __future__ import annotations

from reconciler.kinds import connection, ingestion_job, streaming_job, table
from reconciler.kinds.base import Fields, PlanContext, ResourceKind
from reconciler.kinds.registry import of, order, ordered, register

__all__ = ["Fields", "PlanContext", "ResourceKind", "connection", "ingestion_job", "of", "order",
           "ordered", "register", "streaming_job", "table"]  # fmt: skip
