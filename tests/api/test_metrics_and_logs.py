"""/metrics and the request log, as an operator reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from ml.pipeline import resolve_device
from service.testing.local_server import LiveServer, running_server
from tests.support.clients import ACCESS_KEY, SECRET_KEY, rekognition_client
from tests.support.images import blank_jpeg
from tests.support.photos import first_photo


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "FACEBANK_ACCESS_KEYS": f"{ACCESS_KEY}:{SECRET_KEY}",
        "FACEBANK_LOG_FORMAT": "json",
        "FACEBANK_DEVICE": "auto",  # as deployed: the start-up line names what auto chose
    }
    with running_server(tmp_path_factory.mktemp("observed"), env) as live:
        yield live


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_outcomes_stages_and_collections(
    json_server: LiveServer, faces_dir: Path
) -> None:
    client = rekognition_client(json_server.url, ACCESS_KEY, SECRET_KEY)
    for _ in range(3):
        client.detect_faces(Image={"Bytes": blank_jpeg()})
    with pytest.raises(ClientError):
        client.describe_collection(CollectionId="missing")
    client.create_collection(CollectionId="observed")
    client.index_faces(
        CollectionId="observed",
        Image={"Bytes": first_photo(faces_dir, "madonna")},
        QualityFilter="NONE",
    )
    url = f"{json_server.url}/metrics"
    assert httpx.get(url).status_code == 401  # collection ids are not public
    scraped = httpx.get(url, auth=(ACCESS_KEY, SECRET_KEY))
    assert scraped.status_code == 200
    found = samples(scraped.text)

    def value(name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    assert (
        value("facebank_requests_total", surface="wire", operation="DetectFaces", outcome="ok") == 3
    )
    assert (
        value(
            "facebank_requests_total",
            surface="wire",
            operation="DescribeCollection",
            outcome="ResourceNotFoundException",
        )
        == 1
    )
    assert value("facebank_request_seconds_count", surface="wire", operation="DetectFaces") == 3
    assert value("facebank_collection_faces", collection="observed") == 1
    assert value("facebank_index_lag_events", collection="observed") == 1  # not searched yet
    assert value("facebank_batches_total", stage="detector") >= 4
    assert value("facebank_queue_depth", stage="embedder") == 0
    assert value("facebank_storage_full") == 0
    info = next(labels for (name, labels) in found if name == "facebank_info")
    assert ("face_model_version", "1.1") in info and ("device", "cpu") in info


def test_request_log_is_one_json_line_per_request_without_secrets(
    json_server: LiveServer,
) -> None:
    client = rekognition_client(json_server.url, ACCESS_KEY, SECRET_KEY)
    client.detect_faces(Image={"Bytes": blank_jpeg()})
    answer = httpx.post(
        f"{json_server.url}/v1/faces/detect",
        files={"image": ("a.jpg", b"GIF89a" + bytes(64))},
        auth=(ACCESS_KEY, SECRET_KEY),
    )
    requests = [
        record
        for record in map(json.loads, json_server.log.read_text().splitlines())
        if record.get("logger") == "facebank.access"
    ]
    wire = next(r for r in requests if r["operation"] == "DetectFaces" and r["surface"] == "wire")
    assert wire["outcome"] == "ok" and wire["status"] == 200
    assert wire["access_key_id"] == ACCESS_KEY and wire["client"].startswith("127.0.0.1:")
    assert wire["duration_ms"] > 0 and len(wire["request_id"]) == 36
    refused = next(r for r in requests if r["request_id"] == answer.json()["request_id"])
    assert (refused["outcome"], refused["status"]) == ("InvalidImageFormatException", 415)
    text = json_server.log.read_text()
    assert SECRET_KEY not in text and "Signature=" not in text and "GIF89a" not in text


def test_the_start_up_line_names_the_device_chosen(json_server: LiveServer) -> None:
    started = [
        json.loads(line)["message"]
        for line in json_server.log.read_text().splitlines()
        if "facebank ready" in line
    ]
    chosen = str(resolve_device("auto"))  # cpu here, cuda on a GPU node
    assert len(started) == 1 and f" on {chosen}, " in started[0] and " on auto" not in started[0]
