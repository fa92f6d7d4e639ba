"""The on-disk cache of jobs in a terminal state, which never change: a plan reads each finished
job from Polaris once, then from here."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from reconciler.kinds.ingestion_job.live_job import TERMINAL_STATUSES

log = logging.getLogger("reconciler.live")

CACHE_FORMAT = 2  # 2: user fields dropped (format 1 files may hold pieces of the API key)
# Who created or changed a resource. Polaris names an API key's user after the key itself
# (`api-key-pok_vipgj...bjjvyo` holds 15 of its characters), so these are never cached.
USER_FIELDS = frozenset({"createdBy", "lastModifiedBy", "createdByUser", "modifiedByUser"})


def without_users(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job without its user fields, also in the `spec` it echoes."""
    kept = {key: value for key, value in job.items() if key not in USER_FIELDS}
    if isinstance(kept.get("spec"), Mapping):
        kept["spec"] = {k: v for k, v in kept["spec"].items() if k not in USER_FIELDS}
    return kept


class JobCache:
    """Details of jobs in a terminal state, on disk; safe to delete, never holds secrets.

    A cache that cannot be read or written is a warning, never a failure: the plan reads
    everything from Polaris instead. Each job is held as its JSON text, a tenth of its decoded
    size, and the file has one job a line (still one JSON document), so that a read decodes
    only the jobs it asks for, one at a time.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.loaded: dict[str, str] | None = None  # each job's JSON, read on first use
        self.dirty = False
        self.lock = threading.Lock()

    @property
    def entries(self) -> dict[str, str]:
        """Cached jobs by id, as JSON text."""
        with self.lock:
            if self.loaded is None:
                self.loaded = self._load()
            return self.loaded

    def _load(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            if self.path.is_file():
                with self.path.open(encoding="utf-8") as lines:
                    return _entries(lines)
        except (OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
            pass
        else:
            return {}
        log.warning("ignoring the unreadable job cache %s", self.path)
        return {}

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The cached job, if any (an entry that cannot be read is none: the job is read again)."""
        text = self.entries.get(job_id)
        try:
            job = json.loads(text) if text is not None else None
        except ValueError:
            return None
        return job if isinstance(job, dict) and str(job.get("id")) == job_id else None

    def put(self, job: Mapping[str, Any]) -> None:
        """Remember a job whose status is terminal (and so will never change); thread-safe."""
        if job.get("executionStatus") in TERMINAL_STATUSES:
            text = json.dumps(without_users(job), separators=(",", ":"))
            entries = self.entries
            with self.lock:
                entries[str(job["id"])] = text
                self.dirty = True

    def close(self) -> None:
        """Save what was learnt (the cache is used as a context manager around a read), then let
        go of the entries: a read keeps what it needs of each job, and a later one reads the file
        again. A cache without a file keeps them, having nowhere else to find them."""
        self.save()
        if self.path is not None:
            with self.lock:
                self.loaded = None

    def save(self) -> None:
        """Write the cache atomically, so a killed run never leaves a torn file."""
        if self.path is None or not self.dirty:
            return
        temp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".jobs-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # A line at a time: the whole text at once was twice the entries again, at the
                # moment a plan of 10,000 jobs holds the most.
                handle.write(CACHE_HEADER + "\n")
                separator = ""
                entries = self.entries
                with self.lock:  # a snapshot: an interrupted read's workers may still add
                    items = list(entries.items())
                for job_id, text in items:
                    handle.write(f"{separator}{json.dumps(job_id)}:{text}")
                    separator = ",\n"
                handle.write("\n" + CACHE_FOOTER)
            os.replace(temp, self.path)
        except OSError as error:
            log.warning(
                "cannot write the job cache %s (%s); running without it (or pass --no-cache)",
                self.path,
                error.strerror or error,
            )
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.remove(temp)
            self.path = None
        self.dirty = False


CACHE_HEADER, CACHE_FOOTER = f'{{"format":{CACHE_FORMAT},"jobs":{{', "}}"


def _entries(lines: TextIO) -> dict[str, str]:
    """The jobs of a cache file by id, as JSON text, each checked only when it is asked for.

    JSON text never holds a raw newline, so a file `save` wrote has one job a line, read one at
    a time; any other file of this format (as an older version wrote it) is decoded whole.
    """
    first = lines.readline()
    if first != CACHE_HEADER + "\n":
        data = json.loads(first + lines.read())
        if data.get("format") != CACHE_FORMAT or not isinstance(data["jobs"], dict):
            return {}
        jobs: dict[str, Any] = data["jobs"]
        return {str(k): json.dumps(v, separators=(",", ":")) for k, v in jobs.items()}
    decoder, entries = json.JSONDecoder(), dict[str, str]()
    for line in lines:
        if line == CACHE_FOOTER:
            return entries
        if line == "\n":
            continue
        job_id, end = decoder.raw_decode(line)
        if not isinstance(job_id, str) or line[end] != ":":
            raise ValueError("not a line of the job cache")
        entries[job_id] = line[end + 1 :].rstrip("\n").removesuffix(",")
    raise ValueError("the job cache ends early")  # a torn file
