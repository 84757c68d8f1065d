"""Bytes -> RGB pixels: format sniffing, size limits, EXIF orientation, mode normalisation."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientation -> the rotation facebank applied, in Rekognition's OrientationCorrection terms.
# Mirrored orientations (2, 4, 5, 7) report the rotation part of their transform.
_ORIENTATION_CORRECTION = {
    1: "ROTATE_0",
    2: "ROTATE_0",
    3: "ROTATE_180",
    4: "ROTATE_180",
    5: "ROTATE_90",
    6: "ROTATE_90",
    7: "ROTATE_270",
    8: "ROTATE_270",
}


class ImageDecodeError(ValueError):
    """Base for everything wrong with an input image."""


class ImageTooLargeError(ImageDecodeError):
    """Too many bytes, or more pixels than the decompression-bomb guard allows."""


class UnsupportedImageError(ImageDecodeError):
    """Not a PNG or JPEG, or a PNG/JPEG that cannot be decoded."""


class ImageTooSmallError(ImageDecodeError):
    """A side shorter than the minimum."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 5_242_880
    min_side: int = 80
    # A 5 MB JPEG can declare a 30,000 x 30,000 canvas (2.7 GB of RGB); refuse before decoding.
    max_pixels: int = 64_000_000


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image; `orientation_correction` is set only when EXIF carried one."""

    pixels: np.ndarray  # H x W x 3, uint8, C-contiguous
    format: str
    orientation_correction: str | None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def sniff_format(data: bytes) -> str | None:
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    return None


class ImageDecoder(Protocol):
    def decode(self, data: bytes) -> DecodedImage: ...


@dataclass(frozen=True)
class Header:
    """What the file says about itself, read without decoding its pixels."""

    format: str
    mode: str  # Pillow's: "RGB" and "L" for ordinary JPEGs, "CMYK" for print files
    orientation: int  # EXIF orientation, 0 when absent

    @property
    def orientation_correction(self) -> str | None:
        return _ORIENTATION_CORRECTION.get(self.orientation)


def decode_image(data: bytes, limits: ImageLimits | None = None) -> DecodedImage:
    limits = limits or ImageLimits()
    image, header = open_checked(data, limits)
    _load(image, header.format)
    upright = ImageOps.exif_transpose(image) if header.orientation else image
    return DecodedImage(to_rgb_array(upright), header.format, header.orientation_correction)


def open_checked(data: bytes, limits: ImageLimits) -> tuple[Image.Image, Header]:
    """The lazily opened image and its header, once every limit that the header decides holds."""
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageError("image is neither PNG nor JPEG")
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
        orientation = image.getexif().get(EXIF_ORIENTATION_TAG) if fmt == "JPEG" else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(f"{fmt} data could not be decoded: {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc)) from exc
    if image.width * image.height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {image.width}x{image.height} px; the limit is {limits.max_pixels} pixels"
        )
    if min(image.width, image.height) < limits.min_side:  # rotation keeps the shorter side
        raise ImageTooSmallError(
            f"image is {image.width}x{image.height} px; each side must be at least "
            f"{limits.min_side} px"
        )
    return image, Header(fmt, image.mode, int(orientation or 0))


def _load(image: Image.Image, fmt: str) -> None:
    try:
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(f"{fmt} data could not be decoded: {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc)) from exc


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """8-bit RGB from any PNG/JPEG mode: gray, palette, alpha, CMYK, 16- and 32-bit gray."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = np.asarray(image, dtype=np.float64)
        # 16-bit PNGs decode to "I" with values up to 65535; scale the full range to 8 bits.
        peak = 65535.0 if gray.max(initial=0) > 255 else 255.0
        gray8 = np.clip(gray * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray8[:, :, None], 3, axis=2))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    # Alpha is dropped, not composited: transparent pixels keep the colour they were stored with.
    # An RGB image is read as it is: convert() would copy it first (256 MB at 64 MP).
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
