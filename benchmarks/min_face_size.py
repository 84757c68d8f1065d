"""What Rekognition's minimum face size (40 px in a 1920-px frame, in proportion in others,
never below MTCNN's 20 px) saves and drops against MTCNN's own 20 px everywhere, on every
provisioned photo and on the throughput benchmark's scenes.

    python -m benchmarks.min_face_size [--faces DIR] [--scenes 16] [--repeats 3]

Detection only (the vectorised MTCNN, edge padding as served), one image at a time on the CPU.
A face "dropped" is one found at 20 px with no face found at 40 px overlapping it (IoU >= 0.5),
and the other way round; the JSON lists each with its box side and probability. Writes
benchmarks/results/min-face-size.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.decode import DecodedImage, decode_image
from ml.detector import REKOGNITION_MIN_FACE_SIZE, MtcnnDetector
from ml.evaluation.statistics import labelled_images
from ml.mtcnn import MTCNN_MIN_FACE_SIZE
from ml.provision.photos import default_photos_dir
from ml.tracking import iou
from ml.types import Detection

SIZES = (MTCNN_MIN_FACE_SIZE, REKOGNITION_MIN_FACE_SIZE)


def images(faces: Path, scenes: int) -> list[tuple[str, DecodedImage]]:
    photos = [
        (str(path.relative_to(faces)), decode_image(path.read_bytes()))
        for _, path in labelled_images(faces)
        if "downloads" not in path.parts
    ]
    composed = celebrity_photos(faces)
    photos += [
        (f"scene-{i}", decode_image(compose_scene(composed, seed=i, faces=2 + i % 2)))
        for i in range(scenes)
    ]
    return photos


def detect_all(
    detector: MtcnnDetector, named: list[tuple[str, DecodedImage]], repeats: int
) -> tuple[list[list[Detection]], dict[str, float]]:
    """Every image's faces, and the mean ms per image over `repeats` passes, for the photos
    and for the scenes apart."""
    found = [detector.detect(image.pixels) for _, image in named]  # also the warm-up
    spent = {"photos": 0.0, "scenes": 0.0}
    for _ in range(repeats):
        for name, image in named:
            start = time.perf_counter()
            detector.detect(image.pixels)
            spent[kind(name)] += time.perf_counter() - start
    counts = {group: sum(kind(name) == group for name, _ in named) for group in spent}
    return found, {g: 1000 * spent[g] / repeats / max(counts[g], 1) for g in spent}


def kind(name: str) -> str:
    return "scenes" if name.startswith("scene-") else "photos"


def dropped(
    named: list[tuple[str, DecodedImage]],
    small: list[list[Detection]],
    large: list[list[Detection]],
) -> list[dict[str, Any]]:
    lost = []
    for (name, _), everything, kept in zip(named, small, large, strict=True):
        for face in everything:
            if all(iou(face.box, other.box) < 0.5 for other in kept):
                side = min(face.box.width, face.box.height)
                lost.append({"image": name, "side_px": round(side, 1), "p": face.probability})
    return lost


def run(args: argparse.Namespace) -> dict[str, Any]:
    named = images(args.faces, args.scenes)
    device = torch.device("cpu")
    results: dict[str, Any] = {}
    found = {}
    for size in SIZES:
        detector = MtcnnDetector(device, reference_min_face=size)
        found[size], ms_per_image = detect_all(detector, named, args.repeats)
        results[str(size)] = {
            "faces": sum(len(faces) for faces in found[size]),
            "ms_per_image": ms_per_image,
        }
    small, large = SIZES
    return {
        "commit": git_commit(),
        "images": {
            group: sum(kind(name) == group for name, _ in named) for group in ("photos", "scenes")
        },
        "torch_threads": torch.get_num_threads(),
        "by_min_face_size": results,
        "speedup": {
            group: results[str(small)]["ms_per_image"][group]
            / results[str(large)]["ms_per_image"][group]
            for group in ("photos", "scenes")
        },
        "dropped": dropped(named, found[small], found[large]),
        "found_only_with_the_larger_minimum": dropped(named, found[large], found[small]),
        "median_side_found_px": float(
            np.median([f.box.width for faces in found[small] for f in faces])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    report = run(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "min-face-size.json").write_text(json.dumps(report, indent=2) + "\n")
    for size, row in report["by_min_face_size"].items():
        times = ", ".join(f"{g} {ms:.1f} ms/image" for g, ms in row["ms_per_image"].items())
        print(f"min face {size:>3} px: {row['faces']} faces; {times}")
    print(f"speed-up {report['speedup']}; dropped: {report['dropped']}")
    print(f"found only with the larger minimum: {report['found_only_with_the_larger_minimum']}")


if __name__ == "__main__":
    main()
