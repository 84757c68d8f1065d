"""DetectFaces and CompareFaces: face analysis that stores nothing."""

from __future__ import annotations

import numpy as np

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.ops.context import Request, Response, Services
from service.quality_filter import passes
from service.shapes import bounding_box, confidence, face_detail, with_orientation

DEFAULT_SIMILARITY_THRESHOLD = 80.0


def detect_faces(services: Services, request: Request) -> Response:
    image = services.decode(request["Image"])
    faces = services.pipeline.describe(image)
    response = {"FaceDetails": [face_detail(face, image) for face in faces]}
    return with_orientation(response, "OrientationCorrection", image)


def compare_faces(services: Services, request: Request) -> Response:
    threshold = request.get("SimilarityThreshold", DEFAULT_SIMILARITY_THRESHOLD)
    level = request.get("QualityFilter", "NONE")
    source = services.decode(request["SourceImage"])
    target = services.decode(request["TargetImage"])
    source_face = _largest_face(services, source, level)
    target_faces = services.pipeline.describe(target)
    if not target_faces:
        raise errors.InvalidParameterError("There are no faces in the target image.")
    kept = [face for face in target_faces if passes(face, level)]
    scores = _similarities(services, (source, source_face), target, kept)
    ranked = sorted(zip(scores, kept, strict=True), key=lambda pair: pair[0], reverse=True)
    response = {
        "SourceImageFace": {
            "BoundingBox": bounding_box(source_face.detection.box, source),
            "Confidence": confidence(source_face),
        },
        "FaceMatches": [
            {"Similarity": float(s), "Face": face_detail(f, target)}
            for s, f in ranked
            if s >= threshold
        ],
        "UnmatchedFaces": [
            face_detail(f, target) for s, f in zip(scores, kept, strict=True) if s < threshold
        ],
    }
    with_orientation(response, "SourceImageOrientationCorrection", source)
    return with_orientation(response, "TargetImageOrientationCorrection", target)


def _largest_face(services: Services, image: DecodedImage, level: str) -> FaceDescription:
    faces = [face for face in services.pipeline.describe(image) if passes(face, level)]
    if not faces:
        raise errors.InvalidParameterError("There are no faces in the source image.")
    return faces[0]


def _similarities(
    services: Services,
    source: tuple[DecodedImage, FaceDescription],
    target: DecodedImage,
    target_faces: list[FaceDescription],
) -> np.ndarray:
    if not target_faces:
        return np.zeros(0)
    query = services.pipeline.embed(source[0], [source[1]])
    vectors = services.pipeline.embed(target, target_faces)
    return np.asarray(services.pipeline.similarity(query, vectors)[0])
