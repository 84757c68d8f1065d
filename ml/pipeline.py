"""The face pipeline: bytes -> upright image -> described faces -> embeddings -> Similarity."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ml.align import recipe_crops
from ml.attributes import AttributeEstimator
from ml.cpu_levers import DetectorChoice
from ml.cpu_precision import PrecisionChoice
from ml.decode import DecodedImage, ImageDecoder, ImageLimits, decode_image
from ml.detector import REKOGNITION_MIN_FACE_SIZE, FaceDetector, MtcnnDetector
from ml.embedder import FaceEmbedder, TorchEmbedder, load_network
from ml.face_models import ModelSpec, model_spec, sharing_network
from ml.manifest import WeightsError
from ml.networks.face_mesh import face_mesh_of
from ml.networks.runner import ChipNetwork, ChipRunner
from ml.networks.table import ATTRIBUTE_NETWORKS, attribute_role, network
from ml.pose import estimate_pose
from ml.quality import assess_quality
from ml.similarity import Calibration, CalibrationError, load_calibration
from ml.types import Detection, FaceDescription, FaceMeshResult, Pose

log = logging.getLogger(__name__)

# Bumped whenever detection or cropping changes the vector a photo gets under the same weights
# (2: faces cut by the frame are found and padded), so cached benchmark vectors are not reused.
PIPELINE_REVISION = 2


@dataclass(frozen=True)
class ServedModel:
    spec: ModelSpec
    calibration: Calibration


class FaceModels(Protocol):
    """What operations use of the face pipeline: `FacePipeline`, or the stub of the storage
    tests (which load no weights)."""

    @property
    def spec(self) -> ModelSpec: ...
    @property
    def calibration(self) -> Calibration: ...
    @property
    def limits(self) -> ImageLimits: ...
    @property
    def attributes(self) -> AttributeEstimator | None: ...
    @property
    def also_serves(self) -> dict[str, ServedModel]: ...
    @property
    def embedder_precision(self) -> PrecisionChoice | None: ...
    @property
    def detector_workers(self) -> DetectorChoice | None: ...
    def decode(self, data: bytes) -> DecodedImage: ...
    def describe(self, image: DecodedImage) -> list[FaceDescription]: ...
    def embed(
        self,
        image: DecodedImage,
        faces: list[FaceDescription],
        face_model_version: str | None = None,
    ) -> np.ndarray: ...
    def model(self, face_model_version: str | None = None) -> ServedModel: ...
    def serves(self, face_model_version: str) -> bool: ...
    def similarity(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray: ...


@dataclass
class FacePipeline:
    spec: ModelSpec  # the default model: what new collections and collection-free calls use
    detector: FaceDetector
    embedder: FaceEmbedder
    calibration: Calibration
    limits: ImageLimits = field(default_factory=ImageLimits)
    # Set by the server to decode JPEGs on the model device; None decodes with Pillow here.
    decoder: ImageDecoder | None = None
    # Other models on the same weights (another recipe), by FaceModelVersion: collections
    # created under them keep their own vectors and calibration.
    also_serves: dict[str, ServedModel] = field(default_factory=dict)
    # The face attribute networks that are provisioned; None when none is.
    attributes: AttributeEstimator | None = None
    # Landmarks from the face mesh, which confirms faces too; None: MTCNN's five points.
    mesh_check: MeshCheck | None = None
    # What the embedder runs in and how that was chosen (the server's builder sets it); None:
    # as loaded, fp32 on the CPU and fp16 on CUDA.
    embedder_precision: PrecisionChoice | None = None
    # How the CPU detector splits its batches and how that was chosen; None: one pass.
    detector_workers: DetectorChoice | None = None

    def decode(self, data: bytes) -> DecodedImage:
        if self.decoder is not None:
            return self.decoder.decode(data)
        return decode_image(data, self.limits)

    def describe(self, image: DecodedImage) -> list[FaceDescription]:
        """Every face (the 100 largest), largest first, with pose and quality; with the mesh
        (`mesh_check`), only the faces it confirms, each with its mesh."""
        detections = self.detector.detect(image.pixels)
        face_mesh = None if self.attributes is None else face_mesh_of(self.attributes.runners)
        if self.mesh_check is None or face_mesh is None or not detections:
            return described(image, detections)
        meshes = face_mesh.run(Image.fromarray(image.pixels), detections, irises=True)
        kept = [
            (detection, mesh)
            for detection, mesh in zip(detections, meshes, strict=True)
            if self.mesh_check.confirms(detection, mesh, image.width, image.height)
        ]
        confirmed: list[FaceMeshResult | None] = [m for _, m in kept]
        return described(image, [d for d, _ in kept], confirmed)

    def model(self, face_model_version: str | None = None) -> ServedModel:
        """The served model of that FaceModelVersion (the default one when None)."""
        if face_model_version in (None, self.spec.face_model_version):
            return ServedModel(self.spec, self.calibration)
        return self.also_serves[face_model_version]

    def serves(self, face_model_version: str) -> bool:
        return face_model_version == self.spec.face_model_version or (
            face_model_version in self.also_serves
        )

    def embed(
        self,
        image: DecodedImage,
        faces: list[FaceDescription],
        face_model_version: str | None = None,
    ) -> np.ndarray:
        """Unit vectors of `faces`, by the recipe of that model (the default one when None)."""
        spec = self.model(face_model_version).spec
        detections = [face.detection for face in faces]
        crops = recipe_crops(image.pixels, detections, spec.upright, spec.mirrored)
        views = crops.shape[1]
        vectors = self.embedder.embed(crops.reshape(-1, *crops.shape[2:]))
        if views == 1 or not faces:
            return vectors
        merged = vectors.reshape(len(faces), views, -1).mean(axis=1)
        return np.asarray(merged / np.linalg.norm(merged, axis=1, keepdims=True), np.float32)

    def similarity(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Q x T Similarity (0-100) between unit vectors of the default model."""
        return self.calibration.similarity(queries @ targets.T)


def described(
    image: DecodedImage,
    detections: list[Detection],
    meshes: list[FaceMeshResult | None] | None = None,
) -> list[FaceDescription]:
    """The detector's faces with the pose and quality read from them (and their meshes). Pose
    comes from the mesh's 3D points where the mesh ran (docs/accuracy.md: closer to known
    angles than the five points'), else from the five points."""
    return [
        FaceDescription(
            detection=detection,
            pose=_pose(detection, mesh),
            quality=assess_quality(image.pixels, detection.box),
            mesh=mesh,
        )
        for detection, mesh in zip(detections, meshes or [None] * len(detections), strict=True)
    ]


def _pose(detection: Detection, mesh: FaceMeshResult | None) -> Pose:
    from_mesh = None if mesh is None else mesh.pose()
    return from_mesh if from_mesh is not None else estimate_pose(detection.landmarks)


@dataclass(frozen=True)
class MeshCheck:
    """Landmarks from the face mesh, and the mesh's word on whether a detection is a face: a
    detection the mesh finds no face in (presence below `min_presence`) is dropped, unless
    the detector is at least `sure_probability` sure of it, or the face is cut by the frame
    (the mesh reads little of such a face; docs/accuracy.md measures all three)."""

    min_presence: float = 0.1
    sure_probability: float = 0.995

    def confirms(self, detection: Detection, mesh: FaceMeshResult, width: int, height: int) -> bool:
        box = detection.box
        cut = box.left < 0 or box.top < 0 or box.right > width or box.bottom > height
        sure = detection.probability >= self.sure_probability
        return cut or sure or mesh.presence >= self.min_presence


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
    min_face_size: int = REKOGNITION_MIN_FACE_SIZE,  # in a 1920-px frame
    mesh_check: MeshCheck | None = None,
) -> FacePipeline:
    """Load real weights (checked against the manifest) and the model's calibration."""
    spec = model_spec(model_version)
    weights = network(spec.network).verified_path(models_dir)
    try:
        calibration = load_calibration(model_version, calibration_path)
    except CalibrationError:
        if not allow_uncalibrated:
            raise
        calibration = uncalibrated(model_version)
    embedder = TorchEmbedder(spec, load_network(spec, weights), device)
    return FacePipeline(
        spec=spec,
        detector=MtcnnDetector(
            device, max_side=detection_max_side, reference_min_face=min_face_size
        ),
        embedder=embedder,
        calibration=calibration,
        limits=limits or ImageLimits(),
        also_serves=_calibrated_siblings(spec),
        attributes=load_attribute_estimator(models_dir, device),
        mesh_check=mesh_check,
    )


def load_attribute_estimator(models_dir: Path, device: torch.device) -> AttributeEstimator | None:
    """The attribute networks of the table that are provisioned (each checked against the
    manifest), on the model device; an attribute whose network is missing is not served. None
    when none is."""
    runners: dict[str, ChipRunner] = {}
    for entry in ATTRIBUTE_NETWORKS:
        role = attribute_role(entry)
        try:
            weights = entry.verified_path(models_dir)
        except WeightsError as exc:
            log.warning("face attributes from the %s network off: %s", role.stage, exc)
            continue
        runners[role.stage] = ChipNetwork(role.load(weights), device, role.prepare)
    return AttributeEstimator(runners) if runners else None


def _calibrated_siblings(spec: ModelSpec) -> dict[str, ServedModel]:
    """The other models on `spec`'s weights that have a bundled calibration."""
    served = {}
    for other in sharing_network(spec):
        if other is spec:
            continue
        try:
            served[other.face_model_version] = ServedModel(other, load_calibration(other.version))
        except CalibrationError:
            continue
    return served
