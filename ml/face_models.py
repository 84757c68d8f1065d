"""The face model versions facebank knows: embedding spaces, each a network of
`ml.networks.table` run by a recipe."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Standardisation = Literal["prewhiten", "fixed"]


@dataclass(frozen=True)
class ModelSpec:
    """One embedding space: weights, preprocessing, how a face becomes a vector, vector size.

    `version` is the model's name, the key of its calibration and settings
    ("facenet-20170512"). `face_model_version` is what Rekognition's API calls it: a number
    (botocore's pattern: digits and dots) that collections and faces record; vectors of two
    versions are never compared. `network` names the weights (their manifest entry): models
    that differ only in their recipe (`upright`, `mirrored`; see ml.align) share them, and one
    server serves them all, so collections keep their model when the default one changes.
    """

    version: str
    face_model_version: str
    embedding_dim: int
    standardisation: Standardisation
    network: str
    upright: bool = False  # the face turned upright by its eye line before cropping
    mirrored: bool = False  # the vector is the mean of the crop's and its mirror image's


FACENET_2017 = ModelSpec(
    version="facenet-20170512",
    face_model_version="1.0",
    embedding_dim=128,
    # Sandberg's FaceNet was trained on per-image standardised ("prewhitened") crops.
    standardisation="prewhiten",
    network="facenet-20170512",
)

# The same weights with both recipes, for twice the embedding work: what it gains on held-out
# people is in docs/accuracy.md (`python -m benchmarks.embedding_variants`).
FACENET_2017_UPRIGHT_MIRRORED = replace(
    FACENET_2017,
    version="facenet-20170512-upright-mirrored",
    face_model_version="1.1",
    upright=True,
    mirrored=True,
)

VGGFACE2_2018 = ModelSpec(
    version="facenet-vggface2-20180402",
    face_model_version="2.0",
    embedding_dim=512,
    # facenet-pytorch trained these weights on (x - 127.5) / 128 inputs.
    standardisation="fixed",
    network="facenet-vggface2-20180402",
)

MODEL_SPECS: dict[str, ModelSpec] = {
    spec.version: spec for spec in (FACENET_2017, FACENET_2017_UPRIGHT_MIRRORED, VGGFACE2_2018)
}
DEFAULT_MODEL_VERSION = FACENET_2017_UPRIGHT_MIRRORED.version


def model_spec(version: str) -> ModelSpec:
    try:
        return MODEL_SPECS[version]
    except KeyError:
        known = ", ".join(sorted(MODEL_SPECS))
        raise ValueError(f"unknown face model version {version!r}; known: {known}") from None


def sharing_network(spec: ModelSpec) -> list[ModelSpec]:
    """Every model that runs `spec`'s weights, `spec` included."""
    return [other for other in MODEL_SPECS.values() if other.network == spec.network]
