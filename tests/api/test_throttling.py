"""Overload is refused at once with ThrottlingException (REST 429), never queued without bound."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from service.testing.local_server import LiveServer, running_server, start_server, stop_server
from tests.support.clients import rekognition_client
from tests.support.photos import group_photo


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(
        tmp_path_factory.mktemp("one-slot"), {"FACEBANK_MAX_INFLIGHT": "1"}
    ) as live:
        yield live


def detect_burst(client: Any, image: bytes, calls: int) -> list[str]:
    """DetectFaces from 8 threads at once: "ok" or the error code, per call."""

    def call(_: int) -> str:
        try:
            client.detect_faces(Image={"Bytes": image})
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(call, range(calls)))


def test_wire_overload_is_throttling_exception(
    one_slot_server: LiveServer, faces_dir: Path
) -> None:
    client = rekognition_client(one_slot_server.url)  # retries off: see every refusal
    outcomes = detect_burst(client, group_photo(faces_dir), 16)
    assert set(outcomes) == {"ok", "ThrottlingException"}
    # the server recovers once the burst is over
    assert detect_burst(client, group_photo(faces_dir), 1) == ["ok"]


def test_rest_overload_is_429(one_slot_server: LiveServer, faces_dir: Path) -> None:
    data = group_photo(faces_dir)

    def call(_: int) -> httpx.Response:
        return httpx.post(
            f"{one_slot_server.url}/v1/faces/detect",
            timeout=60,
            files={"image": ("m.jpg", data, "image/jpeg")},
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(call, range(16)))
    assert {response.status_code for response in responses} == {200, 429}
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["code"] == "ThrottlingException"


def test_a_full_detector_queue_is_throttling_exception(
    tmp_path_factory: pytest.TempPathFactory, faces_dir: Path
) -> None:
    """Requests admitted by max_inflight still meet the detector's own bounded queue."""
    live = start_server(
        tmp_path_factory.mktemp("small-queue"),
        {"FACEBANK_DETECT_QUEUE_SIZE": "1", "FACEBANK_DETECT_BATCH_SIZE": "1"},
    )
    try:
        outcomes = detect_burst(rekognition_client(live.url), group_photo(faces_dir), 16)
    finally:
        stop_server(live)
    assert set(outcomes) == {"ok", "ThrottlingException"}
