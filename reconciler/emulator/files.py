"""Files v1: upload (multipart/form-data), list, read and delete the project's uploaded files.

Batch jobs read them with a source of type `uploaded` (jobs.py), through the same ingestion
engine as S3 objects: the files are kept as objects of a bucket named `uploads`
(`Project.files_root`).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from reconciler.emulator.api import ApiError, Call, Response, invalid, not_found, one_of
from reconciler.emulator.auth import MANAGE_JOBS, user  # inferred: uploads feed ingestion jobs
from reconciler.emulator.clock import timestamp
from reconciler.emulator.routing import Route

if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.emulator.state import Project

BUCKET = "uploads"
# Inferred: the OpenAPI gives no quota; the emulator reports 10 GB and refuses nothing.
ALLOCATED_BYTES = 10 * 1024**3
DATA_FORMATS = {".json": "nd-json", ".jsonl": "nd-json", ".ndjson": "nd-json", ".csv": "csv",
                ".tsv": "csv", ".parquet": "parquet", ".orc": "orc", ".avro": "avro_ocf"}  # fmt: skip
COMPRESSIONS = {".gz": "gz", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".sz": "sz"}
DATA_FORMAT_VALUES = frozenset({"avro_ocf", "avro_stream", "csv", "kafka", "kinesis", "nd-json",
                                "orc", "parquet", "protobuf", "regex"})  # fmt: skip


def path_of(emulator: Project, name: str) -> Path:
    """Where an uploaded file's bytes are kept."""
    return emulator.files_root.joinpath(BUCKET, *name.split("/"))


def existing(emulator: Project, name: str) -> dict[str, Any]:
    """A file's metadata by name (404 when there is none)."""
    if name not in emulator.store.files:
        raise not_found(f"File {name} not found")
    return emulator.store.files[name]


def list_files(emulator: Project, call: Call) -> Response:
    """GET /files: every file, newest first, and the space they use."""
    files = sorted(emulator.store.files.values(), key=lambda f: f["uploadedOnDatetime"])[::-1]
    used = sum(f["sizeBytes"] for f in files)
    space = {"allocatedBytes": ALLOCATED_BYTES, "usedBytes": used,
             "remainingBytes": max(0, ALLOCATED_BYTES - used)}  # fmt: skip
    return Response(200, {"files": files, "space": space, "totalCount": len(files)})


def get_file(emulator: Project, call: Call) -> Response:
    """GET /files/{name}: the file's metadata."""
    return Response(200, existing(emulator, call.params["name"]))


def delete_file(emulator: Project, call: Call) -> Response:
    """DELETE /files/{name}: 204."""
    name = call.params["name"]
    existing(emulator, name)
    path_of(emulator, name).unlink(missing_ok=True)
    emulator.store.delete("files", name)
    return Response(204, None)


def upload_file(emulator: Project, call: Call) -> Response:
    """POST /files: one multipart part named `file`, its filename the file's name."""
    name, content = _file_part(call)
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise invalid(f"The file name {name!r} is not a valid name")
    if name in emulator.store.files:
        # Inferred: the OpenAPI documents only 201 and 400; names are unique, so a second
        # upload of a name is the conflict every other collection answers with 409.
        raise ApiError(409, "Conflict", f"File {name} already exists")
    suffixes = [s.lower() for s in name.rsplit("/", 1)[-1].split(".")[1:]]
    compression = COMPRESSIONS.get(f".{suffixes[-1]}", "none") if suffixes else "none"
    kept = suffixes[:-1] if compression != "none" else suffixes
    data_format = DATA_FORMATS.get(f".{kept[-1]}", "nd-json") if kept else "nd-json"
    for parameter, allowed in (("dataFormat", DATA_FORMAT_VALUES),
                               ("compressionFormat", frozenset(COMPRESSIONS.values()) | {"none"})):  # fmt: skip
        given = call.query.get(parameter, [None])[-1]
        if given is not None and not one_of(given, allowed):
            raise invalid(f"{parameter} must be one of {', '.join(sorted(allowed))}")
    data_format = call.query.get("dataFormat", [data_format])[-1]
    compression = call.query.get("compressionFormat", [compression])[-1]
    target = path_of(emulator, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    record = {
        "id": str(uuid.uuid4()), "name": name, "sizeBytes": len(content),
        "dataFormat": data_format, "compressionFormat": compression,
        "digest": {"algo": "md5", "hash": hashlib.md5(content, usedforsecurity=False).hexdigest()},
        "uploadedBy": user(call.caller), "uploadedOnDatetime": timestamp(emulator.now()),
    }  # fmt: skip
    emulator.store.put("files", name, record)
    return Response(201, record)


def _file_part(call: Call) -> tuple[str, bytes]:
    if not call.content_type.lower().startswith("multipart/form-data"):
        # Inferred: the OpenAPI lists 201 and 400 only; a body of another media type gets the
        # 415 every other operation answers.
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "Upload a file as multipart/form-data with a part named file",
        )
    header = f"Content-Type: {call.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + call.raw)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "file":
            filename = part.get_filename() or ""
            payload = part.get_payload(decode=True)
            return filename, payload if isinstance(payload, bytes) else b""
    raise invalid("The upload needs a multipart part named file")


ROUTES = (
    Route("GET", "/files", list_files),
    Route("POST", "/files", upload_file, MANAGE_JOBS, takes_body=False),
    Route("GET", "/files/{name}", get_file),
    Route("DELETE", "/files/{name}", delete_file, MANAGE_JOBS),
)
