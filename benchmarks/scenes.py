"""1280x720 test scenes composed from real photos: a few real faces on a plain backdrop."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SCENE_SIZE = (1280, 720)


def compose_scene(photos: list[Path], seed: int, faces: int = 2) -> bytes:
    """A JPEG of `faces` photos (scaled to 300 px tall) placed side by side on a grey backdrop."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", SCENE_SIZE, (int(rng.integers(90, 160)),) * 3)
    chosen = rng.choice(len(photos), size=faces, replace=False)
    slot = SCENE_SIZE[0] // faces
    for i, index in enumerate(chosen):
        photo = Image.open(photos[int(index)]).convert("RGB")
        height = 300
        width = max(1, round(photo.width * height / photo.height))
        photo = photo.resize((min(width, slot - 10), height))
        left = i * slot + int(rng.integers(0, max(1, slot - photo.width)))
        top = int(rng.integers(0, SCENE_SIZE[1] - height))
        canvas.paste(photo, (left, top))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def celebrity_photos(faces_dir: Path) -> list[Path]:
    return sorted((faces_dir / "five-celebrities").rglob("*.jpg"))
