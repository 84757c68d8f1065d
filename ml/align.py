"""Face crops for the embedder: the detector box plus a margin, resized to a square."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ml.types import Box

CROP_SIZE = 160
CROP_MARGIN = 32  # pixels of margin in the 160-px output, as FaceNet's MTCNN alignment used


def crop_face(
    image: Image.Image, box: Box, size: int = CROP_SIZE, margin: int = CROP_MARGIN
) -> np.ndarray:
    """A size x size RGB crop around `box`, with `margin` output pixels of context in total.

    The margin is given in output pixels, so it is scaled back to source pixels per axis: a face
    box w px wide becomes (size - margin) output px, hence margin * w / (size - margin) source px.
    """
    pad_x = margin * box.width / (size - margin) / 2.0
    pad_y = margin * box.height / (size - margin) / 2.0
    region = (
        int(max(box.left - pad_x, 0)),
        int(max(box.top - pad_y, 0)),
        int(min(box.right + pad_x, image.width)),
        int(min(box.bottom + pad_y, image.height)),
    )
    crop = image.crop(region).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(crop, dtype=np.uint8)


def crop_faces(pixels: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """N x size x size x 3 uint8 crops; an empty array when there are no boxes."""
    if not boxes:
        return np.zeros((0, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    return np.stack([crop_face(image, box) for box in boxes])
