"""Value types that flow through the face pipeline, in pixel units of the upright image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ml.networks.face_mesh import FaceMeshResult

LANDMARK_NAMES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True)
class Pose:
    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class Quality:
    brightness: float
    sharpness: float


@dataclass(frozen=True)
class Detection:
    """What the detector says of one face: box, probability (0-1) and five landmarks (x, y)."""

    box: Box
    probability: float
    landmarks: np.ndarray  # 5 x 2, order of LANDMARK_NAMES


@dataclass(frozen=True)
class FaceDescription:
    """A detected face with the attributes computed from it."""

    detection: Detection
    pose: Pose
    quality: Quality
    # The face mesh (and irises) where the pipeline ran it: 30 landmarks, and the attributes
    # that read the mesh reuse it.
    mesh: FaceMeshResult | None = None
