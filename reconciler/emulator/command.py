"""`reconciler emulator`: serve the local Polaris API until stopped."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from reconciler.emulator.app import (
    ALL_PERMISSIONS,
    DEMO_API_KEY,
    DEMO_PROJECT_ID,
    NO_DATA,
    Emulator,
    JobTiming,
)
from reconciler.emulator.faults import FaultPlan
from reconciler.params import FiniteFloat

ENGINE_MODULES = ("duckdb", "sqlglot")  # the `emulator` extra of the package
INSTALL_EXTRA = "pip install 'polaris-reconciler[emulator]'"
RATE = FiniteFloat(min=0, max=1)  # a share of requests
NON_NEGATIVE = FiniteFloat(min=0)


def _keys(path: str | None) -> dict[str, list[str]]:
    if path is None:
        return {DEMO_API_KEY: sorted(ALL_PERMISSIONS)}
    import yaml  # defers PyYAML: only a --keys-file in YAML needs it (and `--help` lists this)

    try:
        text = Path(path).read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise click.BadParameter(f"cannot read {path}: {error}", param_hint="--keys-file") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise click.BadParameter(
            "the keys file maps each API key to a list of permissions", param_hint="--keys-file"
        )
    unknown = {p for perms in data.values() for p in perms} - ALL_PERMISSIONS
    if unknown:
        raise click.BadParameter(
            f"unknown permission(s): {', '.join(sorted(unknown))}", param_hint="--keys-file"
        )
    return {str(k): [str(p) for p in v] for k, v in data.items()}


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    default=8085,
    show_default=True,
    help="Port; 0 picks a free one.",
)
@click.option(
    "--project", default=DEMO_PROJECT_ID, show_default=True, help="The project id to serve."
)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Keep state here across restarts."
)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML/JSON: API key -> permissions.",
)
@click.option(
    "--job-seconds",
    type=NON_NEGATIVE,
    default=3.0,
    show_default=True,
    help="Seconds a job runs; 0 is instant.",
)
@click.option("--fault-seed", type=int, default=0, help="Seed for injected faults.")
@click.option("--fault-429-rate", type=RATE, default=0.0, help="Share of requests answered 429.")
@click.option("--fault-500-rate", type=RATE, default=0.0, help="Share of requests answered 500.")
@click.option("--fault-503-rate", type=RATE, default=0.0, help="Share of requests answered 503.")
@click.option(
    "--fault-drop-rate", type=RATE, default=0.0, help="Share of writes whose response is lost."
)
@click.option(
    "--latency-ms", type=NON_NEGATIVE, default=0.0, help="Latency added to every request."
)
@click.option(
    "--s3-dir",
    type=click.Path(file_okay=False, exists=True),
    help="Serve every bucket from this directory: DIR/BUCKET/KEY is s3://BUCKET/KEY.",
)
@click.option(
    "--s3-endpoint",
    help="Read objects from this S3-compatible server with each connection's access keys.",
)
@click.option(
    "--kinesis-endpoint",
    metavar="URL",
    help="Read Kinesis streams from this Kinesis-compatible server (moto, LocalStack).",
)
def emulator(
    host: str, port: int, project: str, data_dir: str | None, keys_file: str | None, job_seconds: float,
    fault_seed: int, fault_429_rate: float, fault_500_rate: float, fault_503_rate: float,
    fault_drop_rate: float, latency_ms: float, s3_dir: str | None, s3_endpoint: str | None,
    kinesis_endpoint: str | None,
) -> None:  # fmt: skip
    """Serve a local Polaris-compatible API (Connections, Jobs and Tables v1).

    Needs the emulator extra: pip install 'polaris-reconciler[emulator]'.
    """
    try:  # DuckDB loads only for the emulator, an extra of the install
        from reconciler.emulator.engine import DataSource  # deferred: loads duckdb
    except ModuleNotFoundError as missing:
        if (missing.name or "").split(".")[0] not in ENGINE_MODULES:
            raise
        raise click.ClickException(
            f"the emulator needs {missing.name}, which this installation does not have; "
            f"install it with: {INSTALL_EXTRA}"
        ) from None

    if s3_dir and s3_endpoint:
        raise click.UsageError("--s3-dir and --s3-endpoint are alternatives: give one")
    data = (
        DataSource(directory=Path(s3_dir)) if s3_dir
        else DataSource(endpoint=s3_endpoint) if s3_endpoint
        else None
    )  # fmt: skip
    keys = _keys(keys_file)
    faults = FaultPlan(
        seed=fault_seed, rate_429=fault_429_rate, rate_500=fault_500_rate, rate_503=fault_503_rate,
        rate_drop=fault_drop_rate, latency_seconds=latency_ms / 1000,
    )  # fmt: skip
    # A third of the time queued, the rest running: enough to watch `apply --wait` follow a job.
    timing = JobTiming(pending_seconds=job_seconds / 3, running_seconds=job_seconds * 2 / 3)
    instance = Emulator(
        project, keys, timing=timing, faults=faults,
        data_dir=Path(data_dir) if data_dir else None, data=data,
        kinesis_endpoint=kinesis_endpoint,
    )  # fmt: skip
    try:
        running = instance.serve(host, port)
    except OSError as error:
        instance.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}; is another emulator "
            "running there? Stop it, or pass --port 0 to pick a free port"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # before the banner: a reader may stop us
    key_line = (
        f"export POLARIS_API_KEY={DEMO_API_KEY}"
        if keys_file is None
        else "export POLARIS_API_KEY=<a key from --keys-file>"
    )
    print(
        f"Polaris emulator listening on {running.url} (project {project})\n"
        f"Demo API key (every permission; a documented demo value, not a secret): {DEMO_API_KEY}\n"
        "Point the reconciler at it:\n"
        f"export POLARIS_URL={running.url}\n"
        f"export POLARIS_PROJECT_ID={project}\n"
        f"{key_line}\n"
        "Or curl it:\n"
        f'  curl --user "$POLARIS_API_KEY:" {running.url}/v1/projects/{project}/connections\n'
        "Press Ctrl-C to stop.",
        flush=True,
    )
    print(f"Data: {data.describe()}" if data else f"Data: {NO_DATA}", file=sys.stderr, flush=True)
    if kinesis_endpoint:
        print(f"Kinesis: streams are read through the Kinesis API at {kinesis_endpoint}",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.shutdown()
        instance.close()
        print("Emulator stopped.", file=sys.stderr)
