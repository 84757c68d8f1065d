"""Rendering pipeline results as Rekognition response shapes (ratios of the upright image)."""

from __future__ import annotations

from typing import Any

from ml.decode import DecodedImage
from ml.types import LANDMARK_NAMES, Box, FaceAttributes, FaceDescription, FaceMeshResult
from service.storage.schema import FaceRow


def bounding_box(box: Box, image: DecodedImage) -> dict[str, float]:
    # Rekognition reports boxes unclipped: a face cut by the frame may have Left < 0.
    return {
        "Width": box.width / image.width,
        "Height": box.height / image.height,
        "Left": box.left / image.width,
        "Top": box.top / image.height,
    }


def landmarks(face: FaceDescription, image: DecodedImage) -> list[dict[str, Any]]:
    """Rekognition's 30 landmark types where the mesh ran, else MTCNN's five."""
    if face.mesh is not None:
        points = face.mesh.landmarks()
    else:
        five = face.detection.landmarks
        points = [(name, five[i, 0], five[i, 1]) for i, name in enumerate(LANDMARK_NAMES)]
    return [
        {"Type": name, "X": float(x) / image.width, "Y": float(y) / image.height}
        for name, x, y in points
    ]


def confidence(face: FaceDescription) -> float:
    return min(100.0, face.detection.probability * 100.0)


def face_detail(
    face: FaceDescription,
    image: DecodedImage,
    estimated: FaceAttributes | None = None,
    wanted: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """FaceDetail with the DEFAULT attributes, plus those of `wanted` that `estimated` holds.
    Attributes no model here can give (glasses, beard, moustache, occlusion) are omitted even
    when asked for, as Rekognition omits what it cannot say. The DEFAULT members make a valid
    ComparedFace, so CompareFaces uses it too."""
    detail: dict[str, Any] = {
        "BoundingBox": bounding_box(face.detection.box, image),
        "Landmarks": landmarks(face, image),
        "Pose": {"Roll": face.pose.roll, "Yaw": face.pose.yaw, "Pitch": face.pose.pitch},
        "Quality": {"Brightness": face.quality.brightness, "Sharpness": face.quality.sharpness},
        "Confidence": confidence(face),
    }
    if estimated is not None:
        detail.update(attribute_fields(estimated, wanted))
    return detail


def attribute_fields(estimated: FaceAttributes, wanted: frozenset[str]) -> dict[str, Any]:
    """The FaceDetail members of `wanted` that the networks gave."""
    fields: dict[str, Any] = {}
    if "AGE_RANGE" in wanted and estimated.age_low is not None:
        fields["AgeRange"] = {"Low": estimated.age_low, "High": estimated.age_high}
    if "GENDER" in wanted and estimated.gender is not None:
        fields["Gender"] = {"Value": estimated.gender, "Confidence": estimated.gender_confidence}
    if "EMOTIONS" in wanted and estimated.emotions is not None:
        fields["Emotions"] = [{"Type": kind, "Confidence": c} for kind, c in estimated.emotions]
    smiling = estimated.smiling
    if "SMILE" in wanted and smiling is not None:
        fields["Smile"] = {"Value": smiling[0], "Confidence": smiling[1]}
    if estimated.mesh is not None:
        fields.update(_mesh_fields(estimated.mesh, wanted))
    return fields


def _mesh_fields(mesh: FaceMeshResult, wanted: frozenset[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    eyes = mesh.eyes_open()
    if "EYES_OPEN" in wanted and eyes is not None:
        fields["EyesOpen"] = {"Value": eyes[0], "Confidence": eyes[1]}
    if "MOUTH_OPEN" in wanted:
        value, confidence = mesh.mouth_open()
        fields["MouthOpen"] = {"Value": value, "Confidence": confidence}
    gaze = mesh.gaze()
    if "EYE_DIRECTION" in wanted and gaze is not None:
        fields["EyeDirection"] = {"Yaw": gaze[0], "Pitch": gaze[1], "Confidence": gaze[2]}
    return fields


def face_details(
    faces: list[FaceDescription],
    image: DecodedImage,
    estimated: list[FaceAttributes] | None,
    wanted: frozenset[str],
) -> list[dict[str, Any]]:
    if estimated is None:
        return [face_detail(face, image) for face in faces]
    return [
        face_detail(face, image, found, wanted)
        for face, found in zip(faces, estimated, strict=True)
    ]


def face_json(face: FaceRow, user_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "FaceId": face.face_id,
        "BoundingBox": {
            "Width": face.width,
            "Height": face.height,
            "Left": face.left,
            "Top": face.top,
        },
        "ImageId": face.image_id,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": face.model_version,
    }
    if face.external_image_id is not None:
        body["ExternalImageId"] = face.external_image_id
    if user_id is not None:
        body["UserId"] = user_id
    return body
