"""Operations over a real database with a stub face pipeline, and direct seeding of face vectors.

The storage operations under test (ListFaces, DeleteFaces, SearchFaces, users...) only read the
pipeline's model spec and calibration, so no model weights are loaded here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.attributes import AttributeEstimator
from ml.cpu_levers import DetectorChoice
from ml.cpu_precision import PrecisionChoice
from ml.decode import DecodedImage, ImageLimits
from ml.face_models import FACENET_2017, ModelSpec
from ml.pipeline import ServedModel
from ml.similarity import Calibration, load_calibration
from ml.types import FaceDescription
from service.build import build_context, build_operations
from service.operations.dispatch import Operations
from service.operations.faces import add_faces
from service.settings import Settings
from service.storage.queries import find_collection
from service.storage.schema import FaceRow, ImageRow


@dataclass
class StubPipeline:
    """A pipeline that serves one model and runs none: the storage tests send no images."""

    spec: ModelSpec
    calibration: Calibration
    limits: ImageLimits = field(default_factory=ImageLimits)
    attributes: AttributeEstimator | None = None
    also_serves: dict[str, ServedModel] = field(default_factory=dict)
    embedder_precision: PrecisionChoice | None = None
    detector_workers: DetectorChoice | None = None

    def serves(self, face_model_version: str) -> bool:
        return face_model_version == self.spec.face_model_version

    def model(self, face_model_version: str | None = None) -> ServedModel:
        return ServedModel(self.spec, self.calibration)

    def similarity(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.calibration.similarity(queries @ targets.T)

    def decode(self, data: bytes) -> DecodedImage:
        raise NotImplementedError("the storage tests send no images")

    def describe(self, image: DecodedImage) -> list[FaceDescription]:
        raise NotImplementedError("the storage tests send no images")

    def embed(
        self,
        image: DecodedImage,
        faces: list[FaceDescription],
        face_model_version: str | None = None,
    ) -> np.ndarray:
        raise NotImplementedError("the storage tests send no images")


TOKEN_SECRET = "storage-tests-page-token-secret"


def make_operations(
    database_url: str,
    data_dir: Path,
    snapshot_every: int = 10_000,
    index: dict[str, Any] | None = None,
    search: str = "faiss",
) -> Operations:
    """The server's operations over a StubPipeline, built as `serve` builds them. `search`
    "torch" runs exact searches with torch on the CPU, as a GPU node does on CUDA; "faiss"
    searches the FAISS index; both batched across requests, as served."""
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        device="cpu",
        token_secret=TOKEN_SECRET,
        snapshot_every=snapshot_every,
        **(index or {}),
        search_backend="torch" if search == "torch" else "faiss",
        search_batch_size=8,
        search_batch_wait_ms=1.0,
        search_queue_size=64,
    )
    pipeline = StubPipeline(FACENET_2017, load_calibration(FACENET_2017.version))
    context, _ = build_context(settings, pipeline)
    return build_operations(settings, context)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False): for what
    background threads, such as the snapshot writer, do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def unit_vectors(count: int, seed: int, dim: int = 128) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def near(vector: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """A unit vector close to `vector` (cosine about 1 - noise**2 * dim / 2)."""
    jitter = np.random.default_rng(seed).normal(scale=noise, size=vector.shape)
    moved = vector + jitter
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def insert_faces(session: Session, collection_id: str, vectors: np.ndarray) -> list[str]:
    """Add faces with the given vectors inside an open write transaction, through the same
    `add_faces` IndexFaces uses (synthetic boxes, no photos)."""
    collection = find_collection(session, collection_id, lock=True)
    image = ImageRow(
        collection_pk=collection.pk,
        image_sha256=uuid.uuid4().hex,
        external_key="seeded",
        image_id=str(uuid.uuid4()),
    )
    session.add(image)
    session.flush()
    rows = [
        FaceRow(
            face_id=str(uuid.uuid4()),
            collection_pk=collection.pk,
            image_pk=image.pk,
            image_id=image.image_id,
            external_image_id="seeded",
            user_pk=None,
            left=0.1,
            top=0.1,
            width=0.2,
            height=0.3,
            confidence=99.9,
            model_version=collection.face_model_version,
            embedding=vector.astype(np.float32).tobytes(),
            created_at=time.time(),
        )
        for vector in vectors
    ]
    add_faces(session, collection, rows)
    return [row.face_id for row in rows]


def seed_faces(operations: Operations, collection_id: str, vectors: np.ndarray) -> list[str]:
    """Commit faces with the given vectors; returns their FaceIds."""
    with operations.context.write() as session:
        return insert_faces(session, collection_id, vectors)


def face_count_in_db(operations: Operations, collection_id: str) -> int:
    with operations.context.read() as session:
        collection = find_collection(session, collection_id)
        return len(
            session.scalars(select(FaceRow.pk).where(FaceRow.collection_pk == collection.pk)).all()
        )
