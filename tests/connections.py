"""A valid create request for every connection type with each secrets type it takes.

The fields are those of the OpenAPI's CreateXConnectionRequest (tests/reference/polaris-openapi.json);
secret values are recognizable so that a test can prove none is ever returned.
"""

from __future__ import annotations

from typing import Any

SECRET_VALUES = ("never-shown-secret", "never-shown-password", "never-shown-token", "PRIVATE KEY")

_SASL_PLAIN = {"type": "sasl_plain", "username": "reader", "password": "never-shown-password"}
_TOPIC = {
    "bootstrapServers": "broker-1.example.com:9092,broker-2.example.com:9092",
    "topicName": "events",
}

# "type/secrets type" -> a create request body without `name`.
CONNECTIONS: dict[str, dict[str, Any]] = {
    "s3/none": {
        "type": "s3",
        "bucket": "demo-bucket",
        "awsEndpoint": "s3.us-east-1.amazonaws.com",
        "awsAssumedRoleArn": "arn:aws:iam::012345678901:role/demo-role",
    },
    "s3/access_key": {
        "type": "s3",
        "bucket": "demo-bucket",
        "awsEndpoint": "s3.us-east-1.amazonaws.com",
        "prefix": "events/",
        "secrets": {
            "type": "access_key",
            "accessKeyId": "AKIAEXAMPLE0000",
            "accessKeySecret": "never-shown-secret",
        },
    },
    "azure/access_key": {
        "type": "azure",
        "storageAccount": "acmestorage",
        "container": "events",
        "prefix": "2026/",
        "secrets": {"type": "access_key", "accessKeySecret": "never-shown-secret"},
    },
    "azure/sas_token": {
        "type": "azure",
        "storageAccount": "acmestorage",
        "container": "events",
        "secrets": {"type": "sas_token", "sasToken": "never-shown-token"},
    },
    "kafka/sasl_plain": {"type": "kafka", **_TOPIC, "secrets": _SASL_PLAIN},
    "kafka/sasl_scram": {
        "type": "kafka",
        **_TOPIC,
        "topicNameIsPattern": True,
        "clientRack": "use1-az1",
        "secrets": {
            "type": "sasl_scram",
            "mechanism": "SCRAM-SHA-512",
            "username": "reader",
            "password": "never-shown-password",
        },
    },
    "kafka/aws_iam": {
        "type": "kafka",
        **_TOPIC,
        "ssl": {
            "truststore": {"type": "pem", "certificates": "-----BEGIN CERTIFICATE-----\nMI\n"},
            "keystore": {
                "type": "pem",
                "certificates": "-----BEGIN CERTIFICATE-----\nMI\n",
                "key": "-----BEGIN PRIVATE KEY-----\nMI\n",
                "keyPassword": "never-shown-password",
            },
        },
        "secrets": {"type": "aws_iam", "awsAssumedRoleArn": "arn:aws:iam::012345678901:role/msk"},
    },
    "confluent/sasl_plain": {"type": "confluent", **_TOPIC, "secrets": _SASL_PLAIN},
    "confluent/confluent": {
        "type": "confluent",
        **_TOPIC,
        "secrets": {"type": "confluent", "key": "TSEGMKWIATNPQ6UY", "secret": "never-shown-secret"},
    },
    "confluent_schema_registry/basic": {
        "type": "confluent_schema_registry",
        "urls": ["https://psrc-1234.us-east-1.aws.confluent.cloud"],
        "secrets": {"type": "basic", "username": "registry", "password": "never-shown-password"},
    },
    "kinesis/none": {
        "type": "kinesis",
        "awsAssumedRoleArn": "arn:aws:iam::012345678901:role/kinesis-reader",
        "awsEndpoint": "kinesis.us-east-1.amazonaws.com",
        "stream": "clicks",
    },
    "push_streaming/none": {"type": "push_streaming", "description": "events pushed by the app"},
}
