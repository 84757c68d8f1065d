"""Real clients for the live-server tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ACCESS_KEY, SECRET_KEY = "AKIDFACEBANKTEST", "facebank-test-secret"


def rekognition_client(url: str, key: str | None = None, secret: str | None = None) -> Any:
    """A stock boto3 client with retries off, so tests see every refusal (boto3 is imported
    here, not at module level: the CUDA tier runs where it is not installed)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    no_retries = Config(retries={"max_attempts": 1, "mode": "standard"})
    if key is None:
        config = no_retries.merge(Config(signature_version=UNSIGNED))
        return boto3.client("rekognition", endpoint_url=url, region_name="eu-west-1", config=config)
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=no_retries,
    )


def finished(get: Callable[..., dict[str, Any]], job_id: str, timeout: float = 180) -> Any:
    """A video job's Get answer once the job has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = get(JobId=job_id)
        if answer["JobStatus"] != "IN_PROGRESS":
            return answer
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still in progress after {timeout} s")
