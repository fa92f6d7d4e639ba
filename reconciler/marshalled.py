"""Code kept between runs in the user cache directory (compiled schema checks, dataclass
methods): a value marshalled to a file whole or not at all, and read back only if intact; and
where that directory is, which the job cache shares."""

from __future__ import annotations

import contextlib
import marshal
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_directory() -> Path:
    """The reconciler's directory in the user's cache directory, on every OS (platformdirs)."""
    import platformdirs  # deferred: a run that reads and writes no cache never needs it

    return Path(platformdirs.user_cache_dir("polaris-reconciler"))


def load(path: Path) -> Any:
    """What `save` wrote to `path`; None when there is no such file or it is not intact."""
    with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
        return marshal.loads(path.read_bytes())
    return None


def save(path: Path, value: Any) -> None:
    """Write `value` to `path`, replacing it whole, even with runs in parallel; where the
    directory cannot be written (a read-only home), nothing: the next run compiles again."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(marshal.dumps(value))
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
