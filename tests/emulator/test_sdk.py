"""Imply's official `polaris-sdk`, with its own classes and models, drives every collection the
emulator serves: create, get, list, update and delete (where the API has them), test_connection
and reset_job included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator

sdk = pytest.importorskip("polaris.sdk.client")
models: Any = pytest.importorskip("polaris.sdk.project_api.models")


@pytest.fixture
def project(emulator: Emulator) -> Iterator[Any]:
    """The SDK's project client on a served emulator."""
    with emulator.serve() as server:
        yield sdk.ProjectClient.from_endpoint(DEMO_PROJECT_ID, server.url, DEMO_API_KEY)


def guide_connection() -> Any:
    return models.CreateS3ConnectionRequest(
        name="demo-conn",
        bucket="demo-bucket",
        aws_endpoint="s3.us-east-1.amazonaws.com",
        secrets=models.AccessKeySecretsRequiredPayload(
            access_key_id="AKIAEXAMPLEEXAMPLE00", access_key_secret="s3cr3t-value-xyz"
        ),
    )


def guide_job(table: str) -> Any:
    fields = [("timestamp", "string"), ("city", "string"), ("session_length", "long")]
    return models.CreateBatchJobRequest(
        target=models.TableJobTargetV2(table_name=table),
        create_table_if_not_exists=True,
        source=models.S3JobSourceV2(
            connection_name="demo-conn",
            uris=["s3://demo-bucket/polaris-ingest/demo-file.json.gz"],
            format_settings=models.JsonFormatSettings(),
            input_schema=[models.FieldNameAndDataType(name=n, data_type=t) for n, t in fields],
        ),
        mappings=[
            models.InputToTableSchemaMapping(
                column_name="__time", expression='TIME_PARSE("timestamp")'
            ),
            models.InputToTableSchemaMapping(column_name="city", expression='"city"'),
        ],
    )


def test_the_sdk_manages_connections_end_to_end(project: Any) -> None:
    created = project.connections.create_connection(guide_connection())
    assert (created.name, created.type, created.bucket) == ("demo-conn", "s3", "demo-bucket")
    assert project.connections.get_connection("demo-conn").aws_endpoint == (
        "s3.us-east-1.amazonaws.com"
    )
    assert [c.name for c in project.connections.list_connections().values] == ["demo-conn"]
    updated = project.connections.update_connection(
        "demo-conn", models.UpdateS3ConnectionRequest(prefix="polaris-ingest/")
    )
    assert updated.prefix == "polaris-ingest/"
    assert project.connections.test_connection("demo-conn") is None
    assert project.connections.describe_connections_meta().external_id
    assert project.connections.delete_connection("demo-conn") is None
    assert project.connections.list_connections().values == []


def test_the_sdk_manages_tables_end_to_end(project: Any) -> None:
    created = project.tables.create_table(
        models.DetailTablePayload(name="Events", description="from the SDK")
    )
    assert (created.name, created.type, created.version) == ("Events", "detail", 0)
    described = project.tables.describe_table("Events")
    assert described.description == "from the SDK"
    assert [t.name for t in project.tables.list_tables().values] == ["Events"]
    updated = project.tables.update_table(
        "Events",
        models.DetailTablePayload(name="Events", version=described.version, description="now"),
    )
    assert (updated.description, updated.version) == ("now", 1)
    assert project.tables.get_unused_segments_for_table("Events").values == []


def test_the_sdk_manages_jobs_end_to_end(project: Any, emulator: Emulator) -> None:
    project.connections.create_connection(guide_connection())
    emulator.hold_jobs()
    created = project.jobs.create_job(guide_job("Koalas"))
    assert (created.type, created.execution_status) == ("batch", "pending")
    assert project.jobs.describe_job(created.id).target.table_name == "Koalas"
    assert [j.id for j in project.jobs.list_jobs().values] == [created.id]
    assert project.jobs.describe_job_status(created.id).execution_status == "pending"
    assert project.jobs.describe_job_overall_progress(created.id).overall_progress == 0.0
    assert project.jobs.describe_job_logs(created.id).logs
    assert project.jobs.describe_job_metrics(created.id).totals is not None
    canceled = project.jobs.update_job_status(
        created.id, models.UpdateJobStatusRequest(desired_execution_status="canceled")
    )
    assert canceled.execution_status == "canceled"
    with pytest.raises(HttpResponseError) as refused:  # a batch job cannot be reset: a 400
        project.jobs.reset_job(created.id)
    assert refused.value.status_code == 400
    assert "Only streaming jobs can be reset" in str(refused.value)


def test_the_sdks_reset_job_works_on_a_streaming_job(project: Any, emulator: Emulator) -> None:
    project.connections.create_connection(models.CreatePushStreamingConnectionRequest(name="push"))
    fields = [("ts", "string"), ("page", "string")]
    created = project.jobs.create_job(
        models.CreateStreamingJobRequest(
            target=models.TableJobTargetV2(table_name="Clicks"),
            create_table_if_not_exists=True,
            source=models.ConnectionJobSourceV2(
                connection_name="push",
                format_settings=models.JsonFormatSettings(),
                input_schema=[models.FieldNameAndDataType(name=n, data_type=t) for n, t in fields],
            ),
            mappings=[
                models.InputToTableSchemaMapping(
                    column_name="__time", expression='TIME_PARSE("ts")'
                ),
                models.InputToTableSchemaMapping(column_name="page", expression='"page"'),
            ],
            read_from_point="earliest",
        )
    )
    assert (created.type, created.read_from_point) == ("streaming", "earliest")
    project.jobs.reset_job(created.id)  # no body, and a 200 the SDK accepts
    suspended = project.jobs.update_job_status(
        created.id, models.UpdateJobStatusRequest(desired_execution_status="suspended")
    )
    assert suspended.execution_status == "suspended"
    assert project.jobs.describe_job(created.id).execution_status == "suspended"
