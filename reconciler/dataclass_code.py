"""The code `@dataclass` compiles for its methods, kept between runs of the command.

A dataclass writes the source of its methods (`__init__`, `__repr__`, `__eq__`, and for a frozen
one `__setattr__`, `__delattr__` and `__hash__`) and compiles it when its module is imported: the
modules a plan imports make about 450 such functions, 20 to 30 ms of every start on CPython 3.11
(`compile` is nearly all of it). The source is the same run after run, so the command keeps what
`compile` made of each one in the user cache directory, as Python keeps a module's bytecode, and
reads it back the next time.

How: CPython's `dataclasses` runs each method's source with `exec(text, globals, namespace)`, and
finds `exec` in its module's globals before the builtins. `install` puts there an `exec` that
looks the text up first, and runs the code compiled from it; running that code is what `exec` of
the text does, so every class is exactly what it would be. Where `dataclasses` is written
otherwise (another interpreter, another release), nothing changes but the speed: each text it
runs is still run as `exec` runs it, or the name is never looked up and the cache stays empty.

Only the console script installs it (`reconciler.entry`): a program that imports the package keeps
its `dataclasses` as it was. The cache is written where Python would write bytecode (not with
PYTHONDONTWRITEBYTECODE set), one file per Python release, whole or not at all.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import sys
import types
from pathlib import Path
from typing import Any

from reconciler import marshalled

# Entries a file keeps at most; past that (dataclasses edited again and again), the file starts
# over with the entries of the run that writes it.
MAX_ENTRIES = 4_000


class _Codes:
    """Code compiled from each text a dataclass ran: read from the file, or compiled here.

    Each entry read is let go once used (about 1 MB for the modules a plan imports, held to
    the end otherwise): a text runs once a process, unless two dataclasses generate the same
    one, which is then compiled again, and known by its hash not to be new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.codes = self._read()
        self.used: set[int] = set()  # the hashes of the texts taken from `codes`
        self.made: dict[str, types.CodeType] = {}  # compiled here, not in the file

    def _read(self) -> dict[str, types.CodeType]:
        loaded = marshalled.load(self.path)
        if not isinstance(loaded, dict):
            return {}
        return {
            text: code
            for text, code in loaded.items()
            if isinstance(text, str) and isinstance(code, types.CodeType)
        }

    def exec(
        self, source: Any, globals: dict[str, Any] | None = None, locals: Any = None,
        **options: Any,
    ) -> None:  # fmt: skip
        """`exec`, with the code of a text compiled once across runs."""
        if type(source) is str:
            code = self.codes.pop(source, None)
            if code is not None:
                self.used.add(hash(source))
            else:
                # dont_inherit: compiled as `exec` compiles the text for `dataclasses`, without
                # this module's `from __future__ import annotations`
                code = compile(source, "<string>", "exec", dont_inherit=True)
                if hash(source) not in self.used:
                    self.made[source] = code
            source = code
        builtins.exec(source, globals, locals, **options)

    def save(self) -> None:
        """Add what this run compiled to the file (a read-only home: not at all)."""
        if not self.made or sys.dont_write_bytecode:
            return
        codes = self._read()
        marshalled.save(
            self.path, {**codes, **self.made} if len(codes) < MAX_ENTRIES else self.made
        )


def install(directory: Path) -> None:
    """Keep dataclass code in `directory` from now on; saved when the process exits."""
    tag = sys.implementation.cache_tag or "unknown"
    release = ".".join(map(str, sys.version_info[:3]))
    codes = _Codes(directory / f"{tag}-{release}.marshal")
    vars(dataclasses)["exec"] = codes.exec  # shadows the builtin for that module alone
    atexit.register(codes.save)
