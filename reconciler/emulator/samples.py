"""Sample data in the S3 guide's Koalas shape, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CITIES = ("Adelaide", "Brisbane", "Canberra", "Darwin", "Hobart", "Melbourne", "Perth", "Sydney")


def koalas_rows(
    count: int, seed: int = 12, start: str = "2026-11-01T00:00:00"
) -> Iterator[dict[str, Any]]:
    """`count` session events: timestamp (ISO 8601, whole seconds), city, session, session_length."""
    rng = random.Random(seed)
    origin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    for _ in range(count):
        moment = origin + timedelta(seconds=rng.randrange(0, 3 * 86400))
        yield {
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "city": rng.choice(CITIES),
            "session": f"S{rng.randrange(0, 40):03d}",
            "session_length": rng.randrange(5, 5000),
        }


def write_nd_json(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Write rows as newline-delimited JSON (gzip when the name ends in .gz); returns the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path.stat().st_size
