"""Clients of moto's server (`service.testing.local_server.start_moto`): real S3-, SNS- and
SQS-compatible HTTP endpoints on loopback, for S3Object images, stored video and completion
messages."""

from __future__ import annotations

from typing import Any

import boto3

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
