"""Rekognition's 30 landmarks from the face mesh, and the mesh's word on what is a face."""

from __future__ import annotations

import numpy as np

from ml.decode import DecodedImage
from ml.mesh import EYE_POINTS, LANDMARK_VERTICES
from ml.pipeline import MeshCheck
from ml.types import Box, Detection, FaceDescription, FaceMeshResult, Pose, Quality
from service.operations.render import landmarks
from service.operations.validation import rekognition_model


def mesh_with_points(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(10, 190, (468, 2))


def test_thirty_landmarks_in_the_order_of_rekognitions_enum() -> None:
    found = FaceMeshResult(mesh_with_points(), presence=1.0).landmarks()
    assert [name for name, _, _ in found] == list(
        rekognition_model().shape_for("LandmarkType").enum
    )


def test_points_come_from_their_vertices_and_pupils_from_the_irises() -> None:
    points = mesh_with_points()
    irises = np.array([[50.0, 60.0], [150.0, 61.0]])
    with_irises = dict((n, (x, y)) for n, x, y in FaceMeshResult(points, 1.0, irises).landmarks())
    assert with_irises["chinBottom"] == tuple(points[LANDMARK_VERTICES["chinBottom"]])
    assert with_irises["eyeLeft"] == tuple(points[list(EYE_POINTS[0])].mean(axis=0))
    assert with_irises["leftPupil"] == (50.0, 60.0) and with_irises["rightPupil"] == (150.0, 61.0)
    without = dict((n, (x, y)) for n, x, y in FaceMeshResult(points, 1.0).landmarks())
    assert without["rightPupil"] == tuple(points[list(EYE_POINTS[1])].mean(axis=0))


def test_the_mesh_drops_what_it_finds_no_face_in_unless_the_detector_is_sure() -> None:
    check = MeshCheck(min_presence=0.1, sure_probability=0.995)
    box, marks = Box(0, 0, 10, 10), np.zeros((5, 2))
    doubtful, sure = Detection(box, 0.9, marks), Detection(box, 0.999, marks)
    no_face, face = (
        FaceMeshResult(mesh_with_points(), 0.02),
        FaceMeshResult(mesh_with_points(), 0.4),
    )
    assert not check.confirms(doubtful, no_face, 100, 100)
    assert check.confirms(doubtful, face, 100, 100)
    assert check.confirms(sure, no_face, 100, 100)
    cut = Detection(Box(-5, 0, 10, 10), 0.9, marks)  # reaches past the frame
    assert check.confirms(cut, no_face, 100, 100)


def test_rendered_landmarks_are_the_meshs_thirty_or_mtccns_five() -> None:
    image = DecodedImage(np.zeros((200, 200, 3), np.uint8), "jpeg", None)
    five = np.array([[60, 80], [140, 80], [100, 110], [70, 140], [130, 140]], float)
    detection = Detection(Box(40, 40, 160, 170), 0.99, five)
    plain = FaceDescription(detection, Pose(0, 0, 0), Quality(50, 50))
    rendered = landmarks(plain, image)
    assert [m["Type"] for m in rendered] == [
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
    ]
    assert rendered[0]["X"] == 0.3 and rendered[0]["Y"] == 0.4
    meshed = FaceDescription(
        detection, Pose(0, 0, 0), Quality(50, 50), FaceMeshResult(mesh_with_points(), 1.0)
    )
    assert len(landmarks(meshed, image)) == 30


def _turned_face(x_axis: np.ndarray, y_axis: np.ndarray) -> FaceMeshResult:
    """A face whose axes in the image are x_axis (its left to right) and y_axis (its chin to
    forehead), the points of the pose in their places (the rest anywhere)."""
    from ml.mesh import ACROSS_PAIRS

    forward = np.cross(x_axis, y_axis)
    face = np.zeros((468, 3))
    for height, (left, right) in zip((0.3, 0.1, -0.8, -0.2), ACROSS_PAIRS, strict=True):
        face[left], face[right] = (-1.0, height, 0.2), (1.0, height, 0.2)
    image = 100 * (face @ np.stack([x_axis, y_axis, forward])) + np.array([200, 200, 0])
    return FaceMeshResult(image[:, :2], 1.0, depth=image[:, 2])


def test_pose_from_the_mesh_recovers_known_turns() -> None:
    import math

    frontal = _turned_face(np.array([1.0, 0, 0]), np.array([0, -1.0, 0]))
    pose = frontal.pose()
    assert pose is not None and max(abs(pose.roll), abs(pose.yaw), abs(pose.pitch)) < 1e-6
    a = math.radians(20)
    towards_right = _turned_face(np.array([math.cos(a), 0, math.sin(a)]), np.array([0, -1.0, 0]))
    yawed = towards_right.pose()
    assert yawed is not None and abs(yawed.yaw - 20) < 1e-6 and abs(yawed.pitch) < 1e-6
    up = _turned_face(np.array([1.0, 0, 0]), np.array([0, -math.cos(a), math.sin(a)]))
    pitched = up.pose()
    assert pitched is not None and abs(pitched.pitch - 20) < 1e-6 and abs(pitched.yaw) < 1e-6
    clockwise = _turned_face(
        np.array([math.cos(a), math.sin(a), 0]), np.array([math.sin(a), -math.cos(a), 0])
    )
    rolled = clockwise.pose()
    assert rolled is not None and abs(rolled.roll - 20) < 1e-6
    assert FaceMeshResult(np.zeros((468, 2)), 1.0).pose() is None  # no depth: no mesh pose
