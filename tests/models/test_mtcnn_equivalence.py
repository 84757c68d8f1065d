"""The vectorised MTCNN finds the same faces as stock facenet-pytorch MTCNN on every photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.decode import decode_image
from ml.mtcnn import RawFaces, VectorisedMtcnn

pytestmark = pytest.mark.slow

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def photos(faces_dir: Path) -> list[Path]:
    return sorted(p for p in faces_dir.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def assert_same_faces(stock: tuple[object, ...], mine: RawFaces, name: str) -> None:
    boxes, probs, marks = stock
    if boxes is None:
        assert len(mine.boxes) == 0, f"{name}: extra faces {mine.boxes}"
        return
    assert isinstance(boxes, np.ndarray) and isinstance(marks, np.ndarray)
    assert len(mine.boxes) == len(boxes), f"{name}: {len(mine.boxes)} faces, stock {len(boxes)}"
    for box, prob, landmarks in zip(boxes, np.asarray(probs), marks, strict=True):
        match = max(range(len(mine.boxes)), key=lambda j: iou(box, mine.boxes[j]))
        assert iou(box, mine.boxes[match]) >= 0.9, name
        assert np.abs(mine.landmarks[match] - landmarks).max() <= 2.0, name
        assert abs(float(mine.scores[match]) - float(prob)) < 1e-3, name


def test_every_photo_gives_stock_mtcnn_faces(faces_dir: Path) -> None:
    from facenet_pytorch import MTCNN

    device = torch.device("cpu")
    stock = MTCNN(keep_all=True, device=device)
    mine = VectorisedMtcnn(device)
    checked = faces = 0
    with torch.inference_mode():
        for path in photos(faces_dir):
            pixels = np.array(decode_image(path.read_bytes()).pixels)
            expected = stock.detect(pixels, landmarks=True)
            assert_same_faces(expected, mine.detect([torch.from_numpy(pixels)])[0], path.name)
            checked += 1
            faces += 0 if expected[0] is None else len(expected[0])
    assert checked > 600 and faces > 700  # the whole shared set, not a lucky few


def test_a_mixed_size_batch_gives_each_image_its_own_faces(faces_dir: Path) -> None:
    paths = [
        faces_dir / "facenet-pytorch/multiface.jpg",
        faces_dir / "face-recognition-examples/test_images/32bit.png",
        faces_dir / "facenet-pytorch/multiface.jpg",
        faces_dir / "face-recognition-examples/test_images/biden.jpg",
    ]
    images = [torch.from_numpy(np.array(decode_image(p.read_bytes()).pixels)) for p in paths]
    mine = VectorisedMtcnn(torch.device("cpu"))
    together = mine.detect(images)
    alone = [mine.detect([image])[0] for image in images]
    assert [len(faces.boxes) for faces in together] == [6, 1, 6, 1]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(batched.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(batched.landmarks, single.landmarks, atol=1e-3)
