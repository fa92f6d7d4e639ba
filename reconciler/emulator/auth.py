"""API keys: who is calling, what they may do, and the user Polaris names after a key.

Sources: docs/polaris-api-notes.md ("Base URL and authentication").
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping

from reconciler.emulator.api import ApiError

DEMO_API_KEY = "pok_demo0Emulator0Key0For0Local0Use0Only"
MANAGE_CONNECTIONS = "ManageConnections"
MANAGE_TABLES = "ManageTables"
MANAGE_JOBS = "ManageIngestionJobs"
ALL_PERMISSIONS = frozenset({MANAGE_CONNECTIONS, MANAGE_TABLES, MANAGE_JOBS})


def authenticate(api_keys: Mapping[str, frozenset[str]], header: str) -> str:
    """The API key an Authorization header carries (401 unless it is a known key)."""
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    key: str | None = None
    if scheme.lower() == "basic":
        # The docs show both the raw key and base64("KEY:"); Polaris accepts both.
        if credential in api_keys:
            key = credential
        else:
            try:
                key = base64.b64decode(credential, validate=True).decode().partition(":")[0]
            except ValueError:
                key = None
    elif scheme.lower() == "bearer":
        key = credential  # inferred: the emulator accepts its API keys as OAuth tokens
    if key is None or key not in api_keys:
        raise ApiError(401, "Unauthorized", "Missing or invalid credentials")
    return key


def authorize(api_keys: Mapping[str, frozenset[str]], key: str, permission: str | None) -> None:
    """403 naming the permission the key lacks (reads need none)."""
    if permission is not None and permission not in api_keys[key]:
        raise ApiError(403, "Forbidden", f"The API key lacks the {permission} permission")


def user(key: str) -> dict[str, str]:
    """The user a key acts as: Polaris names API-key users after a masked key
    ("api-key-pok_vipgj...bjjvyo", tests/reference/polaris-s3-ingestion-guide.txt)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"username": f"api-key-{key[:9]}...{key[-6:]}", "userId": str(uuid.UUID(digest[:32]))}
