"""A full disk under a running server: writes are refused as retryable, searches keep working,
readiness says why, and everything recovers by itself when space comes back."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from service.testing.local_server import LiveServer, start_server, stop_server
from tests.support.clients import rekognition_client
from tests.support.photos import first_photo


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs: a disk that a test can fill (needs root, as CI runs)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.decode()}")
        pytest.skip("mounting a small disk needs root")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses even 4 KiB more."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while handle.write(b"\1" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def index(client: Any, photo: bytes, name: str) -> Any:
    return client.index_faces(CollectionId="c", ExternalImageId=name, Image={"Bytes": photo})


def test_full_disk_refuses_writes_keeps_searches_and_recovers(
    small_disk: Path, tmp_path: Path, faces_dir: Path
) -> None:
    server: LiveServer = start_server(tmp_path, {"FACEBANK_DATA_DIR": str(small_disk / "data")})
    try:
        client = rekognition_client(server.url)
        client.create_collection(CollectionId="c")
        ben, jennifer = first_photo(faces_dir, "ben_afflek"), first_photo(faces_dir, "madonna")
        indexed = index(client, ben, "ben")["FaceRecords"][0]["Face"]["FaceId"]
        filler = fill(small_disk)
        refusals = []
        for attempt in range(20):  # SQLite writes into its WAL's free pages before it grows
            try:
                index(client, jennifer, f"madonna-{attempt}")
            except ClientError as exc:
                refusals.append(exc.response)
                break
        assert refusals, "no write was refused on a full disk"
        assert refusals[0]["Error"]["Code"] == "ServiceUnavailableException"
        assert refusals[0]["ResponseMetadata"]["HTTPStatusCode"] == 503
        hits = client.search_faces_by_image(CollectionId="c", Image={"Bytes": ben})
        assert [hit["Face"]["FaceId"] for hit in hits["FaceMatches"]] == [indexed]
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and "storage full" in ready.json()["reason"]
        filler.unlink()
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        index(client, jennifer, "madonna-after")
        listed = client.list_faces(CollectionId="c")["Faces"]
        assert indexed in {face["FaceId"] for face in listed}
        assert "madonna-after" in {face.get("ExternalImageId") for face in listed}
        assert "InternalServerError" not in server.log.read_text()
    finally:
        stop_server(server)
