"""Attributes / DetectionAttributes as Rekognition documents them, through boto3 and REST:
DEFAULT adds nothing, ALL adds every attribute served here, a list adds those it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from service.testing.local_server import LiveServer
from tests.support.photos import first_photo

DEFAULT_MEMBERS = {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
MODEL_MEMBERS = {
    "AgeRange",
    "Gender",
    "Emotions",
    "Smile",
    "EyesOpen",
    "MouthOpen",
    "EyeDirection",
}


def test_detect_faces_attributes_follow_the_request(rekognition: Any, faces_dir: Path) -> None:
    image = {"Bytes": first_photo(faces_dir, "madonna")}

    def detail(**asked: Any) -> dict[str, Any]:
        return dict(rekognition.detect_faces(Image=image, **asked)["FaceDetails"][0])

    assert set(detail()) == DEFAULT_MEMBERS
    assert set(detail(Attributes=["DEFAULT"])) == DEFAULT_MEMBERS
    everything = detail(Attributes=["ALL"])
    assert set(everything) == DEFAULT_MEMBERS | MODEL_MEMBERS
    confidences = [emotion["Confidence"] for emotion in everything["Emotions"]]
    assert len(confidences) == 7 and confidences == sorted(confidences, reverse=True)
    assert {e["Type"] for e in everything["Emotions"]} <= {
        "HAPPY",
        "SAD",
        "ANGRY",
        "CONFUSED",
        "DISGUSTED",
        "SURPRISED",
        "CALM",
        "FEAR",
    }
    assert isinstance(everything["Smile"]["Value"], bool)
    low, high = everything["AgeRange"]["Low"], everything["AgeRange"]["High"]
    assert isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 80
    assert everything["Gender"]["Value"] == "Female"
    assert 50 <= everything["Gender"]["Confidence"] <= 100
    for flag in ("EyesOpen", "MouthOpen"):
        assert isinstance(everything[flag]["Value"], bool)
        assert 0 <= everything[flag]["Confidence"] <= 100
    assert everything["EyesOpen"]["Value"] is True  # eyes open in every Madonna photo here
    gaze = everything["EyeDirection"]
    assert -45 <= gaze["Yaw"] <= 45 and -45 <= gaze["Pitch"] <= 45
    assert 0 <= gaze["Confidence"] <= 100
    assert set(detail(Attributes=["GENDER", "EYES_OPEN"])) == DEFAULT_MEMBERS | {
        "Gender",
        "EyesOpen",
    }
    assert set(detail(Attributes=["SMILE"])) == DEFAULT_MEMBERS | {"Smile"}
    assert set(detail(Attributes=["EYE_DIRECTION", "MOUTH_OPEN"])) == DEFAULT_MEMBERS | {
        "EyeDirection",
        "MouthOpen",
    }
    assert set(detail(Attributes=["EYEGLASSES"])) == DEFAULT_MEMBERS  # no model here says it


def test_index_faces_detection_attributes(rekognition: Any, faces_dir: Path) -> None:
    rekognition.create_collection(CollectionId="with-attributes")
    try:
        indexed = rekognition.index_faces(
            CollectionId="with-attributes",
            Image={"Bytes": first_photo(faces_dir, "jerry_seinfeld")},
            DetectionAttributes=["AGE_RANGE"],
        )
        detail = indexed["FaceRecords"][0]["FaceDetail"]
        assert "AgeRange" in detail and "Gender" not in detail
    finally:
        rekognition.delete_collection(CollectionId="with-attributes")


def test_rest_detect_takes_attributes_as_repeated_fields(
    server: LiveServer, faces_dir: Path
) -> None:
    files = {"image": ("jerry.jpg", first_photo(faces_dir, "jerry_seinfeld"), "image/jpeg")}
    response = httpx.post(
        f"{server.url}/v1/faces/detect",
        files=files,
        data={"attributes": ["AGE_RANGE", "GENDER"]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    detail = response.json()["FaceDetails"][0]
    assert detail["Gender"]["Value"] == "Male" and "AgeRange" in detail
    refused = httpx.post(
        f"{server.url}/v1/faces/detect", files=files, data={"attributes": "AGES"}, timeout=60
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "InvalidParameterException"
