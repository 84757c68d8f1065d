from __future__ import annotations

import math

import numpy as np
import pytest

from ml.pose import estimate_pose
from ml.quality import assess_quality, brightness, sharpness
from ml.types import Box

# A frontal face: eyes level, nose centred at NOSE_DROP of the eye-mouth distance.
FRONTAL = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [45.0, 86.4], [75.0, 86.4]])


def rotate(
    points: np.ndarray, degrees: float, centre: tuple[float, float] = (60, 60)
) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.asarray((points - centre) @ rotation.T + centre)


def test_frontal_face_has_near_zero_pose() -> None:
    pose = estimate_pose(FRONTAL)
    assert abs(pose.roll) < 1e-6
    assert abs(pose.yaw) < 1e-6
    assert abs(pose.pitch) < 2.0


@pytest.mark.parametrize("degrees", [-30.0, -10.0, 15.0, 40.0])
def test_roll_follows_in_plane_rotation(degrees: float) -> None:
    pose = estimate_pose(rotate(FRONTAL, degrees))
    assert pose.roll == pytest.approx(degrees, abs=1e-6)
    assert abs(pose.yaw) < 1e-6  # in-plane rotation is not yaw


def test_yaw_grows_with_nose_offset_and_keeps_sign() -> None:
    yaws = []
    for shift in (-12.0, -4.0, 0.0, 4.0, 12.0):
        points = FRONTAL.copy()
        points[2, 0] += shift
        yaws.append(estimate_pose(points).yaw)
    assert yaws == sorted(yaws)
    assert yaws[0] < -20 and yaws[-1] > 20


def test_pitch_grows_when_nose_rises_towards_eyes() -> None:
    up, down = FRONTAL.copy(), FRONTAL.copy()
    up[2, 1] -= 8.0
    down[2, 1] += 8.0
    assert estimate_pose(up).pitch > 10 > -10 > estimate_pose(down).pitch


def test_angles_stay_in_range() -> None:
    pose = estimate_pose(rotate(FRONTAL, 179.0))
    for angle in (pose.roll, pose.yaw, pose.pitch):
        assert -180.0 <= angle <= 180.0


def test_brightness_is_mean_luma_percent() -> None:
    assert brightness(np.full((10, 10), 255.0)) == pytest.approx(100.0)
    assert brightness(np.full((10, 10), 51.0)) == pytest.approx(20.0)


def test_sharpness_flat_is_zero_and_detail_is_high() -> None:
    assert sharpness(np.full((100, 100), 128.0)) == pytest.approx(0.0, abs=1e-9)
    checker = (np.indices((112, 112)).sum(axis=0) % 2) * 255.0
    assert sharpness(checker) > 95


def test_blur_lowers_sharpness() -> None:
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 255, (120, 120))
    kernel = np.ones(9) / 9
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 0, noise)
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 1, blurred)
    assert sharpness(blurred) < sharpness(noise)


def test_quality_uses_only_the_face_box() -> None:
    pixels = np.zeros((100, 100, 3), dtype=np.uint8)
    pixels[20:60, 20:60] = 200
    quality = assess_quality(pixels, Box(20, 20, 60, 60))
    assert quality.brightness == pytest.approx(200 / 255 * 100, abs=0.5)
    assert quality.sharpness < 1
