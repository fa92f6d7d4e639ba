"""The emulator's state, in memory, optionally kept in a directory that survives a kill.

Durability: every acknowledged write is appended to a journal (one JSON line, fsync'd) before
the response is sent. At start-up the snapshot and the journal are replayed, a new snapshot is
written (temp file, fsync, rename, fsync of the directory) and the journal is emptied. A write
therefore costs one small append, not a rewrite of the whole state, and a killed emulator never
loses a write it acknowledged.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = ("connections", "tables", "jobs", "files")
SNAPSHOT, JOURNAL = "state.json", "journal.jsonl"


class Store:
    """Connections, tables and jobs by key, each a plain JSON-able dict."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.connections: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # insertion order is creation order
        self.files: dict[str, dict[str, Any]] = {}  # uploaded files' metadata, by name
        self.version = 0  # bumped by every change, so derived views can be cached
        # Told of every job put (the job) or deleted (None), so an index of jobs stays current.
        self.job_watcher: Callable[[str, dict[str, Any] | None], None] | None = None
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self._journal: Any = None
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._recover(data_dir)

    def collection(self, kind: str) -> dict[str, dict[str, Any]]:
        """One of the collections by name."""
        if kind not in KINDS:
            raise KeyError(kind)
        collection: dict[str, dict[str, Any]] = getattr(self, kind)
        return collection

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store a record durably; call while holding the lock."""
        self._log({"op": "put", "kind": kind, "key": key, "value": value})
        self.collection(kind)[key] = value
        self.version += 1
        if kind == "jobs" and self.job_watcher is not None:
            self.job_watcher(key, value)

    def delete(self, kind: str, key: str) -> None:
        """Remove a record durably; call while holding the lock."""
        self._log({"op": "delete", "kind": kind, "key": key})
        self.collection(kind).pop(key, None)
        self.version += 1
        if kind == "jobs" and self.job_watcher is not None:
            self.job_watcher(key, None)

    def _log(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            return
        self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _recover(self, data_dir: Path) -> None:
        snapshot, journal = data_dir / SNAPSHOT, data_dir / JOURNAL
        if snapshot.is_file():
            saved = json.loads(snapshot.read_text(encoding="utf-8"))
            for kind in KINDS:
                self.collection(kind).update(saved.get(kind, {}))
        if journal.is_file():
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a torn last line was never acknowledged
                target = self.collection(entry["kind"])
                if entry["op"] == "put":
                    target[entry["key"]] = entry["value"]
                else:
                    target.pop(entry["key"], None)
        state = {kind: self.collection(kind) for kind in KINDS}
        temporary = data_dir / (SNAPSHOT + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, snapshot)
        directory = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._journal = open(journal, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the store

    def close(self) -> None:
        """Close the journal."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
