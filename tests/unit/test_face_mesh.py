"""Face-mesh geometry: crops and their points map back onto the image (turned and mirrored),
eye direction turns the way Pose does, verdicts grow surer away from their threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.mesh import CONTOUR_CORNERS, EYES
from ml.mesh import verdict as mesh_verdict
from ml.networks.face_mesh import Region, crop, project
from ml.provision.tflite_reader import _same_padding
from ml.types import FaceMeshResult


@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_a_point_found_in_a_crop_projects_back_onto_the_image(angle: float, mirrored: bool) -> None:
    image = Image.new("RGB", (400, 300))
    dot = np.array([230.0, 120.0])
    ImageDraw.Draw(image).ellipse((dot[0] - 4, dot[1] - 4, dot[0] + 4, dot[1] + 4), fill="white")
    region = Region(200.0, 150.0, 160.0, math.radians(angle))
    chip = crop(image, region, 64, mirrored)
    ys, xs = np.nonzero(chip[:, :, 0] > 100)
    found = np.array([[xs.mean() + 0.5, ys.mean() + 0.5]])  # pixel centres
    assert np.allclose(project(found, region.to_image(64, mirrored))[0], dot, atol=1.5)
    upright = crop(image, region, 64)
    if mirrored:  # the mirrored crop is the upright crop flipped left to right
        assert np.abs(chip.astype(int) - upright[:, ::-1].astype(int)).mean() < 2


def _face_looking(right: float, down: float) -> FaceMeshResult:
    """A level face whose eyes are 30 px wide and whose irises sit `right` and `down` eye widths
    off the corners' midpoints."""
    mesh = np.zeros((468, 2))
    irises = []
    for eye, (first, second, _) in enumerate(EYES):
        left = 100.0 + 80.0 * eye
        mesh[first], mesh[second] = (left, 100.0), (left + 30.0, 100.0)
        irises.append((left + 15.0 + 30.0 * right, 100.0 + 30.0 * down))
    outline = np.zeros((2, 16, 2))
    outline[:, CONTOUR_CORNERS[1], 0] = 30.0
    outline[:, 9:, 1] = -10.0  # upper lid 10 px above the lower: open
    return FaceMeshResult(mesh, 1.0, np.array(irises), outline)


def test_eye_direction_turns_as_pose_does() -> None:
    assert _face_looking(0.0, 0.0).eye_direction() == pytest.approx((0.0, 0.0), abs=1e-9)
    yaw, pitch = _face_looking(0.1, 0.0).eye_direction()
    assert yaw == pytest.approx(math.degrees(math.asin(0.25)))  # 3 mm on a 12 mm ball
    assert pitch == pytest.approx(0.0, abs=1e-9)
    yaw, pitch = _face_looking(-0.1, -0.05).eye_direction()
    assert yaw < 0 and pitch > 0  # towards the image's left, and up
    gaze = _face_looking(0.1, 0.0).gaze()
    assert gaze is not None and gaze[2] > 90


def test_no_gaze_and_no_eyes_open_without_the_iris_network() -> None:
    face = _face_looking(0.0, 0.0)
    bare = FaceMeshResult(face.mesh, face.presence)
    assert bare.gaze() is None and bare.eyes_open() is None
    eyes = face.eyes_open()
    assert eyes is not None and eyes[0] and eyes[1] > 99


def test_verdicts_are_even_at_the_threshold_and_surer_away_from_it() -> None:
    verdict, confidence = mesh_verdict(0.2, 0.2, 1.0)
    assert verdict is False and confidence == pytest.approx(50.0)
    near, far = mesh_verdict(0.22, 0.2, 1.0), mesh_verdict(0.35, 0.2, 1.0)
    assert near[0] and far[0] and 50 < near[1] < far[1] <= 100
    below = mesh_verdict(0.1, 0.2, 1.0)
    assert not below[0] and below[1] > 90
    assert mesh_verdict(0.35, 0.2, 0.5)[1] == pytest.approx(far[1] / 2)  # scaled by face presence


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(192, 3, 1, (1, 1)), (192, 3, 2, (0, 1)), (191, 3, 2, (1, 1)), (64, 2, 2, (0, 0))],
)
def test_same_padding_puts_the_odd_pixel_after(
    size: int, kernel: int, stride: int, expected: tuple[int, int]
) -> None:
    before, after = _same_padding(size, kernel, stride)
    assert (before, after) == expected
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)
