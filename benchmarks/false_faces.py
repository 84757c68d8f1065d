"""False faces against the detector's output threshold, on photos known to hold one face.

    python -m benchmarks.false_faces [--faces DIR ...] [--thresholds 0.7 0.8 ...]

One-face photos: every `five-celebrities` photo (web portraits, one person each) and the
single-person `face_recognition` test photos. On each, the most confident detection is the
person; every other detection above a threshold counts as a false face. Faces that must stay
found: the most confident face of every one-face photo, and every face of the generated group
scenes (the detector's own lowest score on them is reported). The chosen threshold is the
lowest that leaves no false face while losing no true one; MTCNN's own output threshold is 0.7.
Writes benchmarks/results/false-faces.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.decode import decode_image
from ml.detector import MtcnnDetector
from ml.provision.photos import default_photos_dir

SINGLE_PERSON_TEST_IMAGES = ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png")


def one_face_photos(faces: Path) -> list[Path]:
    single = faces / "face-recognition-examples" / "test_images"
    return celebrity_photos(faces) + [single / name for name in SINGLE_PERSON_TEST_IMAGES]


def scores_per_photo(detector: MtcnnDetector, photos: list[Path]) -> dict[str, list[float]]:
    found = {}
    for path in photos:
        faces = detector.detect(decode_image(path.read_bytes()).pixels)
        found[str(path)] = sorted((face.probability for face in faces), reverse=True)
    return found


def table(one_face: dict[str, list[float]], group_lowest: float, thresholds: list[float]) -> list:
    rows = []
    for threshold in thresholds:
        false = {name: sum(s >= threshold for s in scores[1:]) for name, scores in one_face.items()}
        lost = sum(1 for scores in one_face.values() if not scores or scores[0] < threshold)
        rows.append(
            {
                "threshold": threshold,
                "false_faces": sum(false.values()),
                "photos_with_false_faces": sum(1 for n in false.values() if n),
                "one_face_photos_losing_their_face": lost,
                "group_faces_lost": int(group_lowest < threshold),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99]
    )
    args = parser.parse_args()
    detector = MtcnnDetector(torch.device("cpu"))
    one_face = scores_per_photo(detector, one_face_photos(args.faces))
    photos = celebrity_photos(args.faces)
    groups = [decode_image(compose_scene(photos, seed=i, faces=3)) for i in range(20)]
    group_scores = [f.probability for g in groups for f in detector.detect(g.pixels)]
    rows = table(one_face, min(group_scores), args.thresholds)
    report = {
        "commit": git_commit(),
        "one_face_photos": len(one_face),
        "group_scenes": len(groups),
        "group_faces": len(group_scores),
        "group_lowest_score": min(group_scores),
        "primary_lowest_score": min(s[0] for s in one_face.values() if s),
        "extra_detections": {k: v[1:] for k, v in one_face.items() if len(v) > 1},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "false-faces.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "extra_detections"}, indent=2))
    print("extra detections:", json.dumps(report["extra_detections"], indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
