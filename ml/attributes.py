"""Face attributes on the model device, in one batch per image: AgeRange and Gender from dlib's
networks, Emotions (and Smile, read off HAPPY) from fer's expression network.

Each network reads a face chip aligned the way dlib aligns one (`get_face_chip_details`, padding
0.2): a similarity transform that puts the face's landmarks on dlib's mean face. MTCNN's five
points are eye centres, nose tip and mouth corners, so the template holds where those sit on
dlib's mean face: each eye centre the mean of its six points, the nose tip point 30, the mouth
corners points 48 and 54 (dlib's published mean-face coordinates). Inputs are
(RGB - channel means) / 256, as the networks were trained.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from torch import nn

from ml.align import crop_past_frame
from ml.emotion_network import EMOTION_LABELS
from ml.types import Box, Detection

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
# AgeRange is the central 80% of the predicted age distribution.
AGE_RANGE_MASS = 0.8
GENDER_LABELS = ("Female", "Male")  # the classifier's output order
EXPRESSION_MARGIN = 0.1


@dataclass(frozen=True)
class FaceAttributes:
    age_low: int
    age_high: int
    gender: str
    gender_confidence: float  # 0-100
    # (Rekognition's emotion type, confidence 0-100), most confident first; None when the
    # expression network is not provisioned.
    emotions: tuple[tuple[str, float], ...] | None = None

    @property
    def smiling(self) -> tuple[bool, float] | None:
        """Smile from the expression network alone: a face is smiling when HAPPY is its most
        likely expression; the confidence is HAPPY's probability (or its complement)."""
        if not self.emotions:
            return None
        happy = dict(self.emotions)["HAPPY"]
        smiling = self.emotions[0][0] == "HAPPY"
        return smiling, happy if smiling else 100.0 - happy


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


class AttributeEstimator:
    """Runs the attribute networks on the faces of one image (one batch each)."""

    def __init__(
        self,
        age: nn.Module,
        gender: nn.Module,
        device: torch.device,
        expressions: nn.Module | None = None,
    ) -> None:
        self.device = device
        self.age = age.to(device).eval()
        self.gender = gender.to(device).eval()
        self.expressions = None if expressions is None else expressions.to(device).eval()
        self._means = torch.tensor(CHANNEL_MEANS, device=device).view(1, 3, 1, 1)

    def estimate(self, pixels: np.ndarray, faces: list[Detection]) -> list[FaceAttributes]:
        if not faces:
            return []
        image = Image.fromarray(pixels)
        ages = self._run(self.age, image, faces, 64)
        genders = self._run(self.gender, image, faces, 32)
        found = [_read(age, gender) for age, gender in zip(ages, genders, strict=True)]
        if self.expressions is None:
            return found
        emotions = self._expressions(image, faces)
        return [replace(f, emotions=e) for f, e in zip(found, emotions, strict=True)]

    @torch.inference_mode()
    def _expressions(
        self, image: Image.Image, faces: list[Detection]
    ) -> list[tuple[tuple[str, float], ...]]:
        assert self.expressions is not None
        grey = np.stack([expression_crop(image, face.box) for face in faces])
        batch = torch.from_numpy(grey).to(self.device)[:, None].float()
        probabilities = self.expressions(batch / 127.5 - 1.0).float().cpu().numpy()
        return [_ranked_emotions(row) for row in probabilities]

    @torch.inference_mode()
    def _run(
        self, network: nn.Module, image: Image.Image, faces: list[Detection], size: int
    ) -> np.ndarray:
        chips = np.stack([face_chip(image, face.landmarks, size) for face in faces])
        batch = torch.from_numpy(chips).to(self.device).permute(0, 3, 1, 2).float()
        probabilities = network((batch - self._means) / 256.0)
        return np.asarray(probabilities.float().cpu().numpy(), dtype=np.float64)


def _ranked_emotions(probabilities: np.ndarray) -> tuple[tuple[str, float], ...]:
    pairs = zip(EMOTION_LABELS, (float(p) * 100.0 for p in probabilities), strict=True)
    return tuple(sorted(pairs, key=lambda pair: pair[1], reverse=True))


def expression_crop(image: Image.Image, box: Box) -> np.ndarray:
    """64 x 64 uint8 grey: the box squared about its centre, with EXPRESSION_MARGIN of its side
    added on each side (fer adds 10 px to a face detector's box), grey past the frame."""
    side = max(box.width, box.height) * (1 + 2 * EXPRESSION_MARGIN)
    centre_x, centre_y = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    region = (left, top, left + max(round(side), 1), top + max(round(side), 1))
    grey = crop_past_frame(image, region).convert("L")
    return np.asarray(grey.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.uint8)


def _read(age: np.ndarray, gender: np.ndarray) -> FaceAttributes:
    low, high = age_range(age)
    best = int(np.argmax(gender))
    return FaceAttributes(low, high, GENDER_LABELS[best], float(gender[best]) * 100.0)


def age_range(probabilities: np.ndarray) -> tuple[int, int]:
    """The whole years holding the central AGE_RANGE_MASS of the age distribution."""
    cumulative = np.cumsum(probabilities / probabilities.sum())
    tail = (1.0 - AGE_RANGE_MASS) / 2.0
    low = AGE_CLASSES[int(np.searchsorted(cumulative, tail))]
    high = AGE_CLASSES[int(np.searchsorted(cumulative, 1.0 - tail))]
    return int(np.floor(low)), int(np.ceil(high))
