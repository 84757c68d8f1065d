"""Face crops by the detector's box alone (no alignment, no recipe): what the model tests and the
precision and throughput benchmarks embed directly."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ml.align import CROP_SIZE, crop_face
from ml.types import Box


def crop_faces(pixels: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """N x size x size x 3 uint8 crops; an empty array when there are no boxes."""
    if not boxes:
        return np.zeros((0, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    return np.stack([crop_face(image, box) for box in boxes])
