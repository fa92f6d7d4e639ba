"""Clocks for the emulator: the wall clock for demos, a manual one that tests move by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: job lifecycles become exact in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += timedelta(seconds=seconds)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in whole seconds, as Polaris writes a connection's or a table's timestamps
    (`"submittedOnTimestamp": "2022-10-27T21:04:03Z"` in
    tests/reference/polaris-s3-ingestion-guide.txt)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def job_timestamp(moment: datetime) -> str:
    """RFC 3339 with nine fractional digits, as the same guide shows a job's timestamps
    (`"createdTimestamp": "2022-10-28T21:36:36.547149211Z"`); jobs sort by them, so they keep
    the clock's microseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
