"""reconciler.s3: SigV4 signing as AWS documents it, and object selection as Polaris documents it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.s3 import (
    Credentials,
    DirectorySource,
    S3Api,
    S3Error,
    SelectionError,
    region_of,
    select,
    sign,
)

# The worked examples of AWS's "Signature Version 4: examples of header-based authentication".
AWS_EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@pytest.mark.parametrize(
    ("url", "headers", "signature"),
    [
        (
            "https://examplebucket.s3.amazonaws.com/test.txt",
            {"Range": "bytes=0-9"},
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            {},
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_requests_are_signed_exactly_as_the_aws_examples(
    url: str, headers: dict[str, str], signature: str
) -> None:
    signed = sign("GET", url, headers, AWS_EXAMPLE, "us-east-1", datetime(2013, 5, 24, tzinfo=UTC))
    assert signed["Authorization"].endswith(f"Signature={signature}")
    assert "wJalrXUtnFEMI" not in repr(AWS_EXAMPLE)


def test_the_signing_region_comes_from_the_connections_endpoint() -> None:
    assert region_of("s3.eu-west-1.amazonaws.com") == "eu-west-1"
    assert region_of("s3-us-west-2.amazonaws.com") == "us-west-2"
    assert region_of("minio.internal:9000") == "us-east-1"


@pytest.fixture
def bucket(tmp_path: Path) -> DirectorySource:
    for key in ("logs/a/1.json", "logs/a/2.csv", "logs/b/3.json", "other/4.json"):
        path = tmp_path / "b" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    return DirectorySource(tmp_path)


def keys(objects: list[object]) -> list[str]:
    return [o.key for o in objects]  # type: ignore[attr-defined]


def test_selection_stays_within_the_connections_prefix(bucket: DirectorySource) -> None:
    assert keys(select(bucket, "b", "logs/", {"pattern": "**.json"})) == [
        "logs/a/1.json",
        "logs/b/3.json",
    ]
    assert keys(select(bucket, "b", "logs/", {"pattern": "logs/*/*.csv"})) == ["logs/a/2.csv"]
    assert keys(select(bucket, "b", "", {"prefixes": ["logs/b/", "other/"]})) == [
        "logs/b/3.json",
        "other/4.json",
    ]
    with pytest.raises(SelectionError, match="outside the connection's prefix"):
        select(bucket, "b", "logs/", {"objects": ["other/4.json"]})
    with pytest.raises(S3Error, match=r"logs/a/9\.json"):
        select(bucket, "b", "logs/", {"uris": ["s3://b/logs/a/9.json"]})
    with pytest.raises(S3Error, match=r"does not exist"):
        select(bucket, "absent", "", {"prefixes": ["x/"]})


def test_listing_through_the_s3_api_follows_every_page(moto_endpoint: str, tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="AKIAPAGING", aws_secret_access_key="paging-secret",
    )  # fmt: skip
    bucket = f"paging-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3.create_bucket(Bucket=bucket)
    for number in range(7):
        s3.put_object(Bucket=bucket, Key=f"data/{number}.json", Body=b"{}" * number)
    s3.put_object(Bucket=bucket, Key="elsewhere/x.json", Body=b"{}")
    api = S3Api(moto_endpoint, Credentials("AKIAPAGING", "paging-secret"), page_size=2)
    try:
        listed = api.list(bucket, "data/")
        assert [(o.key, o.size) for o in listed] == [(f"data/{n}.json", 2 * n) for n in range(7)]
        assert api.read(bucket, "data/3.json") == b"{}" * 3
        with pytest.raises(S3Error) as missing:
            api.read(bucket, "data/none.json")
        assert missing.value.s3_code == "NoSuchKey"
    finally:
        api.close()
