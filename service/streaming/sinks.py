"""Where a processor's records go: the Kinesis data stream its Output names, through
FACEBANK_KINESIS_ENDPOINT_URL (AWS's own or any Kinesis-compatible endpoint) with the usual AWS
credentials; or, where the streams file maps that output stream name to a webhook, an HTTPS
endpoint of the site's."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from typing import Any, Protocol

import botocore.session
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

WEBHOOK_BUFFER = 1000  # records a webhook holds while its receiver is down
WEBHOOK_FIRST_BACKOFF_S = 0.5
WEBHOOK_MAX_BACKOFF_S = 10.0


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


class Sink(Protocol):
    def put(self, stream_name: str, partition_key: str, record: dict[str, Any]) -> None: ...


class WebhookSink:
    """Records POSTed to a site's HTTPS endpoint (for sites without a Kinesis endpoint), each
    signed with HMAC-SHA256 of its body under the webhook's secret (header X-Facebank-Signature:
    sha256=HEX). They wait in a bounded buffer and are sent in order by a thread of their own,
    retried with backoff while the receiver is down or answers 429 or 5xx; a record refused
    with another 4xx, or pushed out of a full buffer, is dropped and counted."""

    def __init__(self, url: str, secret: str, capacity: int = WEBHOOK_BUFFER) -> None:
        self.url, self.secret = url, secret.encode()
        self.dropped = 0
        self._waiting: deque[bytes] = deque()
        self._capacity = capacity
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._send_all, name="webhook", daemon=True)
        self._thread.start()

    def put(self, stream_name: str, partition_key: str, record: dict[str, Any]) -> None:
        body = json.dumps(record).encode()
        with self._changed:
            if len(self._waiting) >= self._capacity:
                self._waiting.popleft()  # the oldest goes: a live feed wants the newest
                self.dropped += 1
            self._waiting.append(body)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout=5)

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def _send_all(self) -> None:
        backoff = WEBHOOK_FIRST_BACKOFF_S
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                body = self._waiting[0]
            outcome = self._send(body)
            if outcome == "retry":
                time.sleep(backoff)
                backoff = min(backoff * 2, WEBHOOK_MAX_BACKOFF_S)
                continue
            backoff = WEBHOOK_FIRST_BACKOFF_S
            with self._changed:
                if self._waiting and self._waiting[0] is body:
                    self._waiting.popleft()
                    self.dropped += outcome == "refused"

    def _send(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json", "X-Facebank-Signature": self.signature(body)}
        try:
            answer = requests.post(self.url, data=body, headers=headers, timeout=10)
        except requests.RequestException:
            return "retry"
        if answer.status_code == 429 or answer.status_code >= 500:
            return "retry"
        return "sent" if answer.ok else "refused"


class Sinks:
    """The sink of each output stream: its webhook where the streams file names one (a new
    sink when its URL or secret changes), else Kinesis."""

    def __init__(self, kinesis: KinesisSink) -> None:
        self.kinesis = kinesis
        self._webhooks: dict[str, WebhookSink] = {}
        self._lock = threading.Lock()

    def for_output(self, stream: str, url: str | None, secret: str | None) -> Sink:
        if url is None or secret is None:
            return self.kinesis
        with self._lock:
            found = self._webhooks.get(stream)
            if found is None or (found.url, found.secret) != (url, secret.encode()):
                if found is not None:
                    found.close()
                found = self._webhooks[stream] = WebhookSink(url, secret)
            return found

    def webhook_drops(self) -> dict[str, int]:
        """Records each output stream's webhook dropped (buffer full, or refused)."""
        with self._lock:
            return {stream: sink.dropped for stream, sink in self._webhooks.items()}

    def close(self) -> None:
        with self._lock:
            for sink in self._webhooks.values():
                sink.close()
