"""S3Object images, read from a real S3-compatible server (moto's, in its own process)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.testing.local_server import LiveServer, running_server, start_server, stop_server
from tests.support.clients import rekognition_client
from tests.support.images import jpeg_bytes
from tests.support.moto import CREDENTIALS, aws_client
from tests.support.photos import GROUP_PEOPLE, first_photo, group_photo


@pytest.fixture(scope="module")
def bucket(moto_endpoint: str, faces_dir: Path) -> dict[str, Any]:
    """A versioned bucket: a group photo, a photo with two versions, an oversized object."""
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket="photos")
    s3.put_bucket_versioning(Bucket="photos", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="photos", Key="group.jpg", Body=group_photo(faces_dir))
    first = s3.put_object(Bucket="photos", Key="person.jpg", Body=first_photo(faces_dir, "madonna"))
    grey = jpeg_bytes(np.full((200, 200, 3), 90, dtype=np.uint8))
    s3.put_object(Bucket="photos", Key="person.jpg", Body=grey)  # the current version: no face
    noise = np.random.default_rng(3).integers(0, 256, (2200, 2200, 3), dtype=np.uint8)
    big = io.BytesIO()
    Image.fromarray(noise).save(big, format="JPEG", quality=100)
    assert 5_242_880 < len(big.getvalue()) <= 15 * 1024 * 1024  # too big inline, fine from S3
    s3.put_object(Bucket="photos", Key="big.jpg", Body=big.getvalue())
    s3.put_object(Bucket="photos", Key="huge.bin", Body=b"\xff\xd8\xff" + bytes(16 << 20))
    return {"first_version": first["VersionId"]}


@pytest.fixture(scope="module")
def s3_server(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"FACEBANK_S3_ENDPOINT_URL": moto_endpoint, "FACEBANK_S3_REGION": "us-east-1"}
    with running_server(tmp_path_factory.mktemp("s3-server"), {**env, **CREDENTIALS}) as live:
        yield live


def s3_image(name: str, **extra: str) -> dict[str, Any]:
    return {"S3Object": {"Bucket": "photos", "Name": name, **extra}}


def test_s3_images_work_like_inline_bytes(
    s3_server: LiveServer, bucket: dict[str, Any], faces_dir: Path
) -> None:
    client = rekognition_client(s3_server.url)
    from_s3 = client.detect_faces(Image=s3_image("group.jpg"))["FaceDetails"]
    inline = client.detect_faces(Image={"Bytes": group_photo(faces_dir)})["FaceDetails"]
    assert len(from_s3) == len(GROUP_PEOPLE) and from_s3 == inline
    big = client.detect_faces(Image=s3_image("big.jpg"))
    assert big["FaceDetails"] == []  # 5-15 MB: refused inline, read from S3
    client.create_collection(CollectionId="from-s3")
    indexed = client.index_faces(
        CollectionId="from-s3", Image=s3_image("group.jpg"), ExternalImageId="group"
    )
    again = client.index_faces(
        CollectionId="from-s3", Image={"Bytes": group_photo(faces_dir)}, ExternalImageId="group"
    )
    assert [r["Face"]["FaceId"] for r in again["FaceRecords"]] == [
        r["Face"]["FaceId"] for r in indexed["FaceRecords"]
    ]  # the same bytes, from S3 or inline, are the same image
    hits = client.search_faces_by_image(
        CollectionId="from-s3", Image=s3_image("person.jpg", Version=bucket["first_version"])
    )
    assert len(hits["FaceMatches"]) == 1  # the first version is Madonna's photo
    compared = client.compare_faces(
        SourceImage=s3_image("person.jpg", Version=bucket["first_version"]),
        TargetImage=s3_image("group.jpg"),
    )
    assert len(compared["FaceMatches"]) == 1


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (s3_image("missing.jpg"), "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "no-such-bucket", "Name": "a.jpg"}}, "InvalidS3ObjectException"),
        (s3_image("person.jpg", Version="no-such-version"), "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "photos"}}, "InvalidS3ObjectException"),
        (s3_image("huge.bin"), "ImageTooLargeException"),
    ],
)
def test_s3_errors_are_rekognitions(
    s3_server: LiveServer, bucket: dict[str, Any], image: dict[str, Any], code: str
) -> None:
    client = rekognition_client(s3_server.url)
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.detect_faces(Image=image)
    assert caught.value.response["Error"]["Code"] == code


def test_without_credentials_the_object_is_out_of_reach(
    moto_endpoint: str, bucket: dict[str, Any], tmp_path: Path
) -> None:
    env = {
        "FACEBANK_S3_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    live = start_server(tmp_path, env)
    try:
        client = rekognition_client(live.url)
        with pytest.raises(client.exceptions.InvalidS3ObjectException):
            client.detect_faces(Image=s3_image("group.jpg"))
    finally:
        stop_server(live)
