"""Values that flow between the steps: locations, manifest errors and desired resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.errors import ErrorCode, ReconcilerError


class Kind(StrEnum):
    """The resource kinds a manifest may declare, in dependency order."""

    CONNECTION = "Connection"
    TABLE = "Table"
    INGESTION_JOB = "IngestionJob"
    STREAMING_JOB = "StreamingJob"


class Action(StrEnum):
    """What apply does with one resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"
    RESUBMIT = "resubmit"
    SKIP = "skip"
    SUSPEND = "suspend"  # a streaming job: desiredExecutionStatus suspended
    RESUME = "resume"  # a streaming job: desiredExecutionStatus running

    @property
    def changes_something(self) -> bool:
        """Whether apply sends anything for it: every action but noop and skip."""
        return self not in _UNCHANGING


_UNCHANGING = frozenset({Action.NOOP, Action.SKIP})


class Reason(StrEnum):
    """Why a change has its action, as a value callers switch on (the text says it to people)."""

    NOT_FOUND = "not-found"  # nothing live matches: create
    UP_TO_DATE = "up-to-date"  # live equals desired
    FIELDS_DIFFER = "fields-differ"  # update in place
    TYPE_CHANGES = "type-changes"  # a field that cannot change in place: replace
    ROTATE_SECRETS = "rotate-secrets"  # --rotate-secrets re-sends write-only values
    EXTERNAL = "external"  # policy.manage: external, and it exists
    INGESTED = "ingested"  # a job with this identity ran, or is running
    UNKNOWN_STATUS = "unknown-status"  # a job with this identity is in a status not known
    CANCELED = "canceled"  # a job with this identity was canceled (skipped unless asked)
    FAILED = "failed"  # a job with this identity failed: resubmit
    SPEC_CHANGED = "spec-changed"  # a new job whose spec differs from an earlier one
    NOT_DECLARED = "not-declared"  # prune: no manifest declares it
    IN_USE = "in-use"  # prune: an active job uses it
    UNADDRESSABLE = "unaddressable"  # prune: its name cannot be sent in a path
    # A streaming job's change, by what it does to the data (reconciler/kinds/streaming_job.py):
    CONTINUES = "continues-from-checkpoint"  # a replacement reading the same topic or stream
    CHECKPOINT = "checkpoint-change"  # reads another topic or stream: re-reads or skips data
    UNTIL_RESET = "no-effect-until-reset"  # only readFromPoint changes: nothing until a reset
    STATUS_DIFFERS = "status-differs"  # suspend or resume
    UNHEALTHY = "unhealthy"  # up to date, but its health is error
    HEALTH_WARN = "health-warn"  # up to date, but its health is warn


# The order kinds are created in: a job reads from a connection and writes into a table, so both
# must exist before it is submitted. The registry (reconciler/kinds) follows this order.
KIND_ORDER: tuple[Kind, ...] = tuple(Kind)

API_VERSION = "reconciler/v1"

# The most a manifest document may hold, whichever parser reads it (manifest.py, yaml_full.py):
MAX_DEPTH = 64  # Polaris request bodies nest about six levels deep
MAX_NODES = 200_000  # per document, counting every alias expansion: stops billion-laughs bombs

# The table that holds the project lock (reconciler/lock.py): never listed, planned or declared.
LOCK_TABLE = "polaris-reconciler-lock"
DEFAULT_LOCK_TIMEOUT = 300.0  # --lock-timeout: how long a second apply waits

# Every status a drift report (reconciler/drift.py) can hold, in the order the Markdown report
# groups them. `history`: a finished job kept in a --history path that Polaris no longer lists
# (or lists as failed); `ignored`: matched by --ignore; `unknown`: a job in a status the tool does
# not know, which may have ingested (it fails a schedule by default: someone must look);
# `unhealthy`: a streaming job in sync whose health is warn (fails only with --fail-on). Here, not
# in drift.py, so that the CLI can name them in its options without importing the API client.
DRIFT_STATUSES = (
    "missing", "changed", "failed", "unknown", "unhealthy", "unmanaged", "history", "ignored",
    "in-sync",
)  # fmt: skip
DEFAULT_FAIL_ON = frozenset({"missing", "changed", "failed", "unknown"})


@dataclass(frozen=True, order=True)
class Location:
    """A position in a manifest file; line and column count from 1."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class ManifestError:
    """One user mistake in a manifest, with where it is and how to fix it."""

    location: Location
    message: str
    resource: str | None = None  # "Kind/name" when the document got far enough to have one
    severity: str = "error"  # or "warning": reported, but does not make the manifests invalid

    def __str__(self) -> str:
        suffix = f" ({self.resource})" if self.resource else ""
        return f"{self.location}: {self.severity}: {self.message}{suffix}"

    def to_json(self) -> dict[str, Any]:
        """The error as the JSON object `validate --format json` prints."""
        return {
            "file": self.location.file,
            "line": self.location.line,
            "col": self.location.col,
            "severity": self.severity,
            "message": self.message,
            "resource": self.resource,
        }


class ManifestErrors(ReconcilerError):
    """Raised by a step that found user mistakes; carries every one of them."""

    code = ErrorCode.MANIFEST

    def __init__(self, errors: list[ManifestError]) -> None:
        super().__init__(f"{len(errors)} manifest error(s)")
        self.errors = sorted(errors, key=lambda e: (e.location, e.message))


Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Resource:
    """A desired resource, validated and with `${env:...}` references expanded."""

    kind: Kind
    name: str
    spec: Mapping[str, Any]
    location: Location
    policy: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # What identifies it besides its name (IngestionJob only: its SpecFingerprint, without a
    # place), and its spec in compared form, which taking the fingerprint made: a plan makes
    # both once (validate.Manifests.prepared) and reads them instead of normalizing the spec
    # again (ResourceKind.identified).
    fingerprint: str | None = None
    compared: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[Kind, str]:
        """The (kind, name) pair that identifies this resource among the manifests."""
        return (self.kind, self.name)

    @property
    def ref(self) -> str:
        """The `Kind/name` form used in messages."""
        return f"{self.kind}/{self.name}"

    @property
    def external(self) -> bool:
        """True when the resource is managed elsewhere and must only be checked for existence."""
        return self.policy.get("manage") == "external"


SENSITIVE = "(sensitive)"


class Secret(str):
    """A secret value that shows as `(sensitive)` in every form: str, repr, format, JSON, Markdown.

    It is a `str` whose text is "(sensitive)", so anything that prints, formats, slices or
    JSON-encodes it shows only that; the value itself is held aside and comes out only through
    `reveal()`, which one function calls: `client.request_body`, which builds the body of every
    request to Polaris (registering each value with the client's redactor) and gives the S3
    signer its keys. Validation registers the value with the CLI's redactor as it reads it from
    the environment, before wrapping it (tests/manifest/test_secrets.py holds both to this).
    Like pydantic's SecretStr, but a str, so schema checks and json.dumps need no special case.
    """

    _value: str
    reference: str  # where the value comes from: `${env:NAME}`, safe to show and to save

    def __new__(cls, value: str, reference: str = SENSITIVE) -> Secret:
        secret = super().__new__(cls, SENSITIVE)
        secret._value = value
        secret.reference = reference
        return secret

    def reveal(self) -> str:
        """The value itself: only for the body of a request to Polaris."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({SENSITIVE!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is never pickled, cached or saved")


def by_reference(value: Any) -> Any:
    """`value` as plain data with every Secret shown as its reference (`${env:NAME}`): what a
    plan shows and saves, so that a reviewer sees where each secret comes from, never its value."""
    if isinstance(value, Secret):
        return value.reference
    if isinstance(value, Mapping):
        return {str(key): by_reference(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [by_reference(item) for item in value]
    return value
