"""Command-line interface: turns flags into a run's typed options, runs it and renders the result.

Each command reads its flags (declared in `cli_options.py`), asks a `Manager` (`manager.py`, which
owns every run's steps and safety) and renders what comes back. Only the CLI prints, reads the
environment or exits. Exit statuses follow the README (Commands): usage errors are 1 (not click's
2), so that 2 always means "changes or drift".
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, ParamSpec

import click

from reconciler import __version__, ci_output, marshalled
from reconciler.cli_options import (
    CI_FORMATS,
    Target,
    api_key,
    apply_flags,
    client,
    drift_flags,
    global_options,
    import_flags,
    lock_options,
    plan_flags,
    schema_flags,
    unlock_flags,
    validate_flags,
    validation_scopes,
)
from reconciler.cli_output import (
    OUT,
    OUTPUT,
    REDACT,
    Failure,
    ManifestFailure,
    UnsafeFailure,
    WatchedEnvironment,
    click_message,
    configure_logging,
    echo,
    error,
    hide_credentials,
    interrupt_exit,
    interrupted,
    leave,
    locations,
    print_problems,
    progress,
    render_plan,
    report_failure,
    write_junit,
)
from reconciler.config import DEFAULT_PATHS
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.manager import (
    ApplyRun,
    Destination,
    DriftRun,
    ImportRun,
    Loader,
    LockOptions,
    Manager,
    OperateRun,
    PlanRun,
    Scope,
    StalePlan,
    UnlockRun,
    ValidateRun,
    holder_of,
    requests_of,
)
from reconciler.manifest import gc_paused
from reconciler.model import KIND_ORDER, Kind, ManifestErrors
from reconciler.plan import Plan, UnsafePlan
from reconciler.ports import Operation
from reconciler.render import (
    MARKDOWN_LIMIT,
    render_apply,
    render_drift,
    render_problems,
    render_requests,
    summary_sentence,
)
from reconciler.validate import Manifests
from reconciler.values import Allowances, PlanOptions

P = ParamSpec("P")


class _Run:
    """Whether this run is the process (the console script), which ends with its command."""

    is_process = False
    kept: ClassVar[list[object]] = []

    @classmethod
    def ends_with(cls, *made: object) -> None:
        """Keep what the command made until the process ends (`cli_output.leave`), when the
        system takes its memory back at once: freed as the command returned, one object at a
        time, a plan of 1,000 jobs over 10,000 live ones took 10 ms. A caller's run keeps
        nothing."""
        if cls.is_process:
            cls.kept.extend(made)


# httpx/__init__.py imports its own command-line client (`httpx._main`: click, rich and pygments,
# about 40 ms of every start) whenever those are installed, and falls back to a stub `main` when
# that import raises ImportError. This program never runs httpx's client, so it makes the import
# fail at once (a None in sys.modules) before any command imports httpx. Only the `reconciler`
# program does this: the `httpx` command, and a library user of reconciler.client, get httpx whole.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class _Commands(click.Group):
    """The command group; the emulator's command is imported only when it is asked for."""

    LAZY: ClassVar[dict[str, str]] = {"emulator": "reconciler.emulator.command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            module = importlib.import_module(self.LAZY[cmd_name])
            self.add_command(global_options(getattr(module, cmd_name)))
        return super().get_command(ctx, cmd_name)


@global_options
@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message="%(prog)s %(version)s")
def cli() -> None:
    """Manage Imply Polaris connections, tables and batch ingestion jobs as code."""


# The manager of a run: manifests read through the redactor, the client of --url and --project --


def _loader() -> Loader:
    """Manifests read through the redactor: every environment value they read is hidden at once."""
    return Loader(WatchedEnvironment(os.environ))


def _manifests(paths: Sequence[str], target: Target, fmt: str) -> Manifests:
    """Validated manifests, their warnings shown; their errors shown, then a ManifestFailure."""
    scope = target.scope
    if scope.target is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(scope.variables.items())) or "none"
        echo(f"Target {scope.target.name}: project {target.project} at {target.url}; vars: {shown}", err=True)  # fmt: skip
    try:
        manifests = _loader()(paths, scope, offline=False)
    except ManifestErrors as failed:
        for line in render_problems(failed.errors, "text", valid=False, redact=REDACT):
            echo(line, err=True)
        if fmt == "github":  # so that plan and drift in CI also mark the lines of the diff
            echo("\n".join(ci_output.validate_annotations(failed.errors, REDACT)))
        count = sum(e.severity == "error" for e in failed.errors)
        raise ManifestFailure(
            f"{count} manifest error(s); nothing was sent", failed.errors
        ) from None
    REDACT.add(manifests.secrets)
    for line in render_problems(manifests.warnings, "text", valid=True, redact=REDACT):
        echo(line, err=True)
    return manifests


def _manager(target: Target, fmt: str = "text") -> Manager:
    """The manager of one run: the API key read before any manifest (so no manifest error can
    show it), the client of `target`, the job cache of the user, progress to stderr."""
    key = functools.cache(lambda: api_key(target))

    def load(paths: Sequence[str], scope: Scope, *, offline: bool) -> Manifests:
        key()
        if not offline:  # a client follows: its TLS context is made while the manifests validate
            from reconciler.transport import warm_tls_context  # defers httpx (validate needs none)

            warm_tls_context()
        return _manifests(paths, target, fmt)

    return Manager(
        connect=lambda: client(target, key()), load=load, scope=target.scope,
        parallelism=target.parallelism,
        cache_root=None if target.no_cache else marshalled.cache_directory(),
        progress=progress, destination=Destination(target.url, target.project),
    )  # fmt: skip


# Commands ----------------------------------------------------------------------------------------


@cli.command(short_help="Check manifests offline: schema and references.")
@validate_flags
@global_options
def validate(
    paths: tuple[str, ...], fmt: str, junit: str | None, config_file: str | None,
    target_name: str | None, var: tuple[str, ...],
) -> None:  # fmt: skip
    """Check manifests offline: YAML, JSON Schema and cross-document references.

    With a reconciler.yaml and neither --target nor PATHs, every target is checked.
    """
    try:
        scopes = validation_scopes(paths, config_file, target_name, var)
    except ManifestErrors as failed:
        print_problems(failed.errors, fmt, valid=False)
        errors = failed.errors
        write_junit(junit, lambda: ci_output.validate_junit([], errors, REDACT))
        sys.exit(1)
    checked = Manager(load=_loader()).validate(ValidateRun(scopes, paths))
    problems = checked.problems
    write_junit(junit, lambda: ci_output.validate_junit(checked.files, problems, REDACT))
    print_problems(problems, fmt, valid=checked.ok)
    if not checked.ok:
        sys.exit(1)
    if fmt in ("text", "github"):
        for scope, manifests in checked.valid:
            counts = {kind: len(manifests.of_kind(kind)) for kind in KIND_ORDER}
            summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
            where = f" for target {scope.target.name}" if scope.target else ""
            echo(f"Valid{where}: {len(manifests.resources)} resources ({summary}).")


def collector_paused(command: Callable[P, None]) -> Callable[P, None]:
    """A read-only command, rendering included, with the cyclic garbage collector paused: it
    makes no cycles to find, and the process ends with it (`cli_output.leave`), so a pass over
    the plan's objects would find nothing (30 to 40 ms after a plan of 1,000 jobs)."""

    @functools.wraps(command)
    def paused(*args: P.args, **kwargs: P.kwargs) -> None:
        # The console script ends with the command: a pass on resuming would only cost time.
        with gc_paused(resume=not _Run.is_process):
            command(*args, **kwargs)

    return paused


@cli.command()
@plan_flags
@global_options
@collector_paused
def plan(
    paths: tuple[str, ...], fmt: str, out: str | None, detailed_exitcode: bool,
    show_requests: bool, list_objects: bool, s3_dir: str | None, s3_endpoint: str | None,
    preflight: bool, target: Target, options: PlanOptions,
) -> None:  # fmt: skip
    """Show what apply would change, and why."""
    from reconciler.listing import Access  # defers httpx, as each import below does

    access = Access(
        enabled=list_objects or bool(s3_dir) or bool(s3_endpoint),
        directory=Path(s3_dir) if s3_dir else None,
        endpoint=s3_endpoint or None,
        allowed_hosts=target.allowed_hosts,
        insecure=target.insecure,
    )
    planned = _manager(target, fmt).plan(PlanRun(paths, options, access, preflight))
    result = planned.plan
    requests = requests_of(result) if show_requests else None
    # The plan's JSON, built once: beside the error should saving fail, and what --format json
    # prints (two trees of a plan of 10,000 jobs were 16 MiB at the run's peak).
    tree = result.to_json()
    _Run.ends_with(planned, tree)
    OUTPUT.computed.update(tree)
    if out:  # saved first: stdout is either the whole plan or a failure, never both
        from reconciler import saved_plan  # defers saved plans: only --out and apply use them

        saved_plan.save(
            out, paths or DEFAULT_PATHS, target.url, target.project, options, result, REDACT
        )
        echo(f"Saved the plan to {out}; apply it with: reconciler apply {out}", err=True)
    if fmt == "github":
        annotations = ci_output.plan_annotations(result, locations(planned.manifests), REDACT)
        echo("\n".join([*annotations, summary_sentence(result)]))
    elif fmt == "json" and requests is not None:
        planned_requests = json.loads(render_requests(requests, "json", REDACT))
        echo(OUT.json({**tree, "requests": planned_requests}))
    elif fmt == "json":
        echo(OUT.json(tree))  # what render_plan makes of it (PlanJson), from the tree at hand
    elif fmt == "markdown" and requests is not None:
        # One comment: the plan takes what it needs, the requests get the rest of the limit.
        shown = render_plan(result, fmt, MARKDOWN_LIMIT // 2)
        rest = MARKDOWN_LIMIT - len(shown) - 2
        echo(shown + "\n\n" + render_requests(requests, "markdown", REDACT, rest))
    else:
        echo(render_plan(result, fmt))
    if requests is not None and fmt == "text":
        echo("\n" + render_requests(requests, "text", REDACT))
    if result.errors:
        sys.exit(1)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@cli.command(short_help="Plan, then carry it out (connections, tables, jobs).")
@apply_flags
@global_options
def apply(
    paths: tuple[str, ...], fmt: str, auto_approve: bool, allow_replace: bool, allow_reingest: bool,
    force: bool, allow_empty: bool, allow_checkpoint_change: bool, wait: bool, timeout: float,
    lock_timeout: float, no_lock: bool, lock_lease: float | None, target: Target,
    options: PlanOptions,
) -> None:  # fmt: skip
    """Plan, then carry the plan out: connections, then tables, then jobs."""
    from reconciler import saved_plan  # defers saved plans, as plan does
    from reconciler.apply import ApplyInterrupted  # deferred: loads httpx

    reviewed = saved_plan.load(paths[0]) if saved_plan.looks_saved(paths) else None

    def approve(plan: Plan) -> bool:
        if auto_approve:
            return True
        echo(render_plan(plan, "text"), err=True)  # what would have been asked about
        if not sys.stdin.isatty():
            OUTPUT.computed["plan"] = plan.to_json()
            raise Failure(
                "no terminal to ask for approval; review the plan above, then pass "
                "--auto-approve to apply without asking"
            )
        return click.confirm("Apply these changes?", err=True)

    allowed = Allowances(allow_replace, allow_reingest, force, allow_empty, allow_checkpoint_change)
    run = ApplyRun(
        approve, paths, options, allowed,
        reviewed, wait, timeout, LockOptions(not no_lock, lock_timeout, lock_lease, holder_of(os.environ)),
    )  # fmt: skip
    try:
        applied = _manager(target).apply(run)
    except StalePlan as stale:
        echo(render_plan(stale.plan, "text"), err=True)
        OUTPUT.computed["plan"] = stale.plan.to_json()
        raise
    except UnsafePlan as unsafe:
        if unsafe.plan is not None:
            echo(render_plan(unsafe.plan, "text"), err=True)
            OUTPUT.computed["plan"] = unsafe.plan.to_json()
        raise UnsafeFailure(f"refusing to apply: {unsafe}") from None
    except ApplyInterrupted as stopped:
        interrupted(stopped, fmt, wait)  # the lock is released by now
    echo(render_apply(applied.result, fmt, redact=REDACT))
    if applied.result.failed:
        sys.exit(1)


@cli.command()
@unlock_flags
@global_options
def unlock(yes: bool, target: Target) -> None:
    """Remove the project lock left by an apply that died."""
    from reconciler.client import PolarisError  # deferred: load httpx
    from reconciler.lock import LockError, LockState

    def confirm(state: LockState) -> bool:
        echo(f"Project {target.project} is locked by {OUT.terminal(state.describe())}.", err=True)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Failure("no terminal to confirm; pass --yes to remove the lock without asking")
        question = "Remove the lock? Only do this when that apply is no longer running"
        return click.confirm(question, err=True)

    try:
        unlocked = _manager(target).unlock(UnlockRun(confirm))
    except (LockError, PolarisError) as failed:
        raise Failure(str(failed)) from None
    if not unlocked.removed:
        echo(f"Project {target.project} is not locked; nothing to do.")
    else:
        echo(f"Removed the lock of project {target.project}.")


@cli.command(short_help="Move a table's streaming read point to its job's readFromPoint.")
@click.argument("table")
@click.option("--auto-approve", is_flag=True, help="Reset without asking.")
@lock_options
@global_options
def reset(table: str, auto_approve: bool, target: Target) -> None:
    """Reset TABLE's streaming job: only ever when asked, since it re-reads or skips data."""
    from reconciler.client import PolarisError  # deferred: loads httpx

    def approve(operation: Operation) -> bool:
        echo(OUT.terminal(operation.describe()), err=True)
        if auto_approve:
            return True
        if not sys.stdin.isatty():
            raise Failure(
                "no terminal to ask for approval; review the reset above, then pass "
                "--auto-approve to reset without asking"
            )
        return click.confirm("Reset?", err=True)

    run = OperateRun("reset", table, approve, LockOptions(holder=holder_of(os.environ)))
    try:
        operated = _manager(target).operate(run)
    except PolarisError as error:
        raise Failure(str(error)) from None
    if operated.done is None:
        raise Failure(f"table {table} has no streaming job that is running or suspended")
    echo(OUT.terminal(operated.done))


@cli.command()
@drift_flags
@global_options
@collector_paused
def drift(
    paths: tuple[str, ...], fmt: str, junit: str | None, fail_on: frozenset[str],
    ignore: tuple[str, ...], history: tuple[str, ...], target: Target,
) -> None:  # fmt: skip
    """Report how live state differs from the manifests (read-only).

    A target's `history:` and `ignore:` in reconciler.yaml add to --history and --ignore.
    """
    drifted = _manager(target, fmt).drift(DriftRun(paths, history, ignore, fail_on))
    _Run.ends_with(drifted)
    report = drifted.report
    if fmt == "github":
        lines = ci_output.drift_annotations(report, locations(drifted.manifests), REDACT)
        echo("\n".join([*lines, render_drift(report, "text", REDACT).splitlines()[-1]]))
    else:
        echo(render_drift(report, fmt, REDACT))
    write_junit(junit, lambda: ci_output.drift_junit(report, REDACT))
    if report.failed:
        sys.exit(2)


@cli.command(name="import", short_help="Write manifests for the resources of a live project.")
@import_flags
@global_options
def import_(
    out: str | None, jobs: bool, history_out: str | None, kinds: tuple[str, ...],
    names: tuple[str, ...], force: bool, target: Target,
) -> None:  # fmt: skip
    """Adopt a live project: write one manifest per connection, table (and job)."""
    from reconciler.client import PolarisError  # deferred: load httpx
    from reconciler.importer import ImportConflict

    out = out or target.scope.paths[0]
    chosen_history = target.scope.target.history if target.scope.target else ()
    history = history_out or (
        chosen_history[0] if chosen_history else str(Path(out).parent / "history")
    )
    run = ImportRun(out, history, frozenset(Kind(kind) for kind in kinds), jobs, names, force)
    try:
        imported = _manager(target).import_(run)
    except (PolarisError, ImportConflict) as failed:
        raise Failure(str(failed)) from None
    result, kept = imported.result, imported.kept
    for reason in result.skipped:
        echo(f"skipped {OUT.terminal(reason)}", err=True)
    counts = ", ".join(f"{result.count(kind)} {kind}" for kind in KIND_ORDER)
    echo(f"Wrote {len(imported.written) - kept} manifest(s) to {out}: {counts}.")
    if kept:
        echo(
            f"Wrote {kept} finished job(s) to history path {history}: plan and apply never read "
            f"it; drift does with --history (or a target's history: in reconciler.yaml)."
        )
    variables = [v for f in result.files for v in f.variables]
    if variables:
        echo(
            f"Before plan or apply, set the {len(variables)} secret variable(s) named in the "
            f"connection manifests ({', '.join(variables[:4])}{' ...' if len(variables) > 4 else ''})."
        )
    chosen_target = f" --target {target.scope.target_name}" if target.scope.target else ""
    then_drift = f" && reconciler drift{chosen_target} --history {history} {out}" if kept else ""
    echo(
        f"Check them with: reconciler validate{chosen_target} {out} && "
        f"reconciler plan{chosen_target} {out}{then_drift}"
    )


@cli.command(short_help="Write the manifest JSON Schemas for editors.")
@schema_flags
@global_options
def schema(out: str, force: bool) -> None:
    """Write the manifest JSON Schemas for editors and other validators.

    The files refer to each other by relative path, so they work wherever they are written.
    """
    from reconciler.schema import files  # defers the schemas' compilation

    directory = Path(out)
    wanted = files()
    try:
        differing = [
            name
            for name, content in wanted.items()
            if (directory / name).exists() and (directory / name).read_bytes() != content
        ]
        if differing and not force:
            raise Failure(
                f"{', '.join(differing)} in {out} differ from this release's schemas; "
                "pass --force to overwrite them"
            )
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in wanted.items():
            (directory / name).write_bytes(content)
    except OSError as failed:
        raise Failure(f"cannot write the schemas to {out}: {failed}") from None
    # The modeline's path is relative to the manifest holding it: shown for one in manifests/.
    relative = os.path.relpath(directory.resolve(), Path(DEFAULT_PATHS[0]).resolve())
    echo(f"Wrote {len(wanted)} schema files to {OUT.terminal(out)}.")
    echo(
        f"For editors, begin each manifest in {DEFAULT_PATHS[0]}/ with (a path relative to "
        f"the manifest):\n# yaml-language-server: $schema={OUT.terminal(relative)}/manifest.schema.json"
    )


def _asked(args: Sequence[str]) -> tuple[str, str]:
    """The command and --format of the command line, read before click parses it, so that a
    usage error is reported in the format asked for too."""
    command = next((arg for arg in args if arg in _Commands.LAZY or arg in cli.commands), "")
    fmt = "text"
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--format" and index + 1 < len(args):
            fmt = args[index + 1]
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
    return command or "reconciler", fmt if fmt in CI_FORMATS.choices else "text"


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: without `argv`, the process, which ends when the command
    does (`cli_output.leave`); with it, a caller's run, which ends in SystemExit as any would."""
    _Run.is_process = argv is None
    try:
        _main(argv)
    except SystemExit as done:
        if argv is None and (done.code is None or isinstance(done.code, int)):
            leave(done.code or 0)
        raise
    if argv is None:
        leave(0)


def _main(argv: Sequence[str] | None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in (args[: args.index("--")] if "--" in args else args)
    REDACT.clear()  # one run, one set of secrets (tests run main many times in one process)
    hide_credentials(os.environ)  # before anything at all can be printed
    OUTPUT.reset(*_asked(args))
    configure_logging()
    try:
        cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort as aborted:
        # click turns Ctrl-C (and SIGTERM's KeyboardInterrupt) into Abort, as it does the end
        # of input at a prompt: only the first two are interrupts.
        interrupt = aborted.__cause__ or aborted.__context__
        if isinstance(interrupt, KeyboardInterrupt):
            interrupt_exit(interrupt, process=argv is None)
        error("Aborted.")
        report_failure(ErrorCode.USAGE, "Aborted.")
        sys.exit(1)
    except click.ClickException as failed:
        error(click_message(failed))
        report_failure(ErrorCode.USAGE, failed.format_message())
        sys.exit(1)
    except ReconcilerError as failure:  # Failure, PolarisError, UnsafePlan, LockError, ...
        error(f"error: {failure}")
        report_failure(failure.code, str(failure), failure)
        sys.exit(1)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM where a handler is installed
        interrupt_exit(interrupt, process=argv is None)
    except Exception as unexpected:
        if debug:
            error(traceback.format_exc().rstrip())
        message = (
            f"internal error: {type(unexpected).__name__}: {unexpected} "
            "(this is a bug in the reconciler; run with --debug for details)"
        )
        error(message)
        report_failure(ErrorCode.INTERNAL, message)
        sys.exit(1)
