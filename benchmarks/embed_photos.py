"""Embed the largest face of each labelled photo with the real pipeline, with an on-disk cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ml.decode import decode_image
from ml.pipeline import FacePipeline

CACHE_DIR = Path(__file__).parent / ".cache"


def embed_largest_faces(pipeline: FacePipeline, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, found): unit vectors for each path; `found` False where no face was detected."""
    vectors = np.zeros((len(paths), pipeline.spec.embedding_dim), dtype=np.float32)
    found = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        vector = _cached_vector(pipeline, path)
        if vector is not None:
            vectors[i], found[i] = vector, True
    return vectors, found


def _cached_vector(pipeline: FacePipeline, path: Path) -> np.ndarray | None:
    data = path.read_bytes()
    key = hashlib.sha256(data + pipeline.spec.version.encode()).hexdigest()[:32]
    cached = CACHE_DIR / f"{key}.npy"
    if cached.exists():
        stored = np.load(cached)
        return None if stored.size == 0 else stored
    image = decode_image(data, pipeline.limits)
    faces = pipeline.describe(image)
    vector = pipeline.embed(image, faces[:1])[0] if faces else np.zeros(0, dtype=np.float32)
    CACHE_DIR.mkdir(exist_ok=True)
    np.save(cached, vector)
    return None if vector.size == 0 else vector
