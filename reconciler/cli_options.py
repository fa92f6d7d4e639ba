"""The CLI's flags: click's option declarations, grouped per command, and what turns them into
typed options (a `Target` to connect to, a `Scope` from reconciler.yaml, `PlanOptions`).

A new flag is one `click.option` in its command's group below and one field of that command's
run options (`reconciler/manager.py`); a new command is a group here and a function in `cli.py`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from reconciler import config as configuration
from reconciler import hosts
from reconciler.cli_output import OUTPUT, REDACT, ConfigFailure, Failure, echo
from reconciler.errors import ReconcilerError
from reconciler.manager import Scope
from reconciler.model import (
    DEFAULT_FAIL_ON,
    DEFAULT_LOCK_TIMEOUT,
    DRIFT_STATUSES,
    KIND_ORDER,
    ManifestErrors,
)
from reconciler.params import FiniteFloat
from reconciler.render import render_problems
from reconciler.validate import API_KEY_VARIABLE
from reconciler.values import PlanOptions

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from reconciler.client import PolarisClient

FORMATS = click.Choice(["text", "json", "markdown"])
CI_FORMATS = click.Choice(["text", "json", "markdown", "github"])  # github: workflow annotations
Command = TypeVar("Command", bound=Callable[..., Any])
Option = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*declared: Option) -> Callable[[Command], Command]:
    """Several options as one decorator, shown in `--help` in the order given."""

    def decorate(function: Command) -> Command:
        decorated: Callable[..., Any] = function
        for option in reversed(declared):
            decorated = option(decorated)
        return cast(Command, decorated)

    return decorate


def _output_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    OUTPUT.command, OUTPUT.fmt = ctx.info_name or OUTPUT.command, value
    return value


def format_option(choices: click.Choice[str]) -> Option:
    """--format; known first (eager), so that any later failure is reported in that format."""
    return click.option(
        "--format", "fmt", type=choices, default="text", show_default=True, is_eager=True,
        callback=_output_format, help="What stdout holds; a failure is reported in it too.",
    )  # fmt: skip


JUNIT_OPTION = click.option(
    "--junit", type=click.Path(dir_okay=False), help="Also write the result as JUnit XML here."
)
PATHS = click.argument("paths", nargs=-1, type=click.Path())


def _global_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:  # given before or after the subcommand: either turns request logging on
        logging.getLogger("reconciler").setLevel(logging.DEBUG)


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    OUTPUT.no_color |= value  # given before or after the subcommand


# Shown as --no-color, -v, --debug: the order of the options they replace.
global_options = options(
    click.option(
        "--no-color", is_flag=True, expose_value=False, callback=_no_color,
        help="Never colour the output (also NO_COLOR=1; FORCE_COLOR=1 colours without a "
        "terminal).",
    ),
    click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, callback=_global_flag,
        help="Log every API request to stderr.",
    ),
    click.option(
        "--debug", is_flag=True, expose_value=False, callback=_global_flag,
        help="Show tracebacks for unexpected errors.",
    ),
)  # fmt: skip
"""`-v`, `--debug` and `--no-color`, accepted before or after the subcommand."""


# reconciler.yaml: --config, --target, --var ---------------------------------------------------


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


def choose(
    config_file: str | None,
    target_name: str | None,
    assignments: Sequence[str],
    loaded: configuration.Config | None = None,
) -> Scope:
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
                return Scope(None, None, overrides)
            loaded = configuration.load_config(found)
        chosen = loaded.target(target_name).with_vars(overrides)
    return Scope(loaded, chosen, chosen.vars)


def validation_scopes(
    paths: tuple[str, ...], config_file: str | None, target_name: str | None, var: Sequence[str]
) -> tuple[Scope, ...]:
    """The targets validate checks: the one chosen, else every target of reconciler.yaml."""
    found = None if target_name or paths else configuration.find_config(config_file)
    if found is None:
        return (choose(config_file, target_name, var),)
    with _config_errors():
        loaded = configuration.load_config(found)  # read once, whatever the number of targets
    return tuple(choose(config_file, name, var, loaded) for name in loaded.targets)


def _complete_targets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of --target: the targets of reconciler.yaml (or --config), if readable."""
    from click.shell_completion import CompletionItem  # defers click's completion code

    try:
        found = configuration.find_config(ctx.params.get("config_file"))
        names = sorted(configuration.load_config(found).targets) if found else []
    except (ReconcilerError, OSError):
        return []  # a completion never prints an error into the command line being typed
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


config_options = options(
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
)
"""--config, --target and --var (passed as config_file, target_name and var)."""


# The Polaris project: --url, --project, --api-key-file, ... -------------------------------------


@dataclass(frozen=True)
class Target:
    """Which Polaris project to talk to, and how (from the shared connection options)."""

    url: str | None
    project: str | None
    api_key_file: str | None
    insecure: bool
    parallelism: int
    no_cache: bool
    scope: Scope = field(default_factory=Scope)
    allowed_hosts: frozenset[str] = frozenset()  # --allow-host and RECONCILER_ALLOWED_HOSTS

    @property
    def api_key_env(self) -> str:
        """The environment variable that holds the API key."""
        return self.scope.target.api_key_env if self.scope.target else API_KEY_VARIABLE


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
        scope = choose(config_file, target_name, var)
        if scope.target is not None:
            # A target's URL and project are reviewed in git; a flag would silently bypass that.
            if url or project:
                raise Failure(
                    f"--url and --project cannot be combined with target {scope.target.name}, "
                    f"which sets both; change them in {scope.config and scope.config.file}"
                )
            url, project = scope.target.url, scope.target.project
            _same_url(scope.target, os.environ.get("POLARIS_URL", "").strip())
        else:
            url = url or os.environ.get("POLARIS_URL")
            project = project or os.environ.get("POLARIS_PROJECT_ID")
        if url:
            _trusted(url, allowed, insecure)  # before the key is read: see _trusted
        if "paths" in kwargs and not kwargs["paths"]:  # import and unlock read no manifests
            kwargs["paths"] = scope.paths  # a target's own manifests; saved plans record them
        target = Target(url, project, api_key_file, insecure, parallelism, no_cache, scope, allowed)
        function(*args, target=target, **kwargs)

    declared = [
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
        declared.append(
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
        declared.append(
            click.option(
                "--no-cache",
                is_flag=True,
                help="Do not read or write the local cache of finished jobs.",
            )
        )
    return config_options(options(*declared)(command))


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
    from reconciler.client import PolarisError, check_destination  # defers httpx

    try:
        check_destination(url, allowed, insecure=insecure)
    except PolarisError as error:
        raise Failure(str(error)) from None


def api_key(target: Target) -> str:
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


def client(target: Target, key: str) -> PolarisClient:
    """The API client of `target` (closed by its `with` block)."""
    from reconciler.client import ClientConfig, PolarisClient, PolarisError  # defers httpx

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


# What a plan contains: --resubmit-canceled, --rotate-secrets, --prune ---------------------------


def plan_options(function: Callable[..., None]) -> Callable[..., None]:
    """Add the options that change what a plan contains; pass them as `options`."""

    @functools.wraps(function)
    def command(
        *args: Any, resubmit_canceled: bool, rotate_secrets: bool, prune: bool, **kwargs: Any
    ) -> None:
        function(*args, options=PlanOptions(resubmit_canceled, rotate_secrets, prune), **kwargs)

    return options(
        click.option("--resubmit-canceled", is_flag=True, help="Resubmit jobs that were canceled."),
        click.option("--rotate-secrets", is_flag=True, help="Re-send connection secrets."),
        click.option("--prune", is_flag=True, help="Delete connections no manifest declares."),
    )(command)


# Each command's own flags -----------------------------------------------------------------------

validate_flags = options(PATHS, format_option(CI_FORMATS), JUNIT_OPTION, config_options)

plan_flags = options(
    PATHS,
    format_option(CI_FORMATS),
    click.option("--out", type=click.Path(dir_okay=False), help="Save the plan to this file."),
    click.option(
        "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none."
    ),
    click.option(
        "--show-requests",
        is_flag=True,
        help="Also print each request body apply would send (secret values redacted).",
    ),
    click.option(
        "--list-objects",
        is_flag=True,
        help="List the objects each new job will read (S3 ListObjectsV2 with the connection's "
        "keys; keys go only to AWS S3 or loopback endpoints).",
    ),
    click.option(
        "--s3-dir",
        type=click.Path(file_okay=False, exists=True),
        envvar="RECONCILER_S3_DIR",
        help="List objects from this directory of buckets (DIR/BUCKET/KEY) instead of S3; "
        "implies --list-objects (env RECONCILER_S3_DIR).",
    ),
    click.option(
        "--s3-endpoint",
        envvar="RECONCILER_S3_ENDPOINT",
        metavar="URL",
        help="List objects through this S3-compatible server for every connection (path-style); "
        "implies --list-objects (env RECONCILER_S3_ENDPOINT).",
    ),
    click.option(
        "--preflight",
        is_flag=True,
        help="Also test (POST /connections/NAME/test) each connection that new jobs read through.",
    ),
    connection_options,
    plan_options,
)

apply_flags = options(
    PATHS,
    format_option(FORMATS),
    click.option(
        "--auto-approve", is_flag=True, help="Apply without asking (required without a terminal)."
    ),
    click.option("--allow-replace", is_flag=True, help="Allow delete-and-create of connections."),
    click.option(
        "--allow-reingest",
        is_flag=True,
        help="Allow jobs that ingest already-ingested objects again.",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="Allow prune to delete more than 30% (or 3) of the connections.",
    ),
    click.option(
        "--allow-empty", is_flag=True, help="Allow prune to delete every connection of the project."
    ),
    click.option(
        "--allow-checkpoint-change",
        is_flag=True,
        help="Allow streaming jobs to read another topic or stream (re-reads or skips data).",
    ),
    click.option("--wait", is_flag=True, help="Follow submitted jobs until they finish."),
    click.option(
        "--timeout",
        type=FiniteFloat(min=0, min_open=True),
        default=3600.0,
        show_default=True,
        metavar="SECONDS",
        help="How long --wait follows jobs; they keep running in Polaris after it.",
    ),
    click.option(
        "--lock-timeout",
        type=FiniteFloat(min=0),
        default=DEFAULT_LOCK_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another apply's project lock.",
    ),
    click.option(
        "--no-lock",
        is_flag=True,
        help="Do not take the project lock (for keys without ManageTables).",
    ),
    click.option(
        "--lock-lease",
        type=FiniteFloat(min=0, min_open=True),
        default=None,
        hidden=True,
        help="Seconds of the project lock's lease (tests shorten it; a waiter waits the longest).",
    ),
    connection_options,
    plan_options,
)


def _statuses(_: click.Context, __: click.Parameter, value: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(chosen - set(DRIFT_STATUSES))
    if unknown:
        raise click.BadParameter(
            f"unknown status {', '.join(unknown)}; choose from {', '.join(DRIFT_STATUSES)}"
        )
    return chosen


drift_flags = options(
    PATHS,
    format_option(CI_FORMATS),
    JUNIT_OPTION,
    click.option(
        "--fail-on",
        default=",".join(sorted(DEFAULT_FAIL_ON)),
        show_default=True,
        metavar="STATUSES",
        callback=_statuses,
        help=f"Statuses that make drift exit 2, comma-separated ({', '.join(DRIFT_STATUSES)}).",
    ),
    click.option(
        "--ignore",
        "ignore",
        multiple=True,
        metavar="NAME_GLOB",
        help="Leave out resources another tool owns (matches name or Kind/name; repeatable).",
    ),
    click.option(
        "--history",
        multiple=True,
        metavar="PATH",
        help="Manifests of finished jobs: they count as managed, never fail and are never "
        "submitted.",
    ),
    connection_options,
)

import_flags = options(
    click.option(
        "--out",
        type=click.Path(file_okay=False),
        help="Directory to write the manifests into (default: the --target's first path, or "
        "manifests).",
    ),
    click.option(
        "--jobs",
        is_flag=True,
        help="Also import batch jobs: running ones into --out, finished ones into --history-out.",
    ),
    click.option(
        "--history-out",
        type=click.Path(file_okay=False),
        help="Directory for finished jobs' manifests, which plan never submits and drift "
        "--history reads (default: the --target's first history path, or history beside --out).",
    ),
    click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice([str(kind) for kind in KIND_ORDER]),
        help="Import only this kind (repeatable).",
    ),
    click.option(
        "--name",
        "names",
        multiple=True,
        metavar="GLOB",
        help="Import only matching names (repeatable).",
    ),
    click.option("--force", is_flag=True, help="Overwrite manifests that already exist."),
    import_options,
)

schema_flags = options(
    click.option(
        "--out",
        required=True,
        type=click.Path(file_okay=False),
        help="Directory to write the JSON Schema files into (created if missing).",
    ),
    click.option("--force", is_flag=True, help="Overwrite schema files that differ."),
)

unlock_flags = options(
    click.option("--yes", is_flag=True, help="Remove the lock without asking."), lock_options
)
