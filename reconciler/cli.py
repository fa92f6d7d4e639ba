"""Command-line interface: parses flags and calls one function per command."""

import click


@click.group()
def cli() -> None:
    """Manage Imply Polaris connections, tables and batch ingestion jobs as code."""


def main() -> None:
    """Console-script entry point."""
    cli()
