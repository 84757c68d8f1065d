"""Value types that flow through the face pipeline, in pixel units of the upright image."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ml import mesh as geometry

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
class FaceMeshResult:
    """What the face mesh (and iris) networks found of one face, in image pixels."""

    mesh: np.ndarray  # 468 x 2 image points
    presence: float  # the mesh network's face probability, 0-1
    # From the iris network, eyes in EYES order: each iris centre (2 x 2) and each eye's
    # outline (2 x CONTOUR_POINTS x 2).
    irises: np.ndarray | None = None
    eye_contours: np.ndarray | None = None
    # Each point's depth in image pixels, smaller towards the camera (MediaPipe's z).
    depth: np.ndarray | None = None

    def landmarks(self) -> list[tuple[str, float, float]]:
        """Rekognition's 30 landmark types in its LandmarkType enum's order, (name, x, y)."""
        return geometry.landmark_points(self.mesh, self.irises)

    def pose(self) -> Pose | None:
        """Head pose from the mesh's 3D points (`ml.mesh.head_pose`); None without depth."""
        if self.depth is None:
            return None
        roll, yaw, pitch = geometry.head_pose(self.mesh, self.depth)
        return Pose(roll=roll, yaw=yaw, pitch=pitch)

    def eyes_open(self) -> tuple[bool, float] | None:
        """None without the iris network's eye outlines: the mesh's own lids agree less with
        labelled eyes (benchmarks/results/attributes.json)."""
        ratio = self.eye_opening()
        if ratio is None:
            return None
        return geometry.verdict(ratio, geometry.EYES_OPEN_ABOVE, self.presence)

    def mouth_open(self) -> tuple[bool, float]:
        ratio = geometry.mouth_opening(self.mesh)
        return geometry.verdict(ratio, geometry.MOUTH_OPEN_ABOVE, self.presence)

    def gaze(self) -> tuple[float, float, float] | None:
        """(yaw, pitch, confidence 0-100); None without the irises. Closed eyes show no iris,
        so the confidence is the face presence times how sure the eyes are open."""
        eyes = self.eyes_open()
        if self.irises is None or eyes is None:
            return None
        yaw, pitch = self.eye_direction()
        is_open, confidence = eyes
        eyes_open_probability = confidence / 100.0 if is_open else 1.0 - confidence / 100.0
        return yaw, pitch, 100.0 * self.presence * eyes_open_probability

    def eye_opening(self) -> float | None:
        if self.eye_contours is None:
            return None
        return geometry.eye_opening(self.eye_contours)

    def mouth_opening(self) -> float:
        return geometry.mouth_opening(self.mesh)

    def eye_direction(self) -> tuple[float, float]:
        assert self.irises is not None
        return geometry.eye_direction(self.mesh, self.irises)


@dataclass(frozen=True)
class FaceAttributes:
    """What the attribute networks asked for said of one face; None where a network did not
    run. Each network's step fills its own fields."""

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

    def merged(self, found: FaceAttributes) -> FaceAttributes:
        """These attributes with every field that `found` holds."""
        given = {f.name: getattr(found, f.name) for f in fields(found)}
        return replace(self, **{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True)
class FaceDescription:
    """A detected face with the attributes computed from it."""

    detection: Detection
    pose: Pose
    quality: Quality
    # The face mesh (and irises) where the pipeline ran it: 30 landmarks, and the attributes
    # that read the mesh reuse it.
    mesh: FaceMeshResult | None = None
