"""The request bodies of Imply's S3 ingestion guide (tests/reference/polaris-s3-ingestion-guide.txt).

The guide elides the endpoint and the object URI; these are the values the manifests use.
"""

from __future__ import annotations

from typing import Any

ACCESS_KEYS = {
    "DEMO_AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00",
    "DEMO_AWS_SECRET_ACCESS_KEY": "s3cr3t-value-xyz",
}

# The connection with access keys (the guide's first request).
GUIDE_CONNECTION = {
    "type": "s3",
    "name": "demo-conn",
    "bucket": "demo-bucket",
    "awsEndpoint": "s3.us-east-1.amazonaws.com",
    "secrets": {
        "type": "access_key",
        "accessKeyId": ACCESS_KEYS["DEMO_AWS_ACCESS_KEY_ID"],
        "accessKeySecret": ACCESS_KEYS["DEMO_AWS_SECRET_ACCESS_KEY"],
    },
}
# The connection with an assumed role (the guide's sample request).
GUIDE_ROLE_CONNECTION = {
    "type": "s3",
    "name": "demo-conn",
    "bucket": "demo-bucket",
    "awsEndpoint": "s3.us-east-1.amazonaws.com",
    "awsAssumedRoleArn": "arn:aws:iam::012345678901:role/demo-role",
}
GUIDE_JOB: dict[str, Any] = {
    "type": "batch",
    "target": {"type": "table", "tableName": "Koalas"},
    "createTableIfNotExists": True,
    "source": {
        "type": "s3",
        "connectionName": "demo-conn",
        "uris": ["s3://demo-bucket/polaris-ingest/demo-file.json.gz"],
        "formatSettings": {"format": "nd-json"},
        "inputSchema": [
            {"dataType": "string", "name": "timestamp"},
            {"dataType": "string", "name": "city"},
            {"dataType": "string", "name": "session"},
            {"dataType": "long", "name": "session_length"},
        ],
    },
    "mappings": [
        {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'},
        {"columnName": "city", "expression": '"city"'},
        {"columnName": "session", "expression": '"session"'},
        {
            "columnName": "max_session_length",
            "expression": 'MAX("session_length")',
            "isAggregation": True,
        },
    ],
}
