"""The `reconciler` command, as the console script and `python -m reconciler` start it."""

from __future__ import annotations

from pathlib import Path


def main() -> None:
    """Keep the code dataclasses compile between runs (`dataclass_code`), before the first module
    that declares one is imported; then run the command line."""
    import platformdirs

    from reconciler import dataclass_code

    cache = Path(platformdirs.user_cache_dir("polaris-reconciler"))
    dataclass_code.install(cache / "dataclasses")

    from reconciler.cli import main as command_line

    command_line()
