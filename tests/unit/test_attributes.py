"""Attribute chips sit the face on dlib's mean face; AgeRange is the central 80% of the ages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.attributes import AGE_CLASSES, CHIP_PADDING, MEAN_FACE, age_range, face_chip
from service.operations.attributes import wanted_attributes

EVERY_SERVED = (
    "AGE_RANGE",
    "GENDER",
    "EMOTIONS",
    "SMILE",
    "EYES_OPEN",
    "MOUTH_OPEN",
    "EYE_DIRECTION",
)


def _dot_centres(chip: np.ndarray) -> np.ndarray:
    """Centres of the five bright dots, ordered as MEAN_FACE (by nearest template point)."""
    size = chip.shape[0]
    template = (CHIP_PADDING + MEAN_FACE) / (2 * CHIP_PADDING + 1) * size
    ys, xs = np.nonzero(chip[:, :, 0] > 128)
    points = np.stack([xs, ys], axis=1).astype(float)
    nearest = np.argmin(((points[:, None] - template[None]) ** 2).sum(axis=2), axis=1)
    return np.array([points[nearest == i].mean(axis=0) for i in range(5)])


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_chip_puts_the_landmarks_on_the_mean_face(angle: float) -> None:
    # A face 300 px wide, turned by `angle`, its five landmarks drawn as dots.
    centre = np.array([400.0, 350.0])
    turn = np.radians(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    landmarks = centre + ((MEAN_FACE - 0.5) * 300) @ rotation.T
    image = Image.new("RGB", (800, 700))
    draw = ImageDraw.Draw(image)
    for x, y in landmarks:
        draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(255, 255, 255))
    chip = face_chip(image, landmarks, 64)
    expected = (CHIP_PADDING + MEAN_FACE) / (2 * CHIP_PADDING + 1) * 64
    assert chip.shape == (64, 64, 3)
    assert np.allclose(_dot_centres(chip), expected, atol=1.0)


def test_age_range_holds_the_central_80_percent() -> None:
    probabilities = np.zeros(len(AGE_CLASSES))
    probabilities[30:41] = 1.0  # ages 30 to 40, evenly
    low, high = age_range(probabilities)
    assert (low, high) == (31, 39)
    sharp = np.zeros(len(AGE_CLASSES))
    sharp[25] = 1.0
    assert age_range(sharp) == (25, 25)


@pytest.mark.parametrize(
    ("names", "wanted"),
    [
        (None, set()),
        (["DEFAULT"], set()),
        (["ALL"], set(EVERY_SERVED)),
        (["DEFAULT", "ALL"], set(EVERY_SERVED)),
        (["GENDER", "EYES_OPEN"], {"GENDER", "EYES_OPEN"}),
        (["EYEGLASSES", "BEARD", "MUSTACHE", "SUNGLASSES", "FACE_OCCLUDED"], set()),
    ],
)
def test_attributes_asked_for(names: list[str] | None, wanted: set[str]) -> None:
    assert wanted_attributes(names) == wanted
