"""Sample data for the demo, the tests and the benchmarks, in the Koalas shape of
tests/reference/polaris-s3-ingestion-guide.txt."""

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


def web_request_lines(day: str, count: int, seed: int = 7) -> list[str]:
    """CSV lines (header first) in the shape of manifests/weblogs: one day of edge requests."""
    rng = random.Random(f"{seed}-{day}")
    lines = ["ts,service,method,path,status,bytes,latency_ms"]
    origin = datetime.fromisoformat(day).replace(tzinfo=UTC)
    for _ in range(count):
        moment = origin + timedelta(seconds=rng.randrange(0, 86400))
        status = rng.choice((200, 200, 200, 204, 301, 404, 500, 0))  # 0: a probe, filtered out
        lines.append(
            f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')},{rng.choice(('api', 'web', 'cdn'))},"
            f"{rng.choice(('get', 'post'))},/{rng.choice(('', 'login', 'cart', 'search'))},"
            f"{status},{rng.randrange(100, 50000)},{rng.uniform(1, 900):.1f}"
        )
    return lines


def audit_events(count: int, seed: int = 3) -> Iterator[dict[str, Any]]:
    """Audit events in the shape of manifests/weblogs' audit job."""
    rng = random.Random(seed)
    origin = datetime(2026, 10, 1, tzinfo=UTC)
    for _ in range(count):
        moment = origin + timedelta(seconds=rng.randrange(0, 90 * 86400))
        yield {
            "occurredAt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": rng.choice(("alice", "bob", "carol")),
            "action": rng.choice(("login", "read", "export")),
            "outcome": rng.choice(("allowed", "denied")),
        }
