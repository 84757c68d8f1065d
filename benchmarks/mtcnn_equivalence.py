"""The vectorised MTCNN against stock facenet-pytorch MTCNN on every photo of a folder.

    python -m benchmarks.mtcnn_equivalence [--faces ../shared/faces]

Both run with stock's settings (20-px minimum face, no edge padding) on the CPU, on every JPEG
and PNG under --faces. Reports the photos where the two find a different number of faces, and
over the faces both find: the smallest box IoU with stock's box, the largest landmark distance
(pixels) and the largest score difference. tests/models/test_mtcnn_equivalence.py asserts the
same on the provisioned photos; this covers a larger set. Writes
benchmarks/results/mtcnn-equivalence.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.photos import default_faces
from ml.decode import decode_image
from ml.mtcnn import RawFaces, VectorisedMtcnn
from ml.tracking import iou
from ml.types import Box

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def as_box(corners: np.ndarray) -> Box:
    return Box(*(float(v) for v in corners[:4]))


def compare(stock: tuple[Any, ...], mine: RawFaces) -> list[tuple[float, float, float]]:
    """(IoU, landmark distance, score difference) for each of stock's faces, matched to the
    vectorised detector's box that overlaps it most."""
    boxes, scores, marks = stock
    rows = []
    for box, score, landmarks in zip(boxes, scores, marks, strict=True):
        overlaps = [iou(as_box(box), as_box(other)) for other in mine.boxes]
        match = int(np.argmax(overlaps))
        distance = float(np.abs(mine.landmarks[match] - landmarks).max())
        rows.append((overlaps[match], distance, abs(float(mine.scores[match]) - float(score))))
    return rows


def run(folder: Path) -> dict[str, Any]:
    from facenet_pytorch import MTCNN

    stock, mine = MTCNN(keep_all=True), VectorisedMtcnn(torch.device("cpu"))
    checked, mismatched, matched = 0, [], []
    with torch.inference_mode():
        for path in photos(folder):
            pixels = np.array(decode_image(path.read_bytes()).pixels)
            expected = stock.detect(pixels, landmarks=True)
            found = mine.detect([torch.from_numpy(pixels)])[0]
            checked += 1
            count = 0 if expected[0] is None else len(expected[0])
            if count != len(found.boxes):
                mismatched.append(
                    {
                        "photo": str(path.relative_to(folder)),
                        "stock": count,
                        "vectorised": len(found.boxes),
                    }
                )
            elif count:
                matched.extend(compare(expected, found))
    overlaps, distances, differences = zip(*matched, strict=True) if matched else ((), (), ())
    return {
        "photos": checked,
        "faces": len(matched),
        "photos_with_other_faces": mismatched,
        "min_box_iou": min(overlaps, default=None),
        "max_landmark_px": max(distances, default=None),
        "max_score_difference": max(differences, default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    parser.add_argument("--out", type=Path, default=RESULTS / "mtcnn-equivalence.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = {"commit": git_commit(), "torch": torch.__version__, **run(args.faces)}
    print(json.dumps(report, indent=2))
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
