"""Click parameter types shared by the reconciler's commands and the emulator's.

A module of its own, importing only click, so that the CLI can declare its options without
loading the emulator, and the emulator can use them without knowing the reconciler.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float in a range that is also finite: click's FloatRange lets nan and inf through."""

    name = "number"  # what --help shows when an option names no metavar of its own

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number
