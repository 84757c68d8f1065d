"""The container image as an operator runs it: its own entry point and user, a data volume,
no network but loopback, driven by boto3. `make test-image` builds the image, names it in
FACEBANK_TEST_IMAGE and runs this tier inside a network namespace that has only loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.testing.local_server import LiveServer, free_port, wait_ready
from tests.support.clients import ACCESS_KEY, SECRET_KEY, rekognition_client
from tests.support.photos import first_photo

IMAGE = os.environ.get("FACEBANK_TEST_IMAGE", "")
READY_TIMEOUT_S = 300


@dataclass
class Container:
    name: str
    url: str
    data: Path
    log: Path


def buildah(*arguments: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["buildah", *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"buildah {arguments[0]} failed: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    assert IMAGE, "FACEBANK_TEST_IMAGE names the image under test (make test-image)"
    inspected = json.loads(buildah("inspect", "--type", "image", IMAGE))
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


def run_in(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    """A command in a working container of the image, as the image's user."""
    return subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def container(
    tmp_path_factory: pytest.TempPathFactory, image_config: dict[str, Any]
) -> Iterator[Container]:
    name = f"facebank-image-test-{uuid.uuid4().hex[:8]}"
    buildah("from", "--name", name, IMAGE)
    work = tmp_path_factory.mktemp("image")
    data = work / "data"
    data.mkdir()
    uid = int(run_in(name, "id", "-u").stdout)
    os.chown(data, uid, uid)  # the volume belongs to the image's user, as an operator sets it up
    port = free_port()
    log = work / "server.log"
    command = [*image_config["Entrypoint"], *image_config["Cmd"]]
    run = [
        "buildah", "run", "--isolation", "chroot",
        "-v", f"{data}:/var/lib/facebank",
        "--env", f"FACEBANK_PORT={port}",
        "--env", f"FACEBANK_ACCESS_KEYS={ACCESS_KEY}:{SECRET_KEY}",
        name, "--", *command,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            run, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(LiveServer(url, process, log), READY_TIMEOUT_S)
        yield Container(name=name, url=url, data=data, log=log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        buildah("rm", name)


def test_the_tier_has_no_network_but_loopback() -> None:
    """What makes the other tests prove that nothing downloads when the container starts."""
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 443), timeout=3).close()
    with pytest.raises(OSError):
        socket.getaddrinfo("pypi.org", 443)


def test_the_image_declares_its_user_volume_and_health_check(image_config: dict[str, Any]) -> None:
    assert image_config["User"] == "facebank"
    assert "/var/lib/facebank" in image_config["Volumes"]
    assert image_config["Healthcheck"]["Test"] == ["CMD", "facebank", "healthcheck"]
    assert image_config["Entrypoint"] == ["facebank"]


def test_boto3_detects_indexes_and_searches_a_real_photo(
    container: Container, faces_dir: Path
) -> None:
    client = rekognition_client(container.url, ACCESS_KEY, SECRET_KEY)
    madonna = first_photo(faces_dir, "madonna")
    detected = client.detect_faces(Image={"Bytes": madonna})["FaceDetails"]
    assert len(detected) == 1
    assert detected[0]["Confidence"] > 90
    client.create_collection(CollectionId="image-test")
    indexed = client.index_faces(
        CollectionId="image-test", Image={"Bytes": madonna}, ExternalImageId="madonna"
    )
    assert len(indexed["FaceRecords"]) == 1
    other = first_photo(faces_dir, "madonna", split="val")
    found = client.search_faces_by_image(CollectionId="image-test", Image={"Bytes": other})
    assert found["FaceMatches"][0]["Face"]["ExternalImageId"] == "madonna"
    assert found["FaceMatches"][0]["Similarity"] > 80
    stranger = first_photo(faces_dir, "jerry_seinfeld", split="val")
    unmatched = client.search_faces_by_image(CollectionId="image-test", Image={"Bytes": stranger})
    assert unmatched["FaceMatches"] == []


def test_the_server_runs_as_the_image_user_and_writes_only_its_volume(container: Container) -> None:
    client = rekognition_client(container.url, ACCESS_KEY, SECRET_KEY)
    client.create_collection(CollectionId="ownership")
    database = container.data / "facebank.db"
    assert database.exists()
    owner = database.stat().st_uid
    assert owner != 0
    assert owner == container.data.stat().st_uid


def test_the_health_check_passes_on_a_ready_server_and_fails_on_none(
    container: Container, image_config: dict[str, Any]
) -> None:
    port = container.url.rsplit(":", 1)[1]
    check = image_config["Healthcheck"]["Test"][1:]
    ready = run_in(container.name, "env", f"FACEBANK_PORT={port}", *check)
    assert ready.returncode == 0, ready.stderr
    nothing = run_in(container.name, *check, "--port", str(free_port()))
    assert nothing.returncode != 0
    assert "unreachable" in nothing.stderr


def test_the_weights_are_the_images_own_and_read_only_to_the_server(container: Container) -> None:
    listed = run_in(container.name, "ls", "/opt/facebank-models")
    assert "manifest.json" in listed.stdout.split()
    writable = run_in(container.name, "test", "-w", "/opt/facebank-models")
    assert writable.returncode != 0
