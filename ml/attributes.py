"""Face attributes on the model device, in one batch per image and network: AgeRange and Gender
from dlib's networks, Emotions (and Smile, read off HAPPY) from fer's expression network,
EyesOpen, MouthOpen and EyeDirection from MediaPipe's face mesh and iris networks
(`ml.face_mesh`).

Each network reads a face chip aligned the way dlib aligns one (`get_face_chip_details`, padding
0.2): a similarity transform that puts the face's landmarks on dlib's mean face. MTCNN's five
points are eye centres, nose tip and mouth corners, so the template holds where those sit on
dlib's mean face: each eye centre the mean of its six points, the nose tip point 30, the mouth
corners points 48 and 54 (dlib's published mean-face coordinates). Inputs are
(RGB - channel means) / 256, as the networks were trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ml.align import crop_past_frame
from ml.chip_network import ChipRunner
from ml.emotion_network import EMOTION_LABELS
from ml.face_mesh import FaceMesh, FaceMeshResult
from ml.types import Box, Detection

CHIP_PADDING = 0.2
CHIP_SIZES = {"age": 64, "gender": 32}  # the aligned chip each dlib network reads, a side
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
    """What the networks asked for said of one face; None where a network did not run."""

    age_low: int | None = None
    age_high: int | None = None
    gender: str | None = None
    gender_confidence: float | None = None  # 0-100
    # (Rekognition's emotion type, confidence 0-100), most confident first.
    emotions: tuple[tuple[str, float], ...] | None = None
    mesh: FaceMeshResult | None = None

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


Fields = dict[str, Any]  # FaceAttributes fields by name

# Which network gives which of Rekognition's attribute names.
AGE_ATTRIBUTES = frozenset({"AGE_RANGE"})
GENDER_ATTRIBUTES = frozenset({"GENDER"})
EXPRESSION_ATTRIBUTES = frozenset({"EMOTIONS", "SMILE"})
MESH_ATTRIBUTES = frozenset({"EYES_OPEN", "MOUTH_OPEN", "EYE_DIRECTION"})
IRIS_ATTRIBUTES = frozenset({"EYES_OPEN", "EYE_DIRECTION"})


# The networks an estimator may hold, by the name its runners are kept under.
NETWORK_ATTRIBUTES = {
    "age": AGE_ATTRIBUTES,
    "gender": GENDER_ATTRIBUTES,
    "expressions": EXPRESSION_ATTRIBUTES,
    "mesh": MESH_ATTRIBUTES - IRIS_ATTRIBUTES,
    "iris": IRIS_ATTRIBUTES,  # read on the mesh's eyes, so only with the mesh
}


def dlib_input(chips: Tensor) -> Tensor:
    """N x H x W x 3 uint8 -> (RGB - channel means) / 256, N x 3 x H x W, as dlib trained."""
    means = torch.tensor(CHANNEL_MEANS, device=chips.device).view(1, 3, 1, 1)
    return (chips.permute(0, 3, 1, 2).float() - means) / 256.0


def fer_input(chips: Tensor) -> Tensor:
    """N x 64 x 64 uint8 grey -> N x 1 x 64 x 64 in [-1, 1], as fer trained."""
    return chips[:, None].float() / 127.5 - 1.0


class AttributeEstimator:
    """Runs, on the faces of one image, the attribute networks that the wanted attributes need
    (one call per network, which cross-request batching may join with other requests'); a
    network that is missing leaves its attributes unserved. EyesOpen and EyeDirection need the
    iris network beside the mesh."""

    def __init__(self, runners: dict[str, ChipRunner]) -> None:
        unknown = set(runners) - set(NETWORK_ATTRIBUTES)
        if unknown:
            raise ValueError(f"no attribute network is called {sorted(unknown)}")
        self.runners = runners
        mesh, iris = runners.get("mesh"), runners.get("iris")
        self.face_mesh = None if mesh is None else FaceMesh(mesh, iris)

    @property
    def served(self) -> frozenset[str]:
        served = frozenset().union(*(NETWORK_ATTRIBUTES[name] for name in self.runners))
        return served if "mesh" in self.runners else served - IRIS_ATTRIBUTES

    def with_runners(self, wrap: Callable[[str, ChipRunner], ChipRunner]) -> AttributeEstimator:
        """The same estimator with each network's runner wrapped (e.g. in a batch queue)."""
        return AttributeEstimator({name: wrap(name, run) for name, run in self.runners.items()})

    def estimate(
        self, pixels: np.ndarray, faces: list[Detection], wanted: frozenset[str] | None = None
    ) -> list[FaceAttributes]:
        """Per face, the attributes of `wanted` (every served one when None)."""
        wanted = self.served if wanted is None else wanted & self.served
        if not faces:
            return []
        image = Image.fromarray(pixels)
        steps = (
            (AGE_ATTRIBUTES, self._ages),
            (GENDER_ATTRIBUTES, self._genders),
            (EXPRESSION_ATTRIBUTES, self._emotions),
            (MESH_ATTRIBUTES, self._meshes),
        )
        found = [FaceAttributes() for _ in faces]
        for names, step in steps:
            if wanted & names:
                fields = step(image, faces, wanted)
                found = [replace(f, **new) for f, new in zip(found, fields, strict=True)]
        return found

    # Each step: per face, the FaceAttributes fields its network gives.

    def _ages(self, image: Image.Image, faces: list[Detection], _: frozenset[str]) -> list[Fields]:
        ranges = [age_range(p) for p in self._chip_outputs("age", image, faces)]
        return [{"age_low": low, "age_high": high} for low, high in ranges]

    def _genders(
        self, image: Image.Image, faces: list[Detection], _: frozenset[str]
    ) -> list[Fields]:
        genders = [_gender(p) for p in self._chip_outputs("gender", image, faces)]
        return [{"gender": value, "gender_confidence": c} for value, c in genders]

    def _emotions(
        self, image: Image.Image, faces: list[Detection], _: frozenset[str]
    ) -> list[Fields]:
        grey = np.stack([expression_crop(image, face.box) for face in faces])
        return [{"emotions": _ranked_emotions(p)} for p in self.runners["expressions"](grey)[0]]

    def _meshes(
        self, image: Image.Image, faces: list[Detection], wanted: frozenset[str]
    ) -> list[Fields]:
        assert self.face_mesh is not None  # MESH_ATTRIBUTES are served only with the mesh
        meshes = self.face_mesh.run(image, faces, irises=bool(wanted & IRIS_ATTRIBUTES))
        return [{"mesh": mesh} for mesh in meshes]

    def _chip_outputs(self, network: str, image: Image.Image, faces: list[Detection]) -> np.ndarray:
        size = CHIP_SIZES[network]
        chips = np.stack([face_chip(image, face.landmarks, size) for face in faces])
        return np.asarray(self.runners[network](chips)[0], dtype=np.float64)


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


def _gender(probabilities: np.ndarray) -> tuple[str, float]:
    best = int(np.argmax(probabilities))
    return GENDER_LABELS[best], float(probabilities[best]) * 100.0


def age_range(probabilities: np.ndarray) -> tuple[int, int]:
    """The whole years holding the central AGE_RANGE_MASS of the age distribution."""
    cumulative = np.cumsum(probabilities / probabilities.sum())
    tail = (1.0 - AGE_RANGE_MASS) / 2.0
    low = AGE_CLASSES[int(np.searchsorted(cumulative, tail))]
    high = AGE_CLASSES[int(np.searchsorted(cumulative, 1.0 - tail))]
    return int(np.floor(low)), int(np.ceil(high))
