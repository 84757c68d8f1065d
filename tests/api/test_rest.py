"""The REST surface under /v1, driven by httpx against a live server."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from service.testing.local_server import LiveServer
from tests.support.images import blank_jpeg
from tests.support.photos import GROUP_PEOPLE, first_photo, group_photo


def test_detect_multipart(server: LiveServer, faces_dir: Path) -> None:
    files = {"image": ("group.jpg", group_photo(faces_dir), "image/jpeg")}
    response = httpx.post(
        f"{server.url}/v1/faces/detect", files=files, data={"attributes": "DEFAULT"}
    )
    assert response.status_code == 200
    assert len(response.json()["FaceDetails"]) == len(GROUP_PEOPLE)


def test_detect_json_base64_same_shape_as_wire(
    server: LiveServer, rekognition: object, faces_dir: Path
) -> None:
    data = group_photo(faces_dir)
    body = {"Image": {"Bytes": base64.b64encode(data).decode()}}
    rest = httpx.post(f"{server.url}/v1/faces/detect", json=body).json()
    wire = rekognition.detect_faces(Image={"Bytes": data})  # type: ignore[attr-defined]
    assert rest["FaceDetails"] == wire["FaceDetails"]


def test_compare_multipart(server: LiveServer, faces_dir: Path) -> None:
    files = {
        "source_image": ("a.jpg", first_photo(faces_dir, "jerry_seinfeld"), "image/jpeg"),
        "target_image": ("b.jpg", first_photo(faces_dir, "jerry_seinfeld", "val"), "image/jpeg"),
    }
    response = httpx.post(
        f"{server.url}/v1/faces/compare",
        files=files,
        data={"similarity_threshold": "70", "quality_filter": "NONE"},
    )
    assert response.status_code == 200
    assert response.json()["FaceMatches"][0]["Similarity"] >= 70


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"GIF89a" + b"\0" * 100, 415, "InvalidImageFormatException"),
        (b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), 413, "ImageTooLargeException"),
    ],
)
def test_image_errors_are_problem_json(
    server: LiveServer, content: bytes, status: int, code: str
) -> None:
    response = httpx.post(f"{server.url}/v1/faces/detect", files={"image": ("x", content)})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code and problem["status"] == status and problem["detail"]


def test_no_face_and_bad_parameters(server: LiveServer, faces_dir: Path) -> None:
    files = {
        "source_image": ("a.jpg", blank_jpeg()),
        "target_image": ("b.jpg", group_photo(faces_dir)),
    }
    no_face = httpx.post(f"{server.url}/v1/faces/compare", files=files)
    assert no_face.status_code == 400 and no_face.json()["code"] == "InvalidParameterException"
    bad = httpx.post(
        f"{server.url}/v1/faces/compare", files=files, data={"similarity_threshold": "abc"}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameterException"
    unknown = httpx.post(
        f"{server.url}/v1/faces/detect",
        files={"image": ("a", blank_jpeg())},
        data={"colour": "red"},
    )
    assert unknown.status_code == 400


def test_malformed_json_body(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/v1/faces/detect", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "SerializationException"


def test_openapi_documents_both_body_kinds(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    detect = spec["paths"]["/v1/faces/detect"]["post"]
    content = detect["requestBody"]["content"]
    assert content["application/json"]["schema"]["required"] == ["Image"]
    assert content["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    compare = spec["paths"]["/v1/faces/compare"]["post"]["requestBody"]["content"]
    threshold = compare["application/json"]["schema"]["properties"]["SimilarityThreshold"]
    assert (threshold["minimum"], threshold["maximum"]) == (0, 100)


def test_health_endpoints(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"ready": True}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: (\r\n\r\nv\r\n--x--"),
    ],
)
def test_malformed_multipart_is_a_client_error(
    server: LiveServer, content_type: str, body: bytes
) -> None:
    response = httpx.post(
        f"{server.url}/v1/faces/detect", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "SerializationException"
