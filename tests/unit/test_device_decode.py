"""The torchvision JPEG path (nvJPEG on CUDA; here its CPU build) against Pillow: the same
upright pixels, the same OrientationCorrection, the same typed errors, Pillow for the rest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.decode import (
    DecodedImage,
    ImageLimits,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
    decode_image,
)
from ml.device_decode import TorchvisionDecoder, decode_batch
from service.batching import BatchedDecoder
from tests.support.images import assert_same_image, encode, gradient

CPU = torch.device("cpu")
LIMITS = ImageLimits()


def with_orientation(pixels: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(pixels), "JPEG", quality=90, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_does(orientation: int) -> None:
    data = with_orientation(gradient(200, 120), orientation)
    assert_same_image(decode_batch([data], LIMITS, CPU)[0], decode_image(data))


def test_a_mixed_batch_keeps_order_falls_back_and_types_each_error() -> None:
    pixels = gradient(200, 120)
    jpeg = encode(Image.fromarray(pixels), "JPEG")
    good = {
        "jpeg": jpeg,
        "gray jpeg": encode(Image.fromarray(pixels).convert("L"), "JPEG"),
        "progressive jpeg": encode(Image.fromarray(pixels), "JPEG", progressive=True),
        "png": encode(Image.fromarray(pixels), "PNG"),
        "cmyk jpeg": encode(Image.fromarray(pixels).convert("CMYK"), "JPEG"),
    }
    bad = {
        "truncated jpeg": (jpeg[: len(jpeg) // 2], UnsupportedImageError),
        "text": (b"hello, not an image", UnsupportedImageError),
        "tiny jpeg": (encode(Image.fromarray(pixels[:50, :50]), "JPEG"), ImageTooSmallError),
        "huge": (b"x" * (LIMITS.max_bytes + 1), ImageTooLargeError),
    }
    inputs = [*good.values(), *(data for data, _ in bad.values())]
    outcomes = decode_batch(inputs, LIMITS, CPU)
    for outcome, data in zip(outcomes, good.values(), strict=False):
        assert_same_image(outcome, decode_image(data))
    for outcome, (_, error) in zip(outcomes[len(good) :], bad.values(), strict=True):
        assert isinstance(outcome, error)


def test_decoders_return_images_and_raise_typed_errors() -> None:
    images = [with_orientation(gradient(160 + 8 * i, 120), 1 + i % 8) for i in range(24)]
    expected = [decode_image(data) for data in images]
    single = TorchvisionDecoder(LIMITS, CPU)
    assert_same_image(single.decode(images[5]), expected[5])
    with pytest.raises(UnsupportedImageError):
        single.decode(b"\xff\xd8\xff" + b"\x00" * 100)
    batched = BatchedDecoder(LIMITS, CPU, max_batch=8, max_wait_s=0.01, max_queue=64)
    with ThreadPoolExecutor(len(images)) as clients:  # concurrent callers
        results = list(clients.map(batched.decode, images))
    with pytest.raises(ImageTooSmallError):
        batched.decode(encode(Image.fromarray(gradient(60, 60)), "JPEG"))
    batched.close()
    for position, image in enumerate(expected):
        assert_same_image(results[position], image)


@pytest.mark.cuda
def test_nvjpeg_matches_pillow_within_idct_rounding(faces_dir: Path) -> None:
    """nvJPEG's IDCT and chroma upsampling differ from libjpeg-turbo's by a few levels."""
    photos = sorted(faces_dir.rglob("*.jpg"))[:64]
    datas = [photo.read_bytes() for photo in photos] + [with_orientation(gradient(), 6)]
    for data, outcome in zip(datas, decode_batch(datas, LIMITS, torch.device("cuda")), strict=True):
        expected = decode_image(data)
        assert isinstance(outcome, DecodedImage)
        assert outcome.pixels.shape == expected.pixels.shape
        assert outcome.orientation_correction == expected.orientation_correction
        difference = np.abs(outcome.pixels.astype(np.int16) - expected.pixels)
        assert difference.mean() < 1.0 and np.percentile(difference, 99.9) <= 8


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    data = encode(Image.new("L", (3000, 2000)), "JPEG")
    outcome = decode_batch([data], ImageLimits(max_pixels=5_000_000), CPU)[0]
    assert isinstance(outcome, ImageTooLargeError)


def odd_jpegs() -> dict[str, bytes]:
    """JPEGs that take the device decoder off its common path, or that it must refuse."""
    pixels = gradient(321, 203)  # odd sizes: partial MCUs at the right and bottom edges
    whole = encode(Image.fromarray(pixels), "JPEG", quality=90)
    return {
        "odd size": whole,
        "truncated": whole[: len(whole) // 2],
        "progressive": encode(Image.fromarray(pixels), "JPEG", quality=85, progressive=True),
        "grey": encode(Image.fromarray(pixels[:, :, 0]), "JPEG"),
        "4:4:4": encode(Image.fromarray(pixels), "JPEG", subsampling=0),
        "cmyk": encode(Image.fromarray(pixels).convert("CMYK"), "JPEG"),
        "restart markers": encode(Image.fromarray(pixels), "JPEG", restart_marker_blocks=2),
        "too small": encode(Image.fromarray(gradient(60, 60)), "JPEG"),
    }


@pytest.mark.cuda
def test_odd_jpegs_are_answered_on_cuda_as_on_the_cpu() -> None:
    odd = odd_jpegs()
    on_cpu = decode_batch(list(odd.values()), LIMITS, CPU)
    on_cuda = decode_batch(list(odd.values()), LIMITS, torch.device("cuda"))
    for name, expected, got in zip(odd, on_cpu, on_cuda, strict=True):
        assert type(got) is type(expected), name
        if isinstance(expected, DecodedImage):
            assert isinstance(got, DecodedImage)
            assert got.pixels.shape == expected.pixels.shape, name
            difference = np.abs(got.pixels.astype(np.int16) - expected.pixels)
            assert difference.mean() < 1.5, name


def test_odd_jpegs_decode_on_the_cpu_path_as_with_pillow() -> None:
    """The CPU half of the comparison above, which runs everywhere."""
    odd = odd_jpegs()
    for name, outcome in zip(odd, decode_batch(list(odd.values()), LIMITS, CPU), strict=True):
        try:
            expected = decode_image(odd[name])
        except (UnsupportedImageError, ImageTooSmallError) as exc:
            assert type(outcome) is type(exc), name
            continue
        assert_same_image(outcome, expected)
