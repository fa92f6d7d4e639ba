"""Schemathesis hooks for the conformance run (tests/emulator/test_schemathesis.py).

`documented_status` replaces schemathesis's status_code_conformance: it allows a status the
OpenAPI does not list for an operation only where the emulator documents its choice next to the
code, each named here with where.
"""

from __future__ import annotations

from typing import Any

import schemathesis

PREFIX = "/v1/projects/{projectId}"
# (method, path, status): where the emulator explains the choice.
CHOSEN = {
    ("POST", "/jobs/{jobId}/reset", 400): "jobs.reset_job: a batch job cannot be reset",
    ("POST", "/jobs/{jobId}/status", 400): "jobs.update_job_status: an invalid desired status",
    ("POST", "/query/sql", 415): "routing._body: a body that is not JSON, on every operation",
    ("POST", "/files", 409): "files.upload_file: a name already uploaded",
    ("POST", "/files", 415): "files._file_part: an upload that is not multipart/form-data",
}


@schemathesis.check
def documented_status(ctx: Any, response: Any, case: Any) -> None:
    """The status is one the OpenAPI lists for the operation, or one of CHOSEN."""
    if case.method.upper() != case.operation.method.upper():
        return  # a method outside the API: the unsupported_method check holds it to a 405
    documented = case.operation.responses.status_codes
    if "default" in documented:
        return
    status = response.status_code
    if str(status) in documented or f"{str(status)[0]}XX" in documented:
        return
    path = case.operation.path.removeprefix(PREFIX)
    if (case.operation.method.upper(), path, status) in CHOSEN:
        return
    raise AssertionError(
        f"Undocumented status {status} for {case.operation.method.upper()} {path}; "
        f"documented: {', '.join(documented)}"
    )
