"""Every provisioned photo decodes through the batched decoder exactly as through Pillow."""

from __future__ import annotations

from pathlib import Path

import torch

from ml.decode import ImageLimits, decode_image
from ml.device_decode import decode_batch
from tests.support.images import assert_same_image
from tests.support.photos import all_photos

CPU = torch.device("cpu")
LIMITS = ImageLimits()


def test_every_photo_decodes_exactly_as_with_pillow(faces_dir: Path) -> None:
    photos = [path for path in all_photos(faces_dir) if path.suffix.lower() != ".png"]
    assert len(photos) >= 124  # every provisioned JPEG
    for start in range(0, len(photos), 64):
        datas = [photo.read_bytes() for photo in photos[start : start + 64]]
        for data, outcome in zip(datas, decode_batch(datas, LIMITS, CPU), strict=True):
            assert_same_image(outcome, decode_image(data))
