"""The `reconciler` command, as the console script and `python -m reconciler` start it."""

from __future__ import annotations


def main() -> None:
    """Keep the code dataclasses compile between runs (`dataclass_code`), before the first module
    that declares one is imported; then run the command line."""
    from reconciler import dataclass_code, marshalled

    dataclass_code.install(marshalled.cache_directory() / "dataclasses")

    from reconciler.cli import main as command_line

    command_line()
