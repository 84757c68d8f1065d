"""The face pipeline: bytes -> upright image -> described faces -> embeddings -> Similarity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ml.align import crop_faces
from ml.decode import DecodedImage, ImageDecoder, ImageLimits, decode_image
from ml.detector import FaceDetector, MtcnnDetector
from ml.embedder import FaceEmbedder, TorchEmbedder, load_network
from ml.pose import estimate_pose
from ml.quality import assess_quality
from ml.registry import ModelSpec, model_spec
from ml.similarity import Calibration, CalibrationError, load_calibration
from ml.types import Detection, FaceDescription
from ml.weights import verified_weights_path


@dataclass
class FacePipeline:
    spec: ModelSpec
    detector: FaceDetector
    embedder: FaceEmbedder
    calibration: Calibration
    limits: ImageLimits = field(default_factory=ImageLimits)
    # Set by the server to decode JPEGs on the model device; None decodes with Pillow here.
    decoder: ImageDecoder | None = None

    def decode(self, data: bytes) -> DecodedImage:
        if self.decoder is not None:
            return self.decoder.decode(data)
        return decode_image(data, self.limits)

    def describe(self, image: DecodedImage) -> list[FaceDescription]:
        """Every face (the 100 largest), largest first, with pose and quality."""
        return _described(image, self.detector.detect(image.pixels))

    def describe_many(self, images: list[DecodedImage]) -> list[list[FaceDescription]]:
        """`describe` for several images, detected in one pass."""
        found = self.detector.detect_many([image.pixels for image in images])
        return [_described(image, faces) for image, faces in zip(images, found, strict=True)]

    def embed(self, image: DecodedImage, faces: list[FaceDescription]) -> np.ndarray:
        crops = crop_faces(image.pixels, [face.detection.box for face in faces])
        return self.embedder.embed(crops)

    def similarity(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Q x T Similarity (0-100) between unit vectors."""
        return self.calibration.similarity(queries @ targets.T)


def _described(image: DecodedImage, detections: list[Detection]) -> list[FaceDescription]:
    return [
        FaceDescription(
            detection=detection,
            pose=estimate_pose(detection.landmarks),
            quality=assess_quality(image.pixels, detection.box),
        )
        for detection in detections
    ]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def uncalibrated(model_version: str) -> Calibration:
    """A linear placeholder map, for fitting a model's first calibration; never for serving."""
    return Calibration(model_version, "uncalibrated", (-1.0, 1.0), (0.0, 100.0))


def load_pipeline(
    models_dir: Path,
    model_version: str,
    device: torch.device,
    calibration_path: Path | None = None,
    limits: ImageLimits | None = None,
    allow_uncalibrated: bool = False,
    detection_max_side: int = 1920,
    cpu_bf16: bool = False,
) -> FacePipeline:
    """Load real weights (checked against the manifest) and the model's calibration."""
    spec = model_spec(model_version)
    weights = verified_weights_path(models_dir, spec)
    try:
        calibration = load_calibration(model_version, calibration_path)
    except CalibrationError:
        if not allow_uncalibrated:
            raise
        calibration = uncalibrated(model_version)
    embedder = TorchEmbedder(spec, load_network(spec, weights), device, cpu_bf16=cpu_bf16)
    return FacePipeline(
        spec=spec,
        detector=MtcnnDetector(device, max_side=detection_max_side),
        embedder=embedder,
        calibration=calibration,
        limits=limits or ImageLimits(),
    )
