"""Which face attributes a request asks for (DetectFaces `Attributes`, IndexFaces
`DetectionAttributes`), and the attribute networks run only when one of theirs is asked for."""

from __future__ import annotations

from ml.decode import DecodedImage
from ml.networks.table import attribute_names
from ml.types import FaceAttributes, FaceDescription
from service.context import WithModels

SERVED_ATTRIBUTES = attribute_names()


def wanted_attributes(names: list[str] | None) -> frozenset[str]:
    """Beyond the default set: nothing for DEFAULT (or no list), every served attribute for
    ALL, else the served ones named. Names no model here serves are accepted and omitted."""
    asked = set(names or ["DEFAULT"])
    return SERVED_ATTRIBUTES if "ALL" in asked else SERVED_ATTRIBUTES & asked


def estimate_attributes(
    context: WithModels,
    image: DecodedImage,
    faces: list[FaceDescription],
    wanted: frozenset[str],
) -> list[FaceAttributes] | None:
    """Per face, when anything is wanted and the networks are provisioned; else None."""
    estimator = context.pipeline.attributes
    if estimator is None or not wanted & estimator.served:
        return None
    detections = [face.detection for face in faces]
    return estimator.estimate(image.pixels, detections, wanted, [face.mesh for face in faces])
