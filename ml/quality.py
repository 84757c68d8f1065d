"""Face image quality on Rekognition's 0-100 scales, computed on the face's own pixels.

Brightness: mean luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) of the face box, as a
percentage of 255.
Sharpness: variance of the 4-neighbour Laplacian of the luma, after resizing the face box to
SHARPNESS_SIDE x SHARPNESS_SIDE pixels so that face size does not change the score, mapped by
100 * (1 - exp(-variance / SHARPNESS_SCALE)). A flat or very blurred face scores near 0; a crisp
photo scores above 50.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ml.types import Box, Quality

SHARPNESS_SIDE = 112
SHARPNESS_SCALE = 300.0
_LUMA = np.array([0.299, 0.587, 0.114])


def face_luma(pixels: np.ndarray, box: Box) -> np.ndarray:
    height, width = pixels.shape[:2]
    left, top = max(int(box.left), 0), max(int(box.top), 0)
    right, bottom = min(math.ceil(box.right), width), min(math.ceil(box.bottom), height)
    if right - left < 2 or bottom - top < 2:
        return np.zeros((2, 2))
    return np.asarray(pixels[top:bottom, left:right] @ _LUMA, dtype=np.float64)


def brightness(luma: np.ndarray) -> float:
    return float(np.clip(luma.mean() / 255.0 * 100.0, 0.0, 100.0))


def sharpness(luma: np.ndarray) -> float:
    resized = Image.fromarray(luma.astype(np.float32), mode="F").resize(
        (SHARPNESS_SIDE, SHARPNESS_SIDE), Image.Resampling.BILINEAR
    )
    grid = np.asarray(resized, dtype=np.float64)
    laplacian = (
        grid[1:-1, :-2] + grid[1:-1, 2:] + grid[:-2, 1:-1] + grid[2:, 1:-1] - 4.0 * grid[1:-1, 1:-1]
    )
    return float(100.0 * (1.0 - math.exp(-float(laplacian.var()) / SHARPNESS_SCALE)))


def assess_quality(pixels: np.ndarray, box: Box) -> Quality:
    luma = face_luma(pixels, box)
    return Quality(brightness=brightness(luma), sharpness=sharpness(luma))
