"""Collection operations' HTTP details: typed boto3 errors and the REST routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from service.testing.local_server import LiveServer
from tests.support.images import blank_jpeg
from tests.support.photos import GROUP_PEOPLE, first_photo, group_photo, selfie_photo


def test_typed_errors_through_boto3(rekognition: Any, faces_dir: Path) -> None:
    client = rekognition
    client.create_collection(CollectionId="errors-demo")
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        client.create_collection(CollectionId="errors-demo")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.index_faces(CollectionId="missing", Image={"Bytes": group_photo(faces_dir)})
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.create_collection(CollectionId="bad id with spaces")
    with pytest.raises(client.exceptions.InvalidPaginationTokenException):
        client.list_faces(CollectionId="errors-demo", NextToken="forged.token")
    with pytest.raises(client.exceptions.InvalidParameterException, match="no faces"):
        client.search_faces_by_image(CollectionId="errors-demo", Image={"Bytes": blank_jpeg()})
    none = client.search_users_by_image(CollectionId="errors-demo", Image={"Bytes": blank_jpeg()})
    assert none["UserMatches"] == [] and "SearchedFace" not in none
    client.create_user(CollectionId="errors-demo", UserId="u1", ClientRequestToken="tok-1")
    client.create_user(CollectionId="errors-demo", UserId="u1", ClientRequestToken="tok-1")
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
        client.create_user(CollectionId="errors-demo", UserId="u2", ClientRequestToken="tok-1")
    with pytest.raises(client.exceptions.ConflictException):
        client.create_user(CollectionId="errors-demo", UserId="u1")
    client.delete_collection(CollectionId="errors-demo")


def test_index_faces_semantics(rekognition: Any, faces_dir: Path) -> None:
    client = rekognition
    client.create_collection(CollectionId="semantics")
    group = {"Bytes": group_photo(faces_dir)}
    two = client.index_faces(
        CollectionId="semantics",
        Image=group,
        MaxFaces=2,
        ExternalImageId="team:photo-1",
        QualityFilter="NONE",
    )
    assert len(two["FaceRecords"]) == 2
    assert [u["Reasons"] for u in two["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]] * (
        len(GROUP_PEOPLE) - 2
    )
    widths = [r["Face"]["BoundingBox"]["Width"] for r in two["FaceRecords"]]
    assert widths == sorted(widths, reverse=True)
    again = client.index_faces(
        CollectionId="semantics",
        Image=group,
        MaxFaces=2,
        ExternalImageId="team:photo-1",
        QualityFilter="NONE",
    )
    assert [r["Face"]["FaceId"] for r in again["FaceRecords"]] == [
        r["Face"]["FaceId"] for r in two["FaceRecords"]
    ]
    assert client.describe_collection(CollectionId="semantics")["FaceCount"] == 2
    everyone = client.index_faces(
        CollectionId="semantics", Image=group, ExternalImageId="team:photo-1", QualityFilter="NONE"
    )
    assert len(everyone["FaceRecords"]) == len(GROUP_PEOPLE)  # the 2 already stored, and the rest
    assert client.describe_collection(CollectionId="semantics")["FaceCount"] == len(GROUP_PEOPLE)
    record = everyone["FaceRecords"][0]
    assert record["Face"]["ExternalImageId"] == "team:photo-1"
    assert set(record["FaceDetail"]) >= {"BoundingBox", "Landmarks", "Pose", "Quality"}
    assert everyone["FaceModelVersion"] == "1.1"
    soft = client.index_faces(
        CollectionId="semantics",
        QualityFilter="HIGH",
        Image={"Bytes": first_photo(faces_dir, "elton_john")},
    )
    assert soft["FaceRecords"] == [] and "LOW_SHARPNESS" in soft["UnindexedFaces"][0]["Reasons"]
    client.delete_collection(CollectionId="semantics")


def test_rest_collection_routes(server: LiveServer, faces_dir: Path) -> None:
    base = f"{server.url}/v1/collections"
    assert httpx.post(base, json={"CollectionId": "rest-demo"}).status_code == 200
    assert httpx.post(base, json={"CollectionId": "rest-demo"}).status_code == 409
    indexed = httpx.post(
        f"{base}/rest-demo/faces",
        files={"image": ("a.jpg", first_photo(faces_dir, "madonna"))},
        data={"external_image_id": "madonna-1", "max_faces": "1"},
    )
    assert indexed.status_code == 200
    face_id = indexed.json()["FaceRecords"][0]["Face"]["FaceId"]
    listed = httpx.get(f"{base}/rest-demo/faces", params={"max_results": "10"}).json()
    assert [f["FaceId"] for f in listed["Faces"]] == [face_id]
    found = httpx.post(
        f"{base}/rest-demo/faces/search",
        files={"image": ("b.jpg", first_photo(faces_dir, "madonna", "val"))},
    ).json()
    assert found["FaceMatches"][0]["Face"]["FaceId"] == face_id
    assert httpx.post(f"{base}/rest-demo/users", json={"UserId": "m"}).status_code == 200
    linked = httpx.post(f"{base}/rest-demo/users/m/faces", json={"FaceIds": [face_id]}).json()
    assert linked["UserStatus"] == "ACTIVE"
    users = httpx.get(f"{base}/rest-demo/users").json()["Users"]
    assert users == [{"UserId": "m", "UserStatus": "ACTIVE"}]
    assert httpx.get(f"{base}/rest-demo").json()["FaceCount"] == 1
    bad = httpx.get(f"{base}/rest-demo/faces", params={"max_results": "lots"})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameterException"
    assert httpx.delete(f"{base}/rest-demo/users/m").status_code == 200
    assert httpx.delete(f"{base}/rest-demo").status_code == 200
    missing = httpx.get(f"{base}/rest-demo")
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFoundException"


def test_max_faces_keeps_the_largest_boxes_as_returned(rekognition: Any, faces_dir: Path) -> None:
    """A face cut by the frame is ranked by its whole box, which reaches past the edge."""
    selfie, _ = selfie_photo(faces_dir, "madonna", past_frame=0.3)
    rekognition.create_collection(CollectionId="max-faces")
    try:
        everyone = rekognition.detect_faces(Image={"Bytes": selfie})["FaceDetails"]
        areas = sorted(
            (d["BoundingBox"]["Width"] * d["BoundingBox"]["Height"] for d in everyone),
            reverse=True,
        )
        assert len(areas) >= 3 and any(d["BoundingBox"]["Left"] < 0 for d in everyone)
        kept = rekognition.index_faces(
            CollectionId="max-faces", Image={"Bytes": selfie}, MaxFaces=2, QualityFilter="NONE"
        )["FaceRecords"]
        kept_areas = [
            r["Face"]["BoundingBox"]["Width"] * r["Face"]["BoundingBox"]["Height"] for r in kept
        ]
        assert kept_areas == pytest.approx(areas[:2])
        assert kept[0]["Face"]["BoundingBox"]["Left"] < 0  # the cut face is the largest
    finally:
        rekognition.delete_collection(CollectionId="max-faces")


def test_delete_faces_that_deleted_nothing_omits_deleted_faces(rekognition: Any) -> None:
    """botocore's model gives DeletedFaces at least one item: an empty list is left out."""
    rekognition.create_collection(CollectionId="delete-nothing")
    try:
        answer = rekognition.delete_faces(
            CollectionId="delete-nothing", FaceIds=["00000000-0000-0000-0000-000000000000"]
        )
        assert "DeletedFaces" not in answer
        assert [f["Reasons"] for f in answer["UnsuccessfulFaceDeletions"]] == [["FACE_NOT_FOUND"]]
    finally:
        rekognition.delete_collection(CollectionId="delete-nothing")
