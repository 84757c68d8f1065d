"""The operations both HTTP surfaces call: validate against the service model, run, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ml import decode
from ml.decode import DecodedImage
from ml.pipeline import FacePipeline
from ml.types import FaceDescription
from service import errors
from service.quality_filter import passes
from service.shapes import bounding_box, compared_face, confidence, face_detail, with_orientation
from service.validation import validate_request

Request = dict[str, Any]
Response = dict[str, Any]

DEFAULT_SIMILARITY_THRESHOLD = 80.0


class FaceOperations:
    """Stateless face analysis: DetectFaces and CompareFaces."""

    def __init__(self, pipeline: FacePipeline) -> None:
        self.pipeline = pipeline
        self.handlers: dict[str, Callable[[Request], Response]] = {
            "DetectFaces": self.detect_faces,
            "CompareFaces": self.compare_faces,
        }

    def dispatch(self, operation: str, body: object) -> Response:
        handler = self.handlers.get(operation)
        if handler is None:
            raise errors.UnknownOperationError(f"Operation {operation} is not supported")
        return handler(validate_request(operation, body))

    def decode(self, image: Request) -> DecodedImage:
        try:
            return self.pipeline.decode(image["Bytes"])
        except decode.ImageTooLargeError as exc:
            raise errors.ImageTooLargeError(str(exc)) from exc
        except decode.UnsupportedImageError as exc:
            raise errors.InvalidImageFormatError(
                f"Request has invalid image format: {exc}"
            ) from exc
        except decode.ImageTooSmallError as exc:
            raise errors.InvalidParameterError(f"Request has invalid parameters: {exc}") from exc

    def detect_faces(self, request: Request) -> Response:
        image = self.decode(request["Image"])
        faces = self.pipeline.describe(image)
        response = {"FaceDetails": [face_detail(face, image) for face in faces]}
        return with_orientation(response, "OrientationCorrection", image)

    def compare_faces(self, request: Request) -> Response:
        threshold = request.get("SimilarityThreshold", DEFAULT_SIMILARITY_THRESHOLD)
        level = request.get("QualityFilter", "NONE")
        source = self.decode(request["SourceImage"])
        target = self.decode(request["TargetImage"])
        source_face = self._largest_face(source, level, "source")
        target_faces = self.pipeline.describe(target)
        if not target_faces:
            raise errors.InvalidParameterError("There are no faces in the target image.")
        kept = [face for face in target_faces if passes(face, level)]
        scores = self._similarities(source, source_face, target, kept)
        matched = [(s, f) for s, f in zip(scores, kept, strict=True) if s >= threshold]
        matched.sort(key=lambda pair: pair[0], reverse=True)
        response = {
            "SourceImageFace": {
                "BoundingBox": bounding_box(source_face.detection.box, source),
                "Confidence": confidence(source_face),
            },
            "FaceMatches": [
                {"Similarity": float(s), "Face": compared_face(f, target)} for s, f in matched
            ],
            "UnmatchedFaces": [
                compared_face(f, target) for s, f in zip(scores, kept, strict=True) if s < threshold
            ],
        }
        with_orientation(response, "SourceImageOrientationCorrection", source)
        return with_orientation(response, "TargetImageOrientationCorrection", target)

    def _largest_face(self, image: DecodedImage, level: str, which: str) -> FaceDescription:
        faces = [face for face in self.pipeline.describe(image) if passes(face, level)]
        if not faces:
            raise errors.InvalidParameterError(f"There are no faces in the {which} image.")
        return faces[0]

    def _similarities(
        self,
        source: DecodedImage,
        source_face: FaceDescription,
        target: DecodedImage,
        target_faces: list[FaceDescription],
    ) -> np.ndarray:
        if not target_faces:
            return np.zeros(0)
        query = self.pipeline.embed(source, [source_face])
        vectors = self.pipeline.embed(target, target_faces)
        return np.asarray(self.pipeline.similarity(query, vectors)[0])
