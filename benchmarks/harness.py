"""Interleaved A/B timing of whole processes, reported as a skeptic would accept it.

Every comparison runs the tool and its baseline as whole processes (start-up and imports
included), alternately: pair i runs tool then baseline when i is even and baseline then tool when
i is odd, so a machine that slows down or speeds up during the run weighs on both sides alike.
Each pair gives a ratio (tool / baseline); a row reports the median ratio with its minimum and
maximum, beside the median seconds of each side and the goal. A `prepare` hook runs before every
single process, so a cache is cold (or warm) on both sides alike; the row says which.

`make bench` prints every row collected here as one table at the end (`table()`), with the load
average of the machine, because a figure without its load is not a figure.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))


@dataclass(frozen=True)
class Command:
    """One contender: the argv of a whole process and its environment."""

    argv: Sequence[str]
    env: Mapping[str, str]
    ok_codes: tuple[int, ...] = (0,)
    prepare: Callable[[], None] | None = None  # runs before each process, untimed


@dataclass(frozen=True)
class Row:
    """One figure of the summary table: the tool beside its baseline, with the goal."""

    figure: str
    tool: str
    baseline: str
    caches: str
    tool_seconds: list[float]
    baseline_seconds: list[float]
    goal_ratio: float | None = None
    goal_seconds: float | None = None
    at_least: bool = False  # the goal is a floor on the ratio (throughput), not a ceiling
    notes: list[str] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Per-pair ratios, tool over baseline."""
        return [t / b for t, b in zip(self.tool_seconds, self.baseline_seconds, strict=True)]

    def met(self) -> bool:
        """Whether the median figures meet every goal the row has."""
        ratio = statistics.median(self.ratios)
        seconds = statistics.median(self.tool_seconds)
        ok = True
        if self.goal_ratio is not None:
            ok &= ratio >= self.goal_ratio if self.at_least else ratio <= self.goal_ratio
        if self.goal_seconds is not None:
            ok &= seconds <= self.goal_seconds
        return ok

    def goal(self) -> str:
        """The goal as the table prints it."""
        parts = []
        if self.goal_seconds is not None:
            parts.append(f"<= {self.goal_seconds:g} s")
        if self.goal_ratio is not None:
            parts.append(f"{'>=' if self.at_least else '<='} {self.goal_ratio:g}x")
        return " and ".join(parts) or "-"


@dataclass(frozen=True)
class Absolute:
    """A figure with a goal of its own and no baseline (peak memory, say)."""

    figure: str
    value: str
    caches: str
    goal: str
    met: bool


ROWS: list[Row | Absolute] = []


def absolute(figure: str, value: str, *, caches: str, goal: str, met: bool) -> Absolute:
    """Record and print a figure that has a goal but no baseline."""
    row = Absolute(figure, value, caches, goal, met)
    ROWS.append(row)
    print(f"{figure}: {value}; caches: {caches}; goal {goal}: {'met' if met else 'NOT MET'}")
    return row


def spread(values: Sequence[float], unit: str = "") -> str:
    """`median (min-max)` of a series, two decimals."""
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f}{unit})"


def seconds(command: Command) -> float:
    """Wall time of one whole process; it must exit with one of its accepted codes."""
    if command.prepare is not None:
        command.prepare()
    began = time.perf_counter()
    done = subprocess.run(list(command.argv), env=dict(command.env), capture_output=True)
    elapsed = time.perf_counter() - began
    if done.returncode not in command.ok_codes:
        raise SystemExit(
            f"{' '.join(command.argv[:4])} exited {done.returncode}:\n"
            f"{done.stdout.decode(errors='replace')[-2000:]}\n"
            f"{done.stderr.decode(errors='replace')[-2000:]}"
        )
    return elapsed


def compare(
    figure: str,
    tool: Command,
    baseline: Command,
    *,
    tool_label: str,
    baseline_label: str,
    caches: str,
    goal_ratio: float | None = None,
    goal_seconds: float | None = None,
    at_least: bool = False,
    pairs: int = PAIRS,
    timer: Callable[[Command], float] = seconds,
) -> Row:
    """Run `pairs` interleaved pairs, record the row for the summary, print it, and return it."""
    tool_times: list[float] = []
    baseline_times: list[float] = []
    for i in range(pairs):
        if i % 2 == 0:
            tool_times.append(timer(tool))
            baseline_times.append(timer(baseline))
        else:
            baseline_times.append(timer(baseline))
            tool_times.append(timer(tool))
    row = Row(
        figure, tool_label, baseline_label, caches, tool_times, baseline_times,
        goal_ratio, goal_seconds, at_least,
    )  # fmt: skip
    ROWS.append(row)
    print(line(row), flush=True)
    return row


def record(row: Row) -> Row:
    """Add a row measured some other way (a throughput pair, say) to the summary."""
    ROWS.append(row)
    print(line(row), flush=True)
    return row


def line(row: Row) -> str:
    """One row as a sentence, printed as soon as it is measured."""
    return (
        f"{row.figure}: {row.tool} {spread(row.tool_seconds, ' s')}; {row.baseline} "
        f"{spread(row.baseline_seconds, ' s')}; ratio {spread(row.ratios, 'x')} over "
        f"{len(row.ratios)} interleaved pairs; caches: {row.caches}; goal {row.goal()}: "
        f"{'met' if row.met() else 'NOT MET'}"
    )


def table(rows: Sequence[Row | Absolute] = ROWS) -> str:
    """The summary as a Markdown table, with the machine's load average."""
    one, five, fifteen = os.getloadavg()
    out = [
        f"Load average at the end: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores.",
        "",
        "| figure | tool | baseline | ratio median (min-max) | caches | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if isinstance(row, Absolute):
            out.append(
                f"| {row.figure} | {row.value} | - | - | {row.caches} | {row.goal} | "
                f"{'yes' if row.met else '**no**'} |"
            )
            continue
        out.append(
            f"| {row.figure} | {row.tool}: {spread(row.tool_seconds, ' s')} | "
            f"{row.baseline}: {spread(row.baseline_seconds, ' s')} | "
            f"{spread(row.ratios, 'x')} | {row.caches} | {row.goal()} | "
            f"{'yes' if row.met() else '**no**'} |"
        )
    return "\n".join(out)
