"""The vectorised MTCNN finds the same faces as stock facenet-pytorch MTCNN on every photo the
tests have (the provisioned photos plus generated group scenes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.decode import decode_image
from ml.mtcnn import RawFaces, VectorisedMtcnn
from tests.support.photos import GROUP_PEOPLE, all_photos, group_photo, rgba_png


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def assert_same_faces(
    stock: tuple[object, ...], mine: RawFaces, name: str, score_tolerance: float = 1e-3
) -> None:
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
        assert abs(float(mine.scores[match]) - float(prob)) < score_tolerance, name


# On CUDA both run with the device's own convolution kernels (TF32 where torch allows it), so
# scores may move by more than on the CPU; boxes, landmarks and the set of faces may not.
DEVICES = [
    pytest.param("cpu", 1e-3, id="cpu"),
    pytest.param("cuda", 2e-2, id="cuda", marks=pytest.mark.cuda),
]


@pytest.mark.parametrize(("device_name", "score_tolerance"), DEVICES)
def test_every_photo_gives_stock_mtcnn_faces(
    faces_dir: Path, device_name: str, score_tolerance: float
) -> None:
    from facenet_pytorch import MTCNN

    device = torch.device(device_name)
    stock = MTCNN(keep_all=True, device=device)
    mine = VectorisedMtcnn(device)
    photos = {path.name: path.read_bytes() for path in all_photos(faces_dir)}
    photos["group scene"] = group_photo(faces_dir)
    checked = faces = 0
    with torch.inference_mode():
        for name, data in photos.items():
            pixels = np.array(decode_image(data).pixels)
            expected = stock.detect(pixels, landmarks=True)
            found = mine.detect([torch.from_numpy(pixels).to(device)])[0]
            assert_same_faces(expected, found, name, score_tolerance)
            checked += 1
            faces += 0 if expected[0] is None else len(expected[0])
    # Every provisioned photo (125: 118 one-face portraits, 7 test photos) and the group scene;
    # the faces they hold, not a lucky few.
    assert checked >= 126 and faces >= 128


def test_a_mixed_size_batch_gives_each_image_its_own_faces(faces_dir: Path) -> None:
    biden = faces_dir / "face-recognition-examples/test_images/biden.jpg"
    group = group_photo(faces_dir)
    datas = [group, rgba_png(faces_dir), group, biden.read_bytes()]
    images = [torch.from_numpy(np.array(decode_image(data).pixels)) for data in datas]
    mine = VectorisedMtcnn(torch.device("cpu"))
    together = mine.detect(images)
    alone = [mine.detect([image])[0] for image in images]
    people = len(GROUP_PEOPLE)
    assert [len(faces.boxes) for faces in together] == [people, 1, people, 1]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(batched.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(batched.landmarks, single.landmarks, atol=1e-3)
