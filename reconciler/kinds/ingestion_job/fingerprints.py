"""The two digests of a batch job's spec, as two types a reader (and mypy) cannot mix up.

- `SpecFingerprint`: the spec as the manifest writes it, its connection by name. Validation takes
  it (two manifests with one spec are one job), the plan checksum covers it, and import keeps one
  job per value. It never finds a live job: a job is not the name of its connection.
- `JobIdentity`: what a job is in Polaris, the spec with its connection's name replaced by where
  that connection points (its `Place`: the S3 service, bucket and prefix). A renamed connection,
  or another one on the same bucket and prefix, reads the same objects, so the job is the same.
  Plan and apply find live jobs by it. Only a job whose connection has no known place (it was
  deleted) is identified over the connection's name, on both sides alike.

Both are taken of the compared form (`spec.compared_form`), which the caller made once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NewType

from reconciler.kinds.ingestion_job.identity import Place

SpecFingerprint = NewType("SpecFingerprint", str)
JobIdentity = NewType("JobIdentity", str)


def spec_fingerprint(compared: Mapping[str, Any]) -> SpecFingerprint:
    """The digest of a job's spec in compared form, its connection by name."""
    return SpecFingerprint(_digest(compared))


def job_identity(compared: Mapping[str, Any], place: Place | None) -> JobIdentity:
    """The identity of a job whose spec in compared form is `compared`, its connection at
    `place` (None: a connection with no known place, identified by its name)."""
    if place is None:
        return JobIdentity(_digest(compared))
    source = {key: value for key, value in compared["source"].items() if key != "connectionName"}
    source["location"] = place.to_json()
    return JobIdentity(_digest({**compared, "source": source}))


def _digest(value: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `value`."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
