"""Completion messages of video jobs, published as Rekognition publishes them to the job's SNS
topic, through an SNS-compatible endpoint with the usual AWS credentials."""

from __future__ import annotations

import json
import threading
from typing import Any

import botocore.session
from botocore.config import Config


def completion_message(
    job_id: str, status: str, api: str, request: dict[str, Any], completed_at: float
) -> dict[str, Any]:
    location = request.get("Video", {}).get("S3Object", {})
    message: dict[str, Any] = {
        "JobId": job_id,
        "Status": status,
        "API": api,
        "Timestamp": int(completed_at * 1000),
        "Video": {"S3ObjectName": location.get("Name"), "S3Bucket": location.get("Bucket")},
    }
    if "JobTag" in request:
        message["JobTag"] = request["JobTag"]
    return message


class Notifier:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.endpoint_url)

    def publish(self, topic_arn: str, message: dict[str, Any]) -> None:
        """Raises botocore's errors: the caller keeps the message owed and tries again."""
        self._sns().publish(TopicArn=topic_arn, Message=json.dumps(message))

    def _sns(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = botocore.session.get_session().create_client(
                    "sns",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"max_attempts": 3}),
                )
            return self._client
