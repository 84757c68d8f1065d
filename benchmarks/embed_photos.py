"""Describe and embed one face per photo with the real pipeline, cached on disk.

Which face: "largest" (what Rekognition's search operations use) or "centre" (the face nearest
the image centre: LFW-style crops centre the labelled person, while a half-visible bystander at
the border is often larger). The cache key is the photo's bytes, the model version, the
pipeline's revision and the rule, so a re-run only reads .npz files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.decode import decode_image
from ml.pipeline import PIPELINE_REVISION, FacePipeline
from ml.types import Box, Detection, FaceDescription, Pose, Quality

CACHE_DIR = Path(__file__).parent / ".cache"


@dataclass(frozen=True)
class PhotoFace:
    path: Path
    vector: np.ndarray
    face: FaceDescription


Subject = str  # "largest" or "centre"


def subject_face(
    faces: list[FaceDescription], width: int, height: int, subject: Subject
) -> FaceDescription | None:
    """The labelled face of a photo by `subject`'s rule (faces come largest first)."""
    if subject == "centre":
        faces = sorted(
            faces,
            key=lambda f: (
                (f.detection.box.left + f.detection.box.right - width) ** 2
                + (f.detection.box.top + f.detection.box.bottom - height) ** 2
            ),
        )
    return faces[0] if faces else None


def describe_photos(
    pipeline: FacePipeline, paths: list[Path], subject: Subject = "largest"
) -> list[PhotoFace | None]:
    return [_cached(pipeline, path, subject) for path in paths]


def _cached(pipeline: FacePipeline, path: Path, subject: Subject) -> PhotoFace | None:
    data = path.read_bytes()
    recipe = f"{pipeline.spec.version}/{PIPELINE_REVISION}/{subject}"
    key = hashlib.sha256(data + recipe.encode()).hexdigest()[:32]
    cached = CACHE_DIR / f"{key}.npz"
    if not cached.exists():
        CACHE_DIR.mkdir(exist_ok=True)
        _store(cached, pipeline, data, subject)
    with np.load(cached) as stored:
        if stored["vector"].size == 0:
            return None
        face = FaceDescription(
            detection=Detection(
                Box(*stored["box"]), float(stored["probability"]), stored["landmarks"]
            ),
            pose=Pose(*stored["pose"]),
            quality=Quality(*stored["quality"]),
        )
        return PhotoFace(path, stored["vector"], face)


def _store(target: Path, pipeline: FacePipeline, data: bytes, subject: Subject) -> None:
    image = decode_image(data, pipeline.limits)
    face = subject_face(pipeline.describe(image), image.width, image.height, subject)
    if face is None:
        np.savez(target, vector=np.zeros(0, dtype=np.float32))
        return
    faces = [face]
    box = face.detection.box
    np.savez(
        target,
        vector=pipeline.embed(image, faces)[0],
        box=np.array([box.left, box.top, box.right, box.bottom]),
        probability=np.array(face.detection.probability),
        landmarks=face.detection.landmarks,
        pose=np.array([face.pose.roll, face.pose.yaw, face.pose.pitch]),
        quality=np.array([face.quality.brightness, face.quality.sharpness]),
    )
