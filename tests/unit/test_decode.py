from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ml.decode import (
    ImageLimits,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
    decode_image,
)
from tests.support.images import encode, gradient, jpeg_bytes


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny (invalid) body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def test_jpeg_and_png_decode_to_rgb() -> None:
    pixels = gradient()
    for fmt in ("PNG", "JPEG"):
        decoded = decode_image(encode(Image.fromarray(pixels), fmt))
        assert decoded.format == fmt
        assert decoded.pixels.shape == (120, 200, 3)
        assert decoded.pixels.dtype == np.uint8
        assert np.abs(decoded.pixels.astype(int) - pixels).mean() < 3


@pytest.mark.parametrize("data", [b"GIF89a" + b"\0" * 200, b"hello world" * 20, b"\0" * 500])
def test_non_png_jpeg_content_is_rejected(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError):
        decode_image(data)


def test_real_gif_is_rejected_even_named_otherwise() -> None:
    gif = encode(Image.fromarray(gradient()), "GIF")
    with pytest.raises(UnsupportedImageError):
        decode_image(gif)


def test_truncated_jpeg_is_rejected() -> None:
    data = jpeg_bytes(gradient(400, 300))
    with pytest.raises(UnsupportedImageError):
        decode_image(data[: len(data) // 3])


def test_byte_limit() -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    with pytest.raises(ImageTooLargeError):
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))
    assert decode_image(data, ImageLimits(max_bytes=len(data))).width == 200


def test_decompression_bomb_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(png_header_only(30_000, 30_000))


def test_minimum_side() -> None:
    with pytest.raises(ImageTooSmallError):
        decode_image(encode(Image.fromarray(gradient(200, 79)), "PNG"))
    assert decode_image(encode(Image.fromarray(gradient(80, 80)), "PNG")).height == 80


def test_exif_orientation_is_applied_first() -> None:
    pixels = gradient(200, 100)
    pixels[:10, :10] = [255, 0, 0]  # a red mark in the stored image's top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90-degree clockwise turn
    decoded = decode_image(jpeg_bytes(pixels, exif=exif.tobytes()))
    assert decoded.pixels.shape == (200, 100, 3)  # width and height swapped
    assert decoded.orientation_correction == "ROTATE_90"
    red = decoded.pixels[:, :, 0].astype(int) - decoded.pixels[:, :, 1]
    row, col = np.unravel_index(np.argmax(red), red.shape)
    assert row < 15 and col > 85  # top-left went to the top-right corner


def test_no_orientation_reported_without_exif() -> None:
    assert decode_image(jpeg_bytes(gradient())).orientation_correction is None


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK"])
def test_modes_convert_to_rgb(mode: str) -> None:
    image = Image.fromarray(gradient()).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(encode(image, fmt))
    assert decoded.pixels.shape == (120, 200, 3)
    assert decoded.pixels.max() > 200  # not crushed to black


def test_sixteen_bit_grayscale_keeps_its_range() -> None:
    ramp = np.tile(np.linspace(0, 65535, 200).astype(np.uint16), (100, 1))
    decoded = decode_image(encode(Image.fromarray(ramp), "PNG"))
    row = decoded.pixels[50, :, 0]
    assert row[0] <= 2 and row[-1] >= 253
    assert np.all(np.diff(row.astype(int)) >= 0)  # monotone, not clipped at 255 early
    assert abs(int(row[100]) - 128) < 4


def test_palette_with_transparency() -> None:
    image = Image.fromarray(gradient()).convert("P")
    image.info["transparency"] = 0
    assert decode_image(encode(image, "PNG", transparency=0)).pixels.shape == (120, 200, 3)
