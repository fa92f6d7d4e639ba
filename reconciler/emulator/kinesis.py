"""Reading Kinesis streams through a local Kinesis endpoint (`--kinesis-endpoint`): moto's
server, LocalStack or kinesalite.

The Kinesis Data Streams API is JSON over HTTP: `POST /` with `X-Amz-Target:
Kinesis_20131202.<Operation>`. A stream is read shard by shard from a position kept per shard:
after the last sequence number read (`AFTER_SEQUENCE_NUMBER`), or from the start of a shard never
read (`TRIM_HORIZON`), so a shard added by resharding is read whole. Requests are signed (SigV4)
for the connection's region with placeholder keys: a Kinesis connection names a role to assume,
which cannot be assumed outside AWS, and local servers take any keys but read the region from
the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

TARGET = "Kinesis_20131202"
DEFAULT_REGION = "us-east-1"
REGION = re.compile(r"kinesis(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com", re.IGNORECASE)
PLACEHOLDER_KEYS = ("polaris-emulator", "polaris-emulator")
RECORDS_A_CALL = 10000  # GetRecords's maximum
# Shard id -> the last sequence number read from it; a shard not named is read from its start.
Shards = dict[str, str]


class KinesisError(Exception):
    """The stream could not be read: the endpoint's error type and message, or why not."""


@dataclass(frozen=True)
class Record:
    """One record of a shard: its sequence number and its data, decoded from base64."""

    shard: str
    sequence: str
    data: bytes


def region_of(connection: Mapping[str, Any]) -> str:
    """The region a connection's `awsEndpoint` names (kinesis.eu-west-1.amazonaws.com)."""
    found = REGION.search(str(connection.get("awsEndpoint", "")))
    return found.group(1).lower() if found else DEFAULT_REGION


def sign(url: str, headers: Mapping[str, str], body: bytes, region: str, moment: datetime) -> dict[str, str]:  # fmt: skip
    """The headers of a Kinesis request signed with AWS Signature Version 4 (placeholder keys)."""
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed |= {"host": urlsplit(url).netloc, "x-amz-date": amz_date}
    names = sorted(signed)
    canonical = "\n".join([
        "POST", "/", "", "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    scope = f"{day}/{region}/kinesis/aws4_request"
    to_sign = (
        f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    access_key, secret_key = PLACEHOLDER_KEYS
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "kinesis", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        **headers, "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }  # fmt: skip


class KinesisApi:
    """A Kinesis endpoint, read for one region."""

    def __init__(
        self, endpoint: str, region: str = DEFAULT_REGION,
        transport: httpx.BaseTransport | None = None, timeout: float = 10.0,
    ) -> None:  # fmt: skip
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        # Never follow a redirect: the signed request would go to a host nobody chose.
        self.http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def call(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One operation of the API; raises KinesisError for an error answer or none."""
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1",
                   "X-Amz-Target": f"{TARGET}.{operation}"}  # fmt: skip
        signed = sign(self.endpoint, headers, content, self.region, datetime.now(UTC))
        try:
            response = self.http.post(self.endpoint, content=content, headers=signed)
        except httpx.HTTPError as error:
            raise KinesisError(f"Could not reach {self.endpoint}: {error}") from None
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if response.status_code >= 300 or not isinstance(answer, dict):
            kind = (
                str(answer.get("__type", "")).rpartition("#")[2] if isinstance(answer, dict) else ""
            )
            message = (
                answer.get("message") or answer.get("Message") if isinstance(answer, dict) else None
            )
            raise KinesisError(f"{kind or response.status_code}: {message or response.text[:200]}")
        return answer

    def shard_ids(self, stream: str) -> list[str]:
        """The ids of every shard of a stream, in order."""
        found: list[str] = []
        request: dict[str, Any] = {"StreamName": stream}
        while True:
            page = self.call("ListShards", request)
            try:
                found.extend(str(shard["ShardId"]) for shard in page.get("Shards", []))
            except (KeyError, TypeError) as error:
                raise KinesisError(f"ListShards answered a malformed shard: {error}") from None
            token = page.get("NextToken")
            if not token:
                return found
            request = {"NextToken": token}  # ListShards takes the token without the name

    def read(self, stream: str, after: Mapping[str, str]) -> list[Record]:
        """Every record of a stream after the positions `after`, shard by shard, in order."""
        records: list[Record] = []
        for shard in self.shard_ids(stream):
            request: dict[str, Any] = {"StreamName": stream, "ShardId": shard}
            if shard in after:
                request |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                            "StartingSequenceNumber": after[shard]}  # fmt: skip
            else:
                request["ShardIteratorType"] = "TRIM_HORIZON"
            iterator = self.call("GetShardIterator", request).get("ShardIterator")
            while iterator:
                page = self.call("GetRecords", {"ShardIterator": iterator, "Limit": RECORDS_A_CALL})
                got = page.get("Records", [])
                try:
                    records.extend(
                        Record(shard, str(r["SequenceNumber"]), base64.b64decode(r["Data"]))
                        for r in got
                    )
                except (KeyError, TypeError, ValueError) as error:
                    raise KinesisError(f"GetRecords answered a malformed record: {error}") from None
                # At the tip of the shard: nothing more now, and nothing behind it.
                if not got and not page.get("MillisBehindLatest"):
                    break
                iterator = page.get("NextShardIterator")
        return records

    def tip(self, stream: str) -> Shards:
        """Where a stream ends now: the last sequence number of each shard that holds any."""
        return positions({}, self.read(stream, {}))


def positions(start: Mapping[str, str], records: list[Record]) -> Shards:
    """The positions after reading `records` from `start`."""
    moved = dict(start)
    for record in records:
        moved[record.shard] = record.sequence
    return moved


def lines(record: Record) -> list[str]:
    """The events of a record: one JSON value, however it is laid out, or one a line."""
    text = record.data.decode("utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError:
        return [line for line in text.splitlines() if line.strip()]
    return [" ".join(text.splitlines())]  # JSON strings hold no raw line break
