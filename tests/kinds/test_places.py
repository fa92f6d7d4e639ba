"""One place for every spelling of the same data, generated from the table in docs/places.md.

Each row of the table is a spelling of a connection's `awsEndpoint` and `bucket`, and the place
it must resolve to. The rows are read from the document itself, so the document and the tests
cannot drift apart. Each row is checked by the canonicalizer, and against the emulator in both
directions: a job ingested through the row's spelling and a new one through the guide's
connection (`s3.us-east-1.amazonaws.com`, `demo-bucket`), the other way round, and two new jobs in
one plan.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.apply import Applier, PolarisProvider
from reconciler.client import PolarisClient
from reconciler.emulator.samples import koalas_rows, write_nd_json
from reconciler.endpoints import parse_endpoint
from reconciler.kinds.ingestion_job.identity import Place, place_of
from reconciler.live import read_live
from reconciler.model import Kind
from reconciler.plan import Action, make_plan
from reconciler.validate import load_manifests
from reconciler.values import ApplyOptions, Change
from tests.cli import run
from tests.fixtures import DEMO_SECRETS, ROOT
from tests.guide import GUIDE_CONNECTION, GUIDE_JOB
from tests.identity.test_identity import KOALAS_URI, ingested_events
from tests.steps import apply_all, edit

DOC = ROOT / "docs" / "places.md"
GUIDE_PLACE = Place("aws", "demo-bucket")  # the guide's connection: the table's first row
CELL = re.compile(r"^`([^`]*)`$")


class Row(NamedTuple):
    """One spelling and the place it names."""

    endpoint: str
    bucket: str
    service: str
    place_bucket: str

    @property
    def place(self) -> Place:
        return Place(self.service, self.place_bucket)

    @property
    def same_as_guide(self) -> bool:
        return self.place == GUIDE_PLACE


def table_rows() -> list[Row]:
    """The rows of the table whose header starts with `awsEndpoint`."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| awsEndpoint |"))
    rows = []
    for line in lines[header + 2 :]:  # after the header and its --- line
        if not line.startswith("|"):
            break
        values = []
        for cell in line.strip().strip("|").split("|"):
            found = CELL.match(cell.strip())
            assert found, f"{DOC}: every cell of the table is `code`: {line}"
            values.append(found.group(1))
        rows.append(Row(*values))
    return rows


ROWS = table_rows()
IDS = [row.endpoint for row in ROWS]


def test_the_table_lists_every_spelling_the_promise_names() -> None:
    endpoints = " ".join(IDS)
    for spelling in (
        "s3.amazonaws.com", "s3-external-1", "s3-us-west-2", "dualstack", "s3-fips.",
        "demo-bucket.s3.", ":443", ":0443", "https://", "AMAZONAWS", "COM./", ".amazonaws.com.cn",
        "us-gov-", "minio",
    ):  # fmt: skip
        assert spelling in endpoints, spelling
    assert sum(row.same_as_guide for row in ROWS) >= 15
    assert sum(not row.same_as_guide for row in ROWS) >= 10


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_each_spelling_names_the_place_the_table_says(row: Row) -> None:
    assert place_of({"awsEndpoint": row.endpoint, "bucket": row.bucket}) == row.place


@pytest.mark.parametrize(
    ("endpoint", "region", "bucket"),
    [
        ("s3.amazonaws.com", None, None),
        ("s3-external-1.amazonaws.com", "us-east-1", None),
        ("s3.dualstack.ap-south-1.amazonaws.com", "ap-south-1", None),
        ("my.bucket.s3.eu-west-1.amazonaws.com", "eu-west-1", "my.bucket"),
        ("s3.backup.s3.us-east-1.amazonaws.com", "us-east-1", "s3.backup"),
        ("https://logs.s3-fips.dualstack.us-gov-west-1.amazonaws.com:443", "us-gov-west-1", "logs"),
    ],
)
def test_an_aws_endpoint_names_its_region_and_any_bucket_in_its_host(
    endpoint: str, region: str | None, bucket: str | None
) -> None:
    parsed = parse_endpoint(endpoint)
    assert (parsed.aws, parsed.region, parsed.bucket) == (True, region, bucket)


@pytest.mark.parametrize(
    "endpoint",
    [
        "s3.dualstack.amazonaws.com",  # no region: not an S3 endpoint
        "s3.example.amazonaws.com",
        "s3-accesspoint.us-east-1.amazonaws.com",
        "dynamodb.us-east-1.amazonaws.com",
        "s3.us-east-1.amazonaws.com.evil.example",
        "amazonaws.com",
    ],
)
def test_a_host_that_is_not_an_aws_s3_endpoint_is_a_place_of_its_own(endpoint: str) -> None:
    parsed = parse_endpoint(endpoint)
    assert not parsed.aws and parsed.service == f"{endpoint}:443"


def connection_manifest(name: str, row: Row) -> str:
    return f"""---
apiVersion: reconciler/v1
kind: Connection
metadata:
  name: {name}
spec:
  type: s3
  bucket: {row.bucket}
  awsEndpoint: "{row.endpoint}"
  awsAssumedRoleArn: arn:aws:iam::012345678901:role/demo-role
"""


def declare_spelled_connection(workspace: Path, row: Row) -> None:
    path = workspace / "guide" / "demo-conn.yaml"
    path.write_text(
        path.read_text(encoding="utf-8") + connection_manifest("spelled", row), encoding="utf-8"
    )


def plan(workspace: Path, client: PolarisClient) -> dict[str, Change]:
    """The plan of the guide's manifests against the emulator, by resource name."""
    manifests = load_manifests([str(workspace / "guide")], DEMO_SECRETS)
    planned = make_plan(manifests.resources, read_live(client, manifests.resources))
    return {change.name: change for change in planned.changes}


def ingested_through(client: PolarisClient, connection: dict[str, Any]) -> str:
    """A job of the guide's spec, completed through `connection`; its id."""
    client.create_connection(connection)
    source = {**GUIDE_JOB["source"], "connectionName": connection["name"]}
    job = client.create_job({**GUIDE_JOB, "source": source})
    assert client.get_job(job["id"])["executionStatus"] == "completed"  # type: ignore[index]
    return str(job["id"])


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_a_job_ingested_through_this_spelling_is_found_through_the_guides(
    row: Row, workspace: Path, client: PolarisClient
) -> None:
    spelled = {"type": "s3", "name": "spelled", "bucket": row.bucket, "awsEndpoint": row.endpoint}
    live = ingested_through(client, spelled)
    koalas = plan(workspace, client)["koalas-demo-file"]
    if row.same_as_guide:
        assert koalas.action is Action.NOOP, koalas.reason
        assert f"already ingested by job {live} (completed) through connection spelled" in (
            koalas.reason
        )
    else:
        assert (koalas.action, koalas.warnings) == (Action.CREATE, ()), koalas.warnings


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_a_job_ingested_through_the_guides_spelling_is_found_through_this_one(
    row: Row, workspace: Path, client: PolarisClient
) -> None:
    live = ingested_through(client, GUIDE_CONNECTION)
    declare_spelled_connection(workspace, row)
    edit(
        workspace / "guide" / "koalas-job.yaml",
        "connectionName: demo-conn\n",
        "connectionName: spelled\n",
    )
    koalas = plan(workspace, client)["koalas-demo-file"]
    if row.same_as_guide:
        assert koalas.action is Action.NOOP, koalas.reason
        assert f"already ingested by job {live} (completed) through connection demo-conn" in (
            koalas.reason
        )
    else:
        assert (koalas.action, koalas.warnings) == (Action.CREATE, ()), koalas.warnings


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_two_new_jobs_through_two_spellings_are_flagged_against_each_other(
    row: Row, workspace: Path, client: PolarisClient
) -> None:
    declare_spelled_connection(workspace, row)
    koalas = (workspace / "guide" / "koalas-job.yaml").read_text(encoding="utf-8")
    (workspace / "guide" / "koalas-again.yaml").write_text(
        koalas.replace("name: koalas-demo-file", "name: koalas-again")
        .replace("connectionName: demo-conn\n", "connectionName: spelled\n")
        .replace("expression: '\"city\"'", "expression: 'UPPER(\"city\")'"),
        encoding="utf-8",
    )
    changes = plan(workspace, client)
    for name, other in (("koalas-demo-file", "koalas-again"), ("koalas-again", "koalas-demo-file")):
        change = changes[name]
        assert change.action is Action.CREATE, change.reason
        if row.same_as_guide:
            assert change.reingest is True
            assert change.warnings[0].startswith(
                f"DOUBLE INGESTION: IngestionJob/{other}, also submitted by this plan"
            )
        else:
            assert change.warnings == (), change.warnings


def test_the_rows_of_one_bucket_land_once_whichever_spelling_each_apply_uses(
    data_served: Any, workspace: Path, s3_dir: Path
) -> None:
    write_nd_json(s3_dir / "demo-bucket" / "penguins" / "adelaide.json", koalas_rows(100, seed=1))
    write_nd_json(s3_dir / "demo-bucket" / "penguins" / "gentoo.json", koalas_rows(40, seed=2))
    shutil.rmtree(workspace / "weblogs")  # its objects are not in s3_dir
    koalas_file = workspace / "guide" / "koalas-job.yaml"
    edit(koalas_file, KOALAS_URI, "s3://demo-bucket/penguins/adelaide.json")
    apply_all()
    assert ingested_events(data_served) == 100
    spellings = [
        "s3.amazonaws.com",
        "demo-bucket.s3.dualstack.us-east-1.amazonaws.com",
        "https://s3-fips.us-east-1.amazonaws.com:0443",
        "s3-external-1.amazonaws.com",
    ]
    current = "demo-conn"
    for number, endpoint in enumerate(spellings):
        name = f"spelled-{number}"
        path = workspace / "guide" / "demo-conn.yaml"
        row = Row(endpoint, "demo-bucket", "aws", "demo-bucket")
        path.write_text(path.read_text(encoding="utf-8") + connection_manifest(name, row))
        edit(koalas_file, f"connectionName: {current}\n", f"connectionName: {name}\n")
        current = name
        apply_all()
        assert ingested_events(data_served) == 100, endpoint
    # Two new jobs of one plan, through two spellings, reading gentoo.json: refused.
    again = koalas_file.read_text(encoding="utf-8")
    again = again.replace("name: koalas-demo-file", "name: koalas-gentoo").replace(
        "penguins/adelaide.json", "penguins/gentoo.json"
    )
    (workspace / "guide" / "koalas-gentoo.yaml").write_text(again, encoding="utf-8")
    (workspace / "guide" / "koalas-gentoo-again.yaml").write_text(
        again.replace("name: koalas-gentoo", "name: koalas-gentoo-again")
        .replace(f"connectionName: {current}\n", "connectionName: spelled-0\n")
        .replace("expression: '\"city\"'", "expression: 'UPPER(\"city\")'"),
        encoding="utf-8",
    )
    result = run("apply", "--auto-approve")
    assert result.exit_code == 1 and "--allow-reingest" in result.stderr
    assert ingested_events(data_served) == 100


@pytest.mark.parametrize(
    "endpoint", ["demo-bucket.s3.dualstack.eu-west-1.amazonaws.com", "s3-external-1.amazonaws.com"]
)
def test_apply_finds_the_job_another_apply_submitted_through_another_spelling(
    endpoint: str, workspace: Path, client: PolarisClient
) -> None:
    manifests = load_manifests([str(workspace / "guide")], DEMO_SECRETS)
    live = read_live(client, manifests.resources)
    planned = make_plan(manifests.resources, live)
    assert {c.name: c.action for c in planned.changes}["koalas-demo-file"] is Action.CREATE
    meanwhile = ingested_through(
        client,
        {"type": "s3", "name": "elsewhere", "bucket": "demo-bucket", "awsEndpoint": endpoint},
    )
    provider = PolarisProvider(client, ApplyOptions(), sleep=lambda s: None, live=live)
    result = Applier(provider).run(planned)
    (koalas,) = [o for o in result.outcomes if o.change.kind is Kind.INGESTION_JOB]
    assert (koalas.status, koalas.message) == ("done", f"already submitted as job {meanwhile}")
    assert len(list(client.iter_jobs())) == 1


AWS_ROWS = [row for row in ROWS if row.service.startswith("aws")]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(AWS_ROWS),
    st.sampled_from(["", "https://", "HTTPS://", "http://"]),
    st.sampled_from(["", ".", ".."]),
    st.sampled_from(["", ":443", ":0443", ":00443", ":80"]),
    st.sampled_from(["", "/", "/some/path", "?x=1"]),
    st.randoms(use_true_random=False),
)
def test_any_dressing_of_an_aws_spelling_is_the_same_place(
    row: Row, scheme: str, dots: str, port: str, tail: str, random: Any
) -> None:
    bare = re.sub(r"^https?://|[:/].*$", "", row.endpoint.lower()).rstrip(".")
    host = "".join(c.upper() if random.random() < 0.5 else c for c in bare)
    spelled = f"{scheme}{host}{dots}{port}{tail}"
    assert place_of({"awsEndpoint": spelled, "bucket": row.bucket}) == row.place, spelled


@settings(max_examples=500, deadline=None)
@given(st.text())
@example("h:\u00b9")  # a superscript one: str.isdigit() says yes, int() says no
@example("[::1]:\u0663")  # an Arabic-Indic three after an IPv6 literal
def test_any_endpoint_text_names_some_place_and_never_raises(text: str) -> None:
    assert parse_endpoint(text).service
