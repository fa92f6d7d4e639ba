"""The one root of every error the reconciler raises, and the codes callers switch on.

A caller that needs to tell errors apart compares `error.code`, never the words of the message:
messages are for people and may be reworded. The CLI turns any `ReconcilerError` into its message
and exit status 1 (cli.main); anything else that escapes is a bug and is reported as one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """What went wrong, as a value: one per way a run can fail."""

    USAGE = "usage"  # a flag or an argument that cannot be used as given
    CONFIG = "config"  # reconciler.yaml: a target or a variable that does not exist
    MANIFEST = "manifest"  # manifests that do not validate (ManifestErrors holds each one)
    API = "api"  # Polaris answered with an error
    NOT_FOUND = "not-found"  # 404 on a resource
    PROJECT_NOT_FOUND = "project-not-found"  # 404 on the project itself
    CONFLICT = "conflict"  # 409: exists already, or a stale version
    AMBIGUOUS_WRITE = "ambiguous-write"  # a write whose outcome is unknown
    UNCONFIRMED_WRITE = "unconfirmed-write"  # a success without the resource it should return
    MALFORMED_RESPONSE = "malformed-response"  # an answer that is not what the API documents
    UNSAFE_PLAN = "unsafe-plan"  # the plan needs a flag the user has not given
    STALE_PLAN = "stale-plan"  # a saved plan no longer matches the manifests or live state
    SAVED_PLAN = "saved-plan"  # a file that is not an intact saved plan
    LOCKED = "locked"  # the project lock could not be taken or released
    IMPORT_CONFLICT = "import-conflict"  # import would overwrite files
    S3 = "s3"  # listing objects failed
    SELECTOR = "selector"  # an object selector or glob that cannot be analysed
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    INTERNAL = "internal"  # a bug in the reconciler


class ReconcilerError(Exception):
    """Every error the reconciler raises for a person to act on; `code` says which kind."""

    code: ClassVar[ErrorCode] = ErrorCode.USAGE
    status: int | None = None  # the HTTP status Polaris answered with, when it answered
