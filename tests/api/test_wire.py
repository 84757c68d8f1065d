"""Rekognition's wire protocol, driven by a stock boto3 client against a live server."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from ml.cpu_precision import WAYS, fastest_way
from service.testing.local_server import LiveServer
from tests.support.images import blank_jpeg, jpeg_bytes
from tests.support.photos import GROUP_PEOPLE, first_photo, group_photo


def landmark_types() -> list[str]:
    """botocore's LandmarkType enum, in its order."""
    from service.operations.validation import rekognition_model

    return list(rekognition_model().shape_for("LandmarkType").enum)


def test_detect_faces_on_group_photo(rekognition: Any, faces_dir: Path) -> None:
    response = rekognition.detect_faces(Image={"Bytes": group_photo(faces_dir)}, Attributes=["ALL"])
    details = response["FaceDetails"]
    assert len(details) == len(GROUP_PEOPLE)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(response["ResponseMetadata"]["RequestId"]) == 36
    for detail in details:
        box = detail["BoundingBox"]
        assert 0 < box["Width"] < 1 and 0 < box["Height"] < 1
        # All 30 of Rekognition's landmark types, within the face's box (the jawline's upper
        # points sit at the ears, a little past MTCNN's box).
        assert [mark["Type"] for mark in detail["Landmarks"]] == landmark_types()
        margin = 0.25 * box["Width"]
        for mark in detail["Landmarks"]:
            assert box["Left"] - margin <= mark["X"] <= box["Left"] + box["Width"] + margin
        assert 90 < detail["Confidence"] <= 100
        assert set(detail["Pose"]) == {"Roll", "Yaw", "Pitch"}
        assert 0 <= detail["Quality"]["Sharpness"] <= 100
        assert detail["AgeRange"]["Low"] <= detail["AgeRange"]["High"]
        assert detail["Gender"]["Value"] in ("Male", "Female")
        assert "Eyeglasses" not in detail  # no model here says it: omitted, as Rekognition does


def test_detect_faces_rgba_png(rekognition: Any, faces_dir: Path) -> None:
    data = (faces_dir / "face-recognition-examples/test_images/32bit.png").read_bytes()
    assert len(rekognition.detect_faces(Image={"Bytes": data})["FaceDetails"]) == 1


def test_detect_faces_without_faces_is_empty(rekognition: Any) -> None:
    assert rekognition.detect_faces(Image={"Bytes": blank_jpeg()})["FaceDetails"] == []


def test_compare_same_person_matches(rekognition: Any, faces_dir: Path) -> None:
    response = rekognition.compare_faces(
        SourceImage={"Bytes": first_photo(faces_dir, "ben_afflek")},
        TargetImage={"Bytes": first_photo(faces_dir, "ben_afflek", "val")},
    )
    assert len(response["FaceMatches"]) == 1
    assert response["FaceMatches"][0]["Similarity"] >= 80
    assert response["UnmatchedFaces"] == []
    assert response["SourceImageFace"]["Confidence"] > 90


def test_compare_different_people_does_not_match(rekognition: Any, faces_dir: Path) -> None:
    response = rekognition.compare_faces(
        SourceImage={"Bytes": first_photo(faces_dir, "ben_afflek")},
        TargetImage={"Bytes": first_photo(faces_dir, "madonna", "val")},
    )
    assert response["FaceMatches"] == []
    assert len(response["UnmatchedFaces"]) == 1


def test_compare_against_group_orders_and_thresholds(rekognition: Any, faces_dir: Path) -> None:
    source = {"Bytes": first_photo(faces_dir, "mindy_kaling", "val")}
    everyone = rekognition.compare_faces(
        SourceImage=source, TargetImage={"Bytes": group_photo(faces_dir)}, SimilarityThreshold=0
    )
    scores = [match["Similarity"] for match in everyone["FaceMatches"]]
    assert len(scores) == len(GROUP_PEOPLE) and scores == sorted(scores, reverse=True)
    cut = (scores[1] + scores[2]) / 2
    some = rekognition.compare_faces(
        SourceImage=source, TargetImage={"Bytes": group_photo(faces_dir)}, SimilarityThreshold=cut
    )
    assert len(some["FaceMatches"]) == 2 and len(some["UnmatchedFaces"]) == len(GROUP_PEOPLE) - 2


def test_quality_filter_high_drops_a_soft_face_none_keeps_it(
    rekognition: Any, faces_dir: Path
) -> None:
    # This Elton John photo is soft (Sharpness about 12): below HIGH's bar of 25.
    common = {
        "SourceImage": {"Bytes": group_photo(faces_dir)},
        "TargetImage": {"Bytes": first_photo(faces_dir, "elton_john")},
        "SimilarityThreshold": 0.0,
    }
    none = rekognition.compare_faces(QualityFilter="NONE", **common)
    high = rekognition.compare_faces(QualityFilter="HIGH", **common)
    compared_high = len(high["FaceMatches"]) + len(high["UnmatchedFaces"])
    assert len(none["FaceMatches"]) >= 1 and none["UnmatchedFaces"] == []
    assert compared_high < len(none["FaceMatches"])


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_no_face_in_source_is_invalid_parameter(rekognition: Any, faces_dir: Path) -> None:
    with pytest.raises(rekognition.exceptions.InvalidParameterException, match="source"):
        rekognition.compare_faces(
            SourceImage={"Bytes": blank_jpeg()}, TargetImage={"Bytes": group_photo(faces_dir)}
        )


def test_too_large_image(rekognition: Any) -> None:
    with pytest.raises(rekognition.exceptions.ImageTooLargeException):
        rekognition.detect_faces(Image={"Bytes": b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)})


def test_not_an_image(rekognition: Any) -> None:
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_faces(Image={"Bytes": b"this is not an image at all" * 10})


def test_gif(rekognition: Any) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((100, 100, 3), dtype=np.uint8)).save(buffer, format="GIF")
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_faces(Image={"Bytes": buffer.getvalue()})


def test_tiny_image(rekognition: Any) -> None:
    with pytest.raises(rekognition.exceptions.InvalidParameterException, match="80"):
        rekognition.detect_faces(Image={"Bytes": blank_jpeg(79, 200)})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"SimilarityThreshold": 101.0},
        {"QualityFilter": "EXTREME"},
    ],
)
def test_bad_compare_parameters(rekognition: Any, kwargs: dict[str, Any]) -> None:
    image = {"Bytes": blank_jpeg()}
    with pytest.raises(rekognition.exceptions.InvalidParameterException):
        rekognition.compare_faces(SourceImage=image, TargetImage=image, **kwargs)


def test_bad_attribute(rekognition: Any) -> None:
    with pytest.raises(rekognition.exceptions.InvalidParameterException, match="enum"):
        rekognition.detect_faces(Image={"Bytes": blank_jpeg()}, Attributes=["WRINKLES"])


def test_s3_object_is_refused_with_typed_error(rekognition: Any) -> None:
    with pytest.raises(rekognition.exceptions.InvalidS3ObjectException):
        rekognition.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a.jpg"}})


def test_unsupported_operation_answers_like_aws(rekognition: Any) -> None:
    assert error_code(rekognition.detect_labels, Image={"Bytes": blank_jpeg()}) == (
        "UnknownOperationException"
    )


def raw_post(server: LiveServer, body: bytes, target: str) -> httpx.Response:
    return httpx.post(
        server.url + "/",
        content=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )


def test_unknown_target_and_malformed_json(server: LiveServer) -> None:
    unknown = raw_post(server, b"{}", "RekognitionService.MakeCoffee")
    assert unknown.status_code == 400
    assert unknown.json()["__type"] == "UnknownOperationException"
    assert unknown.headers["x-amzn-RequestId"]
    broken = raw_post(server, b"{not json", "RekognitionService.DetectFaces")
    assert broken.status_code == 400 and broken.json()["__type"] == "SerializationException"
    missing = raw_post(server, b"{}", "RekognitionService.DetectFaces")
    body = missing.json()
    # Rekognition's error bodies: the name in __type and Code, the text in Message
    assert body["__type"] == body["Code"] == "InvalidParameterException"
    assert "image" in body["Message"]
    # botocore refuses a negative threshold itself; other clients reach the server with it.
    negative = raw_post(
        server,
        b'{"SourceImage": {"Bytes": "AA=="}, "TargetImage": '
        b'{"Bytes": "AA=="}, "SimilarityThreshold": -1}',
        "RekognitionService.CompareFaces",
    )
    assert negative.status_code == 400
    assert negative.json()["__type"] == "InvalidParameterException"


def test_orientation_correction_is_never_reported(rekognition: Any, faces_dir: Path) -> None:
    """Rekognition documents OrientationCorrection as always null now: omitted even for an
    EXIF-rotated JPEG (whose boxes are of the upright image)."""
    upright = np.asarray(Image.open(io.BytesIO(first_photo(faces_dir, "madonna"))).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    rotated = jpeg_bytes(stored, exif=exif.tobytes())
    detected = rekognition.detect_faces(Image={"Bytes": rotated})
    assert len(detected["FaceDetails"]) == 1 and "OrientationCorrection" not in detected
    compared = rekognition.compare_faces(
        SourceImage={"Bytes": rotated}, TargetImage={"Bytes": rotated}
    )
    assert not {"SourceImageOrientationCorrection", "TargetImageOrientationCorrection"} & set(
        compared
    )


def test_face_model_versions_are_numbers_and_the_name_is_on_rest(
    rekognition: Any, server: LiveServer, faces_dir: Path
) -> None:
    rekognition.create_collection(CollectionId="versions")
    created = rekognition.describe_collection(CollectionId="versions")["FaceModelVersion"]
    indexed = rekognition.index_faces(
        CollectionId="versions",
        Image={"Bytes": first_photo(faces_dir, "jerry_seinfeld")},
        QualityFilter="NONE",
    )
    listed = rekognition.list_faces(CollectionId="versions")["Faces"]
    versions = {created, indexed["FaceModelVersion"], listed[0]["IndexFacesModelVersion"]}
    assert versions == {"1.1"}  # botocore's pattern for these members is [0-9\\.]+
    model = httpx.get(f"{server.url}/v1/models/current").json()
    assert model["FaceModelVersion"] == "1.1"
    assert model["FaceModelName"] == "facenet-20170512-upright-mirrored"
    assert model["AlsoServes"] == [{"FaceModelVersion": "1.0", "FaceModelName": "facenet-20170512"}]
    networks = {network["Name"]: network for network in model["Networks"]}
    assert networks["facenet-20170512"]["Role"] == "embedder"
    assert networks["mediapipe-iris-landmark-v1"]["Attributes"] == ["EYES_OPEN", "EYE_DIRECTION"]
    precision = model["EmbedderPrecision"]  # timed on this machine at start (or cached)
    assert precision["ChosenBy"] in ("measured", "measured earlier on this machine")
    timings, cosines = precision["BatchMillis"], precision["MinCosinesToFp32"]
    # The test models' graph is provisioned: every runtime timed (OpenVINO's fp16 and bf16
    # only where this CPU has kernels for them).
    assert {"fp32", "bf16", "onnxruntime", "openvino"} <= set(timings)
    assert set(cosines) == set(timings) - {"fp32"}
    assert (precision["Precision"], precision["Runtime"]) == WAYS[fastest_way(timings, cosines)]
    served = f"embedder in {precision['Precision']} on the CPU by {precision['Runtime']}"
    assert served in server.log.read_text()
    split = model["DetectorWorkers"]  # the detector's split, timed the same way
    assert split["ChosenBy"] in ("measured", "measured earlier on this machine")
    assert split["Workers"] in (1, 2) and split["BatchMillis"]["split"] > 0  # 2 torch threads
    rekognition.delete_collection(CollectionId="versions")
