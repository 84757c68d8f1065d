"""Where a processor's records go: the Kinesis data stream its Output names, through
FACEBANK_KINESIS_ENDPOINT_URL (AWS's own or any Kinesis-compatible endpoint) with the usual AWS
credentials."""

from __future__ import annotations

import json
import threading
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class OutputMissingError(Exception):
    """The output stream does not exist: the processor fails, saying so."""


class SinkError(Exception):
    """A record could not be written this time (counted; the processor goes on)."""


class KinesisSink:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url, self.region = endpoint_url, region
        self._client: Any = None
        self._lock = threading.Lock()

    def put(self, stream_name: str, partition_key: str, record: dict[str, Any]) -> None:
        try:
            self._kinesis().put_record(
                StreamName=stream_name,
                Data=json.dumps(record).encode(),
                PartitionKey=partition_key,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise OutputMissingError(
                    f"The output Kinesis data stream {stream_name} does not exist at "
                    f"{self.endpoint_url or 'AWS'}: create it, then start the processor again"
                ) from None
            raise SinkError(str(exc)) from None
        except BotoCoreError as exc:
            raise SinkError(str(exc)) from None

    def _kinesis(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = botocore.session.get_session().create_client(
                    "kinesis",
                    endpoint_url=self.endpoint_url or None,
                    region_name=self.region,
                    config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=10),
                )
            return self._client
