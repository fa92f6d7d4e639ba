"""The on-disk cache of jobs in a terminal state, which never change: a plan reads each finished
job from Polaris once, then from here."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
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
    only the jobs it asks for, one at a time. The jobs a read adds are written, as they come,
    to an unnamed temporary file beside the cache, copied into the new cache when it is
    saved: only their ids are held (a plan of 10,000 held 6 MB more of their text until its
    read ended, when it held the most).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.loaded: dict[str, str] | None = None  # each job's JSON, read on first use
        self.dirty = False
        self.lock = threading.Lock()
        self.added: TextIO | None = None  # the jobs put since the cache was saved, a line each
        self.ids: set[str] = set()  # theirs
        self.unwritable = False  # that file cannot be made or written: jobs are kept here

    @property
    def entries(self) -> dict[str, str]:
        """Cached jobs by id, as JSON text (those the file held, and those put where there is
        no file to write them to)."""
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
        if job.get("executionStatus") not in TERMINAL_STATUSES:
            return
        job_id, text = str(job["id"]), json.dumps(without_users(job), separators=(",", ":"))
        entries = self.entries
        with self.lock:
            self.dirty = True
            if job_id in self.ids:
                return  # written already (a finished job never changes)
            added = self._added()
            if added is not None:
                try:
                    added.write(f"{json.dumps(job_id)}:{text}\n")
                except OSError:
                    self.unwritable = True  # what it holds is saved; the rest are kept here
                else:
                    self.ids.add(job_id)
                    entries.pop(job_id, None)  # the file's, if any, is older
                    return
            entries[job_id] = text

    def _added(self) -> TextIO | None:
        """The file the jobs put are written to (made on first use), if there can be one."""
        if self.path is None or self.unwritable:
            return None
        if self.added is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Open until the cache is saved (and closed there): no `with` can hold it.
                self.added = tempfile.TemporaryFile(  # noqa: SIM115
                    "w+", encoding="utf-8", dir=self.path.parent
                )
            except OSError:
                self.unwritable = True
        return self.added

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
        entries = self.entries
        with self.lock:  # a snapshot: an interrupted read's workers may still add
            added, self.added, ids, self.ids = self.added, None, self.ids, set()
            items = [(k, v) for k, v in entries.items() if k not in ids]
            self.dirty, self.unwritable = False, False
        temp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".jobs-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # A line at a time: the whole text at once was twice the entries again, at the
                # moment a plan of 10,000 jobs holds the most.
                handle.write(CACHE_HEADER + "\n")
                separator = ""
                if added is not None:
                    added.seek(0)
                    for line in added:
                        handle.write(separator + line.removesuffix("\n"))
                        separator = ",\n"
                for job_id, text in items:
                    handle.write(f"{separator}{json.dumps(job_id)}:{text}")
                    separator = ",\n"
                handle.write("\n" + CACHE_FOOTER)
            os.replace(temp, self.path)
            with self.lock:
                self.loaded = None  # read from the file saved when next asked
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
            if added is not None:  # a cache without a file keeps the jobs, as put does
                with contextlib.suppress(OSError, ValueError):
                    added.seek(0)
                    kept = _entries(itertools.chain([CACHE_HEADER + "\n"], added, [CACHE_FOOTER]))
                    with self.lock:
                        entries.update(kept)
        finally:
            if added is not None:
                with contextlib.suppress(OSError):
                    added.close()


CACHE_HEADER, CACHE_FOOTER = f'{{"format":{CACHE_FORMAT},"jobs":{{', "}}"


def _entries(lines: Iterator[str]) -> dict[str, str]:
    """The jobs of a cache file by id, as JSON text, each checked only when it is asked for.

    JSON text never holds a raw newline, so a file `save` wrote has one job a line, read one at
    a time; any other file of this format (as an older version wrote it) is decoded whole.
    """
    first = next(lines, "")
    if first != CACHE_HEADER + "\n":
        data = json.loads(first + "".join(lines))
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
