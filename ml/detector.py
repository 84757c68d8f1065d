"""Face detection with MTCNN (P/R/O-Net weights shipped in the facenet-pytorch wheel)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ml.types import Box, Detection

MAX_FACES = 100  # Rekognition looks at the 100 largest faces of an image


class FaceDetector(Protocol):
    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Every face in an upright H x W x 3 uint8 image, largest first."""
        ...


class MtcnnDetector:
    """facenet-pytorch's MTCNN with its published settings.

    Images whose longer side exceeds `max_side` are detected on a downscaled copy (boxes and
    landmarks are scaled back): cost then stays bounded while faces of Rekognition's minimum size
    (40 px in a 1920x1080 frame) remain above MTCNN's 20-px minimum.
    """

    def __init__(self, device: torch.device, max_side: int = 1920, min_face_size: int = 20) -> None:
        from facenet_pytorch import MTCNN  # heavy import, kept off module import

        self.max_side = max_side
        self._mtcnn = MTCNN(
            image_size=160,
            margin=0,
            min_face_size=min_face_size,
            thresholds=[0.6, 0.7, 0.7],
            factor=0.709,
            post_process=False,
            keep_all=True,
            device=device,
        )

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        scale = min(1.0, self.max_side / max(pixels.shape[:2]))
        work = pixels if scale == 1.0 else _downscale(pixels, scale)
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(work, landmarks=True)
        if boxes is None:
            return []
        found = [
            Detection(
                box=Box(*(float(v) / scale for v in box)),
                probability=float(prob),
                landmarks=np.asarray(marks, dtype=np.float64) / scale,
            )
            for box, prob, marks in zip(boxes, probs, points, strict=True)
        ]
        return largest_first(found)[:MAX_FACES]


def largest_first(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: d.box.area, reverse=True)


def _downscale(pixels: np.ndarray, scale: float) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)
