"""DetectFaces and CompareFaces: face analysis that stores nothing."""

from __future__ import annotations

import numpy as np

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.context import WithModels
from service.operations import Params, Result
from service.operations.inputs import decoded_image
from service.operations.quality_filter import passes
from service.operations.render import bounding_box, confidence, face_detail, face_details
from service.operations.requested_attributes import estimate_attributes, wanted_attributes

DEFAULT_SIMILARITY_THRESHOLD = 80.0


def detect_faces(context: WithModels, request: Params) -> Result:
    image = decoded_image(context, request["Image"])
    faces = context.pipeline.describe(image)
    # No OrientationCorrection: Rekognition documents it as always null now, and EXIF
    # orientation is applied before detection, so boxes are already upright.
    wanted = wanted_attributes(request.get("Attributes"))
    estimated = estimate_attributes(context, image, faces, wanted)
    return {"FaceDetails": face_details(faces, image, estimated, wanted)}


def compare_faces(context: WithModels, request: Params) -> Result:
    threshold = request.get("SimilarityThreshold", DEFAULT_SIMILARITY_THRESHOLD)
    level = request.get("QualityFilter", "NONE")
    source = decoded_image(context, request["SourceImage"])
    target = decoded_image(context, request["TargetImage"])
    source_face = _largest_face(context, source, level)
    target_faces = context.pipeline.describe(target)
    if not target_faces:
        raise errors.InvalidParameterError("There are no faces in the target image.")
    kept = [face for face in target_faces if passes(face, level)]
    scores = _similarities(context, (source, source_face), target, kept)
    ranked = sorted(zip(scores, kept, strict=True), key=lambda pair: pair[0], reverse=True)
    return {
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


def _largest_face(context: WithModels, image: DecodedImage, level: str) -> FaceDescription:
    faces = [face for face in context.pipeline.describe(image) if passes(face, level)]
    if not faces:
        raise errors.InvalidParameterError("There are no faces in the source image.")
    return faces[0]


def _similarities(
    context: WithModels,
    source: tuple[DecodedImage, FaceDescription],
    target: DecodedImage,
    target_faces: list[FaceDescription],
) -> np.ndarray:
    if not target_faces:
        return np.zeros(0)
    query = context.pipeline.embed(source[0], [source[1]])
    vectors = context.pipeline.embed(target, target_faces)
    return np.asarray(context.pipeline.similarity(query, vectors)[0])
