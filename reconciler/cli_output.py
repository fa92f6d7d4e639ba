"""The CLI's output streams: one redactor and one `echo` that every line on the terminal goes
through, the format asked for, logging to stderr, and the rendering of results and failures.

Only the CLI (`cli.py`, `cli_options.py` and this module) prints or reads the environment.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler import ci_output
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.manager import Terminated
from reconciler.model import ManifestError
from reconciler.output import Output
from reconciler.redact import Redactor
from reconciler.render import (
    MARKDOWN_LIMIT,
    Failed,
    PlanJson,
    PlanMarkdown,
    PlanText,
    render_apply,
    render_failure,
    render_problems,
)
from reconciler.validate import API_KEY_VARIABLE, Manifests

if TYPE_CHECKING:
    from reconciler.apply import ApplyInterrupted
    from reconciler.plan import Plan


@dataclass
class Stdout:
    """This run's stdout: the command and format asked for, and what was computed before a
    failure, so that a failure is reported there too and never leaves it blank."""

    command: str = "reconciler"
    fmt: str = "text"
    computed: dict[str, Any] = field(default_factory=dict)  # JSON keys shown beside the error
    printed: bool = False  # a result is on stdout: a JSON error would make it two documents
    no_color: bool = False  # --no-color

    @property
    def color(self) -> bool:
        """Colour text output: --no-color, then NO_COLOR, then FORCE_COLOR, then a terminal."""
        if self.no_color or os.environ.get("NO_COLOR"):  # set and not empty (no-color.org)
            return False
        return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()

    def reset(self, command: str, fmt: str) -> None:
        """Start a new run (tests run main many times in one process)."""
        self.__dict__.update(vars(Stdout(command, fmt)))


OUTPUT = Stdout()


# Environment variables whose values are credentials by their name's convention (GITHUB_TOKEN,
# CI_DEPLOY_TOKEN, AWS_SECRET_ACCESS_KEY, ...): hidden in every output even if nothing reads them.
CREDENTIAL_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY(_ID)?|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)

REDACT = Redactor()
ECHO_PIECE = 1 << 16  # characters written at a time, at least (see echo)
OUT = Output(REDACT)  # every format redacts, then escapes: reconciler/output.py


def echo(text: str, *, err: bool = False) -> None:
    """Print through the redactor: the only way this CLI writes to the terminal."""
    OUTPUT.printed |= not err
    text = REDACT(text)  # the whole text: a secret may straddle any place it could be cut
    # Colours only come from PlanText.paint; click would strip them where stdout is no terminal.
    color = OUTPUT.color or None
    # click.echo copies what it is given to add the newline, and the stream encodes it whole:
    # a long result (a plan of 10,000 jobs in JSON, 5 MB) goes a piece at a time, each cut after
    # a newline, which no colour's escape sequence holds.
    start = 0
    while len(text) - start > ECHO_PIECE:
        end = text.find("\n", start + ECHO_PIECE) + 1 or len(text)
        click.echo(text[start:end], err=err, color=color, nl=False)
        start = end
    click.echo(text[start:] if start else text, err=err, color=color)


def progress(message: str) -> None:
    """A progress line of a run, on stderr as one terminal line."""
    echo(OUT.terminal(message), err=True)


def error(text: str) -> None:
    """A message to stderr: redacted, and one terminal line per line of the message."""
    echo("\n".join(OUT.terminal(line) for line in REDACT(text).split("\n")), err=True)


def hide_credentials(environ: Mapping[str, str]) -> None:
    """Hide the API key and every credential-named variable before anything can be printed."""
    REDACT.add_api_key(environ.get(API_KEY_VARIABLE, "").strip())
    REDACT.add(value for name, value in environ.items() if CREDENTIAL_NAME.search(name))


class WatchedEnvironment(Mapping[str, str]):
    """The environment as manifests see it: every value a manifest reads is hidden at once.

    So a value is redacted before validation can echo it in an error, whatever the error is.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __getitem__(self, name: str) -> str:
        value = self.environ[name]
        REDACT.add([value])
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # The whole entry, exception text included, is redacted once it is formatted.
        text = REDACT(super().format(record))
        return "\n".join(OUT.terminal(line) for line in text.split("\n"))


def configure_logging() -> None:
    """Log records of the reconciler to stderr, redacted; warnings unless -v asks for more."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(name)s: %(message)s"))
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


class Failure(ReconcilerError):
    """A user-facing failure: one message, exit status 1, no traceback."""

    code = ErrorCode.USAGE


class ConfigFailure(Failure):
    """reconciler.yaml, --target or --var cannot be used as given."""

    code = ErrorCode.CONFIG


class ManifestFailure(Failure):
    """Manifests that do not validate: nothing was sent."""

    code = ErrorCode.MANIFEST

    def __init__(self, message: str, problems: Sequence[ManifestError]) -> None:
        super().__init__(message)
        self.problems = problems


class UnsafeFailure(Failure):
    """apply refused a plan that needs a flag the user has not given."""

    code = ErrorCode.UNSAFE_PLAN


# What to do about a failure of each kind: the last words of a failed run's Markdown.
HINTS = {
    ErrorCode.MANIFEST: "fix the manifests where the problems below say, then run again; "
    "`reconciler validate` finds the same problems without Polaris.",
    ErrorCode.CONFIG: "fix reconciler.yaml, --target or --var as the error says, then run again.",
    ErrorCode.API: "check what the error names: the URL and project (the target's, or "
    "POLARIS_URL and POLARIS_PROJECT_ID) or the API key (POLARIS_API_KEY, or the target's "
    "apiKeyEnv), then run again.",
    ErrorCode.PROJECT_NOT_FOUND: "check the project id of the target (or POLARIS_PROJECT_ID).",
    ErrorCode.UNSAFE_PLAN: "review the plan; if it is what you want, run again with the flag "
    "the error names.",
    ErrorCode.STALE_PLAN: "run `reconciler plan --out FILE` again, review it and apply that file.",
    ErrorCode.LOCKED: "another apply holds the project lock: wait for it to finish, or, if it "
    "died, remove the lock with `reconciler unlock`.",
    ErrorCode.INTERRUPTED: "the run was stopped; run it again to finish.",
    ErrorCode.INTERNAL: "this is a bug in the reconciler: run again with --debug and report it.",
}
DEFAULT_HINT = "fix what the error names, then run again (--debug shows more)."


# Rendering results and failures ------------------------------------------------------------------


def write_junit(path: str | None, xml: Callable[[], str]) -> None:
    """Write the JUnit XML `xml` builds, only when --junit asks for it (it imports xml.etree)."""
    if path is None:
        return
    try:
        Path(path).write_text(xml(), encoding="utf-8")  # redacted as it was built
    except OSError as failed:
        raise Failure(f"cannot write --junit {path}: {failed.strerror}") from None


def locations(manifests: Manifests) -> ci_output.Locations:
    return {(str(r.kind), r.name): r.location for r in manifests.resources}


def print_problems(problems: list[ManifestError], fmt: str, *, valid: bool) -> None:
    if fmt == "github":
        if problems:
            echo("\n".join(ci_output.validate_annotations(problems, REDACT)))
    elif fmt in ("json", "markdown"):
        echo("\n".join(render_problems(problems, fmt, valid=valid, redact=REDACT)))
        return
    else:
        for line in render_problems(problems, fmt, valid=valid, redact=REDACT):
            echo(line, err=valid)  # warnings of a valid run are logs, not results
    if not valid:
        count = sum(1 for p in problems if p.severity == "error")
        echo(f"{count} error(s) found.", err=True)


def render_plan(plan: Plan, fmt: str, limit: int = MARKDOWN_LIMIT) -> str:
    if fmt == "json":
        return PlanJson(REDACT).render(plan)
    if fmt == "markdown":
        return PlanMarkdown(limit, redact=REDACT).render(plan)
    return PlanText(color=OUTPUT.color, redact=REDACT).render(plan)


def click_message(failed: click.ClickException) -> str:
    lines = []
    if isinstance(failed, click.UsageError) and failed.ctx is not None:
        lines += [
            failed.ctx.get_usage(),
            f"Try '{failed.ctx.command_path} {failed.ctx.help_option_names[0]}' for help.",
            "",
        ]
    return "\n".join([*lines, f"Error: {failed.format_message()}"])


def report_failure(code: ErrorCode, message: str, failure: BaseException | None = None) -> None:
    """A failure on stdout, in the format asked for: a pipeline never gets a blank result."""
    if OUTPUT.fmt == "json" and OUTPUT.printed:
        return
    if OUTPUT.fmt == "text" and same_file(sys.stdout, sys.stderr):
        return  # a terminal (or 2>&1) shows stderr's error already: not twice
    failed = Failed(
        command=OUTPUT.command,
        code=str(code),
        message=message,
        hint=HINTS.get(code, DEFAULT_HINT),
        problems=failure.problems if isinstance(failure, ManifestFailure) else (),
        status=failure.status if isinstance(failure, ReconcilerError) else None,
        computed=OUTPUT.computed,
    )
    click.echo(REDACT(render_failure(failed, OUTPUT.fmt, REDACT)))


def same_file(one: Any, other: Any) -> bool:
    """Whether two streams write to the same file, terminal or pipe."""
    try:
        return os.path.sameopenfile(one.fileno(), other.fileno())
    except (AttributeError, OSError, ValueError):  # a stream with no file (a test's StringIO)
        return False


def interrupted(stopped: ApplyInterrupted, fmt: str, waited: bool) -> NoReturn:
    """Say what an interrupted apply did and what still runs, then end the run as interrupted."""
    result = stopped.result
    running = [
        (o, what) for o in result.outcomes
        if o.report is not None and (what := o.report.running()) is not None
    ]  # fmt: skip
    shown = ", ".join(f"{what} for {o.change.ref}" for o, what in running[:5])
    parts = [f"{len(running)} job(s) still running in Polaris" + (f": {shown}" if running else "")]
    if len(running) > 5:
        parts[0] += f" and {len(running) - 5} more"
    if result.count("skipped"):
        parts.append(f"{result.count('skipped')} change(s) not attempted")
    message = (
        f"interrupted: {'stopped waiting; ' if waited else ''}{'; '.join(parts)}. The project "
        "lock was released; run apply again to finish"
    )
    if fmt == "json":
        OUTPUT.computed.update(json.loads(render_apply(result, "json")))
    elif fmt == "text":
        echo(render_apply(result, "text", redact=REDACT))
    raise (Terminated if isinstance(stopped.cause, Terminated) else KeyboardInterrupt)(message)


def interrupt_exit(interrupt: KeyboardInterrupt, process: bool) -> NoReturn:
    """Exit as an interrupted run: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal).

    A read interrupted with requests in flight leaves worker threads waiting for their answers
    (live.read_live stops sending, but a socket cannot be cancelled), and Python joins such
    threads before it exits: up to the client's timeout after Ctrl-C. A process (`process`:
    the console script, not a caller of main with its own argv) exits at once instead, once
    what it says is flushed. Writes are not cut short this way: apply waits for the writes in
    flight before it raises, so by now no worker of apply's is left.
    """
    message = str(interrupt) or "interrupted"
    error(message[0].upper() + message[1:] + ("" if str(interrupt) else "."))
    report_failure(ErrorCode.INTERRUPTED, message)
    code = 143 if isinstance(interrupt, Terminated) else 130
    if process:
        leave(code, abandon_workers=True)
    sys.exit(code)


def leave(code: int, *, abandon_workers: bool = False) -> NoReturn:
    """End the process (the console script) with `code`, once what it said is flushed and its
    exit handlers have run, without tearing the interpreter down.

    Teardown frees every object one at a time: after a plan of 10,000 live jobs that took 60 to
    150 ms, longer than making the plan, for memory the system takes back at once. Python's
    normal exit is kept where it does more than that: while a thread it would wait for still
    runs, when stdout cannot be flushed (a closed pipe: Python reports it as it always does),
    and on an interpreter without `atexit._run_exitfuncs` (CPython's, since 3.0, undocumented).
    `abandon_workers` (an interrupted read, `interrupt_exit`): it ends without those threads, and
    without Python's exit in any case.
    """
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if not abandon_workers and (run_exit_handlers is None or _workers_left()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream
        if not abandon_workers:
            sys.exit(code)
    # logging's shutdown, coverage's data, and any a caller registered
    (run_exit_handlers or logging.shutdown)()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _workers_left() -> bool:
    """Whether a thread Python would wait for at exit is still running."""
    main_thread = threading.main_thread()
    return any(
        thread is not main_thread and not thread.daemon and thread.is_alive()
        for thread in threading.enumerate()
    )
