"""IngestionJob: a batch job that reads objects through an S3 connection into a table.

Everything that decides "has this been ingested?" is in this package, one concern a module:

- `spec`: what a job's spec is and its compared form (normalized once per run);
- `fingerprints`: the two digests of a spec, `SpecFingerprint` (its connection by name: the
  duplicate check, the plan checksum, import) and `JobIdentity` (over where its connection
  points: how plan and apply find live jobs), as distinct types;
- `live_job`: a job as Polaris reports it (`LiveJob`); `reader`: how a plan reads them;
  `cache`: the on-disk cache of finished jobs (`JobCache`);
- `checks`: what validate checks of a job against the other manifests;
- `overlap`: live jobs and jobs of one plan that read the same objects (double ingestion);
- `planning`: the change a manifest job needs, and the notes and listings a reviewer reads;
- `submissions`: how apply submits each job exactly once;
- `importing`: `reconciler import --jobs`;
- `kind`: the `ResourceKind` registered for IngestionJob, handing each step to the above.
"""

from __future__ import annotations

from reconciler.kinds.ingestion_job.cache import JobCache
from reconciler.kinds.ingestion_job.fingerprints import (
    JobIdentity,
    SpecFingerprint,
    job_identity,
    spec_fingerprint,
)
from reconciler.kinds.ingestion_job.kind import IngestionJob
from reconciler.kinds.ingestion_job.live_job import LiveJob
from reconciler.kinds.ingestion_job.planning import jobs_to_list, with_listings
from reconciler.kinds.ingestion_job.spec import JOB_SPEC, compared_form

__all__ = [
    "JOB_SPEC", "IngestionJob", "JobCache", "JobIdentity", "LiveJob", "SpecFingerprint",
    "compared_form", "job_identity", "jobs_to_list", "spec_fingerprint", "with_listings",
]  # fmt: skip
