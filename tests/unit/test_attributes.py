"""Attribute chips sit the face on dlib's mean face; AgeRange is the central 80% of the ages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.attributes import AttributeEstimator
from ml.networks.dlib import AGE_CLASSES, CHIP_PADDING, MEAN_FACE, age_range, face_chip
from ml.types import Box, Detection
from service.operations.requested_attributes import wanted_attributes

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


def test_age_range_holds_the_central_mass_at_a_minimum_width() -> None:
    probabilities = np.zeros(len(AGE_CLASSES))
    probabilities[30:41] = 1.0  # ages 30 to 40, evenly
    assert age_range(probabilities, mass=0.8, min_width=0) == (31, 39)
    assert age_range(probabilities, mass=0.9, min_width=0) == (30, 40)
    sharp = np.zeros(len(AGE_CLASSES))
    sharp[25] = 1.0
    assert age_range(sharp, min_width=0) == (25, 25)
    # A network sure to the year is not: the range widens about the median.
    assert age_range(sharp, min_width=8) == (21, 29)
    newborn = np.zeros(len(AGE_CLASSES))
    newborn[0] = 1.0
    assert age_range(newborn, min_width=8) == (0, 8)  # kept inside the ages the network knows


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


class _RecordingNetwork:
    """Stands in for an attribute network: records each call, answers with the right shapes."""

    def __init__(self, name: str, calls: list[str], outputs: Sequence[tuple[int, ...]]) -> None:
        self.name, self.calls, self.outputs = name, calls, outputs

    def __call__(self, chips: np.ndarray) -> list[np.ndarray]:
        self.calls.append(self.name)
        return [np.full((len(chips), *shape), 1.0 / np.prod(shape)) for shape in self.outputs]


SHAPES = {
    "age": [(81,)],
    "gender": [(2,)],
    "expressions": [(7,)],
    "mesh": [(1404,), (1,)],
    "iris": [(213,), (15,)],
}


@pytest.mark.parametrize(
    ("wanted", "networks"),
    [
        (frozenset(), []),
        (frozenset({"SMILE"}), ["expressions"]),
        (frozenset({"AGE_RANGE"}), ["age"]),
        (frozenset({"MOUTH_OPEN"}), ["mesh"]),
        (frozenset({"EYES_OPEN"}), ["mesh", "iris"]),
        (frozenset({"GENDER", "EYE_DIRECTION"}), ["gender", "mesh", "iris"]),
        (None, ["age", "gender", "expressions", "mesh", "iris"]),
    ],
)
def test_only_the_networks_of_the_wanted_attributes_run(
    wanted: frozenset[str] | None, networks: list[str]
) -> None:
    calls: list[str] = []
    runners = {name: _RecordingNetwork(name, calls, shapes) for name, shapes in SHAPES.items()}
    estimator = AttributeEstimator(dict(runners))
    marks = np.array([[50, 60], [110, 60], [80, 90], [55, 120], [105, 120]], dtype=float)
    faces = [Detection(Box(20, 20, 140, 150), 1.0, marks)] * 2
    found = estimator.estimate(np.zeros((200, 200, 3), np.uint8), faces, wanted)
    assert calls == networks  # one call per network for both faces
    assert len(found) == 2 and (found[0].mesh is not None) == ("mesh" in networks)


def test_what_is_served_follows_the_networks_there() -> None:
    calls: list[str] = []
    mesh_only = AttributeEstimator({"mesh": _RecordingNetwork("mesh", calls, SHAPES["mesh"])})
    assert mesh_only.served == {"MOUTH_OPEN"}
    iris_only = AttributeEstimator({"iris": _RecordingNetwork("iris", calls, SHAPES["iris"])})
    assert iris_only.served == frozenset()
    with pytest.raises(ValueError, match="no attribute network"):
        AttributeEstimator({"beard": _RecordingNetwork("beard", calls, [(2,)])})
