"""Data-aware plans: a new job shows the objects and bytes it will read, listed from S3 (or a
directory of buckets), and `plan --preflight` asks Polaris to test the connections it reads through.

Listing is opt-in, and a connection's keys are only ever sent to AWS S3 or loopback: a manifest on
a pull request must not be able to send them anywhere else.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import DEMO_API_KEY
from reconciler.emulator.samples import koalas_rows, write_nd_json
from reconciler.kinds.ingestion_job.listing import Job, list_jobs
from reconciler.listing import Access, credentials_of, signing_url, size
from reconciler.model import Secret
from reconciler.s3 import Credentials, S3Api, sign
from tests.cli import run
from tests.fixtures import DEMO_SECRETS
from tests.steps import apply_all, changes_by_name, edit, plan_json

KOALAS_URI = "s3://demo-bucket/polaris-ingest/demo-file.json.gz"


@pytest.fixture
def guide(workspace: Path) -> Path:
    """The S3 guide's connection and Koalas job alone (weblogs needs another team's connection)."""
    shutil.rmtree(workspace / "weblogs")
    return workspace / "guide"


def koalas_objects(s3_dir: Path, *names: str, rows: int = 50) -> int:
    """Sample Koalas objects under demo-bucket/polaris-ingest/; returns their total bytes."""
    return sum(
        write_nd_json(s3_dir / "demo-bucket" / "polaris-ingest" / name, koalas_rows(rows, seed=i))
        for i, name in enumerate(names)
    )


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in [*DEMO_SECRETS.values(), DEMO_API_KEY]:
            assert secret not in text


def test_a_new_job_shows_the_objects_and_bytes_it_will_read(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    size = koalas_objects(s3_dir, "demo-file.json.gz", "other.json")
    edit(
        guide / "koalas-job.yaml", f"uris:\n      - {KOALAS_URI}\n", "prefixes: [polaris-ingest/]\n"
    )
    result = run("plan", "--s3-dir", str(s3_dir))
    assert result.exit_code == 0, result.stderr
    koalas = result.stdout[result.stdout.index("IngestionJob/koalas-demo-file") :]
    assert 1_000 <= size < 10_000, "sample data of a few kilobytes"
    assert (
        f"note: objects in S3: 2 objects, {size / 1000:.1f} KB: {KOALAS_URI}, "
        "s3://demo-bucket/polaris-ingest/other.json"
    ) in koalas
    payload = plan_json("--s3-dir", str(s3_dir))
    assert changes_by_name(payload)["koalas-demo-file"]["objects"] == {
        "listed": True,
        "count": 2,
        "bytes": size,
        "examples": [KOALAS_URI, "s3://demo-bucket/polaris-ingest/other.json"],
        "complete": True,
    }
    markdown = run("plan", "--s3-dir", str(s3_dir), "--format", "markdown").stdout
    assert "- note: objects in S3: 2 objects" in markdown
    no_secret_in(result.stdout, result.stderr, markdown, str(payload))


def test_bytes_read_as_people_read_them() -> None:
    assert [size(n) for n in (1, 999, 1_000, 312_400_000, 5_300_000_000)] == [
        "1 byte",
        "999 bytes",
        "1.0 KB",
        "312 MB",
        "5.3 GB",
    ]


def test_a_selector_that_matches_nothing_or_a_missing_object_is_a_warning(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    koalas_objects(s3_dir, "other.json")
    koalas = changes_by_name(plan_json("--s3-dir", str(s3_dir)))["koalas-demo-file"]
    assert koalas["objects"]["missing"] == ["polaris-ingest/demo-file.json.gz"]
    assert koalas["warnings"] == [
        f"OBJECTS MISSING: {KOALAS_URI} does not exist; the job would fail "
        "(could_not_connect_to_source)"
    ]
    edit(guide / "koalas-job.yaml", f"uris:\n      - {KOALAS_URI}\n", "pattern: 'penguins/**'\n")
    koalas = changes_by_name(plan_json("--s3-dir", str(s3_dir)))["koalas-demo-file"]
    assert koalas["objects"]["count"] == 0 and koalas["objects"]["complete"] is True
    assert koalas["warnings"] == [
        "NO OBJECTS: the job's selector matches no object in the bucket; the job would ingest "
        "nothing (no_rows_ingested)"
    ]
    assert koalas.get("reingest") is None, "an empty selection is a warning, not double ingestion"


def test_without_listing_the_plan_says_the_objects_were_not_listed(
    served: Any, guide: Path
) -> None:
    koalas = changes_by_name(plan_json())["koalas-demo-file"]
    assert koalas["objects"] == {
        "listed": False,
        "reason": "listing not enabled (plan --list-objects)",
    }
    assert "objects in S3: not listed: listing not enabled (plan --list-objects)" in koalas["notes"]
    edit(guide / "demo-conn.yaml", "  secrets:\n", "  awsAssumedRoleArn: arn:aws:iam::1:role/r\n#")
    edit(guide / "demo-conn.yaml", "    accessKeyId", "#    accessKeyId")
    edit(guide / "demo-conn.yaml", "    accessKeySecret", "#    accessKeySecret")
    koalas = changes_by_name(plan_json("--list-objects"))["koalas-demo-file"]
    assert koalas["objects"]["reason"] == (
        "the connection assumes a role; the reconciler lists only with access keys"
    )


@pytest.fixture
def moto_bucket(moto_endpoint: str, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id=DEMO_SECRETS["DEMO_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DEMO_SECRETS["DEMO_AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    bucket = f"dataplan-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3.create_bucket(Bucket=bucket)
    yield s3, bucket
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


def test_objects_are_listed_through_the_s3_api_with_the_connections_keys(
    served: Any, guide: Path, moto_endpoint: str, moto_bucket: tuple[Any, str]
) -> None:
    s3, bucket = moto_bucket
    for number in range(4):
        s3.put_object(Bucket=bucket, Key=f"polaris-ingest/day-{number}.json", Body=b"{}\n" * 10)
    s3.put_object(Bucket=bucket, Key="elsewhere/x.json", Body=b"{}\n")
    edit(guide / "demo-conn.yaml", "bucket: demo-bucket", f"bucket: {bucket}")
    edit(guide / "koalas-job.yaml", f"uris:\n      - {KOALAS_URI}\n", "pattern: '**/day-*.json'\n")
    # The operator's --s3-endpoint replaces the connection's endpoint for every connection ...
    through_flag = changes_by_name(plan_json("--s3-endpoint", moto_endpoint))["koalas-demo-file"]
    # ... and a manifest may name a loopback endpoint itself, with --list-objects.
    host = moto_endpoint.removeprefix("http://")
    edit(guide / "demo-conn.yaml", "s3.us-east-1.amazonaws.com", host)
    through_manifest = changes_by_name(plan_json("--list-objects"))["koalas-demo-file"]
    for koalas in (through_flag, through_manifest):
        assert koalas["objects"] == {
            "listed": True,
            "count": 4,
            "bytes": 4 * 30,
            "examples": [f"s3://{bucket}/polaris-ingest/day-{n}.json" for n in range(3)],
            "complete": True,
        }


def test_listing_pages_through_the_s3_api_up_to_the_cap(
    moto_endpoint: str, moto_bucket: tuple[Any, str]
) -> None:
    s3, bucket = moto_bucket
    for number in range(7):
        s3.put_object(Bucket=bucket, Key=f"logs/{number}.json", Body=b"{}")
    keys = credentials_of(access_keys(Secret("AKIAPAGING"), Secret("paging-secret")))
    api = S3Api(moto_endpoint, keys, page_size=2)
    try:
        assert [o.key for o in api.list(bucket, "logs/", limit=5)] == [
            f"logs/{n}.json" for n in range(5)
        ]
        assert len(api.list(bucket, "logs/")) == 7
    finally:
        api.close()


def access_keys(key_id: str, secret: str) -> dict[str, Any]:
    """A connection from a manifest holding access keys (wrapped as validate wraps them)."""
    return {"secrets": {"type": "access_key", "accessKeyId": key_id, "accessKeySecret": secret}}


def test_a_manifests_wrapped_keys_sign_exactly_as_their_values() -> None:
    moment = datetime(2013, 5, 24, tzinfo=UTC)
    url = "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J"
    plain = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    wrapped = credentials_of(
        access_keys(
            Secret("AKIAIOSFODNN7EXAMPLE"), Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        )
    )
    assert wrapped is not None
    assert sign("GET", url, {}, wrapped, "us-east-1", moment) == sign(
        "GET", url, {}, plain, "us-east-1", moment
    )
    assert "wJalrXUtnFEMI" not in repr(wrapped) and "AKIAIOSFODNN7EXAMPLE" not in repr(wrapped)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("s3.us-east-1.amazonaws.com", "https://s3.us-east-1.amazonaws.com"),
        ("https://S3.eu-west-1.amazonaws.com./", "https://s3.eu-west-1.amazonaws.com"),
        ("s3.cn-north-1.amazonaws.com.cn", "https://s3.cn-north-1.amazonaws.com.cn"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("localhost:9000", "http://localhost:9000"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("minio.internal:9000", None),
        ("s3.amazonaws.com.evil.example", None),
        ("evil.example/s3.amazonaws.com", None),
        ("evil.example@s3.amazonaws.com", None),
        ("s3.amazonaws.com@evil.example", None),
        ("http://s3.us-east-1.amazonaws.com", None),  # plain http would expose the request
        ("s3.amazonaws.com/?x=.amazonaws.com", None),
        ("169.254.169.254", None),
        ("s3.amazonaws.com#.evil.example", None),
    ],
)
def test_keys_are_sent_only_to_aws_s3_or_loopback(endpoint: str, url: str | None) -> None:
    assert signing_url(endpoint) == url


EMPTY_LISTING = (
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/s3/aws4_request,")


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("s3.dualstack.eu-west-1.amazonaws.com", "eu-west-1"),
        ("demo-bucket.s3.dualstack.eu-west-1.amazonaws.com", "eu-west-1"),
        ("https://S3.DUALSTACK.AP-SOUTH-1.AMAZONAWS.COM.:0443/", "ap-south-1"),
        ("s3-fips.us-east-2.amazonaws.com", "us-east-2"),
        ("s3-fips.dualstack.ca-central-1.amazonaws.com", "ca-central-1"),
        ("s3-fips.dualstack.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("s3-fips-us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("s3.dualstack.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1"),
        ("s3-eu-west-1.amazonaws.com", "eu-west-1"),
        ("demo-bucket.s3.eu-central-2.amazonaws.com", "eu-central-2"),
        ("s3-external-1.amazonaws.com", "us-east-1"),
        ("s3.amazonaws.com", "us-east-1"),  # the legacy global endpoint signs as us-east-1
    ],
)
def test_a_listing_is_signed_for_the_region_its_endpoint_names(endpoint: str, region: str) -> None:
    # A request signed for another region than the endpoint's is refused by S3
    # (AuthorizationHeaderMalformed), so a dual-stack or FIPS endpoint could never be listed.
    sent: list[httpx.Request] = []

    def s3(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=EMPTY_LISTING)

    connection = {
        "type": "s3", "bucket": "demo-bucket", "awsEndpoint": endpoint,
        "secrets": {"type": "access_key", "accessKeyId": "AKIAREGION", "accessKeySecret": "s"},
    }  # fmt: skip
    job = Job("koalas", {"prefixes": ["polaris-ingest/"]}, connection)
    transport = httpx.MockTransport(s3)
    for access in (  # through the connection's own endpoint, and through the operator's
        Access(enabled=True, transport=transport),
        Access(enabled=True, endpoint="http://127.0.0.1:9000", transport=transport),
    ):
        listed = list_jobs([job], access)
        assert listed["koalas"].reason is None, listed["koalas"].reason
    assert len(sent) == 2
    for request in sent:
        scope = SCOPE.search(request.headers["Authorization"])
        assert scope is not None and scope.group("region") == region


def test_a_manifest_cannot_make_plan_send_the_keys_to_another_host(
    served: Any, guide: Path, proxy: list[str]
) -> None:
    assert run("plan").exit_code == 0
    assert proxy == [], "without --list-objects nothing is listed, even on AWS"
    edit(guide / "demo-conn.yaml", "s3.us-east-1.amazonaws.com", "attacker.example:8443")
    result = run("plan", "--list-objects", "--format", "json")
    assert result.exit_code == 0, result.stderr
    koalas = changes_by_name(result.json())["koalas-demo-file"]
    assert koalas["objects"]["listed"] is False
    assert (
        "awsEndpoint attacker.example:8443 is neither an AWS S3 endpoint over https nor loopback"
        in (koalas["objects"]["reason"])
    )
    assert proxy == [], "no request may leave for the manifest's host"
    no_secret_in(result.stdout, result.stderr)
    # The control: an AWS endpoint is listed, so its request reaches the proxy (which refuses
    # it: the tests have no network), and the plan says why it could not list.
    edit(guide / "demo-conn.yaml", "attacker.example:8443", "s3.us-east-1.amazonaws.com")
    result = run("plan", "--list-objects", "--format", "json")
    assert [entry.split()[:2] for entry in proxy] == [["CONNECT", "s3.us-east-1.amazonaws.com:443"]]
    reason = changes_by_name(result.json())["koalas-demo-file"]["objects"]["reason"]
    assert reason.startswith("listing s3://demo-bucket/polaris-ingest/demo-file.json.gz failed")
    no_secret_in(result.stdout, result.stderr, *proxy)


def test_double_ingestion_names_an_object_the_listing_found(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    koalas_objects(s3_dir, "demo-file.json.gz", "zz-later.json")
    koalas_file = guide / "koalas-job.yaml"
    edit(koalas_file, f"uris:\n      - {KOALAS_URI}\n", "pattern: 'polaris-ingest/*.gz'\n")
    apply_all()
    edit(koalas_file, "pattern: 'polaris-ingest/*.gz'\n", "prefixes: [polaris-ingest/]\n")
    unlisted = changes_by_name(plan_json())["koalas-demo-file"]["warnings"][0]
    listed = changes_by_name(plan_json("--s3-dir", str(s3_dir)))["koalas-demo-file"]["warnings"]
    assert "DOUBLE INGESTION" in unlisted and KOALAS_URI not in unlisted
    assert listed[0].startswith("DOUBLE INGESTION: job ")
    assert f"(for example {KOALAS_URI})" in listed[0]


def test_preflight_tests_the_connections_new_jobs_use(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    koalas_objects(s3_dir, "demo-file.json.gz")
    plain = plan_json()
    assert "preflight" not in plain
    before = plan_json("--preflight")
    assert before["preflight"] == [
        {
            "connection": "demo-conn",
            "result": "not tested",
            "message": "created by this apply; test it after",
        }
    ]
    apply_all()
    edit(
        guide / "koalas-job.yaml", f"uris:\n      - {KOALAS_URI}\n", "prefixes: [polaris-ingest/]\n"
    )
    assert plan_json("--preflight")["preflight"] == [
        {"connection": "demo-conn", "result": "passed", "message": ""}
    ]
    shutil.rmtree(s3_dir / "demo-bucket")  # the bucket is gone: Polaris's test fails
    failed = plan_json("--preflight")["preflight"]
    assert [(t["connection"], t["result"]) for t in failed] == [("demo-conn", "failed")]
    assert "Connection test failed" in failed[0]["message"]
    text = run("plan", "--preflight").stdout
    assert "preflight: connection demo-conn: failed (POST /connections/demo-conn/test" in text
    markdown = run("plan", "--preflight", "--format", "markdown").stdout
    assert "| <code>demo-conn</code> | failed | POST /connections/demo-conn/test" in markdown
    no_secret_in(text, markdown, str(failed))


def test_a_plan_saved_with_its_listing_applies_and_holds_no_secret(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    koalas_objects(s3_dir, "demo-file.json.gz")
    saved = guide.parent.parent / "plan.json"
    assert run("plan", "--s3-dir", str(s3_dir), "--out", str(saved)).exit_code == 0
    text = saved.read_text(encoding="utf-8")
    assert '"count": 1' in text
    no_secret_in(text)
    applied = run("apply", str(saved), "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    assert "checksums differ" not in applied.stderr


def test_two_new_jobs_reading_one_listed_object_name_it(
    data_served: Any, guide: Path, s3_dir: Path
) -> None:
    koalas_objects(s3_dir, "a.json", "b.json")
    job = guide / "koalas-job.yaml"
    edit(job, f"uris:\n      - {KOALAS_URI}\n", "pattern: 'polaris-ingest/*.json'\n")
    (guide / "koalas-b.yaml").write_text(
        job.read_text(encoding="utf-8")
        .replace("name: koalas-demo-file", "name: koalas-b")
        .replace("pattern: 'polaris-ingest/*.json'", "pattern: 'polaris-ingest/**'"),
        encoding="utf-8",
    )
    unlisted = changes_by_name(plan_json())["koalas-demo-file"]["warnings"]
    listed = changes_by_name(plan_json("--s3-dir", str(s3_dir)))["koalas-demo-file"]["warnings"]
    assert "also submitted by this plan" in unlisted[0]
    assert "a.json" not in unlisted[0], "the selectors alone cannot name a real object"
    assert "(for example s3://demo-bucket/polaris-ingest/a.json)" in listed[0]
