"""Longer fault-injection runs for `make soak` (marked slow; not part of `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient, PolarisError
from reconciler.emulator import Emulator, FaultPlan
from reconciler.kinds.ingestion_job import JobCache
from reconciler.live import read_live
from reconciler.plan import make_plan
from reconciler.validate import load_manifests
from reconciler.values import ApplyOptions
from tests.fleet import assert_converged, write_fleet


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_fifty_connections_and_three_hundred_jobs_converge_under_heavy_faults(
    tmp_path: Path, emulator: Emulator, client: PolarisClient, seed: int
) -> None:
    fleet = write_fleet(tmp_path / "fleet", connections=50, jobs_per_connection=6)
    manifests = load_manifests([str(fleet)], {})
    faults = FaultPlan(
        seed=seed, rate_429=0.25, rate_503=0.15, rate_drop=0.2, retry_after_seconds=0
    )
    emulator.faults = faults
    # At these rates a read can exhaust its retries and a run can fail, as it would in CI; the
    # run is then repeated. What must hold, whatever happens, is that no job is ever duplicated.
    for _ in range(10):
        try:
            # As the CLI does: finished jobs are cached on disk, so each run reads fewer.
            cache = JobCache(tmp_path / "cache" / "jobs.json")
            live = read_live(client, manifests.resources, parallelism=16, cache=cache)
            plan = make_plan(manifests.resources, live)
        except PolarisError:
            continue
        options = ApplyOptions(parallelism=16)
        result = Applier(
            PolarisProvider(client, options, sleep=lambda s: None), parallelism=options.parallelism
        ).run(plan)
        if not result.failed:
            break
    emulator.faults = FaultPlan()
    assert_converged(client, fleet, jobs=300)
