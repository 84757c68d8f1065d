"""Which face attributes a request asks for (DetectFaces `Attributes`, IndexFaces
`DetectionAttributes`), and the attribute networks run only when one of theirs is asked for."""

from __future__ import annotations

from ml.attributes import (
    AGE_ATTRIBUTES,
    EXPRESSION_ATTRIBUTES,
    GENDER_ATTRIBUTES,
    MESH_ATTRIBUTES,
    FaceAttributes,
)
from ml.decode import DecodedImage
from ml.types import FaceDescription
from service.backend import Backend

SERVED_ATTRIBUTES = AGE_ATTRIBUTES | GENDER_ATTRIBUTES | EXPRESSION_ATTRIBUTES | MESH_ATTRIBUTES


def wanted_attributes(names: list[str] | None) -> frozenset[str]:
    """Beyond the default set: nothing for DEFAULT (or no list), every served attribute for
    ALL, else the served ones named. Names no model here serves are accepted and omitted."""
    asked = set(names or ["DEFAULT"])
    return SERVED_ATTRIBUTES if "ALL" in asked else SERVED_ATTRIBUTES & asked


def estimate_attributes(
    backend: Backend, image: DecodedImage, faces: list[FaceDescription], wanted: frozenset[str]
) -> list[FaceAttributes] | None:
    """Per face, when anything is wanted and the networks are provisioned; else None."""
    estimator = backend.pipeline.attributes
    if estimator is None or not wanted & estimator.served:
        return None
    return estimator.estimate(image.pixels, [face.detection for face in faces], wanted)
