"""Face detection with MTCNN (P/R/O-Net weights shipped in the facenet-pytorch wheel)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ml.mtcnn import MtcnnSettings, RawFaces, VectorisedMtcnn
from ml.types import Box, Detection

MAX_FACES = 100  # Rekognition looks at the 100 largest faces of an image
# Rekognition's smallest detectable face: 40x40 px in a 1920x1080 image, larger in proportion
# for larger images. Taken as a share of the frame (never below MTCNN's own 20 px), MTCNN's
# pyramid starts lower in frames above 960 px, where most of its work is.
REKOGNITION_MIN_FACE_SIZE = 40
# Faces cut by the frame: each pyramid level is padded by 6 level pixels (half of P-Net's window)
# of mid-grey, which normalises to 0, so a face cut by an edge is still found whole (how many more
# than stock finds: docs/accuracy.md, `python -m benchmarks.edge_faces`).
EDGE_MARGIN = 6
EDGE_FILL = 127.5


class FaceDetector(Protocol):
    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Every face in an upright H x W x 3 uint8 image, largest first."""
        ...

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """`detect` for several images in one pass."""
        ...


class MtcnnDetector:
    """MTCNN with facenet-pytorch's weights and published settings, run vectorised
    (`ml.mtcnn`): it finds the same faces as stock `facenet_pytorch.MTCNN`.

    Images whose longer side exceeds `max_side` are detected on a downscaled copy (boxes and
    landmarks are scaled back): cost then stays bounded. `reference_min_face` is the smallest face
    in a 1920-px frame, in proportion in others, never below MTCNN's 20 px (0: 20 px always).
    """

    def __init__(
        self,
        device: torch.device,
        max_side: int = 1920,
        reference_min_face: int = 0,
        edge_margin: int = EDGE_MARGIN,
        edge_fill: float = EDGE_FILL,
    ) -> None:
        self.max_side = max_side
        settings = MtcnnSettings(
            reference_min_face=reference_min_face, edge_margin=edge_margin, edge_fill=edge_fill
        )
        self._mtcnn = VectorisedMtcnn(device, settings)

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return self.detect_many([pixels])[0]

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        scales = [min(1.0, self.max_side / max(pixels.shape[:2])) for pixels in images]
        work = [
            _as_tensor(pixels if scale == 1.0 else _downscale(pixels, scale))
            for pixels, scale in zip(images, scales, strict=True)
        ]
        found = self._mtcnn.detect(work)
        return [_detections(raw, scale) for raw, scale in zip(found, scales, strict=True)]


def _detections(raw: RawFaces, scale: float) -> list[Detection]:
    found = [
        Detection(
            box=Box(*(float(v) / scale for v in box)),
            probability=float(score),
            landmarks=np.asarray(marks, dtype=np.float64) / scale,
        )
        for box, score, marks in zip(raw.boxes, raw.scores, raw.landmarks, strict=True)
    ]
    return largest_first(found)[:MAX_FACES]


def largest_first(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: d.box.area, reverse=True)


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    # Decoded images are read-only views of Pillow's buffer; torch wants writable memory even
    # though the detector never writes.
    return torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())


def _downscale(pixels: np.ndarray, scale: float) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)
