"""Images the tests make themselves."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_bytes(pixels: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, **save)
    return buffer.getvalue()


def blank_jpeg(width: int = 320, height: int = 240, value: int = 128) -> bytes:
    return jpeg_bytes(np.full((height, width, 3), value, dtype=np.uint8))
