"""`plan --preflight`: ask Polaris to test the connections that new jobs will read through."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reconciler.client import PolarisError


@dataclass(frozen=True)
class ConnectionTest:
    """Polaris's answer to `POST /connections/{name}/test`, or why it was not asked."""

    connection: str
    result: str  # "passed", "failed" or "not tested"
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """The answer as plan JSON shows it."""
        return {"connection": self.connection, "result": self.result, "message": self.message}

    def __str__(self) -> str:
        return f"connection {self.connection}: {self.result}" + (
            f" ({self.message})" if self.message else ""
        )


def check_connections(
    test: Callable[[str], None],
    names: Iterable[str],
    live: Mapping[str, Any],
    changing: Iterable[str] = (),
    parallelism: int = 8,
) -> tuple[ConnectionTest, ...]:
    """Test each named connection that exists; one that does not yet is created by apply."""
    changing = set(changing)

    def one(name: str) -> ConnectionTest:
        if name not in live:
            return ConnectionTest(name, "not tested", "created by this apply; test it after")
        note = "; tested as it is now, before apply changes it" if name in changing else ""
        try:
            test(name)  # PolarisError when the check fails
        except PolarisError as error:
            return ConnectionTest(name, "failed", f"{error}{note}")
        return ConnectionTest(name, "passed", note.removeprefix("; "))

    ordered = sorted(set(names))
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        return tuple(pool.map(one, ordered))
