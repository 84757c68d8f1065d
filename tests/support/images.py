"""Images the tests make themselves."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ml.decode import DecodedImage


def jpeg_bytes(pixels: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, **save)
    return buffer.getvalue()


def blank_jpeg(width: int = 320, height: int = 240, value: int = 128) -> bytes:
    return jpeg_bytes(np.full((height, width, 3), value, dtype=np.uint8))


def encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def gradient(width: int = 200, height: int = 120) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None, None]
    return np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            np.full((height, width, 1), 60, np.uint8),
        ],
        axis=2,
    )


def assert_same_image(got: object, expected: DecodedImage) -> None:
    assert isinstance(got, DecodedImage)
    assert got.pixels.dtype == np.uint8 and got.pixels.flags.c_contiguous
    assert np.array_equal(got.pixels, expected.pixels)
    assert (got.format, got.orientation_correction) == (
        expected.format,
        expected.orientation_correction,
    )
