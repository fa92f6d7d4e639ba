"""Command-line interface: parses flags and calls one function per command.

Only this module prints, reads the environment or exits. Exit statuses follow the README (Commands):
usage errors are 1 (not click's 2), so that 2 always means "changes or drift".
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import importlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import click
from click.shell_completion import CompletionItem

from reconciler import __version__, ci_output, hosts
from reconciler import config as configuration
from reconciler.config import DEFAULT_PATHS
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.manifest import Boundary, discover
from reconciler.model import (
    DEFAULT_FAIL_ON,
    DEFAULT_LOCK_TIMEOUT,
    DRIFT_STATUSES,
    KIND_ORDER,
    Kind,
    ManifestError,
    ManifestErrors,
)
from reconciler.output import Output
from reconciler.params import FiniteFloat
from reconciler.redact import Redactor
from reconciler.render import (
    MARKDOWN_LIMIT,
    Failed,
    PlanJson,
    PlanMarkdown,
    PlanText,
    render_apply,
    render_drift,
    render_failure,
    render_problems,
    render_requests,
    summary_sentence,
)
from reconciler.validate import API_KEY_VARIABLE, Manifests, load_manifests
from reconciler.values import Allowances, ApplyOptions, PlanOptions

# A command imports what only it needs (the API client and httpx, the planner, the lock, the
# emulator) when it runs: `reconciler validate` starts without loading any of it.
if TYPE_CHECKING:
    from reconciler.apply import ApplyInterrupted
    from reconciler.client import PolarisClient
    from reconciler.kinds.ingestion_job import JobCache
    from reconciler.listing import Access
    from reconciler.lock import Holder
    from reconciler.manager import Manager, Planned
    from reconciler.plan import Plan
    from reconciler.ports import Fence

FORMATS = click.Choice(["text", "json", "markdown"])
CI_FORMATS = click.Choice(["text", "json", "markdown", "github"])  # github: workflow annotations
JUNIT_OPTION = click.option(
    "--junit", type=click.Path(dir_okay=False), help="Also write the result as JUnit XML here."
)
# Where CI systems other than GitHub Actions say which run this is (GitLab, Jenkins, CircleCI).
CI_URL_VARIABLES = ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL")


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


OUTPUT = Stdout()


# Environment variables whose values are credentials by their name's convention (GITHUB_TOKEN,
# CI_DEPLOY_TOKEN, AWS_SECRET_ACCESS_KEY, ...): hidden in every output even if nothing reads them.
CREDENTIAL_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY(_ID)?|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)

REDACT = Redactor()
OUT = Output(REDACT)  # every format redacts, then escapes: reconciler/output.py


def echo(text: str, *, err: bool = False) -> None:
    """Print through the redactor: the only way this CLI writes to the terminal."""
    OUTPUT.printed |= not err
    # Colours only come from PlanText.paint; click would strip them where stdout is no terminal.
    click.echo(REDACT(text), err=err, color=OUTPUT.color or None)


def _output_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    OUTPUT.command, OUTPUT.fmt = ctx.info_name or OUTPUT.command, value
    return value


def format_option(choices: click.Choice[str]) -> Callable[[Command], Command]:
    """--format; known first (eager), so that any later failure is reported in that format."""
    return click.option(
        "--format", "fmt", type=choices, default="text", show_default=True, is_eager=True,
        callback=_output_format, help="What stdout holds; a failure is reported in it too.",
    )  # fmt: skip


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


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(name)s: %(message)s"))
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _global_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:  # given before or after the subcommand: either turns request logging on
        logging.getLogger("reconciler").setLevel(logging.DEBUG)


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    OUTPUT.no_color |= value  # given before or after the subcommand


Command = TypeVar("Command", bound=Callable[..., Any])


def global_options(command: Command) -> Command:
    """`-v` and `--debug`, accepted before or after the subcommand."""
    for option in (
        click.option(
            "--debug", is_flag=True, expose_value=False, callback=_global_flag,
            help="Show tracebacks for unexpected errors.",
        ),
        click.option(
            "-v", "--verbose", is_flag=True, expose_value=False, callback=_global_flag,
            help="Log every API request to stderr.",
        ),
        click.option(
            "--no-color", is_flag=True, expose_value=False, callback=_no_color,
            help="Never colour the output (also NO_COLOR=1; FORCE_COLOR=1 colours without a "
            "terminal).",
        ),
    ):  # fmt: skip
        command = option(command)
    return command


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


@dataclass(frozen=True)
class Choice:
    """The reconciler.yaml target chosen for a run (if any), and the variables manifests see."""

    config: configuration.Config | None
    target: configuration.Target | None
    variables: Mapping[str, str]

    @property
    def key_variables(self) -> frozenset[str]:
        """Variables holding an API key: never interpolated, even into a secret."""
        declared = self.config.key_variables if self.config else frozenset()
        return declared | {API_KEY_VARIABLE}

    @property
    def target_name(self) -> str | None:
        """The chosen target's name, for messages."""
        return self.target.name if self.target else None

    @property
    def paths(self) -> tuple[str, ...]:
        """The manifest paths to read when none are given on the command line."""
        return self.target.paths if self.target else DEFAULT_PATHS

    @property
    def within(self) -> Boundary:
        """The repository's directory: a symbolic link in it may not lead out of it."""
        return configuration.boundary(self.config)


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """Turn a config file's mistakes into a Failure, after printing where they are."""
    try:
        yield
    except configuration.ConfigError as error:
        raise ConfigFailure(str(error)) from None
    except ManifestErrors as failed:
        for line in render_problems(failed.errors, "text", valid=False, redact=REDACT):
            echo(line, err=True)
        raise ConfigFailure(
            f"{len(failed.errors)} error(s) in the config file; nothing was done"
        ) from None


def _choose(
    config_file: str | None,
    target_name: str | None,
    assignments: Sequence[str],
    loaded: configuration.Config | None = None,
) -> Choice:
    """Find reconciler.yaml (or --config, or use `loaded`), pick the target, apply --var."""
    with _config_errors():
        overrides = configuration.parse_vars(assignments)
        if loaded is None:
            found = configuration.find_config(config_file)
            if found is None:
                if target_name is not None:
                    raise configuration.ConfigError(
                        f"--target {target_name}: there is no {configuration.CONFIG_FILE} in the "
                        "current directory; run from the root of the manifests repository or "
                        "pass --config"
                    )
                return Choice(None, None, overrides)
            loaded = configuration.load_config(found)
        chosen = loaded.target(target_name).with_vars(overrides)
    return Choice(loaded, chosen, chosen.vars)


def _complete_targets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of --target: the targets of reconciler.yaml (or --config), if readable."""
    try:
        found = configuration.find_config(ctx.params.get("config_file"))
        names = sorted(configuration.load_config(found).targets) if found else []
    except (ReconcilerError, OSError):
        return []  # a completion never prints an error into the command line being typed
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def config_options(function: Callable[..., None]) -> Callable[..., None]:
    """Add --config, --target and --var (passed as config_file, target_name and var)."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help=f"Targets file (default: ./{configuration.CONFIG_FILE} if present).",
        ),
        click.option(
            "--target",
            "target_name",
            metavar="NAME",
            shell_complete=_complete_targets,
            help="The target in the config file to use.",
        ),
        click.option(
            "--var", multiple=True, metavar="NAME=VALUE", help="Override a target's variable."
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), function)


def _validation_choices(
    paths: tuple[str, ...], config_file: str | None, target_name: str | None, var: Sequence[str]
) -> list[Choice]:
    """The targets validate checks: the one chosen, else every target of reconciler.yaml."""
    found = None if target_name or paths else configuration.find_config(config_file)
    if found is None:
        return [_choose(config_file, target_name, var)]
    with _config_errors():
        loaded = configuration.load_config(found)  # read once, whatever the number of targets
    return [_choose(config_file, name, var, loaded) for name in loaded.targets]


@cli.command(short_help="Check manifests offline: schema and references.")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(CI_FORMATS)
@JUNIT_OPTION
@config_options
@global_options
def validate(
    paths: tuple[str, ...], fmt: str, junit: str | None, config_file: str | None,
    target_name: str | None, var: tuple[str, ...],
) -> None:  # fmt: skip
    """Check manifests offline: YAML, JSON Schema and cross-document references.

    With a reconciler.yaml and neither --target nor PATHs, every target is checked.
    """
    try:
        choices = _validation_choices(paths, config_file, target_name, var)
    except ManifestErrors as failed:
        _print_problems(failed.errors, fmt, valid=False)
        errors = failed.errors
        _write_junit(junit, lambda: ci_output.validate_junit([], errors, REDACT))
        sys.exit(1)
    problems: dict[tuple[Any, str], ManifestError] = {}
    valid: list[tuple[Choice, Manifests]] = []
    for choice in choices:
        try:
            manifests = load_manifests(
                paths or choice.paths, WatchedEnvironment(os.environ), require_env=False,
                variables=choice.variables, key_variables=choice.key_variables,
                target=choice.target_name, within=choice.within,
            )  # fmt: skip
        except ManifestErrors as failed:
            problems.update(((e.location, e.message), e) for e in failed.errors)
            continue
        problems.update(((e.location, e.message), e) for e in manifests.warnings)
        valid.append((choice, manifests))
    found_problems = sorted(problems.values(), key=lambda e: (e.location, e.message))
    files = (path for choice in choices for path in (paths or choice.paths))
    _write_junit(junit, lambda: ci_output.validate_junit(_files(files), found_problems, REDACT))
    if len(valid) < len(choices):
        _print_problems(found_problems, fmt, valid=False)
        sys.exit(1)
    _print_problems(found_problems, fmt, valid=True)
    if fmt in ("text", "github"):
        for choice, manifests in valid:
            counts = {kind: len(manifests.of_kind(kind)) for kind in KIND_ORDER}
            summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
            where = f" for target {choice.target.name}" if choice.target else ""
            echo(f"Valid{where}: {len(manifests.resources)} resources ({summary}).")


def _files(paths: Iterable[str]) -> list[str]:
    return [str(path) for path in discover(dict.fromkeys(paths))[0]]


def _write_junit(path: str | None, xml: Callable[[], str]) -> None:
    """Write the JUnit XML `xml` builds, only when --junit asks for it (it imports xml.etree)."""
    if path is None:
        return
    try:
        Path(path).write_text(xml(), encoding="utf-8")  # redacted as it was built
    except OSError as error:
        raise Failure(f"cannot write --junit {path}: {error.strerror}") from None


def _locations(manifests: Manifests) -> ci_output.Locations:
    return {(str(r.kind), r.name): r.location for r in manifests.resources}


def _print_problems(problems: list[ManifestError], fmt: str, *, valid: bool) -> None:
    if fmt == "github":
        if problems:
            echo("\n".join(ci_output.validate_annotations(problems, REDACT)))
        if not valid:
            count = sum(1 for p in problems if p.severity == "error")
            echo(f"{count} error(s) found.", err=True)
    elif fmt in ("json", "markdown"):
        echo("\n".join(render_problems(problems, fmt, valid=valid, redact=REDACT)))
    else:
        for line in render_problems(problems, fmt, valid=valid, redact=REDACT):
            echo(line, err=valid)  # warnings of a valid run are logs, not results
        if not valid:
            count = sum(1 for p in problems if p.severity == "error")
            echo(f"{count} error(s) found.", err=True)


@dataclass(frozen=True)
class Target:
    """Which Polaris project to talk to, and how (from the shared connection options)."""

    url: str | None
    project: str | None
    api_key_file: str | None
    insecure: bool
    parallelism: int
    no_cache: bool
    choice: Choice = field(default_factory=lambda: Choice(None, None, {}))
    allowed_hosts: frozenset[str] = frozenset()  # --allow-host and RECONCILER_ALLOWED_HOSTS

    @property
    def api_key_env(self) -> str:
        """The environment variable that holds the API key."""
        return self.choice.target.api_key_env if self.choice.target else API_KEY_VARIABLE


def connection_options(function: Callable[..., None]) -> Callable[..., None]:
    """Add the options every command that plans shares; pass them as `target`."""
    return _connection_options(function, parallel=True, cached=True)


def import_options(function: Callable[..., None]) -> Callable[..., None]:
    """connection_options less --no-cache: import reads every job afresh."""
    return _connection_options(function, parallel=True, cached=False)


def lock_options(function: Callable[..., None]) -> Callable[..., None]:
    """connection_options less --parallelism and --no-cache: unlock reads one lock."""
    return _connection_options(function, parallel=False, cached=False)


def _connection_options(
    function: Callable[..., None], *, parallel: bool, cached: bool
) -> Callable[..., None]:
    @functools.wraps(function)
    def command(
        *args: Any, url: str | None, project: str | None, api_key_file: str | None,
        insecure: bool, config_file: str | None, target_name: str | None, var: tuple[str, ...],
        allow_host: tuple[str, ...], parallelism: int = 8, no_cache: bool = False, **kwargs: Any,
    ) -> None:  # fmt: skip
        allowed = _allowed_hosts(allow_host)
        choice = _choose(config_file, target_name, var)
        if choice.target is not None:
            # A target's URL and project are reviewed in git; a flag would silently bypass that.
            if url or project:
                raise Failure(
                    f"--url and --project cannot be combined with target {choice.target.name}, "
                    f"which sets both; change them in {choice.config and choice.config.file}"
                )
            url, project = choice.target.url, choice.target.project
            _same_url(choice.target, os.environ.get("POLARIS_URL", "").strip())
        else:
            url = url or os.environ.get("POLARIS_URL")
            project = project or os.environ.get("POLARIS_PROJECT_ID")
        if url:
            _trusted(url, allowed, insecure)  # before the key is read: see _trusted
        if "paths" in kwargs and not kwargs["paths"]:  # import and unlock read no manifests
            kwargs["paths"] = choice.paths  # a target's own manifests; saved plans record them
        target = Target(
            url, project, api_key_file, insecure, parallelism, no_cache, choice, allowed
        )
        function(*args, target=target, **kwargs)

    options = [
        click.option(
            "--url",
            metavar="URL",
            help="API base URL (env POLARIS_URL; a --target's url in reconciler.yaml).",
        ),
        click.option(
            "--project",
            metavar="ID",
            help="Project id (env POLARIS_PROJECT_ID; or the --target's).",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(dir_okay=False),
            help="Read the API key from this file instead of POLARIS_API_KEY.",
        ),
        click.option(
            "--insecure", is_flag=True, help="Allow plain http:// to a non-loopback host."
        ),
        click.option(
            "--allow-host",
            multiple=True,
            metavar="HOST",
            help="Also send credentials to this host (repeatable; env RECONCILER_ALLOWED_HOSTS, "
            "comma-separated). Polaris (*.api.imply.io), AWS S3 and loopback need no consent.",
        ),
    ]
    if parallel:
        options.append(
            click.option(
                "--parallelism",
                type=click.IntRange(1, 64),
                default=8,
                show_default=True,
                metavar="N",
                help="Requests to Polaris in flight at once.",
            )
        )
    if cached:
        options.append(
            click.option(
                "--no-cache",
                is_flag=True,
                help="Do not read or write the local cache of finished jobs.",
            )
        )
    return config_options(functools.reduce(lambda f, option: option(f), reversed(options), command))


def _allowed_hosts(flags: Sequence[str]) -> frozenset[str]:
    """The hosts the operator allows credentials to go to: --allow-host and the environment.

    Only from here, outside the repository: reconciler.yaml and manifests come with pull requests.
    """
    variable = hosts.ALLOWED_HOSTS_VARIABLE
    try:
        return hosts.allowed_hosts(flags, hosts.ALLOW_FLAG) | hosts.allowed_hosts(
            os.environ.get(variable, "").split(","), variable
        )
    except hosts.HostError as error:
        raise Failure(str(error)) from None


def _same_url(chosen: configuration.Target, environment: str) -> None:
    """A target's url that differs from POLARIS_URL is an error, not a silent choice: in CI,
    POLARIS_URL is the operator's and reconciler.yaml may be a pull request's."""
    if environment and not hosts.same_url(environment, chosen.url):
        raise Failure(
            f"target {chosen.name} has url {hosts.shown(chosen.url)}, but POLARIS_URL is "
            f"{hosts.shown(environment)}; make them the same, or unset POLARIS_URL to use the "
            "target's"
        )


def _trusted(url: str, allowed: frozenset[str], insecure: bool) -> None:
    """Refuse a URL the API key must not go to, before the key is even read.

    So a reconciler.yaml's `apiKeyEnv`, which may name any variable of the job (a pull request's
    file can), is only ever read, and sent, for a host that is Polaris, loopback or one the
    operator allows (docs/trusted-hosts.md).
    """
    from reconciler.client import PolarisError, check_destination

    try:
        check_destination(url, allowed, insecure=insecure)
    except PolarisError as error:
        raise Failure(str(error)) from None


def plan_options(function: Callable[..., None]) -> Callable[..., None]:
    """Add the options that change what a plan contains; pass them as `options`."""

    @functools.wraps(function)
    def command(
        *args: Any, resubmit_canceled: bool, rotate_secrets: bool, prune: bool, **kwargs: Any
    ) -> None:

        function(*args, options=PlanOptions(resubmit_canceled, rotate_secrets, prune), **kwargs)

    options = [
        click.option("--resubmit-canceled", is_flag=True, help="Resubmit jobs that were canceled."),
        click.option("--rotate-secrets", is_flag=True, help="Re-send connection secrets."),
        click.option("--prune", is_flag=True, help="Delete connections no manifest declares."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def _api_key(target: Target) -> str:
    """The API key, hidden from every output as soon as it is read (empty when none is given)."""
    if target.api_key_file:
        try:
            raw = Path(target.api_key_file).read_bytes()
        except OSError as error:
            raise Failure(
                f"cannot read --api-key-file {target.api_key_file}: {error.strerror}"
            ) from None
        try:
            key = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise Failure(
                f"--api-key-file {target.api_key_file} is not UTF-8 text; "
                "it should hold the API key and nothing else"
            ) from None
    else:
        key = os.environ.get(target.api_key_env, "").strip()
    REDACT.add_api_key(key)
    return key


def _client(target: Target, key: str | None = None) -> PolarisClient:
    from reconciler.client import ClientConfig, PolarisClient, PolarisError

    key = _api_key(target) if key is None else key
    if not target.url:
        raise Failure("no Polaris URL: set POLARIS_URL or pass --url (try `reconciler emulator`)")
    if not target.project:
        raise Failure("no project: set POLARIS_PROJECT_ID or pass --project")
    if not key:
        raise Failure(f"no API key: set {target.api_key_env} or pass --api-key-file")
    config = ClientConfig(
        url=target.url, project=target.project, api_key=key, insecure=target.insecure,
        allowed_hosts=target.allowed_hosts,
    )  # fmt: skip
    try:
        # A connection for each of --parallelism workers, and one for the project lock's renewal,
        # which runs beside them: a smaller pool would quietly cap --parallelism.
        return PolarisClient(config, redact=REDACT, pool_size=target.parallelism + 1)
    except PolarisError as error:
        raise Failure(str(error)) from None


def _manifests(paths: tuple[str, ...], target: Target, fmt: str = "text") -> Manifests:
    choice = target.choice
    if choice.target is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(choice.variables.items())) or "none"
        echo(
            f"Target {choice.target.name}: project {target.project} at {target.url}; vars: {shown}",
            err=True,
        )
    try:
        manifests = load_manifests(
            paths or choice.paths, WatchedEnvironment(os.environ), variables=choice.variables,
            key_variables=choice.key_variables, target=choice.target_name, within=choice.within,
        )  # fmt: skip
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


def _cache(target: Target) -> JobCache:
    import platformdirs

    from reconciler.kinds.ingestion_job import JobCache

    if target.no_cache:
        return JobCache(None)
    scope = hashlib.sha256(f"{str(target.url).rstrip('/')}|{target.project}".encode()).hexdigest()[
        :16
    ]
    return JobCache(Path(platformdirs.user_cache_dir("polaris-reconciler")) / scope / "jobs.json")


def _manager(
    target: Target, client: PolarisClient, apply_options: ApplyOptions | None = None
) -> Manager:
    """The manager of one run: the Polaris provider behind `client`, progress to stderr."""
    from reconciler.apply import PolarisProvider
    from reconciler.manager import Manager

    def progress(message: str) -> None:
        echo(OUT.terminal(message), err=True)

    options = apply_options or ApplyOptions(parallelism=target.parallelism)
    provider = PolarisProvider(client, options, cache=_cache(target), progress=progress)
    return Manager(provider, target.parallelism, progress)


def _plan(
    paths: tuple[str, ...], target: Target, options: PlanOptions, fmt: str = "text", *,
    access: Access | None = None, preflight: bool = False,
) -> tuple[Manifests, Planned]:  # fmt: skip
    """Validate, then read live state and plan (validation passes before anything is sent)."""
    key = _api_key(target)  # read first, so that no manifest error can show it
    manifests = _manifests(paths, target, fmt)
    with _client(target, key) as client:
        planned = _manager(target, client).plan(
            manifests, options, access=access, preflight=preflight
        )
    return manifests, planned


def _render_plan(plan: Plan, fmt: str, limit: int = MARKDOWN_LIMIT) -> str:
    if fmt == "json":
        return PlanJson(REDACT).render(plan)
    if fmt == "markdown":
        return PlanMarkdown(limit, redact=REDACT).render(plan)
    return PlanText(color=OUTPUT.color, redact=REDACT).render(plan)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(CI_FORMATS)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan to this file.")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none."
)
@click.option(
    "--show-requests",
    is_flag=True,
    help="Also print each request body apply would send (secret values redacted).",
)
@click.option(
    "--list-objects",
    is_flag=True,
    help="List the objects each new job will read (S3 ListObjectsV2 with the connection's keys; "
    "keys go only to AWS S3 or loopback endpoints).",
)
@click.option(
    "--s3-dir",
    type=click.Path(file_okay=False, exists=True),
    envvar="RECONCILER_S3_DIR",
    help="List objects from this directory of buckets (DIR/BUCKET/KEY) instead of S3; "
    "implies --list-objects (env RECONCILER_S3_DIR).",
)
@click.option(
    "--s3-endpoint",
    envvar="RECONCILER_S3_ENDPOINT",
    metavar="URL",
    help="List objects through this S3-compatible server for every connection (path-style); "
    "implies --list-objects (env RECONCILER_S3_ENDPOINT).",
)
@click.option(
    "--preflight",
    is_flag=True,
    help="Also test (POST /connections/NAME/test) each connection that new jobs read through.",
)
@connection_options
@plan_options
@global_options
def plan(
    paths: tuple[str, ...], fmt: str, out: str | None, detailed_exitcode: bool,
    show_requests: bool, list_objects: bool, s3_dir: str | None, s3_endpoint: str | None,
    preflight: bool, target: Target, options: PlanOptions,
) -> None:  # fmt: skip
    """Show what apply would change, and why."""
    from reconciler import saved_plan
    from reconciler.listing import Access
    from reconciler.manager import requests_of

    access = Access(
        enabled=list_objects or bool(s3_dir) or bool(s3_endpoint),
        directory=Path(s3_dir) if s3_dir else None,
        endpoint=s3_endpoint or None,
        allowed_hosts=target.allowed_hosts,
        insecure=target.insecure,
    )
    manifests, planned = _plan(paths, target, options, fmt, access=access, preflight=preflight)
    result = planned.plan
    requests = requests_of(result) if show_requests else None
    OUTPUT.computed.update(result.to_json())  # beside the error in JSON, should saving fail
    if out:  # saved first: stdout is either the whole plan or a failure, never both
        saved_plan.save(
            out, paths or DEFAULT_PATHS, target.url, target.project, options, result, REDACT
        )
        echo(f"Saved the plan to {out}; apply it with: reconciler apply {out}", err=True)
    if fmt == "github":
        annotations = ci_output.plan_annotations(result, _locations(manifests), REDACT)
        echo("\n".join([*annotations, summary_sentence(result)]))
    elif fmt == "json" and requests is not None:
        planned_requests = json.loads(render_requests(requests, "json", REDACT))
        echo(OUT.json({**result.to_json(), "requests": planned_requests}))
    elif fmt == "markdown" and requests is not None:
        # One comment: the plan takes what it needs, the requests get the rest of the limit.
        shown = _render_plan(result, fmt, MARKDOWN_LIMIT // 2)
        rest = MARKDOWN_LIMIT - len(shown) - 2
        echo(shown + "\n\n" + render_requests(requests, "markdown", REDACT, rest))
    else:
        echo(_render_plan(result, fmt))
    if requests is not None and fmt == "text":
        echo("\n" + render_requests(requests, "text", REDACT))
    if result.errors:
        sys.exit(1)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


@cli.command(short_help="Plan, then carry it out (connections, tables, jobs).")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(FORMATS)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (required without a terminal)."
)
@click.option("--allow-replace", is_flag=True, help="Allow delete-and-create of connections.")
@click.option(
    "--allow-reingest", is_flag=True, help="Allow jobs that ingest already-ingested objects again."
)
@click.option(
    "--force", is_flag=True, help="Allow prune to delete more than 30% (or 3) of the connections."
)
@click.option(
    "--allow-empty", is_flag=True, help="Allow prune to delete every connection of the project."
)
@click.option(
    "--allow-checkpoint-change", is_flag=True,
    help="Allow streaming jobs to read another topic or stream (re-reads or skips data).",
)  # fmt: skip
@click.option("--wait", is_flag=True, help="Follow submitted jobs until they finish.")
@click.option(
    "--timeout",
    type=FiniteFloat(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long --wait follows jobs; they keep running in Polaris after it.",
)
@click.option(
    "--lock-timeout",
    type=FiniteFloat(min=0),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another apply's project lock.",
)
@click.option(
    "--no-lock", is_flag=True, help="Do not take the project lock (for keys without ManageTables)."
)
@click.option(
    "--lock-lease", type=FiniteFloat(min=0, min_open=True), default=None, hidden=True,
    help="Seconds of the project lock's lease (tests shorten it; a waiter waits the longest).",
)  # fmt: skip
@connection_options
@plan_options
@global_options
def apply(
    paths: tuple[str, ...], fmt: str, auto_approve: bool, allow_replace: bool, allow_reingest: bool,
    force: bool, allow_empty: bool, allow_checkpoint_change: bool, wait: bool, timeout: float,
    lock_timeout: float, no_lock: bool, lock_lease: float | None, target: Target,
    options: PlanOptions,
) -> None:  # fmt: skip
    """Plan, then carry the plan out: connections, then tables, then jobs."""
    from reconciler import saved_plan
    from reconciler.apply import ApplyInterrupted
    from reconciler.manager import StalePlan
    from reconciler.plan import UnsafePlan

    reviewed = None
    if saved_plan.looks_saved(paths):
        saved = saved_plan.load(paths[0])
        if options != PlanOptions():
            given = [
                flag
                for flag, on in (
                    ("--resubmit-canceled", options.resubmit_canceled),
                    ("--rotate-secrets", options.rotate_secrets),
                    ("--prune", options.prune),
                )
                if on
            ]
            raise Failure(
                f"{' '.join(given)} cannot change a saved plan: it is applied with the options it "
                f"was made with; run `reconciler plan {' '.join(given)} --out FILE` and apply that"
            )
        if (saved.url, saved.project) != (target.url, target.project):
            raise Failure(
                f"the saved plan is for project {saved.project} at {saved.url}, "
                f"not {target.project} at {target.url}"
            )
        # The saved plan says what was reviewed: plan again with the same paths and options.
        paths, options, reviewed = saved.paths or DEFAULT_PATHS, saved.options, saved
    key = _api_key(target)  # read first, so that no manifest error can show it
    manifests = _manifests(paths, target)  # validation passes before anything is sent
    apply_options = ApplyOptions(
        parallelism=target.parallelism, allow_reingest=allow_reingest, wait=wait, timeout=timeout
    )
    allowed = Allowances(allow_replace, allow_reingest, force, allow_empty, allow_checkpoint_change)

    def approve(plan: Plan) -> bool:
        if auto_approve:
            return True
        echo(_render_plan(plan, "text"), err=True)  # what would have been asked about
        if not sys.stdin.isatty():
            OUTPUT.computed["plan"] = plan.to_json()
            raise Failure(
                "no terminal to ask for approval; review the plan above, then pass "
                "--auto-approve to apply without asking"
            )
        return click.confirm("Apply these changes?", err=True)

    with _client(target, key) as client:
        manager = _manager(target, client, apply_options)
        # The lock is taken before live state is read: the plan carried out is the holder's own.
        lock = _project_lock(client, no_lock, lock_timeout, lock_lease)
        try:
            _, result = manager.apply(
                manifests, options, allowed, approve=approve, reviewed=reviewed, lock=lock
            )
        except StalePlan as stale:
            echo(_render_plan(stale.plan, "text"), err=True)
            OUTPUT.computed["plan"] = stale.plan.to_json()
            raise
        except UnsafePlan as unsafe:
            if unsafe.plan is not None:
                echo(_render_plan(unsafe.plan, "text"), err=True)
                OUTPUT.computed["plan"] = unsafe.plan.to_json()
            raise UnsafeFailure(f"refusing to apply: {unsafe}") from None
        except ApplyInterrupted as stopped:
            _interrupted(stopped, fmt, wait)  # the lock is released by now
    echo(render_apply(result, fmt, redact=REDACT))
    if result.failed:
        sys.exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a canceled CI job): stops a run as Ctrl-C does, and exits 143 (128 + 15)."""


def _interrupted(stopped: ApplyInterrupted, fmt: str, waited: bool) -> NoReturn:
    """Say what an interrupted apply did and what still runs, then end the run as interrupted."""
    result = stopped.result
    running = [
        o for o in result.outcomes
        if o.job_id and o.job is not None and o.job.get("executionStatus") in ("pending", "running")
    ]  # fmt: skip
    shown = ", ".join(f"job {o.job_id} for {o.change.ref}" for o in running[:5])
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


def _statuses(_: click.Context, __: click.Parameter, value: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(chosen - set(DRIFT_STATUSES))
    if unknown:
        raise click.BadParameter(
            f"unknown status {', '.join(unknown)}; choose from {', '.join(DRIFT_STATUSES)}"
        )
    return chosen


def _holder() -> Holder:
    """Who this apply is, for the lock's description: user@host, pid and the CI run if any."""
    from reconciler.lock import Holder

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    env = os.environ
    ci = None
    if env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        ci = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
    else:
        ci = next((env[n] for n in CI_URL_VARIABLES if env.get(n)), None)
    return Holder(f"{user}@{socket.gethostname()}", os.getpid(), ci)


@contextlib.contextmanager
def _project_lock(
    client: PolarisClient, no_lock: bool, timeout: float, lease: float | None
) -> Iterator[Fence]:
    """Hold the project lock for the block, which gets the lock as a fence (apply asks it before
    each write). SIGTERM (a canceled CI job) stops the block as Ctrl-C does: apply says what it
    did, and the lock is released."""
    from reconciler.apply import Unlocked
    from reconciler.lock import LOCK_TTL, ProjectLock

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if no_lock:
            echo(
                "warning: --no-lock: another apply running at the same time may submit the same "
                "jobs again; make sure no other apply runs against this project",
                err=True,
            )
            yield Unlocked()
            return
        lock = ProjectLock(
            client, _holder(), timeout=timeout, ttl=lease or LOCK_TTL,
            progress=lambda m: echo(m, err=True),
        )  # fmt: skip
        try:
            lock.acquire()
            yield lock
        finally:
            lock.release()  # also after Ctrl-C or SIGTERM; does nothing when not taken
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise Terminated


@cli.command()
@click.option("--yes", is_flag=True, help="Remove the lock without asking.")
@lock_options
@global_options
def unlock(yes: bool, target: Target) -> None:
    """Remove the project lock left by an apply that died."""
    from reconciler.client import PolarisError
    from reconciler.lock import LockError, read_lock, remove_lock

    with _client(target) as client:
        try:
            state = read_lock(client)
        except PolarisError as error:
            raise Failure(str(error)) from None
        if state is None or state.free:
            echo(f"Project {target.project} is not locked; nothing to do.")
            return
        echo(f"Project {target.project} is locked by {OUT.terminal(state.describe())}.", err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise Failure(
                    "no terminal to confirm; pass --yes to remove the lock without asking"
                )
            question = "Remove the lock? Only do this when that apply is no longer running"
            if not click.confirm(question, err=True):
                raise Failure("the lock was left in place")
        try:
            remove_lock(client, state, datetime.now(UTC))
        except (LockError, PolarisError) as error:
            raise Failure(str(error)) from None
    echo(f"Removed the lock of project {target.project}.")


@cli.command(short_help="Move a table's streaming read point to its job's readFromPoint.")
@click.argument("table")
@click.option("--auto-approve", is_flag=True, help="Reset without asking.")
@lock_options
@global_options
def reset(table: str, auto_approve: bool, target: Target) -> None:
    """Reset TABLE's streaming job: only ever when asked, since it re-reads or skips data."""
    from reconciler.client import PolarisError
    from reconciler.kinds import streaming_job

    with _client(target) as client:
        try:
            step = streaming_job.reset_of(client, table)
            if step is None:
                raise Failure(f"table {table} has no streaming job that is running or suspended")
            echo(OUT.terminal(step.describe()), err=True)
            if not auto_approve:
                if not sys.stdin.isatty():
                    raise Failure(
                        "no terminal to ask for approval; review the reset above, then pass "
                        "--auto-approve to reset without asking"
                    )
                if not click.confirm("Reset?", err=True):
                    raise Failure("nothing was reset")
            echo(OUT.terminal(streaming_job.reset(client, step)))
        except PolarisError as error:
            raise Failure(str(error)) from None


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(CI_FORMATS)
@JUNIT_OPTION
@click.option(
    "--fail-on",
    default=",".join(sorted(DEFAULT_FAIL_ON)),
    show_default=True,
    metavar="STATUSES",
    callback=_statuses,
    help=f"Statuses that make drift exit 2, comma-separated ({', '.join(DRIFT_STATUSES)}).",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="NAME_GLOB",
    help="Leave out resources another tool owns (matches name or Kind/name; repeatable).",
)
@click.option(
    "--history",
    multiple=True,
    metavar="PATH",
    help="Manifests of finished jobs: they count as managed, never fail and are never submitted.",
)
@connection_options
@global_options
def drift(
    paths: tuple[str, ...], fmt: str, junit: str | None, fail_on: frozenset[str],
    ignore: tuple[str, ...], history: tuple[str, ...], target: Target,
) -> None:  # fmt: skip
    """Report how live state differs from the manifests (read-only).

    A target's `history:` and `ignore:` in reconciler.yaml add to --history and --ignore.
    """
    from reconciler.drift import drift_report

    paths = paths or DEFAULT_PATHS
    if target.choice.target is not None:
        history = (*target.choice.target.history, *history)
        ignore = (*target.choice.target.ignore, *ignore)
    history = _distinct(history)  # the same directory from reconciler.yaml and a flag: once
    for kept_path in history:
        for path in paths:
            if _under(kept_path, path) or _under(path, kept_path):
                raise Failure(
                    f"history path {kept_path} overlaps the manifest path {path}: plan and apply "
                    "would submit the jobs kept there again; keep history outside the manifest paths"
                )
    # A history path with nothing in it yet is a normal state (no job has finished), not an error.
    empty = [path for path in history if not discover([path])[0]]
    for path in empty:
        echo(f"note: history path {path} holds no manifests yet", err=True)
    history = tuple(path for path in history if path not in empty)
    manifests, planned = _plan((*paths, *history), target, PlanOptions(), fmt)
    result = planned.plan
    kept = {
        (str(r.kind), r.name)
        for r in manifests.resources
        if any(_under(r.location.file, root) for root in history)
    }
    report = drift_report(result, fail_on=fail_on, ignore=ignore, history=kept)
    if fmt == "github":
        lines = ci_output.drift_annotations(report, _locations(manifests), REDACT)
        echo("\n".join([*lines, render_drift(report, "text", REDACT).splitlines()[-1]]))
    else:
        echo(render_drift(report, fmt, REDACT))
    _write_junit(junit, lambda: ci_output.drift_junit(report, REDACT))
    if report.failed:
        sys.exit(2)


def _distinct(paths: Iterable[str]) -> tuple[str, ...]:
    """Paths in order, each file or directory once however it is spelt."""
    first: dict[str, str] = {}
    for path in paths:
        first.setdefault(str(Path(path).resolve()), path)
    return tuple(first.values())


def _under(file: str, root: str) -> bool:
    """Whether a manifest file was found under the path given on the command line."""
    path, top = Path(file).resolve(), Path(root).resolve()
    return path == top or top in path.parents


@cli.command(name="import", short_help="Write manifests for the resources of a live project.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Directory to write the manifests into (default: the --target's first path, or manifests).",
)
@click.option(
    "--jobs",
    is_flag=True,
    help="Also import batch jobs: running ones into --out, finished ones into --history-out.",
)
@click.option(
    "--history-out",
    type=click.Path(file_okay=False),
    help="Directory for finished jobs' manifests, which plan never submits and drift --history "
    "reads (default: the --target's first history path, or history beside --out).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([str(kind) for kind in KIND_ORDER]),
    help="Import only this kind (repeatable).",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="GLOB",
    help="Import only matching names (repeatable).",
)
@click.option("--force", is_flag=True, help="Overwrite manifests that already exist.")
@import_options
@global_options
def import_(
    out: str | None, jobs: bool, history_out: str | None, kinds: tuple[str, ...],
    names: tuple[str, ...], force: bool, target: Target,
) -> None:  # fmt: skip
    """Adopt a live project: write one manifest per connection, table (and job)."""
    from reconciler.client import PolarisError
    from reconciler.importer import ImportConflict, ImportOptions, import_project, write_files

    out = out or target.choice.paths[0]
    chosen_history = target.choice.target.history if target.choice.target else ()
    history = history_out or (
        chosen_history[0] if chosen_history else str(Path(out).parent / "history")
    )
    from reconciler import kinds as registry

    every = list(registry.ordered())
    by_default = {k.kind for k in every if k.imported_by_default}
    chosen = {Kind(kind) for kind in kinds} or set(by_default)
    if jobs:
        chosen |= {k.kind for k in every if not k.imported_by_default}
    # Only jobs (not imported by default) may finish, and so go to the history path.
    if chosen - by_default and (_under(history, out) or _under(out, history)):
        raise Failure(
            f"--history-out {history} overlaps --out {out}: plan and apply would submit the "
            "finished jobs kept there again; choose a directory outside it"
        )
    with _client(target) as client:
        try:
            echo(f"Reading project {target.project} ...", err=True)
            result = import_project(
                client, ImportOptions(frozenset(chosen), names), parallelism=target.parallelism
            )
        except PolarisError as error:
            raise Failure(str(error)) from None
    try:
        written = write_files(result, Path(out), history=Path(history), force=force)
    except (ImportConflict, OSError, ValueError) as error:  # ValueError: a path leaving --out
        raise Failure(str(error)) from None
    for reason in result.skipped:
        echo(f"skipped {OUT.terminal(reason)}", err=True)
    counts = ", ".join(f"{result.count(kind)} {kind}" for kind in KIND_ORDER)
    kept = sum(result.count(kind, history=True) for kind in KIND_ORDER)
    echo(f"Wrote {len(written) - kept} manifest(s) to {out}: {counts}.")
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
    chosen_target = f" --target {target.choice.target_name}" if target.choice.target else ""
    drift = f" && reconciler drift{chosen_target} --history {history} {out}" if kept else ""
    echo(
        f"Check them with: reconciler validate{chosen_target} {out} && "
        f"reconciler plan{chosen_target} {out}{drift}"
    )


@cli.command(short_help="Write the manifest JSON Schemas for editors.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory to write the JSON Schema files into (created if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite schema files that differ.")
@global_options
def schema(out: str, force: bool) -> None:
    """Write the manifest JSON Schemas for editors and other validators.

    The files refer to each other by relative path, so they work wherever they are written.
    """
    from reconciler.schema import files

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
    except OSError as error:
        raise Failure(f"cannot write the schemas to {out}: {error}") from None
    # The modeline's path is relative to the manifest holding it: shown for one in manifests/.
    relative = os.path.relpath(directory.resolve(), Path(DEFAULT_PATHS[0]).resolve())
    echo(f"Wrote {len(wanted)} schema files to {OUT.terminal(out)}.")
    echo(
        f"For editors, begin each manifest in {DEFAULT_PATHS[0]}/ with (a path relative to "
        f"the manifest):\n# yaml-language-server: $schema={OUT.terminal(relative)}/manifest.schema.json"
    )


class UnsafeFailure(Failure):
    """apply refused a plan that needs a flag the user has not given."""

    code = ErrorCode.UNSAFE_PLAN


def _error(text: str) -> None:
    """A message to stderr: redacted, and one terminal line per line of the message."""
    echo("\n".join(OUT.terminal(line) for line in REDACT(text).split("\n")), err=True)


def _click_message(error: click.ClickException) -> str:
    lines = []
    if isinstance(error, click.UsageError) and error.ctx is not None:
        lines += [
            error.ctx.get_usage(),
            f"Try '{error.ctx.command_path} {error.ctx.help_option_names[0]}' for help.",
            "",
        ]
    return "\n".join([*lines, f"Error: {error.format_message()}"])


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


def _report(code: ErrorCode, message: str, failure: BaseException | None = None) -> None:
    """A failure on stdout, in the format asked for: a pipeline never gets a blank result."""
    if OUTPUT.fmt == "json" and OUTPUT.printed:
        return
    if OUTPUT.fmt == "text" and _same_file(sys.stdout, sys.stderr):
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


def _same_file(one: Any, other: Any) -> bool:
    """Whether two streams write to the same file, terminal or pipe."""
    try:
        return os.path.sameopenfile(one.fileno(), other.fileno())
    except (AttributeError, OSError, ValueError):  # a stream with no file (a test's StringIO)
        return False


def _interrupt_exit(interrupt: KeyboardInterrupt) -> NoReturn:
    """Exit as an interrupted run: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal)."""
    message = str(interrupt) or "interrupted"
    _error(message[0].upper() + message[1:] + ("" if str(interrupt) else "."))
    _report(ErrorCode.INTERRUPTED, message)
    sys.exit(143 if isinstance(interrupt, Terminated) else 130)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    global OUTPUT
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in (args[: args.index("--")] if "--" in args else args)
    REDACT.clear()  # one run, one set of secrets (tests run main many times in one process)
    hide_credentials(os.environ)  # before anything at all can be printed
    command, fmt = _asked(args)
    OUTPUT = Stdout(command, fmt)
    _configure_logging()
    try:
        cli.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort as aborted:
        # click turns Ctrl-C (and SIGTERM's KeyboardInterrupt) into Abort, as it does the end
        # of input at a prompt: only the first two are interrupts.
        interrupt = aborted.__cause__ or aborted.__context__
        if isinstance(interrupt, KeyboardInterrupt):
            _interrupt_exit(interrupt)
        _error("Aborted.")
        _report(ErrorCode.USAGE, "Aborted.")
        sys.exit(1)
    except click.ClickException as error:
        _error(_click_message(error))
        _report(ErrorCode.USAGE, error.format_message())
        sys.exit(1)
    except ReconcilerError as failure:  # Failure, PolarisError, UnsafePlan, LockError, ...
        _error(f"error: {failure}")
        _report(failure.code, str(failure), failure)
        sys.exit(1)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM where a handler is installed
        _interrupt_exit(interrupt)
    except Exception as unexpected:
        if debug:
            _error(traceback.format_exc().rstrip())
        message = (
            f"internal error: {type(unexpected).__name__}: {unexpected} "
            "(this is a bug in the reconciler; run with --debug for details)"
        )
        _error(message)
        _report(ErrorCode.INTERNAL, message)
        sys.exit(1)
